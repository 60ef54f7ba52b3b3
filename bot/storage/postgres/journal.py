"""The PostgreSQL backend's jobs journal: every job as it moves, read back for history and restarts."""

from __future__ import annotations

from typing import Any

from bot.storage import JobRecord, QueuedJobs
from bot.storage.common import (
    JOB_COLUMNS,
    QUEUED_JOBS_SQL,
    check_id,
    history_limit,
    job_changes,
    job_record,
)
from bot.storage.postgres.base import PostgresBase


class PostgresJournal(PostgresBase):
    """The ``jobs`` table: journal writes, single-job reads and a member's history."""

    async def add_job(self, record: JobRecord) -> None:
        """Journal a newly accepted job."""
        async with self._transaction() as conn:
            await self._insert_job(conn, record)

    async def update_job(self, job_id: str, *, owner: str | None = None, durable: bool = True, **changes: Any) -> bool:
        """Change some of a job's :data:`~bot.storage.JOB_FIELDS`; with ``owner``, only while it owns the job.

        Always durable: each commit runs on its own pooled connection, side by side with the others'.
        """
        values = job_changes(changes)
        if not values:
            return True
        # Column names come from JOB_FIELDS only, never from callers' strings.
        assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(values, start=2))
        guard = "" if owner is None else f" AND owner = ${len(values) + 2}"
        extra = () if owner is None else (owner,)
        async with self._connection() as conn:
            status = await conn.execute(
                f"UPDATE jobs SET {assignments} WHERE job_id = $1{guard}", job_id, *values.values(), *extra
            )
        return str(status).split()[-1] != "0"

    async def get_job(self, job_id: str) -> JobRecord | None:
        """One job, finished or not."""
        async with self._connection() as conn:
            row = await conn.fetchrow(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1", job_id)
        return None if row is None else job_record(row)

    async def job_with_prediction(self, prediction_id: str) -> str | None:
        """The id of the journaled job whose prediction is ``prediction_id``, or ``None`` (newest if ever two)."""
        async with self._connection() as conn:
            job_id = await conn.fetchval(
                "SELECT job_id FROM jobs WHERE prediction_id = $1 ORDER BY created_at DESC, seq DESC LIMIT 1",
                prediction_id,
            )
        return None if job_id is None else str(job_id)

    async def active_jobs(self, guild_id: int, member_id: int) -> int:
        """The member's unfinished jobs in this server (one whose outcome is being shown no longer counts)."""
        async with self._connection() as conn:
            count = await conn.fetchval(
                "SELECT COUNT(*) FROM jobs WHERE guild_id = $1 AND requester_id = $2 AND ended_at IS NULL "
                "AND state <> 'finishing'",
                guild_id,
                member_id,
            )
        return int(count)

    async def queued_jobs(self, guild_id: int, member_id: int, *, besides: str = "") -> QueuedJobs:
        """Servers' jobs waiting for a slot, but ``besides``'s, and this member's of them."""
        query = QUEUED_JOBS_SQL.format(guild="$1", member="$2", not_owned_by="owner IS DISTINCT FROM $3")
        async with self._connection() as conn:
            row = await conn.fetchrow(query, guild_id, member_id, besides)
        return QueuedJobs(total=int(row[0]), member=int(row[1])) if row else QueuedJobs(0, 0)

    async def member_history(self, guild_id: int, member_id: int, *, limit: int = 10) -> list[JobRecord]:
        """The member's latest ``limit`` jobs in this server, newest first (journal order within a microsecond)."""
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id = $1 AND requester_id = $2 "
                "ORDER BY created_at DESC, seq DESC LIMIT $3",
                guild_id,
                member_id,
                history_limit(limit),
            )
        return [job_record(row) for row in rows]
