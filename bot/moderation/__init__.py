"""Moderation: what a member may do here, now, and what it costs.

Owns the policy's decision per request (:mod:`.policy`), the word filter (:mod:`.wordfilter`, over the
reading of :mod:`.normalisation`), prices and budgets (:mod:`.costs`), limits on waiting jobs
(:mod:`.queue_caps`), usage reports (:mod:`.usage`), a member's own standing (:mod:`.member_status`) and the
moderators' log events (:mod:`.modlog`). May import :mod:`bot.base`, :mod:`bot.api` (model references) and
:mod:`bot.storage`; knows nothing of Discord or HTTP.
"""
