"""Versioned schema migrations: what a step is, and the one runner both backends apply them with.

The steps themselves are :data:`bot.storage.schema.MIGRATIONS`, numbered 1, 2, 3…
The database records each applied step in a ``schema_version`` table (one row
per version, with a description and the time it was applied), so a glance at
it tells an operator where it stands.

Each step runs in its own transaction together with its ``schema_version`` row,
so a step is either wholly applied or not at all, and the transaction first
takes the backend's migration lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a
transaction-scoped advisory lock) and only then reads the recorded version:
when several processes open a fresh database at once, the first applies the
step, the others wait on the lock, then see the new version and apply nothing
twice. Both backends' DDL is transactional: a step that fails leaves nothing
half-built behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from bot.storage.records import SchemaVersionError
from bot.storage.shared.dialect import DialectName, Executor, fill_slots

TYPES: dict[DialectName, dict[str, str]] = {
    "sqlite": {
        "int64": "INTEGER",
        "serial": "INTEGER PRIMARY KEY",  # a rowid alias: it only grows
        "moment": "TEXT",
        "day": "TEXT",
        "json": "TEXT",
        "real": "REAL",
        "without_rowid": " WITHOUT ROWID",
        "journal_order": "",  # the rowid orders jobs journaled in the same microsecond
    },
    "postgres": {
        "int64": "BIGINT",
        "serial": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "moment": "TIMESTAMPTZ",
        "day": "DATE",
        "json": "JSONB",
        "real": "DOUBLE PRECISION",
        "without_rowid": "",
        "journal_order": "seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,",
    },
}
"""Each dialect's words for the ``{name}`` slots of the schema's SQL."""


class PerDialect(NamedTuple):
    """A statement each backend words its own way."""

    sqlite: str
    postgres: str


@dataclass(frozen=True)
class Migration:
    """One schema step: its number, what it does, and its SQL statements."""

    version: int
    description: str
    statements: tuple[str | PerDialect, ...]

    def sql(self, dialect: DialectName) -> tuple[str, ...]:
        """The step's statements as ``dialect`` runs them (a ``{slot}`` not in :data:`TYPES` is left alone)."""
        return tuple(
            getattr(statement, dialect) if isinstance(statement, PerDialect) else fill_slots(statement, TYPES[dialect])
            for statement in self.statements
        )


def check_migrations(migrations: Sequence[Migration]) -> None:
    """Refuse a list that is not numbered 1, 2, 3… (a mistake in the code, not the data)."""
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise ValueError(f"migration #{expected} is numbered {migration.version}; versions must be 1, 2, 3…")
        if not migration.statements:
            raise ValueError(f"migration {migration.version} has no statements")


_CREATE_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_version (
        version     INTEGER PRIMARY KEY,
        description TEXT NOT NULL,
        applied_at  {moment} NOT NULL
    )
"""

MigrationLock = Callable[[], AbstractAsyncContextManager[Executor]]
"""A backend's way to open one migration transaction that holds its migration lock (see the module's docstring)."""


async def recorded_version(db: Executor) -> int:
    """The highest version ``schema_version`` records (it must exist); refuses a table with holes."""
    row = await db.one("SELECT COALESCE(MAX(version), 0), COUNT(*) FROM schema_version")
    assert row is not None  # an aggregate always yields one row
    highest, count = int(row[0]), int(row[1])
    if highest != count:
        # A hole means someone edited the table by hand or a step was lost;
        # guessing which steps are really in place could corrupt data.
        raise SchemaVersionError(
            f"schema_version records {count} steps but claims version {highest}; the database was edited by hand"
        )
    return highest


async def run_migrations(
    locked: MigrationLock,
    migrations: Sequence[Migration],
    *,
    now: datetime | None = None,
    where: str = "the database",
) -> list[int]:
    """Bring the database up to the latest version, a step per ``locked()`` transaction; return the versions
    applied now.

    Raises :class:`SchemaVersionError` if the database is newer than ``migrations``
    (written by a later bot); nothing is changed in that case.
    """
    check_migrations(migrations)
    latest = migrations[-1].version if migrations else 0
    applied: list[int] = []
    while True:
        async with locked() as db:
            dialect = db.dialect.name
            await db.script(fill_slots(_CREATE_VERSION_TABLE, TYPES[dialect]))
            # Re-read inside the lock on every round: a process that waited sees what the winner applied.
            current = await recorded_version(db)
            if current > latest:
                raise SchemaVersionError(
                    f"{where} has schema version {current}, but this bot only knows versions up to {latest}: "
                    "it was written by a newer imagine-bot. Upgrade the bot, or point DATABASE_URL elsewhere."
                )
            if current == latest:
                return applied
            step = migrations[current]  # versions are 1-based and contiguous
            for statement in step.sql(dialect):
                await db.script(statement)
            await db.run(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                step.version,
                step.description,
                db.dialect.version_stamp((now or datetime.now(UTC)).astimezone(UTC)),
            )
        applied.append(step.version)
