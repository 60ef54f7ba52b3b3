"""The SQLite backend's jobs journal: every job as it moves, read back for history and restarts."""

from __future__ import annotations

from typing import Any

from bot.storage import JobRecord, QueuedJobs
from bot.storage.common import JOB_COLUMNS, QUEUED_JOBS_SQL, check_id, history_limit, job_changes
from bot.storage.sqlite.base import SqliteBase, decode_job, encode_job


class SqliteJournal(SqliteBase):
    """The ``jobs`` table: journal writes, single-job reads and a member's history."""

    async def add_job(self, record: JobRecord) -> None:
        """Journal a newly accepted job."""
        async with self._transaction(write=True) as conn:
            await self._insert_job(conn, record)

    async def update_job(self, job_id: str, *, owner: str | None = None, durable: bool = True, **changes: Any) -> bool:
        """Change some of a job's :data:`~bot.storage.JOB_FIELDS`; with ``owner``, only while it owns the job."""
        values = encode_job(job_changes(changes))
        if not values:
            return True
        # Column names come from JOB_FIELDS only, never from callers' strings.
        assignments = ", ".join(f"{name} = ?" for name in values)
        guard, extra = ("", ()) if owner is None else (" AND owner = ?", (owner,))
        async with self._transaction(write=True, durable=durable) as conn:
            cursor = await conn.execute(
                f"UPDATE jobs SET {assignments} WHERE job_id = ?{guard}", (*values.values(), job_id, *extra)
            )
            return cursor.rowcount > 0

    async def get_job(self, job_id: str) -> JobRecord | None:
        """One job, finished or not."""
        async with self._transaction(write=False) as conn:
            row = await self._one(conn, f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,))
        return None if row is None else decode_job(row)

    async def job_with_prediction(self, prediction_id: str) -> str | None:
        """The id of the journaled job whose prediction is ``prediction_id``, or ``None``.

        A prediction belongs to one job; were there ever two rows, the newest wins.
        """
        async with self._transaction(write=False) as conn:
            row = await self._one(
                conn,
                "SELECT job_id FROM jobs WHERE prediction_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
                (prediction_id,),
            )
        return None if row is None else str(row[0])

    async def active_jobs(self, guild_id: int, member_id: int) -> int:
        """The member's unfinished jobs in this server (one whose outcome is being shown no longer counts)."""
        async with self._transaction(write=False) as conn:
            row = await self._one(
                conn,
                "SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND requester_id = ? AND ended_at IS NULL "
                "AND state <> 'finishing'",
                (guild_id, member_id),
            )
        return int(row[0]) if row else 0

    async def queued_jobs(self, guild_id: int, member_id: int, *, besides: str = "") -> QueuedJobs:
        """Servers' jobs waiting for a slot, but ``besides``'s, and this member's of them."""
        query = QUEUED_JOBS_SQL.format(guild="?", member="?", not_owned_by="owner IS NOT ?")
        async with self._transaction(write=False) as conn:
            row = await self._one(conn, query, (guild_id, member_id, besides))
        return QueuedJobs(total=int(row[0]), member=int(row[1])) if row else QueuedJobs(0, 0)

    async def member_history(self, guild_id: int, member_id: int, *, limit: int = 10) -> list[JobRecord]:
        """The member's latest ``limit`` jobs in this server, newest first (journal order within a microsecond)."""
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        async with self._transaction(write=False) as conn:
            rows = await self._all(
                conn,
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id = ? AND requester_id = ? "
                "ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (guild_id, member_id, history_limit(limit)),
            )
        return [decode_job(row) for row in rows]
