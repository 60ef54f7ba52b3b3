"""The PostgreSQL backend's own share of a deployment: Discord identify turns shared by every process, and
received webhooks announced to every process by ``NOTIFY``."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg

from bot.storage.common import check_id
from bot.storage.postgres.base import PostgresBase
from bot.storage.postgres.notifications import WEBHOOK_CHANNEL
from bot.storage.records import CommandSyncBusy
from bot.storage.shared.dialect import Executor

COMMAND_SYNC_LOCK = 0x696D6167696E66
"""The ``pg_advisory_xact_lock`` key one command syncer holds at a time (next to the migrations' key)."""
COMMAND_SYNC_WAIT = 60.0
"""Seconds a process waits for another's command sync before it gives up (the sync itself is bounded shorter:
:data:`bot.discord_app.command_sync.SYNC_BOUND`)."""

MAX_TURN_AHEAD = 86_400.0
"""Seconds an identify turn may be reserved ahead at most, whatever is asked (``make_interval`` takes no
infinity)."""


class PostgresCluster(PostgresBase):
    """Identify turns, and webhooks heard of from every process."""

    async def take_identify_turn(self, bot_id: int, bucket: int, *, spacing: float, within: float) -> float | None:
        """Reserve the bucket's next identify: one statement, so concurrent reservations queue one after another.

        A second reserver waits for the first's row lock, then reads its turn; ``clock_timestamp()`` (the
        database's clock, not any machine's, and not the transaction's start) places a turn in an idle bucket.
        A turn further than ``within`` is not reserved: the update's condition fails and returns no row.
        """
        async with self._connection() as conn:
            wait = await conn.fetchval(
                "INSERT INTO identify_turns AS t (bot_id, bucket, turn_at) VALUES ($1, $2, clock_timestamp()) "
                "ON CONFLICT (bot_id, bucket) DO UPDATE "
                "SET turn_at = GREATEST(t.turn_at + make_interval(secs => $3), clock_timestamp()) "
                "WHERE t.turn_at + make_interval(secs => $3) <= clock_timestamp() + make_interval(secs => $4) "
                "RETURNING EXTRACT(EPOCH FROM t.turn_at - clock_timestamp())",
                check_id("bot_id", bot_id),
                bucket,
                spacing,
                min(within, MAX_TURN_AHEAD),
            )
        return math.inf if wait is None else max(0.0, float(wait))

    @asynccontextmanager
    async def _command_sync_lock(self) -> AsyncIterator[None]:
        """An advisory lock in a transaction of its own, held while one process syncs and records; the lock
        goes with the transaction, so a process that dies mid-sync frees it. Waiting past
        :data:`COMMAND_SYNC_WAIT` raises :class:`~bot.storage.CommandSyncBusy`."""
        async with self._transaction() as conn:
            # The holder is idle in its transaction while Discord answers: not a session to end after the pool's
            # usual 30 s (that would free the lock mid-sync); the sync's own bound ends it sooner.
            await conn.execute(f"SET LOCAL idle_in_transaction_session_timeout = '{int(COMMAND_SYNC_WAIT * 2)}s'")
            await conn.execute(f"SET LOCAL lock_timeout = '{int(COMMAND_SYNC_WAIT)}s'")
            try:
                # The wait's own timeout: the pool's per-statement one (a few seconds) is for ordinary queries.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", COMMAND_SYNC_LOCK, timeout=COMMAND_SYNC_WAIT + 5)
            except (asyncpg.LockNotAvailableError, TimeoutError):
                raise CommandSyncBusy(
                    f"another process held the command sync for over {COMMAND_SYNC_WAIT:g} s"
                ) from None
            yield

    async def _webhook_recorded(self, db: Executor, prediction_id: str) -> None:
        # Delivered on commit, to every process's listener (this one's too).
        await db.run("SELECT pg_notify(?, ?)", WEBHOOK_CHANNEL, prediction_id)

    def on_webhook(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(prediction_id)`` for every webhook any process records."""
        self._listener.webhook_listeners.append(listener)
