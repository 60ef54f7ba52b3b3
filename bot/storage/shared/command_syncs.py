"""The last command sync each scope recorded, and syncing again only when the commands changed.

A scope is ``global`` or a guild id; its digest is a hash of the command tree's sync payload. Processes
starting at once take turns under :meth:`SqlCommandSyncs._command_sync_lock` (a PostgreSQL advisory lock,
a lock of the one process on SQLite): the first syncs and records, the others find its digest and do nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from bot.storage.common import utc
from bot.storage.shared.base import SqlBase

MAX_SCOPE = 100
MAX_DIGEST = 128


def _checked(scope: str, digest: str) -> None:
    if not scope or len(scope) > MAX_SCOPE:
        raise ValueError(f"a sync scope is 1 to {MAX_SCOPE} characters, got {scope!r}")
    if not digest or len(digest) > MAX_DIGEST:
        raise ValueError(f"a sync digest is 1 to {MAX_DIGEST} characters, got {len(digest)}")


class SqlCommandSyncs(SqlBase):
    """``command_syncs``: what each scope last synced."""

    def _command_sync_lock(self) -> AbstractAsyncContextManager[None]:
        """Held by one syncer at a time, across every process of the deployment."""
        raise NotImplementedError

    async def synced_digest(self, scope: str) -> str | None:
        """The digest the scope's last recorded sync had, if any."""
        async with self._reading() as db:
            row = await db.one("SELECT digest FROM command_syncs WHERE scope = ?", scope)
        return None if row is None else str(row[0])

    async def sync_commands_once(
        self, scope: str, digest: str, sync: Callable[[], Awaitable[object]], *, now: datetime, force: bool = False
    ) -> bool:
        """Run ``sync`` unless the scope's last recorded sync had ``digest`` (``force``: run it all the same),
        then record ``digest``; ``False`` if it did not run.

        One syncer at a time: a second waits, then finds the first's digest. Nothing is recorded when ``sync``
        raises (Discord refused it): the next start tries again.
        """
        _checked(scope, digest)
        now = utc(now)
        async with self._command_sync_lock():
            if not force and await self.synced_digest(scope) == digest:
                return False
            await sync()
            async with self._statement() as db:
                await db.run(
                    "INSERT INTO command_syncs (scope, digest, synced_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (scope) DO UPDATE SET digest = excluded.digest, synced_at = excluded.synced_at",
                    scope,
                    digest,
                    now,
                )
        return True
