"""Received webhooks on both backends: ids kept for dedupe until pruned, one payload per prediction (never
moved back) read by its job, both pruned on the database's clock whatever the processes' clocks say, and
migration 11 carrying the old table over."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosqlite
import asyncpg
import pytest

from bot.api.ratelimit import RequestBudget
from bot.jobs.journal import Journal
from bot.ops.cluster import Cluster
from bot.storage import Repository
from bot.storage.postgres import PostgresRepository
from bot.storage.schema import MIGRATIONS as POSTGRES_MIGRATIONS
from bot.storage.schema import MIGRATIONS as SQLITE_MIGRATIONS
from bot.storage.sqlite import SqliteRepository
from bot.storage.sqlite.dialect import to_text
from tests.storage import T0, FakeClock

STARTING, PROCESSING, ENDED = 0, 1, 2


def payload(status: str, logs: str = "") -> dict[str, Any]:
    return {"id": "p1", "status": status, "logs": logs}


async def test_an_id_is_recorded_once_until_pruned(repository: Repository) -> None:
    assert await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=None)
    assert not await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=None)
    await repository.prune_webhooks(ids_older_than=3600, payloads_older_than=3600)  # received just now: kept
    assert not await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=None)
    await repository.prune_webhooks(ids_older_than=0, payloads_older_than=3600)
    assert await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=None)


async def test_one_payload_per_prediction_never_moved_back(repository: Repository) -> None:
    steps = [
        ("msg_1", STARTING, payload("starting")),
        ("msg_2", PROCESSING, payload("processing", "10%")),
        ("msg_3", PROCESSING, payload("processing", "10%\n50%")),  # the same stage, newer: replaces
        ("msg_4", STARTING, payload("starting")),  # late: ignored
    ]
    for webhook_id, stage, data in steps:
        assert await repository.record_webhook(webhook_id, "p1", stage=stage, payload=data)
    assert await repository.read_webhook("p1") == payload("processing", "10%\n50%")
    assert await repository.read_webhook("p1") == payload("processing", "10%\n50%")  # read, not taken


async def test_an_ended_payload_is_never_replaced(repository: Repository) -> None:
    await repository.record_webhook("msg_1", "p1", stage=ENDED, payload=payload("succeeded"))
    await repository.record_webhook("msg_2", "p1", stage=ENDED, payload=payload("failed"))
    await repository.record_webhook("msg_3", "p1", stage=PROCESSING, payload=payload("processing"))
    assert await repository.read_webhook("p1") == payload("succeeded")


async def test_a_replayed_id_changes_no_payload(repository: Repository) -> None:
    await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=payload("processing", "a"))
    assert not await repository.record_webhook("msg_1", "p1", stage=ENDED, payload=payload("succeeded"))
    assert await repository.read_webhook("p1") == payload("processing", "a")


async def test_an_id_without_a_payload_keeps_none(repository: Repository) -> None:
    """The process that runs the job has the state already: only the id is kept."""
    assert await repository.record_webhook("msg_1", "p1", stage=ENDED, payload=None)
    assert await repository.read_webhook("p1") is None


async def test_pruning_forgets_ids_and_payloads_by_their_own_ages(repository: Repository) -> None:
    await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=payload("x"))
    await repository.prune_webhooks(ids_older_than=3600, payloads_older_than=0)
    assert await repository.read_webhook("p1") is None  # the payload is forgotten...
    assert not await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=None)  # ...the id is not
    await repository.prune_webhooks(ids_older_than=0, payloads_older_than=0)
    assert await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=None)


async def _heartbeat(repository: Repository, clock: FakeClock) -> Callable[[], Awaitable[None]]:
    """One process's heartbeat, with its own clock."""
    journal = Journal(repository, clock, owner="me")
    cluster = Cluster(repository, journal, clock, RequestBudget(), name="host", shards="all", takeover_after=30)
    await cluster.join()

    async def resume(_jobs: object) -> None:
        return None

    async def drop(_job_id: str) -> None:
        return None

    async def beat() -> None:
        await cluster.beat(resume, list, drop)

    return beat


@pytest.mark.parametrize("skew", [timedelta(minutes=20), -timedelta(minutes=20)])
async def test_retention_holds_whatever_the_process_clocks_say(repository: Repository, skew: timedelta) -> None:
    """Stamps and pruning are on the database's clock: a process whose clock runs ahead (or behind) of the
    one that stored a payload neither deletes it at once nor keeps it for ever."""
    beat = await _heartbeat(repository, FakeClock(datetime.now(UTC) + skew))
    await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=payload("processing"))
    await beat()
    assert await repository.read_webhook("p1") == payload("processing")  # still there for its owner
    assert not await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=None)


async def test_migration_11_keeps_ids_and_each_predictions_most_telling_payload(database_url: str) -> None:
    rows = [
        ("msg_1", "p1", "starting", False, payload("starting"), T0),
        ("msg_2", "p1", "processing", False, payload("processing", "50%"), T0 + timedelta(seconds=1)),
        ("msg_3", "p1", "succeeded", True, payload("succeeded"), T0 + timedelta(seconds=2)),
        ("msg_4", "p1", "processing", False, payload("processing", "late"), T0 + timedelta(seconds=3)),
        ("msg_5", "p2", "processing", False, {"id": "p2", "status": "processing"}, T0),
    ]
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        await (await SqliteRepository.open(path, migrations=SQLITE_MIGRATIONS[:10])).close()
        async with aiosqlite.connect(path) as conn:
            await conn.executemany(
                "INSERT INTO webhooks VALUES (?, ?, ?, ?, ?, ?)",
                [(i, p, s, int(t), json.dumps(d), to_text(at)) for i, p, s, t, d, at in rows],
            )
            await conn.commit()
        repository: Repository = await SqliteRepository.open(path)
    else:
        await (await PostgresRepository.open(database_url, migrations=POSTGRES_MIGRATIONS[:10])).close()
        conn = await asyncpg.connect(database_url)
        try:
            await conn.executemany(
                "INSERT INTO webhooks VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
                [(i, p, s, t, json.dumps(d), at) for i, p, s, t, d, at in rows],
            )
        finally:
            await conn.close()
        repository = await PostgresRepository.open(database_url)
    try:
        assert not await repository.record_webhook("msg_2", "p1", stage=PROCESSING, payload=None)
        assert await repository.read_webhook("p1") == payload("succeeded")
        assert await repository.read_webhook("p2") == {"id": "p2", "status": "processing"}
    finally:
        await repository.close()
