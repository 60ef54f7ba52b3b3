"""The PostgreSQL backend's foundation: the pool and its transactions, as the shared SQL's hooks.

Every method of the repository is one transaction (or one statement) on one
pooled connection; :meth:`PostgresBase.close` waits for the calls in flight.
Each audit entry is written in the transaction of the change it records, and
sends the ``NOTIFY`` that makes every process forget the guild's cached settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Self

import asyncpg

from bot.base.clock import Clock, SystemClock
from bot.storage.common import SettingsChanges
from bot.storage.migrations import Migration
from bot.storage.postgres.dialect import PostgresExecutor, apply_migrations
from bot.storage.postgres.notifications import CONNECT_ERRORS, SETTINGS_CHANNEL, SettingsCache, SettingsListener
from bot.storage.records import DatabaseUnavailable, RepositoryClosedError, StorageError
from bot.storage.schema import MIGRATIONS
from bot.storage.shared.base import SqlBase
from bot.storage.shared.dialect import Executor
from bot.storage.urls import DatabaseUrl, mask_url, parse_database_url

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for the server to answer a new connection: a wrong host fails quickly, not in a minute."""
COMMAND_TIMEOUT = 5.0
"""Seconds one statement may take before the call gives up (and asks the server to cancel it)."""
ACQUIRE_TIMEOUT = 5.0
"""Seconds to wait for a pooled connection (all busy, or a new one to connect) before the call gives up."""
MIGRATION_TIMEOUT = 600.0
"""Seconds one migration statement may take (a step may rewrite a large table); a dead server still fails."""
CLOSE_TIMEOUT = 5.0
"""Seconds :meth:`PostgresBase.close` lets the pool close politely before it drops the connections."""

SERVER_SETTINGS = {
    # The server's own backstops, for a client that is gone without a word: a statement runs 30 s at most,
    # and a transaction left open (its row locks held: a member's usage, a server's month) ends after 30 s.
    "statement_timeout": "30s",
    "idle_in_transaction_session_timeout": "30s",
    # The server probes an idle client after 30 s, and drops it (its session and locks) 30 s later.
    "tcp_keepalives_idle": "30",
    "tcp_keepalives_interval": "10",
    "tcp_keepalives_count": "3",
}
"""Session settings every pooled connection starts with."""

UNAVAILABLE = (
    TimeoutError,
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # a statement timeout, a server shutting down
    asyncpg.exceptions.IdleInTransactionSessionTimeoutError,
    asyncpg.exceptions.TooManyConnectionsError,
)
"""What a call raises when the database is slow, gone or refusing connections: :class:`DatabaseUnavailable`."""

