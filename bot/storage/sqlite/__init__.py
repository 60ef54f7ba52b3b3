"""The embedded store: :class:`bot.storage.Repository` on one SQLite file.

:class:`SqliteRepository` is the shared SQL of :mod:`bot.storage.shared` over
the connection of :class:`~bot.storage.sqlite.base.SqliteBase` (``base.py``:
the connection and its transactions), in SQLite's words (``dialect.py``: how
values are stored, and the migration lock), plus what only SQLite does its own
way (``settings.py``: a guild's settings read and cached in this process).

Its schema is built by :mod:`bot.storage.migrations` from :mod:`bot.storage.schema`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from bot.storage.shared.repository import SqlRepository
from bot.storage.sqlite.base import MEMORY
from bot.storage.sqlite.settings import SqliteSettings

__all__ = ["MEMORY", "SqliteRepository"]


class SqliteRepository(SqliteSettings, SqlRepository):
    """:class:`bot.storage.Repository` on SQLite. Open it with :meth:`open` (or :func:`bot.storage.open_repository`).

    One process: it paces its Discord identifies itself, and the process that records a webhook is the one
    that runs its job.
    """

    _sync_lock: asyncio.Lock | None = None

    @asynccontextmanager
    async def _command_sync_lock(self) -> AsyncIterator[None]:
        """One process: a lock of its own (the database's writer lock is not held across Discord's answer)."""
        if self._sync_lock is None:
            self._sync_lock = asyncio.Lock()
        async with self._sync_lock:
            yield

    async def take_identify_turn(self, bot_id: int, bucket: int, *, spacing: float, within: float) -> float | None:
        """``None``: the one process runs every shard and paces its identifies itself."""
        return None

    def on_webhook(self, listener: Callable[[str], None]) -> None:
        """Never called: the process that records a webhook is the one that runs its job."""
