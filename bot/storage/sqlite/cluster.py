"""The SQLite backend's share of a deployment: processes and their heartbeats, job claims and ownership,
models' usual run times and received webhooks. On SQLite there is one process, but it restarts: it paces
its Discord identifies by itself (no identify turns here)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from bot.storage import JobRecord
from bot.storage.common import ENDED_STAGE, JOB_COLUMN_NAMES, JOB_COLUMNS, RUN_TIME_WEIGHT
from bot.storage.sqlite.base import SqliteBase, decode_job, to_text

_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
"""The last sign of life given to a process known to be gone."""

_FORMAT = "%Y-%m-%dT%H:%M:%f000+00:00"
"""SQLite's own clock in :func:`~bot.storage.sqlite.base.to_text`'s form (milliseconds padded to micro), so
stamps from either compare as text."""
_DB_NOW = f"strftime('{_FORMAT}', 'now')"
_DB_NOW_MINUS = f"strftime('{_FORMAT}', 'now', ?)"
"""The database's clock some seconds ago; its parameter is :func:`_seconds_ago`'s."""
_FORGET_AFTER = 86_400.0
"""Seconds after which a silent process that owns no unfinished job is forgotten."""


def _seconds_ago(seconds: float) -> str:
    """The SQLite date modifier for ``seconds`` before."""
    return f"-{max(0.0, seconds):.6f} seconds"


class SqliteCluster(SqliteBase):
    """Processes, claims of unfinished jobs, run times and webhooks."""

    async def register_process(self, incarnation: str, name: str, shards: str) -> None:
        """Record a starting process; forget processes dead for a day that own no unfinished job."""
        async with self._transaction(write=True) as conn:
            await conn.execute(
                f"DELETE FROM processes WHERE alive_at < {_DB_NOW_MINUS} AND incarnation NOT IN "
                "(SELECT owner FROM jobs WHERE ended_at IS NULL AND owner IS NOT NULL)",
                (_seconds_ago(_FORGET_AFTER),),
            )
            await conn.execute(
                f"INSERT INTO processes (incarnation, name, shards, started_at, alive_at) "
                f"VALUES (?, ?, ?, {_DB_NOW}, {_DB_NOW})",
                (incarnation, name, shards),
            )

    async def heartbeat(self, incarnation: str, *, alive_within: float) -> int:
        """Record the process alive (the database's clock); the number of processes alive within the last
        ``alive_within`` seconds."""
        async with self._transaction(write=True, durable=False) as conn:
            await conn.execute(f"UPDATE processes SET alive_at = {_DB_NOW} WHERE incarnation = ?", (incarnation,))
            row = await self._one(
                conn,
                f"SELECT COUNT(*) FROM processes WHERE alive_at >= {_DB_NOW_MINUS} OR incarnation = ?",
                (_seconds_ago(alive_within), incarnation),
            )
        return max(1, int(row[0])) if row else 1

    async def claim_jobs(
        self, incarnation: str, *, name: str | None = None, silent_for: float | None = None
    ) -> list[JobRecord]:
        """Take unfinished jobs of earlier incarnations of ``name`` (and ownerless ones), or of silent processes."""
        if name is not None:
            where = (
                "(owner IS NULL OR owner IN (SELECT incarnation FROM processes WHERE name = ? AND incarnation <> ?))"
            )
            params: tuple[Any, ...] = (name, incarnation)
        elif silent_for is not None:
            where = (
                f"owner IN (SELECT incarnation FROM processes WHERE alive_at < {_DB_NOW_MINUS} AND incarnation <> ?)"
            )
            params = (_seconds_ago(silent_for), incarnation)
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

    async def unstarted_jobs(self, incarnation: str, *, journaled_before: datetime) -> list[str]:
        """This incarnation's unended jobs still ``queued``, journaled before ``journaled_before``."""
        async with self._transaction(write=False) as conn:
            rows = await self._all(
                conn,
                "SELECT job_id FROM jobs WHERE owner = ? AND ended_at IS NULL AND state = 'queued' "
                "AND created_at < ? ORDER BY created_at, rowid",
                (incarnation, to_text(journaled_before)),
            )
        return [str(row[0]) for row in rows]

    async def take_identify_turn(self, bot_id: int, bucket: int, *, spacing: float, within: float) -> float | None:
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
        self, webhook_id: str, prediction_id: str, *, stage: int, payload: Mapping[str, Any] | None
    ) -> bool:
        """Keep a verified webhook's id unless seen before, and its payload unless the one kept is further on,
        stamped with the database's clock."""
        async with self._transaction(write=True, durable=False) as conn:
            cursor = await conn.execute(
                f"INSERT INTO webhook_ids (webhook_id, received_at) VALUES (?, {_DB_NOW}) "
                "ON CONFLICT (webhook_id) DO NOTHING",
                (webhook_id,),
            )
            fresh = cursor.rowcount > 0
            if fresh and payload is not None:
                await conn.execute(
                    "INSERT INTO webhook_payloads (prediction_id, stage, payload, received_at) "
                    f"VALUES (?, ?, ?, {_DB_NOW}) "
                    "ON CONFLICT (prediction_id) DO UPDATE SET stage = excluded.stage, payload = excluded.payload, "
                    "received_at = excluded.received_at "
                    f"WHERE webhook_payloads.stage < {ENDED_STAGE} AND excluded.stage >= webhook_payloads.stage",
                    (prediction_id, stage, json.dumps(payload)),
                )
        return fresh

    async def read_webhook(self, prediction_id: str) -> Mapping[str, Any] | None:
        """The prediction's kept payload (left for its pruning)."""
        async with self._transaction(write=False) as conn:
            row = await self._one(
                conn, "SELECT payload FROM webhook_payloads WHERE prediction_id = ?", (prediction_id,)
            )
        return None if row is None else json.loads(row[0])

    async def prune_webhooks(self, *, ids_older_than: float, payloads_older_than: float) -> None:
        """Forget webhook ids and payloads at least their ages old (a stamp of this very millisecond too).

        On the database's clock.
        """
        async with self._transaction(write=True, durable=False) as conn:
            await conn.execute(
                f"DELETE FROM webhook_ids WHERE received_at <= {_DB_NOW_MINUS}", (_seconds_ago(ids_older_than),)
            )
            await conn.execute(
                f"DELETE FROM webhook_payloads WHERE received_at <= {_DB_NOW_MINUS}",
                (_seconds_ago(payloads_older_than),),
            )

    def on_webhook(self, listener: Callable[[str], None]) -> None:
        """One process on SQLite: the process that records a webhook is the one that runs its job."""
