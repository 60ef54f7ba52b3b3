"""imagine-bot: turn ``/imagine`` into images from a Replicate-compatible prediction API.

The layers, lowest first; a module imports its own layer and the ones below, never above
(``tests/test_architecture.py`` draws the house and fails on a circle or an upward import):

- :mod:`bot.base`: clock, errors, money, logs.
- :mod:`bot.i18n`: texts in the reader's language: message ids rendered late, gettext catalogs.
- :mod:`bot.api`: the prediction API's client, request budget, model references, input schemas.
- :mod:`bot.media`: guarded fetches, downloads, image fitting.
- :mod:`bot.storage`: the repository over SQLite or PostgreSQL, and its migrations.
- :mod:`bot.moderation`: policy, word filter, costs and budgets, queue caps, usage, mod-log events.
- :mod:`bot.jobs`: the engine, a prediction's run, polling, progress, journal, recovery, webhooks.
- :mod:`bot.settings`: one frozen object from the environment.
- :mod:`bot.ops`: HTTP server, health, metrics, the cluster of processes.
- :mod:`bot.core`: the services wired once from settings.
- :mod:`bot.discord_app`: the Discord adapter; then :mod:`bot.cli` and the cogs at the top.
"""

__version__ = "0.1.0"
