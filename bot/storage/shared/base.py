"""The foundation of the shared SQL: the hooks each backend fills in, and the helpers every part uses.

A backend's base class derives from :class:`SqlBase` and says how to read, how to
write under its locks, and what else a settings change must do; the parts in
this package (settings, usage, journal, cluster) are written against that alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from bot.base.clock import Clock
from bot.storage.common import (
    JOB_COLUMN_NAMES,
    JOB_COLUMNS,
    JOB_TIMES,
    SettingsChanges,
    check_id,
    job_record,
    job_values,
    utc,
)
from bot.storage.records import AuditEntry, Budget, JobRecord, Limits
from bot.storage.shared.dialect import Dialect, Executor


@dataclass(frozen=True)
class GuildRow:
    """A guild's own row: what the settings that live in it hold."""

    default_model: str | None
    limits: Limits
    log_channel_id: int | None
    budget: Budget


class SqlBase:
    """What the shared parts need of a backend; the backends' base classes fill in the hooks."""

    _clock: Clock
    _changes: SettingsChanges

    def _reading(self) -> AbstractAsyncContextManager[Executor]:
        """Reads that see one consistent state."""
        raise NotImplementedError

    def _writing(self, *, durable: bool = True) -> AbstractAsyncContextManager[Executor]:
        """One transaction whose reads and writes nothing else interleaves with: rows read with
        ``{for_update}`` or ``{for_no_key_update}`` stay as read until it ends.

        ``durable=False``: a write a power cut may lose without harm (a backend may return before it is on disk).
        """
        raise NotImplementedError

    def _statement(self, *, durable: bool = True) -> AbstractAsyncContextManager[Executor]:
        """Writes each of which stands alone (nothing read in between decides anything)."""
        raise NotImplementedError

    async def _settings_changed(self, db: Executor, guild_id: int) -> None:
        """The guild's settings change in ``db``'s transaction: forget them wherever they are cached."""
        raise NotImplementedError

    # ------------------------------------------------------------- helpers

    @asynccontextmanager
    async def _settings_change(
        self, guild_id: int, *, actor_id: int, optional: Mapping[str, int | None] | None = None, **ids: int
    ) -> AsyncIterator[Executor]:
        """A moderator's change to a server's settings, audited with :meth:`_audit`: the server's, the
        moderator's and the other ``ids`` checked, and the ``optional`` ones where given (``None``: none),
        then one write transaction."""
        for name, value in {"guild_id": guild_id, **ids, "actor_id": actor_id}.items():
            check_id(name, value)
        for name, maybe in (optional or {}).items():
            if maybe is not None:
                check_id(name, maybe)
        async with self._writing() as db:
            yield db

    @staticmethod
    async def _ensure_guild(db: Executor, guild_id: int) -> None:
        # The guilds row is the parent every per-server row points to.
        await db.run("INSERT INTO guilds (guild_id) VALUES (?) ON CONFLICT DO NOTHING", guild_id)

    @staticmethod
    async def _locked_guild(db: Executor, guild_id: int) -> GuildRow:
        """The guild's row, created if need be and locked until the transaction ends.

        ``FOR NO KEY UPDATE`` rather than ``FOR UPDATE``: inserting a child row
        (an allowed model, a usage row) only needs ``KEY SHARE`` on its parent,
        which this does not block.
        """
        await SqlBase._ensure_guild(db, guild_id)
        row = await db.one(
            "SELECT default_model, cooldown_seconds, daily_images, concurrent_jobs, log_channel_id, budget_monthly, "
            "budget_member_daily FROM guilds WHERE guild_id = ?{for_no_key_update}",
            guild_id,
        )
        assert row is not None  # just ensured
        return GuildRow(
            default_model=row[0],
            limits=Limits(int(row[1]), int(row[2]), int(row[3])),
            log_channel_id=row[4],
            budget=Budget(int(row[5]), int(row[6])),
        )

    @staticmethod
    async def _update_guild(db: Executor, guild_id: int, **columns: object) -> None:
        """Set some of the guild's own columns (named by this package's code, never by a caller's string)."""
        assignments = ", ".join(f"{name} = ?" for name in columns)
        await db.run(f"UPDATE guilds SET {assignments} WHERE guild_id = ?", *columns.values(), guild_id)

    @staticmethod
    async def _insert_job(db: Executor, record: JobRecord) -> None:
        values = job_values(record)
        for name in ("request", "target"):
            if values[name] is not None:
                values[name] = db.dialect.to_json(values[name])
        marks = ", ".join("?" for _ in JOB_COLUMN_NAMES)
        await db.run(f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({marks})", *(values[name] for name in JOB_COLUMN_NAMES))

    async def _audit(
        self, db: Executor, guild_id: int, actor_id: int, action: str, before: str | None, after: str | None
    ) -> None:
        # Every settings change is audited, so this is the one place that tells the caches.
        entry = AuditEntry(guild_id, actor_id, action, before, after, utc(self._clock.now()))
        await db.run(
            "INSERT INTO audit_log (guild_id, actor_id, action, before, after, at) VALUES (?, ?, ?, ?, ?, ?)",
            guild_id,
            actor_id,
            action,
            before,
            after,
            entry.at,
        )
        await self._settings_changed(db, guild_id)
        self._changes.record(db.key, entry)


def job_from_row(dialect: Dialect, values: Sequence[object]) -> JobRecord:
    """A journal row (its columns in :data:`~bot.storage.common.JOB_COLUMN_NAMES` order) read back."""
    row = dict(zip(JOB_COLUMN_NAMES, values, strict=True))
    for name in ("request", "target"):
        if row[name] is not None:
            row[name] = dialect.from_json(row[name])
    for name in JOB_TIMES:
        if row[name] is not None:
            row[name] = dialect.moment(row[name])
    if row["charged_day"] is not None:
        row["charged_day"] = dialect.day(row["charged_day"])
    return job_record(row)