_KEEPALIVE = (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
"""Our side's probes of an idle connection (seconds, seconds, probes): a half-open one is found and dropped."""


def keep_alive(conn: Any) -> None:
    """Turn on TCP keepalives on an asyncpg connection's socket (a Unix socket or an unknown transport: nothing).

    asyncpg exposes no option for it; the transport is the one way to its socket.
    """
    transport = getattr(conn, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in _KEEPALIVE:
        option = getattr(socket, name, None)  # Linux names; other systems keep their defaults
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


async def _init_connection(conn: Any) -> None:
    """Every connection decodes JSONB to Python objects and encodes them back, as the SQLite side does by hand,
    and probes its peer when idle."""
    keep_alive(conn)
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class PostgresBase(SqlBase):
    """Pool, transactions and audit, shared by every part of :class:`~bot.storage.postgres.PostgresRepository`."""

    def __init__(
        self,
        pool: Any,
        listener: SettingsListener,
        cache: SettingsCache,
        *,
        url: DatabaseUrl,
        clock: Clock | None = None,
        applied_migrations: Sequence[int] = (),
    ) -> None:
        """Wrap an open pool over a migrated database; use :meth:`open` rather than calling this directly."""
        self._pool: Any = pool
        self._listener = listener
        self._cache = cache
        self._url = url
        self._clock: Clock = clock or SystemClock()
        self.applied_migrations = tuple(applied_migrations)
        """The schema versions this open applied (empty if the database was up to date)."""
        self._closed = False
        self._changes = SettingsChanges()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._acquire_timeout = ACQUIRE_TIMEOUT

    # ------------------------------------------------------------- lifecycle

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        clock: Clock | None = None,
        migrations: Sequence[Migration] = MIGRATIONS,
        connect_timeout: float = CONNECT_TIMEOUT,
        command_timeout: float = COMMAND_TIMEOUT,
        acquire_timeout: float = ACQUIRE_TIMEOUT,
        pool_size: int = 10,
    ) -> Self:
        """Connect to the database at ``url``, bring its schema up to date, and open a pool.

        Raises :class:`~bot.storage.StorageError` (its message shows the URL with
        the password masked) when the server cannot be reached or refuses us,
        and :class:`~bot.storage.SchemaVersionError` for a database written by a
        newer bot.
        """
        try:
            parsed = parse_database_url(url)
        except ValueError as exc:
            raise StorageError(f"DATABASE_URL {exc}") from None
        if parsed.backend != "postgres":
            raise StorageError(f"not a PostgreSQL URL: {parsed.masked}")
        where = f"the database {parsed.masked}"
        try:
            conn = await asyncpg.connect(parsed.url, timeout=connect_timeout, command_timeout=MIGRATION_TIMEOUT)
            keep_alive(conn)  # it becomes the LISTEN connection: a half-open one must be noticed
        except CONNECT_ERRORS as exc:
            raise StorageError(f"cannot connect to {where}: {_reason(exc)}") from None
        pool: Any = None
        cache = SettingsCache()
        listener = SettingsListener(parsed, cache, connect_timeout=connect_timeout)
        try:
            try:
                applied = await apply_migrations(conn, migrations, now=(clock or SystemClock()).now(), where=where)
                pool = await asyncpg.create_pool(
                    parsed.url,
                    min_size=1,
                    max_size=pool_size,
                    timeout=connect_timeout,
                    command_timeout=command_timeout,
                    server_settings=SERVER_SETTINGS,
                    init=_init_connection,
                )
                # The migration connection becomes the dedicated LISTEN connection.
                await listener.start(conn)
            except CONNECT_ERRORS as exc:
                raise StorageError(f"cannot use {where}: {_reason(exc)}") from None
        except BaseException:
            await listener.close()
            if pool is not None:
                await pool.close()
            with contextlib.suppress(*CONNECT_ERRORS):
                await conn.close(timeout=connect_timeout)
            raise
        repository = cls(pool, listener, cache, url=parsed, clock=clock, applied_migrations=applied)
        repository._acquire_timeout = acquire_timeout
        return repository

    async def close(self) -> None:
        """Release the database once the calls in flight have finished; later calls raise. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._idle.wait()  # calls in flight end within their timeouts
        await self._listener.close()
        try:
            await asyncio.wait_for(self._pool.close(), CLOSE_TIMEOUT)
        except TimeoutError:
            log.warning("the database did not answer while closing; dropping its connections")
            self._pool.terminate()

    @property
    def url(self) -> str:
        """The database's URL with its password masked."""
        return self._url.masked

    async def ping(self) -> None:
        """``SELECT 1`` on a pooled connection."""
        async with self._connection() as conn:
            await conn.fetchval("SELECT 1")

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """One pooled connection, counted in flight so that :meth:`close` waits for it."""
        if self._closed:
            raise RepositoryClosedError(f"the repository for {self._url.masked} is closed")
        self._in_flight += 1
        self._idle.clear()
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout) as conn:
                yield conn
        except UNAVAILABLE as exc:
            raise DatabaseUnavailable(f"{self._url.masked} did not answer: {_reason(exc)}") from exc
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Any]:
        """One READ COMMITTED transaction; committed on success, rolled back otherwise (cancellation included).

        Reads need none: each is a single statement, which sees one snapshot by itself.
        """
        async with self._connection() as conn:
            try:
                async with conn.transaction():
                    yield conn
            except BaseException:
                self._changes.discard(conn)
                raise
            committed = self._changes.take(conn)
        for entry in committed:
            # Again after the commit: a read between _audit's invalidation and the commit saw the old settings
            # and may have cached them; the listeners below read the new ones.
            self._cache.invalidate(entry.guild_id)
        self._changes.announce(committed)

    # ------------------------------------------------------------- the shared SQL's hooks

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[Executor]:
        # Each read is a single statement, which sees one snapshot by itself.
        async with self._connection() as conn:
            yield PostgresExecutor(conn)

    @asynccontextmanager
    async def _writing(self, *, durable: bool = True) -> AsyncIterator[Executor]:
        # Always durable: each commit runs on its own pooled connection, side by side with the others'.
        async with self._transaction() as conn:
            yield PostgresExecutor(conn)

    @asynccontextmanager
    async def _statement(self, *, durable: bool = True) -> AsyncIterator[Executor]:
        # No transaction: each statement commits by itself.
        async with self._connection() as conn:
            yield PostgresExecutor(conn)

    async def _settings_changed(self, db: Executor, guild_id: int) -> None:
        # The notification tells every process (this one included: it comes back to our own listener).
        self._cache.invalidate(guild_id)
        await db.run("SELECT pg_notify(?, ?)", SETTINGS_CHANNEL, str(guild_id))


def _reason(exc: BaseException) -> str:
    """A short, password-free reason for a failed connection."""
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer in time"
    # asyncpg's messages name hosts and users, never passwords; mask anyway in case a URL is quoted.
    return mask_url(str(exc) or type(exc).__name__)
