"""How SQLite runs the shared SQL: its words, its stored forms, its executor and its migration lock.

Datetimes are stored as ISO-8601 text in UTC (sortable, readable in the sqlite3
shell) and returned timezone-aware; days as ISO text; JSON as text. Discord ids
are SQLite INTEGERs, which are 64-bit signed: every snowflake (< 2**63)
round-trips exactly.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any, ClassVar

import aiosqlite

from bot.storage.common import utc
from bot.storage.migrations import Migration, recorded_version, run_migrations
from bot.storage.schema import MIGRATIONS
from bot.storage.shared.dialect import Dialect, Executor, Row

_CLOCK = "strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now'{})"
"""SQLite's own clock in :func:`to_text`'s form (milliseconds padded to micro), so stamps from either compare
as text."""


def to_text(moment: datetime) -> str:
    """A moment as SQLite stores it: ISO-8601 text in UTC."""
    return utc(moment).isoformat(timespec="microseconds")


def from_text(text: str) -> datetime:
    """A stored moment, timezone-aware in UTC."""
    return datetime.fromisoformat(text).astimezone(UTC)


class SqliteDialect(Dialect):
    """SQLite's words: one writer holds the whole database (no row locks), ``rowid`` orders the journal."""

    name = "sqlite"
    words: ClassVar[Mapping[str, str]] = {
        "greatest": "MAX",
        "for_update": "",
        "for_no_key_update": "",
        "is_not": "IS NOT",
        "seq": "rowid",
        "now": _CLOCK.format(""),
        "ago": _CLOCK.format(", ?"),
        "created_day": "substr(created_at, 1, 10)",  # ISO-8601 text in UTC starts with the day
    }

    def moment(self, value: Any) -> datetime:
        return from_text(str(value))

    def day(self, value: Any) -> date:
        return date.fromisoformat(str(value))

    def to_json(self, value: Any) -> Any:
        return json.dumps(value)

    def from_json(self, value: Any) -> Any:
        return json.loads(value)

    def ago(self, seconds: float) -> Any:
        return f"-{max(0.0, seconds):.6f} seconds"  # a date modifier

    def version_stamp(self, moment: datetime) -> Any:
        return moment.isoformat()


SQLITE = SqliteDialect()


def _stored(value: Any) -> Any:
    """A parameter as SQLite stores it (moments and days as text)."""
    if isinstance(value, datetime):
        return to_text(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


class SqliteExecutor:
    """:class:`~bot.storage.shared.dialect.Executor` over an aiosqlite connection inside a transaction."""

    dialect: Dialect = SQLITE

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.key = conn
        self._conn = conn

    async def one(self, sql: str, *args: Any) -> Row | None:
        async with self._conn.execute(SQLITE.sql(sql), tuple(map(_stored, args))) as cursor:
            row = await cursor.fetchone()
        return None if row is None else tuple(row)

    async def all(self, sql: str, *args: Any) -> list[Row]:
        async with self._conn.execute(SQLITE.sql(sql), tuple(map(_stored, args))) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]

    async def run(self, sql: str, *args: Any) -> int:
        async with self._conn.execute(SQLITE.sql(sql), tuple(map(_stored, args))) as cursor:
            return cursor.rowcount

    async def script(self, sql: str) -> None:
        await self._conn.execute(sql)


async def apply_migrations(
    conn: aiosqlite.Connection,
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    now: datetime | None = None,
    where: str = "the database",
) -> list[int]:
    """Bring the database up to the latest version; return the versions applied now.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so that the
    explicit transactions here are the only ones; each step holds ``BEGIN
    IMMEDIATE``, so two processes opening the same file cannot both apply it.
    Statements run one by one with ``execute`` (never ``executescript``, which
    would commit behind our back).
    """

    @asynccontextmanager
    async def locked() -> AsyncIterator[Executor]:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            yield SqliteExecutor(conn)
            await conn.execute("COMMIT")
        except BaseException:
            await conn.rollback()  # a no-op if SQLite already ended the transaction
            raise

    return await run_migrations(locked, migrations, now=now, where=where)


async def schema_version(conn: aiosqlite.Connection) -> int:
    """The highest version applied to the database; 0 for a fresh one."""
    async with conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'") as cursor:
        if await cursor.fetchone() is None:
            return 0
    return await recorded_version(SqliteExecutor(conn))
