"""The prediction API: everything that speaks to a Replicate-compatible server.

Owns the HTTP client (:mod:`.client`), its typed errors (:mod:`.errors`), the prediction records read
from its replies (:mod:`.predictions`), the request budget that keeps the deployment under the API's rate
limits (:mod:`.ratelimit`), model references (:mod:`.modelref`), a member's options and prompt flags
turned into a model's own inputs checked against its schema (:mod:`.inputs`, :mod:`.flags`), a prompt's ``{a, b}``
permutations (:mod:`.permutations`), what a member's preferences may add to prompts (:mod:`.named_options`), a
describe model's inputs and its text read as prompt suggestions (:mod:`.descriptions`). May import
:mod:`bot.base`; knows nothing of jobs, storage or Discord.
"""
