"""Jobs: one ``/imagine`` from the queue to its images, surviving restarts and other processes.

Owns the job's model and views (:mod:`.model`), the engine with its queue and slots (:mod:`.engine`,
:mod:`.scheduling`, :mod:`.handles`), a request built from a member's options (:mod:`.preparation`),
views shown in order (:mod:`.showing`), one prediction's run (:mod:`.execution`: create in
:mod:`.creation`, outcome in :mod:`.outcome`), when to poll (:mod:`.end_estimate`,
:mod:`.poll_planner`), the progress bar (:mod:`.progress`), the journal that makes jobs durable
(:mod:`.journal`, with a request as it keeps it in :mod:`.serialization`), resuming after a restart
(:mod:`.recovery`) and events the API pushes (:mod:`.webhooks`); and ``/describe``'s run, which is no job
(:mod:`.describing`). May import :mod:`bot.base`, :mod:`bot.api`, :mod:`bot.media`, :mod:`bot.storage` and
:mod:`bot.moderation`; knows nothing of Discord: presenters are handed in.
"""
