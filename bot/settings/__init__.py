"""The bot's settings: one frozen object read from the environment after ``.env``.

Every problem found is reported on its own line naming the variable; the
caller turns them into exit status 2. Secrets are wrapped in :class:`Secret`
so that no repr, log line or error message can show them.

The record and its value types are :mod:`.values`, the parsers of single values
:mod:`.parsing`, the reading of the environment :mod:`.loading`; callers import
from here.

May import the layers below it (:mod:`bot.base`, :mod:`bot.api`, :mod:`bot.media`, :mod:`bot.storage`,
:mod:`bot.moderation`, for the parsers of their values); nothing below imports settings: each layer takes
plain values (``core`` hands them out).
"""

from bot.settings.loading import load_database_url, load_environment, load_settings
from bot.settings.parsing import parse_listen, parse_shard_ids, parse_webhook_url
from bot.settings.values import (
    DEFAULT_BASE_URL,
    DEFAULT_DATABASE_URL,
    DEFAULT_MODEL,
    HttpListen,
    Secret,
    Settings,
    SettingsError,
    database_password,
    sqlite_path,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_MODEL",
    "HttpListen",
    "Secret",
    "Settings",
    "SettingsError",
    "database_password",
    "load_database_url",
    "load_environment",
    "load_settings",
    "parse_listen",
    "parse_shard_ids",
    "parse_webhook_url",
    "sqlite_path",
]
