"""A deployment's shared state both backends keep alike: processes and their heartbeats, job claims and
ownership, models' usual run times and received webhooks.

Signs of life and webhooks are stamped with the database's clock (``{now}``,
``{ago}``), never a process's own: processes whose clocks disagree still agree
on who is silent and on what is old.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from bot.storage.common import ENDED_STAGE, JOB_COLUMNS, RUN_TIME_WEIGHT, utc
from bot.storage.records import JobRecord
from bot.storage.shared.base import SqlBase, job_from_row
from bot.storage.shared.dialect import Executor

_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
"""The last sign of life given to a process known to be gone."""
_FORGET_AFTER = 86_400.0
"""Seconds after which a silent process that owns no unfinished job is forgotten."""


class SqlCluster(SqlBase):
    """Processes, claims of unfinished jobs, run times and webhooks."""

    async def _webhook_recorded(self, db: Executor, prediction_id: str) -> None:
        """A new webhook for ``prediction_id`` is recorded in ``db``'s transaction: tell whoever must hear."""

    async def register_process(self, incarnation: str, name: str, shards: str) -> None:
        """Record a starting process (the database's clock); forget processes dead for a day that own no
        unfinished job."""
        async with self._writing() as db:
            await db.run(
                "DELETE FROM processes WHERE alive_at < {ago} AND incarnation NOT IN "
                "(SELECT owner FROM jobs WHERE ended_at IS NULL AND owner IS NOT NULL)",
                db.dialect.ago(_FORGET_AFTER),
            )
            await db.run(
                "INSERT INTO processes (incarnation, name, shards, started_at, alive_at) "
                "VALUES (?, ?, ?, {now}, {now})",
                incarnation,
                name,
                shards,
            )

    async def heartbeat(self, incarnation: str, *, alive_within: float) -> int:
        """Record the process alive (the database's clock); the number of processes alive within the last
        ``alive_within`` seconds."""
        async with self._statement(durable=False) as db:
            await db.run("UPDATE processes SET alive_at = {now} WHERE incarnation = ?", incarnation)
            row = await db.one(
                "SELECT COUNT(*) FROM processes WHERE alive_at >= {ago} OR incarnation = ?",
                db.dialect.ago(alive_within),
                incarnation,
            )
        return max(1, int(row[0])) if row else 1

    async def claim_jobs(
        self, incarnation: str, *, name: str | None = None, silent_for: float | None = None
    ) -> list[JobRecord]:
        """Take unfinished jobs of earlier incarnations of ``name`` (and ownerless ones), or of silent processes.

        One ``UPDATE``: a row another claimer took first is re-checked after its lock and no longer matches
        (its new owner is neither an earlier incarnation of ``name`` nor a silent process).
        """
        if name is None and silent_for is None:
            return []
        async with self._writing() as db:
            if name is not None:
                whose = (
                    "owner IS NULL OR owner IN (SELECT incarnation FROM processes WHERE name = ? AND incarnation <> ?)"
                )
                argument: Any = name
            else:
                assert silent_for is not None
                whose = "owner IN (SELECT incarnation FROM processes WHERE alive_at < {ago} AND incarnation <> ?)"
                argument = db.dialect.ago(silent_for)
            rows = await db.all(
                f"UPDATE jobs SET owner = ? WHERE ended_at IS NULL AND ({whose}) RETURNING {{seq}}, {JOB_COLUMNS}",
                incarnation,
                argument,
                incarnation,
            )
            if name is not None:
                # Earlier incarnations of this name are this process before its restart: dead now that their
                # jobs are taken back (not before: another process could have taken them over meanwhile).
                await db.run(
                    "UPDATE processes SET alive_at = ? WHERE name = ? AND incarnation <> ?",
                    _LONG_AGO,
                    name,
                    incarnation,
                )
            claimed = [(job_from_row(db.dialect, tuple(row)[1:]), row[0]) for row in rows]
        return [job for job, _ in sorted(claimed, key=lambda pair: (pair[0].created_at, pair[1]))]

    async def owned_jobs(self, incarnation: str, job_ids: Collection[str]) -> set[str]:
        """Which of ``job_ids`` this incarnation still owns."""
        ids = list(job_ids)
        if not ids:
            return set()
        marks = ", ".join("?" for _ in ids)
        async with self._reading() as db:
            rows = await db.all(f"SELECT job_id FROM jobs WHERE owner = ? AND job_id IN ({marks})", incarnation, *ids)
        return {str(row[0]) for row in rows}

    async def unstarted_jobs(self, incarnation: str, *, journaled_before: datetime) -> list[str]:
        """This incarnation's unended jobs still ``queued``, journaled before ``journaled_before``."""
        async with self._reading() as db:
            rows = await db.all(
                "SELECT job_id FROM jobs WHERE owner = ? AND ended_at IS NULL AND state = 'queued' "
                "AND created_at < ? ORDER BY created_at, {seq}",
                incarnation,
                utc(journaled_before, "journaled_before"),
            )
        return [str(row[0]) for row in rows]

    async def model_run_time(self, model: str) -> float | None:
        """The model's usual run time."""
        async with self._reading() as db:
            row = await db.one("SELECT seconds FROM model_run_times WHERE model = ?", model)
        return None if row is None else float(row[0])

    async def record_run_time(self, model: str, seconds: float, *, now: datetime) -> None:
        """An exponential moving average (recent runs weigh most: a model's hardware or version changes),
        updated in one statement (concurrent ends from any process)."""
        async with self._statement() as db:
            await db.run(
                "INSERT INTO model_run_times AS t (model, seconds, samples, updated_at) VALUES (?, ?, 1, ?) "
                "ON CONFLICT (model) DO UPDATE SET seconds = t.seconds + ? * (excluded.seconds - t.seconds), "
                "samples = t.samples + 1, updated_at = excluded.updated_at",
                model,
                seconds,
                utc(now),
                RUN_TIME_WEIGHT,
            )

    # ------------------------------------------------------------- webhooks

    async def record_webhook(
        self, webhook_id: str, prediction_id: str, *, stage: int, payload: Mapping[str, Any] | None
    ) -> bool:
        """Keep a verified webhook's id unless seen before, and its payload unless the one kept is further on,
        stamped with the database's clock."""
        async with self._writing(durable=False) as db:
            fresh = await db.run(
                "INSERT INTO webhook_ids (webhook_id, received_at) VALUES (?, {now}) "
                "ON CONFLICT (webhook_id) DO NOTHING",
                webhook_id,
            )
            if fresh and payload is not None:
                await db.run(
                    "INSERT INTO webhook_payloads AS kept (prediction_id, stage, payload, received_at) "
                    "VALUES (?, ?, ?, {now}) ON CONFLICT (prediction_id) DO UPDATE SET stage = excluded.stage, "
                    "payload = excluded.payload, received_at = excluded.received_at "
                    f"WHERE kept.stage < {ENDED_STAGE} AND excluded.stage >= kept.stage",
                    prediction_id,
                    stage,
                    db.dialect.to_json(dict(payload)),
                )
            if fresh:
                await self._webhook_recorded(db, prediction_id)
        return bool(fresh)

    async def read_webhook(self, prediction_id: str) -> Mapping[str, Any] | None:
        """The prediction's kept payload (left for its pruning: a stale reader must not take it from the owner)."""
        async with self._reading() as db:
            row = await db.one("SELECT payload FROM webhook_payloads WHERE prediction_id = ?", prediction_id)
            payload = None if row is None else db.dialect.from_json(row[0])
        return payload if isinstance(payload, dict) else None

    async def prune_webhooks(self, *, ids_older_than: float, payloads_older_than: float) -> None:
        """Forget webhook ids and payloads at least their ages old (a stamp of this very millisecond too),
        on the database's clock."""
        async with self._statement(durable=False) as db:
            await db.run("DELETE FROM webhook_ids WHERE received_at <= {ago}", db.dialect.ago(ids_older_than))
            await db.run("DELETE FROM webhook_payloads WHERE received_at <= {ago}", db.dialect.ago(payloads_older_than))
