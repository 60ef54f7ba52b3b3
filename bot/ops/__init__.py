"""Operations: what the owner runs and watches the bot with.

Owns the bot's HTTP server and its guards against hostile clients (:mod:`.http_server`, :mod:`.http_guard`),
health checks (:mod:`.health`), Prometheus metrics (:mod:`.metrics`) and the heartbeat, takeover and
shared request budget of many processes on one PostgreSQL (:mod:`.cluster`). May import every layer
below it (up to :mod:`bot.settings`); knows nothing of Discord.
"""
