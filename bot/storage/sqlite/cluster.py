"""The SQLite backend's share of a deployment: processes and their heartbeats, job claims and ownership,
models' usual run times and received webhooks. On SQLite there is one process, but it restarts: it paces
its Discord identifies by itself (no identify turns here)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.storage import JobRecord
from bot.storage.common import JOB_COLUMN_NAMES, JOB_COLUMNS, RUN_TIME_WEIGHT
from bot.storage.sqlite.base import SqliteBase, decode_job, to_text

_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
"""The last sign of life given to a process known to be gone."""


class SqliteCluster(SqliteBase):
    """Processes, claims of unfinished jobs, run times and webhooks."""

    async def register_process(self, incarnation: str, name: str, shards: str, *, now: datetime) -> None:
        """Record a starting process; forget processes dead for a day that own no unfinished job."""
        stamp = to_text(now)
        async with self._transaction(write=True) as conn:
            await conn.execute("DELETE FROM webhooks WHERE received_at < ?", (to_text(now - timedelta(days=1)),))
            await conn.execute(
                "DELETE FROM processes WHERE alive_at < ? AND incarnation NOT IN "
                "(SELECT owner FROM jobs WHERE ended_at IS NULL AND owner IS NOT NULL)",
                (to_text(now - timedelta(days=1)),),
            )
            await conn.execute(
                "INSERT INTO processes (incarnation, name, shards, started_at, alive_at) VALUES (?, ?, ?, ?, ?)",
                (incarnation, name, shards, stamp, stamp),
            )

    async def heartbeat(self, incarnation: str, *, now: datetime, alive_since: datetime) -> int:
        """Record the process alive; the number of processes alive since ``alive_since``."""
        async with self._transaction(write=True) as conn:
            await conn.execute("UPDATE processes SET alive_at = ? WHERE incarnation = ?", (to_text(now), incarnation))
            row = await self._one(conn, "SELECT COUNT(*) FROM processes WHERE alive_at >= ?", (to_text(alive_since),))
        return int(row[0]) if row else 1

    async def claim_jobs(
        self, incarnation: str, *, name: str | None = None, dead_before: datetime | None = None
    ) -> list[JobRecord]:
        """Take unfinished jobs of earlier incarnations of ``name`` (and ownerless ones), or of dead processes."""
        if name is not None:
            where = (
                "(owner IS NULL OR owner IN (SELECT incarnation FROM processes WHERE name = ? AND incarnation <> ?))"
            )
            params: tuple[Any, ...] = (name, incarnation)
        elif dead_before is not None:
            where = "owner IN (SELECT incarnation FROM processes WHERE alive_at < ? AND incarnation <> ?)"
            params = (to_text(dead_before), incarnation)
        else:
            return []
        async with self._transaction(write=True) as conn:
            rows = await self._all(
                conn,
                f"UPDATE jobs SET owner = ? WHERE ended_at IS NULL AND {where} RETURNING rowid, {JOB_COLUMNS}",
                (incarnation, *params),
            )
            if name is not None:
                # Earlier incarnations of this name are this process before its restart: dead now that their
                # jobs are taken back (not before: another process could have taken them over meanwhile).
                await conn.execute(
                    "UPDATE processes SET alive_at = ? WHERE name = ? AND incarnation <> ?",
                    (to_text(_LONG_AGO), name, incarnation),
                )
        ordered = sorted(rows, key=lambda row: (row[JOB_COLUMN_NAMES.index("created_at") + 1], row[0]))
        return [decode_job(row[1:]) for row in ordered]

    async def owned_jobs(self, incarnation: str, job_ids: Collection[str]) -> set[str]:
        """Which of ``job_ids`` this incarnation still owns."""
        ids = list(job_ids)
        if not ids:
            return set()
        marks = ", ".join("?" for _ in ids)
        async with self._transaction(write=False) as conn:
            rows = await self._all(
                conn, f"SELECT job_id FROM jobs WHERE owner = ? AND job_id IN ({marks})", (incarnation, *ids)
            )
        return {str(row[0]) for row in rows}

    async def take_identify_turn(self, bot_id: int, bucket: int, *, spacing: float) -> float | None:
        """``None``: the one process runs every shard and paces its identifies itself."""
        return None

    async def model_run_time(self, model: str) -> float | None:
        """The model's usual run time."""
        async with self._transaction(write=False) as conn:
            row = await self._one(conn, "SELECT seconds FROM model_run_times WHERE model = ?", (model,))
        return None if row is None else float(row[0])

    async def record_run_time(self, model: str, seconds: float, *, now: datetime) -> None:
        """An exponential moving average: recent runs weigh most (a model's hardware or version changes)."""
        async with self._transaction(write=True) as conn:
            await conn.execute(
                "INSERT INTO model_run_times (model, seconds, samples, updated_at) VALUES (?, ?, 1, ?) "
                "ON CONFLICT (model) DO UPDATE SET seconds = seconds + ? * (excluded.seconds - seconds), "
                "samples = samples + 1, updated_at = excluded.updated_at",
                (model, seconds, to_text(now), RUN_TIME_WEIGHT),
            )

    # ------------------------------------------------------------- webhooks

    async def record_webhook(
        self,
        webhook_id: str,
        prediction_id: str,
        *,
        status: str,
        terminal: bool,
        payload: Mapping[str, Any],
        now: datetime,
    ) -> bool:
        """Keep a verified webhook unless its id was seen before."""
        async with self._transaction(write=True) as conn:
            cursor = await conn.execute(
                "INSERT INTO webhooks (webhook_id, prediction_id, status, terminal, payload, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (webhook_id) DO NOTHING",
                (webhook_id, prediction_id, status, int(terminal), json.dumps(payload), to_text(now)),
            )
            return cursor.rowcount > 0

    async def latest_webhook(self, prediction_id: str) -> Mapping[str, Any] | None:
        """A terminal payload of the prediction if there is one, else the newest."""
        async with self._transaction(write=False) as conn:
            row = await self._one(
                conn,
                "SELECT payload FROM webhooks WHERE prediction_id = ? ORDER BY terminal DESC, received_at DESC LIMIT 1",
                (prediction_id,),
            )
        return None if row is None else json.loads(row[0])

    def on_webhook(self, listener: Callable[[str], None]) -> None:
        """One process on SQLite: the process that records a webhook is the one that runs its job."""
