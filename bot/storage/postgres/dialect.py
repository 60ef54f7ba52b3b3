"""How PostgreSQL runs the shared SQL: its words, its executor and its migration lock.

Values come back from asyncpg as Python objects (moments in UTC, days as dates,
JSONB decoded by the pool's codec), so the dialect's readers keep them as they are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, ClassVar

from bot.storage.migrations import Migration, run_migrations
from bot.storage.schema import MIGRATIONS
from bot.storage.shared.dialect import Dialect, Executor, Row

MIGRATION_LOCK = 0x696D6167696E65  # "imagine" in ASCII: one advisory-lock key for this bot's migrations
"""The ``pg_advisory_xact_lock`` key that serialises migrations (advisory locks are per database)."""


class PostgresDialect(Dialect):
    """PostgreSQL's words: numbered placeholders, row locks, ``seq`` orders the journal."""

    name = "postgres"
    numbered = True
    words: ClassVar[Mapping[str, str]] = {
        "greatest": "GREATEST",
        "for_update": " FOR UPDATE",
        "for_no_key_update": " FOR NO KEY UPDATE",
        "is_not": "IS DISTINCT FROM",
        "seq": "seq",
        "now": "now()",
        "ago": "now() - make_interval(secs => ?)",
        "created_day": "(created_at AT TIME ZONE 'UTC')::date",
    }


POSTGRES = PostgresDialect()


class PostgresExecutor:
    """:class:`~bot.storage.shared.dialect.Executor` over an asyncpg connection (asyncpg ships no types)."""

    dialect: Dialect = POSTGRES

    def __init__(self, conn: Any) -> None:
        self.key = conn
        self._conn = conn

    async def one(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self._conn.fetchrow(POSTGRES.sql(sql), *args)
        return row

    async def all(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._conn.fetch(POSTGRES.sql(sql), *args))

    async def run(self, sql: str, *args: Any) -> int:
        status = str(await self._conn.execute(POSTGRES.sql(sql), *args))
        count = status.rpartition(" ")[2]  # "UPDATE 3", "INSERT 0 1", "DELETE 0"
        return int(count) if count.isdigit() else 0

    async def script(self, sql: str) -> None:
        await self._conn.execute(sql)


async def apply_migrations(
    conn: Any,
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    now: datetime | None = None,
    where: str = "the database",
) -> list[int]:
    """Bring the database up to the latest version; return the versions applied by this call.

    ``conn`` is an asyncpg connection outside any transaction. Each step's
    transaction takes :data:`MIGRATION_LOCK` before it reads the version, so
    many processes may migrate at once.
    """

    @asynccontextmanager
    async def locked() -> AsyncIterator[Executor]:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            yield PostgresExecutor(conn)

    return await run_migrations(locked, migrations, now=now, where=where)
