"""The SQLite backend's foundation: the connection and its transactions, as the shared SQL's hooks.

One repository owns one aiosqlite connection (aiosqlite runs it on a thread of
its own, so the event loop never blocks on disk). Everything the repository
does goes through :meth:`SqliteBase._transaction`, which

* holds an :class:`asyncio.Lock`, because all coroutines share the one
  connection: without it, a second coroutine's statements would land inside
  the first one's open transaction;
* opens ``BEGIN IMMEDIATE`` for writes, so the write lock is taken up front
  and a read-then-write (like :meth:`~bot.storage.shared.usage.SqlUsage.charge`)
  can never be overtaken by another process between its read and its write;
* commits on success and rolls back on any exception, cancellation included.

Reads take the same lock and a deferred transaction so that a multi-query read
such as :meth:`~bot.storage.sqlite.settings.SqliteSettings.guild_config` sees
one consistent snapshot.

How values are stored, and the migration lock, are in ``dialect.py``.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Self

import aiosqlite

from bot.base.clock import Clock, SystemClock
from bot.storage.common import SettingsChanges
from bot.storage.migrations import Migration
from bot.storage.records import DatabaseUnavailable, GuildConfig, RepositoryClosedError, StorageError
from bot.storage.schema import MIGRATIONS
from bot.storage.shared.base import SqlBase
from bot.storage.shared.dialect import Executor
from bot.storage.sqlite.dialect import SqliteExecutor, apply_migrations

_BUSY = re.compile(r"\b(locked|busy)\b")
"""SQLite's messages for a lock it waited for in vain (``database is locked``, ``database table is locked``)."""

MEMORY = ":memory:"
"""The path of a private in-memory database (tests)."""


class SqliteBase(SqlBase):
    """Connection, transactions and audit, shared by every part of :class:`~bot.storage.sqlite.SqliteRepository`."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        *,
        path: str,
        clock: Clock | None = None,
        applied_migrations: Sequence[int] = (),
    ) -> None:
        """Wrap an open, migrated connection; use :meth:`open` rather than calling this directly."""
        self.applied_migrations = tuple(applied_migrations)
        """The schema versions this open applied (empty if the database was up to date)."""
        self._conn: aiosqlite.Connection | None = conn
        self._path = path
        self._clock: Clock = clock or SystemClock()
        self._lock = asyncio.Lock()
        # Settings are read on every /imagine and change rarely; _audit() drops a guild's entry.
        self._configs: dict[int, GuildConfig] = {}
        self._changes = SettingsChanges()

    # ------------------------------------------------------------- lifecycle

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        clock: Clock | None = None,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> Self:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date.

        ``path`` is what :func:`bot.settings.sqlite_path` returns, or
        :data:`MEMORY`. Missing parent directories are created. ``clock``
        stamps audit entries; ``migrations`` is for tests of the migrator.
        Raises :class:`~bot.storage.SchemaVersionError` for a database written by a newer
        bot and :class:`~bot.storage.StorageError` for one that cannot be opened at all.
        """
        if path != MEMORY:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create the directory for the database {path!r}: {exc}") from exc
        try:
            # isolation_level=None: no implicit BEGINs from Python's sqlite3;
            # every transaction here is explicit.
            conn = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the database {path!r}: {exc}") from exc
        try:
            # These pragmas cannot run inside a transaction, and foreign_keys is
            # per connection, so they are set once here before anything else.
            await conn.execute("PRAGMA busy_timeout = 5000")  # ms; PRAGMA takes no parameters
            await conn.execute("PRAGMA foreign_keys = ON")
            # WAL lets readers (the sqlite3 shell, a backup) work while the bot
            # writes. An in-memory database stays in "memory" mode.
            await conn.execute("PRAGMA journal_mode = WAL")
            # FULL: every commit is on disk before it returns. NORMAL (WAL's usual) may lose the last
            # commits on a power cut, the journal's create mark among them, and the restarted bot would
            # create (and pay for) the prediction again. It costs about 0.3 ms per commit on an SSD, so writes
            # a power cut may lose without harm ask for durable=False (see _transaction).
            await conn.execute("PRAGMA synchronous = FULL")
            applied = await apply_migrations(
                conn, migrations, now=(clock or SystemClock()).now(), where=f"the database {path!r}"
            )
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise StorageError(f"cannot use the database {path!r}: {exc}") from exc
            raise
        return cls(conn, path=path, clock=clock, applied_migrations=applied)

    async def close(self) -> None:
        """Release the database; later calls raise :class:`RepositoryClosedError`. Idempotent."""
        if self._conn is None:
            return
        # Wait for a transaction in flight rather than closing under it.
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                await conn.close()

    async def ping(self) -> None:
        """``SELECT 1`` in a transaction of its own: it waits behind a write in flight, as any caller would."""
        async with self._reading() as db:
            await db.one("SELECT 1")

    @property
    def path(self) -> str:
        """Where the database lives (or :data:`MEMORY`)."""
        return self._path

    def _connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RepositoryClosedError(f"the repository for {self._path!r} is closed")
        return self._conn

    @asynccontextmanager
    async def _transaction(self, *, write: bool, durable: bool = True) -> AsyncIterator[aiosqlite.Connection]:
        """One transaction, alone on the connection; committed on success, rolled back otherwise.

        ``durable=False`` commits without waiting for the disk (``synchronous=NORMAL``), for writes a power
        cut may lose without harm (webhook ids and payloads, heartbeats): the next durable commit syncs
        them too, and the journal's and the charges' commits stay on disk before they return.
        """
        self._connection()  # fail fast, before waiting for the lock
        async with self._lock:
            conn = self._connection()  # close() may have run while we waited
            relaxed = write and not durable
            if relaxed:
                await conn.execute("PRAGMA synchronous = NORMAL")  # per connection; the lock makes it ours alone
            try:
                try:
                    await conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                except sqlite3.OperationalError as exc:
                    self._raise_if_busy(exc)
                    raise
                try:
                    yield conn
                    await conn.execute("COMMIT")
                except BaseException as exc:
                    self._changes.discard(conn)
                    # Unconditional: sqlite3's rollback() is a no-op when SQLite has
                    # already ended the transaction itself, and it runs on the
                    # connection's thread after any statement still in flight
                    # (a cancelled await does not stop the statement).
                    await conn.rollback()
                    if isinstance(exc, sqlite3.OperationalError):
                        self._raise_if_busy(exc)
                    raise
            finally:
                if relaxed:
                    await conn.execute("PRAGMA synchronous = FULL")
            committed = self._changes.take(conn)
        self._changes.announce(committed)

    def _raise_if_busy(self, exc: sqlite3.OperationalError) -> None:
        """Raise :class:`DatabaseUnavailable` for a lock another process held past ``busy_timeout`` (a backup,
        the sqlite3 shell)."""
        if _BUSY.search(str(exc)):
            raise DatabaseUnavailable(f"the database {self._path!r} is busy: {exc}") from exc

    # ------------------------------------------------------------- the shared SQL's hooks

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[Executor]:
        async with self._transaction(write=False) as conn:
            yield SqliteExecutor(conn)

    @asynccontextmanager
    async def _writing(self, *, durable: bool = True) -> AsyncIterator[Executor]:
        # BEGIN IMMEDIATE holds the write lock from the first read to the last write.
        async with self._transaction(write=True, durable=durable) as conn:
            yield SqliteExecutor(conn)

    _statement = _writing

    async def _settings_changed(self, db: Executor, guild_id: int) -> None:
        self._configs.pop(guild_id, None)
