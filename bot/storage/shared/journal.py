"""The jobs journal both backends keep alike: every job as it moves, read back for history and restarts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.storage.common import JOB_COLUMNS, check_id, history_limit, job_changes
from bot.storage.records import JobRecord, QueuedJobs
from bot.storage.shared.base import SqlBase, job_from_row

QUEUED_JOBS_SQL = (
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN guild_id = ? AND requester_id = ? THEN 1 ELSE 0 END), 0) "
    "FROM jobs WHERE ended_at IS NULL AND state = 'queued' AND guild_id IS NOT NULL AND owner {is_not} ?"
)
""":meth:`~bot.storage.Repository.queued_jobs`'s query.

A job is ``queued`` in the journal from its acceptance until its create is about to go out
(``creating``): the jobs waiting for a slot. The command line's own jobs (no server) wait in no bot's
queue, and one killed mid-run would otherwise count for ever.
"""


class _NotAllChanged(Exception):
    """A job to change is gone or owned by another process: none of them is changed."""


class SqlJournal(SqlBase):
    """The ``jobs`` table: journal writes, single-job reads and a member's history."""

    async def add_job(self, record: JobRecord) -> None:
        """Journal a newly accepted job."""
        async with self._writing() as db:
            await self._insert_job(db, record)

    async def update_job(self, job_id: str, *, owner: str | None = None, durable: bool = True, **changes: Any) -> bool:
        """Change some of a job's :data:`~bot.storage.JOB_FIELDS`; with ``owner``, only while it owns the job."""
        values = job_changes(changes)
        if not values:
            return True
        # Column names come from JOB_FIELDS only, never from callers' strings.
        assignments = ", ".join(f"{name} = ?" for name in values)
        guard, extra = ("", ()) if owner is None else (" AND owner = ?", (owner,))
        async with self._statement(durable=durable) as db:
            if values.get("target") is not None:
                values["target"] = db.dialect.to_json(values["target"])
            changed = await db.run(
                f"UPDATE jobs SET {assignments} WHERE job_id = ?{guard}", *values.values(), job_id, *extra
            )
        return changed > 0

    async def update_jobs(self, changes: Mapping[str, Mapping[str, Any]], *, owner: str) -> bool:
        """Change several jobs at once (job id → its changes, as :meth:`update_job`), in one transaction, only
        while ``owner`` owns every one of them: ``False`` (and nothing written) otherwise."""
        try:
            async with self._writing() as db:
                for job_id, change in changes.items():
                    values = job_changes(change)
                    if values.get("target") is not None:
                        values["target"] = db.dialect.to_json(values["target"])
                    assignments = ", ".join(f"{name} = ?" for name in values)  # names from JOB_FIELDS only
                    changed = await db.run(
                        f"UPDATE jobs SET {assignments} WHERE job_id = ? AND owner = ?", *values.values(), job_id, owner
                    )
                    if not changed:
                        raise _NotAllChanged(job_id)  # rolls back the ones written before it
        except _NotAllChanged:
            return False
        return True

    async def get_job(self, job_id: str) -> JobRecord | None:
        """One job, finished or not."""
        async with self._reading() as db:
            row = await db.one(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?", job_id)
            return None if row is None else job_from_row(db.dialect, row)

    async def job_with_prediction(self, prediction_id: str) -> str | None:
        """The id of the journaled job whose prediction is ``prediction_id``, or ``None`` (newest if ever two)."""
        async with self._reading() as db:
            row = await db.one(
                "SELECT job_id FROM jobs WHERE prediction_id = ? ORDER BY created_at DESC, {seq} DESC LIMIT 1",
                prediction_id,
            )
        return None if row is None else str(row[0])

    async def active_jobs(self, guild_id: int, member_id: int) -> int:
        """The member's unfinished jobs in this server (one whose outcome is being shown no longer counts)."""
        async with self._reading() as db:
            row = await db.one(
                "SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND requester_id = ? AND ended_at IS NULL "
                "AND state <> 'finishing'",
                guild_id,
                member_id,
            )
        return int(row[0]) if row else 0

    async def queued_jobs(self, guild_id: int, member_id: int, *, besides: str = "") -> QueuedJobs:
        """Servers' jobs waiting for a slot, but ``besides``'s, and this member's of them."""
        async with self._reading() as db:
            row = await db.one(QUEUED_JOBS_SQL, guild_id, member_id, besides)
        return QueuedJobs(total=int(row[0]), member=int(row[1])) if row else QueuedJobs(0, 0)

    async def member_history(self, guild_id: int, member_id: int, *, limit: int = 10) -> list[JobRecord]:
        """The member's latest ``limit`` jobs in this server, newest first (journal order within a microsecond)."""
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        async with self._reading() as db:
            rows = await db.all(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id = ? AND requester_id = ? "
                "ORDER BY created_at DESC, {seq} DESC LIMIT ?",
                guild_id,
                member_id,
                history_limit(limit),
            )
            return [job_from_row(db.dialect, row) for row in rows]
