"""The embedded store: :class:`bot.storage.Repository` on one SQLite file.

:class:`SqliteRepository` is composed of one part per responsibility, all over
the connection of :class:`~bot.storage.sqlite.base.SqliteBase` (``base.py``:
the connection, its transactions, small SQL helpers and the audit):

* ``settings.py``: the moderation settings, cached per guild;
* ``usage.py``: member usage, charges and refunds, budgets and spend;
* ``journal.py``: the jobs journal;
* ``cluster.py``: processes, job claims, run times and webhooks.

Its schema is built by :mod:`bot.storage.migrations`.
"""

from __future__ import annotations

from bot.storage import RepositoryClosedError, SchemaVersionError, StorageError
from bot.storage.sqlite.base import MEMORY
from bot.storage.sqlite.cluster import SqliteCluster
from bot.storage.sqlite.journal import SqliteJournal
from bot.storage.sqlite.settings import SqliteSettings
from bot.storage.sqlite.usage import SqliteUsage

__all__ = [
    "MEMORY",
    "RepositoryClosedError",
    "SchemaVersionError",
    "SqliteRepository",
    "StorageError",
]


class SqliteRepository(SqliteSettings, SqliteUsage, SqliteJournal, SqliteCluster):
    """:class:`bot.storage.Repository` on SQLite. Open it with :meth:`open` (or :func:`bot.storage.open_repository`)."""
