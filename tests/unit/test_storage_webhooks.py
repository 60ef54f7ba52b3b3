"""Received webhooks on both backends: ids kept for dedupe until pruned, one payload per prediction (never
moved back) until its job takes it, the heartbeat's clean-up, and migration 11 carrying the old table over."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import aiosqlite
import asyncpg

from bot.cluster import Cluster
from bot.journal import Journal
from bot.ratelimit import RequestBudget
from bot.storage import Repository
from bot.storage.migrations import MIGRATIONS as SQLITE_MIGRATIONS
from bot.storage.postgres import PostgresRepository
from bot.storage.postgres_migrations import MIGRATIONS as POSTGRES_MIGRATIONS
from bot.storage.sqlite import SqliteRepository
from bot.storage.sqlite.base import to_text
from bot.webhooks import KEEP_PAYLOADS, KEEP_WEBHOOKS
from tests.storage import T0, FakeClock

STARTING, PROCESSING, ENDED = 0, 1, 2


def payload(status: str, logs: str = "") -> dict[str, Any]:
    return {"id": "p1", "status": status, "logs": logs}


async def test_an_id_is_recorded_once_until_pruned(repository: Repository) -> None:
    assert await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=None, now=T0)
    assert not await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=None, now=T0)
    await repository.prune_webhooks(ids_before=T0, payloads_before=T0)  # received at T0: not before it
    assert not await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=None, now=T0)
    await repository.prune_webhooks(ids_before=T0 + timedelta(seconds=1), payloads_before=T0)
    assert await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=None, now=T0)


async def test_one_payload_per_prediction_never_moved_back(repository: Repository) -> None:
    steps = [
        ("msg_1", STARTING, payload("starting")),
        ("msg_2", PROCESSING, payload("processing", "10%")),
        ("msg_3", PROCESSING, payload("processing", "10%\n50%")),  # the same stage, newer: replaces
        ("msg_4", STARTING, payload("starting")),  # late: ignored
    ]
    for webhook_id, stage, data in steps:
        assert await repository.record_webhook(webhook_id, "p1", stage=stage, payload=data, now=T0)
    assert await repository.take_webhook("p1") == payload("processing", "10%\n50%")
    assert await repository.take_webhook("p1") is None  # taken: gone


async def test_an_ended_payload_is_never_replaced(repository: Repository) -> None:
    await repository.record_webhook("msg_1", "p1", stage=ENDED, payload=payload("succeeded"), now=T0)
    await repository.record_webhook("msg_2", "p1", stage=ENDED, payload=payload("failed"), now=T0)
    await repository.record_webhook("msg_3", "p1", stage=PROCESSING, payload=payload("processing"), now=T0)
    assert await repository.take_webhook("p1") == payload("succeeded")


async def test_a_replayed_id_changes_no_payload(repository: Repository) -> None:
    await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=payload("processing", "a"), now=T0)
    assert not await repository.record_webhook(
        "msg_1", "p1", stage=ENDED, payload=payload("succeeded"), now=T0 + timedelta(seconds=1)
    )
    assert await repository.take_webhook("p1") == payload("processing", "a")


async def test_an_id_without_a_payload_keeps_none(repository: Repository) -> None:
    """The process that runs the job has the state already: only the id is kept."""
    assert await repository.record_webhook("msg_1", "p1", stage=ENDED, payload=None, now=T0)
    assert await repository.take_webhook("p1") is None


async def test_pruning_forgets_ids_and_payloads_by_their_own_times(repository: Repository) -> None:
    now = T0 + timedelta(minutes=20)
    received = {"p-old": T0, "p-mid": now - timedelta(minutes=2), "p-new": now}
    for prediction_id, at in received.items():
        webhook_id = f"msg-{prediction_id}"
        await repository.record_webhook(webhook_id, prediction_id, stage=PROCESSING, payload=payload("x"), now=at)
    await repository.prune_webhooks(ids_before=now - timedelta(minutes=15), payloads_before=now - timedelta(minutes=1))
    assert [await repository.take_webhook(p) is not None for p in received] == [False, False, True]
    fresh = [await repository.record_webhook(f"msg-{p}", p, stage=PROCESSING, payload=None, now=now) for p in received]
    assert fresh == [True, False, False]  # only the oldest id is forgotten


async def test_the_heartbeat_forgets_unread_payloads_then_old_ids(repository: Repository) -> None:
    clock = FakeClock()
    journal = Journal(repository, clock, owner="me")
    cluster = Cluster(repository, journal, clock, RequestBudget(), name="host", shards="all", takeover_after=30)
    await cluster.join()

    async def resume(_jobs: object) -> None:
        return None

    async def drop(_job_id: str) -> None:
        return None

    async def beat_after(seconds: float) -> None:
        clock.advance(seconds)
        await cluster.beat(resume, list, drop)

    await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=payload("processing"), now=clock.now())
    await repository.record_webhook("msg_2", "p2", stage=PROCESSING, payload=payload("processing"), now=clock.now())
    await beat_after(KEEP_PAYLOADS.total_seconds() - 1)
    assert await repository.take_webhook("p1") == payload("processing")  # still there for its owner
    await beat_after(2)
    assert await repository.take_webhook("p2") is None  # nobody took it: gone
    await beat_after(KEEP_WEBHOOKS.total_seconds() - KEEP_PAYLOADS.total_seconds() - 2)
    assert not await repository.record_webhook("msg_1", "p1", stage=PROCESSING, payload=None, now=clock.now())
    await beat_after(2)
    assert await repository.record_webhook("msg_2", "p2", stage=PROCESSING, payload=None, now=clock.now())


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
        assert not await repository.record_webhook("msg_2", "p1", stage=PROCESSING, payload=None, now=T0)
        assert await repository.take_webhook("p1") == payload("succeeded")
        assert await repository.take_webhook("p2") == {"id": "p2", "status": "processing"}
    finally:
        await repository.close()
