"""The PostgreSQL backend's share of a deployment: processes and their heartbeats, job claims and
ownership, Discord identify turns, models' usual run times and received webhooks (announced to every
process by ``NOTIFY``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from bot.storage import JobRecord
from bot.storage.common import ENDED_STAGE, JOB_COLUMNS, RUN_TIME_WEIGHT, check_id, job_record
from bot.storage.postgres.base import PostgresBase
from bot.storage.postgres.notifications import WEBHOOK_CHANNEL

MAX_TURN_AHEAD = 86_400.0
"""Seconds an identify turn may be reserved ahead at most, whatever is asked (``make_interval`` takes no
infinity)."""

_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
"""The last sign of life given to a process known to be gone."""


class PostgresCluster(PostgresBase):
    """Processes, claims of unfinished jobs, identify turns, run times and webhooks, shared by every process."""

    async def register_process(self, incarnation: str, name: str, shards: str) -> None:
        """Record a starting process (the database's clock); forget processes dead for a day that own no
        unfinished job."""
        async with self._transaction() as conn:
            await conn.execute(
                "DELETE FROM processes WHERE alive_at < now() - interval '1 day' AND incarnation NOT IN "
                "(SELECT owner FROM jobs WHERE ended_at IS NULL AND owner IS NOT NULL)"
            )
            await conn.execute(
                "INSERT INTO processes (incarnation, name, shards, started_at, alive_at) "
                "VALUES ($1, $2, $3, now(), now())",
                incarnation,
                name,
                shards,
            )

    async def heartbeat(self, incarnation: str, *, alive_within: float) -> int:
        """Record the process alive (the database's clock); the number of processes alive within the last
        ``alive_within`` seconds."""
        async with self._connection() as conn:
            live = await conn.fetchval(
                "WITH beat AS (UPDATE processes SET alive_at = now() WHERE incarnation = $1) "
                "SELECT COUNT(*) FROM processes WHERE alive_at >= now() - make_interval(secs => $2) "
                "OR incarnation = $1",
                incarnation,
                max(0.0, alive_within),
            )
        return max(1, int(live))

    async def claim_jobs(
        self, incarnation: str, *, name: str | None = None, silent_for: float | None = None
    ) -> list[JobRecord]:
        """Take unfinished jobs of earlier incarnations of ``name`` (and ownerless ones), or of silent processes.

        One ``UPDATE``: a row another claimer took first is re-checked after its lock and no longer matches
        (its new owner is neither an earlier incarnation of ``name`` nor a silent process).
        """
        if name is not None:
            where = (
                "(owner IS NULL OR owner IN (SELECT incarnation FROM processes WHERE name = $2 AND incarnation <> $1))"
            )
            argument: Any = name
        elif silent_for is not None:
            where = (
                "owner IN (SELECT incarnation FROM processes "
                "WHERE alive_at < now() - make_interval(secs => $2) AND incarnation <> $1)"
            )
            argument = max(0.0, silent_for)
        else:
            return []
        async with self._transaction() as conn:
            rows = await conn.fetch(
                f"UPDATE jobs SET owner = $1 WHERE ended_at IS NULL AND {where} RETURNING seq, {JOB_COLUMNS}",
                incarnation,
                argument,
            )
            if name is not None:
                # Earlier incarnations of this name are this process before its restart: dead now that their
                # jobs are taken back (not before: another process could have taken them over meanwhile).
                await conn.execute(
                    "UPDATE processes SET alive_at = $1 WHERE name = $2 AND incarnation <> $3",
                    _LONG_AGO,
                    name,
                    incarnation,
                )
        return [job_record(row) for row in sorted(rows, key=lambda row: (row["created_at"], row["seq"]))]

    async def owned_jobs(self, incarnation: str, job_ids: Collection[str]) -> set[str]:
        """Which of ``job_ids`` this incarnation still owns."""
        if not job_ids:
            return set()
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT job_id FROM jobs WHERE owner = $1 AND job_id = ANY($2::text[])", incarnation, list(job_ids)
            )
        return {str(row["job_id"]) for row in rows}

    async def unstarted_jobs(self, incarnation: str, *, journaled_before: datetime) -> list[str]:
        """This incarnation's unended jobs still ``queued``, journaled before ``journaled_before``."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT job_id FROM jobs WHERE owner = $1 AND ended_at IS NULL AND state = 'queued' "
                "AND created_at < $2 ORDER BY created_at, seq",
                incarnation,
                journaled_before.astimezone(UTC),
            )
        return [str(row["job_id"]) for row in rows]

    async def take_identify_turn(self, bot_id: int, bucket: int, *, spacing: float, within: float) -> float | None:
        """Reserve the bucket's next identify: one statement, so concurrent reservations queue one after another.

        A second reserver waits for the first's row lock, then reads its turn; ``clock_timestamp()`` (the
        database's clock, not any machine's, and not the transaction's start) places a turn in an idle bucket.
        A turn further than ``within`` is not reserved: the update's condition fails and returns no row.
        """
        async with self._connection() as conn:
            wait = await conn.fetchval(
                "INSERT INTO identify_turns AS t (bot_id, bucket, turn_at) VALUES ($1, $2, clock_timestamp()) "
                "ON CONFLICT (bot_id, bucket) DO UPDATE "
                "SET turn_at = GREATEST(t.turn_at + make_interval(secs => $3), clock_timestamp()) "
                "WHERE t.turn_at + make_interval(secs => $3) <= clock_timestamp() + make_interval(secs => $4) "
                "RETURNING EXTRACT(EPOCH FROM t.turn_at - clock_timestamp())",
                check_id("bot_id", bot_id),
                bucket,
                spacing,
                min(within, MAX_TURN_AHEAD),
            )
        return math.inf if wait is None else max(0.0, float(wait))

    async def model_run_time(self, model: str) -> float | None:
        """The model's usual run time."""
        async with self._connection() as conn:
            seconds = await conn.fetchval("SELECT seconds FROM model_run_times WHERE model = $1", model)
        return None if seconds is None else float(seconds)

    async def record_run_time(self, model: str, seconds: float, *, now: datetime) -> None:
        """An exponential moving average, updated in one statement (concurrent ends from any process)."""
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO model_run_times AS t (model, seconds, samples, updated_at) VALUES ($1, $2, 1, $3) "
                "ON CONFLICT (model) DO UPDATE SET seconds = t.seconds + $4 * (excluded.seconds - t.seconds), "
                "samples = t.samples + 1, updated_at = excluded.updated_at",
                model,
                seconds,
                now,
                RUN_TIME_WEIGHT,
            )

    # ------------------------------------------------------------- webhooks

    async def record_webhook(
        self, webhook_id: str, prediction_id: str, *, stage: int, payload: Mapping[str, Any] | None
    ) -> bool:
        """Keep a verified webhook's id unless seen before, and its payload unless the one kept is further on,
        stamped with the database's clock; tell every process (``NOTIFY``, on commit)."""
        async with self._transaction() as conn:
            fresh = await conn.fetchval(
                "INSERT INTO webhook_ids (webhook_id, received_at) VALUES ($1, now()) "
                "ON CONFLICT (webhook_id) DO NOTHING RETURNING true",
                webhook_id,
            )
            if fresh and payload is not None:
                await conn.execute(
                    "INSERT INTO webhook_payloads AS kept (prediction_id, stage, payload, received_at) "
                    "VALUES ($1, $2, $3, now()) ON CONFLICT (prediction_id) DO UPDATE SET stage = excluded.stage, "
                    "payload = excluded.payload, received_at = excluded.received_at "
                    f"WHERE kept.stage < {ENDED_STAGE} AND excluded.stage >= kept.stage",
                    prediction_id,
                    stage,
                    dict(payload),
                )
            if fresh:
                await conn.execute("SELECT pg_notify($1, $2)", WEBHOOK_CHANNEL, prediction_id)
        return bool(fresh)

    async def read_webhook(self, prediction_id: str) -> Mapping[str, Any] | None:
        """The prediction's kept payload (left for its pruning: a stale reader must not take it from the owner)."""
        async with self._connection() as conn:
            payload = await conn.fetchval(
                "SELECT payload FROM webhook_payloads WHERE prediction_id = $1", prediction_id
            )
        return payload if isinstance(payload, dict) else None

    async def prune_webhooks(self, *, ids_older_than: float, payloads_older_than: float) -> None:
        """Forget webhook ids and payloads at least their ages old (a stamp of this very millisecond too).

        On the database's clock.
        """
        async with self._connection() as conn:
            await conn.execute(
                "DELETE FROM webhook_ids WHERE received_at <= now() - make_interval(secs => $1)",
                max(0.0, ids_older_than),
            )
            await conn.execute(
                "DELETE FROM webhook_payloads WHERE received_at <= now() - make_interval(secs => $1)",
                max(0.0, payloads_older_than),
            )

    def on_webhook(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(prediction_id)`` for every webhook any process records."""
        self._listener.webhook_listeners.append(listener)
