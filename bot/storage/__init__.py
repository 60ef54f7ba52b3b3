"""Storage: what the bot remembers across restarts, behind a small repository interface.

Callers use :class:`Repository` only, opened by :func:`open_repository` from
``DATABASE_URL``: :mod:`bot.storage.sqlite` is the embedded implementation (one
process), :mod:`bot.storage.postgres` the shared one (one process or many).
Both run the same SQL (:mod:`bot.storage.shared`) and the same schema steps
(:mod:`bot.storage.schema`), and behave alike, down to return values; the
contract tests run against both. Every method that changes moderation settings
writes an audit entry in the same transaction. The records and errors are in
:mod:`bot.storage.records`, the interface in :mod:`bot.storage.repository`;
both are re-exported here. :mod:`bot.storage.migrations` runs the schema's versions
(:mod:`bot.storage.request_json`: what its upgrades read from old journal rows), :mod:`bot.storage.urls`
reads ``DATABASE_URL``, :mod:`bot.storage.common` holds the rules both backends share (row shapes, budget
decisions, audit texts).

May import :mod:`bot.base` only: storage knows nothing of the API, jobs, moderation or Discord.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.storage.records import (
    JOB_FIELDS,
    MAX_NAMED_OPTIONS,
    AuditEntry,
    Budget,
    Charge,
    CommandSyncBusy,
    DatabaseUnavailable,
    DayTally,
    GuildConfig,
    JobRecord,
    JobTally,
    LimitChanges,
    Limits,
    PreferenceChanges,
    Preferences,
    QueuedJobs,
    RepositoryClosedError,
    RoleLimits,
    SchemaVersionError,
    Spend,
    StorageError,
    StoredApiKey,
    Usage,
)
from bot.storage.repository import Repository

if TYPE_CHECKING:
    from bot.base.clock import Clock
    from bot.storage.postgres import PostgresRepository
    from bot.storage.sqlite import SqliteRepository

__all__ = [
    "JOB_FIELDS",
    "MAX_NAMED_OPTIONS",
    "AuditEntry",
    "Budget",
    "Charge",
    "CommandSyncBusy",
    "DatabaseUnavailable",
    "DayTally",
    "GuildConfig",
    "JobRecord",
    "JobTally",
    "LimitChanges",
    "Limits",
    "PreferenceChanges",
    "Preferences",
    "QueuedJobs",
    "Repository",
    "RepositoryClosedError",
    "RoleLimits",
    "SchemaVersionError",
    "Spend",
    "StorageError",
    "StoredApiKey",
    "Usage",
    "migrate",
    "open_repository",
]


async def open_repository(url: str, *, clock: Clock | None = None) -> Repository:
    """Open the repository ``url`` names (``sqlite:///…`` or ``postgresql://…``), its schema brought up to date.

    Raises :class:`StorageError` (with the password masked) for a URL that names
    no known backend or a database that cannot be reached or used, and
    :class:`SchemaVersionError` for one written by a newer bot.
    """
    return await _open(url, clock=clock)


async def migrate(url: str, *, clock: Clock | None = None) -> tuple[int, ...]:
    """Bring the database ``url`` names up to the latest schema; return the versions applied now."""
    repository = await _open(url, clock=clock)
    try:
        return repository.applied_migrations
    finally:
        await repository.close()


async def _open(url: str, *, clock: Clock | None) -> SqliteRepository | PostgresRepository:
    # Imported here: a backend (and its driver) loads only when a URL names it.
    from bot.storage.urls import parse_database_url

    try:
        parsed = parse_database_url(url)
    except ValueError as exc:
        raise StorageError(str(exc)) from None
    if parsed.backend == "postgres":
        from bot.storage.postgres import PostgresRepository

        return await PostgresRepository.open(parsed.url, clock=clock)
    from bot.storage.sqlite import SqliteRepository

    assert parsed.sqlite_path is not None  # set for every sqlite URL
    return await SqliteRepository.open(parsed.sqlite_path, clock=clock)
