"""Identify pacing by Discord's ``max_concurrency`` buckets, and the per-shard gateway health."""

from __future__ import annotations

import asyncio
import logging

import discord
import pytest

from bot.discord_app.health import gateway_check
from bot.discord_app.sharding import IDENTIFY_INTERVAL, MAX_IDENTIFY_WAIT, SHARED_MARGIN, IdentifyPacer


class Clock:
    """Monotonic time that moves only by the pacer's own sleeps; records them."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def pacer(clock: Clock, max_concurrency: int) -> IdentifyPacer:
    paced = IdentifyPacer(monotonic=clock.monotonic, sleep=clock.sleep)
    paced.set_max_concurrency(max_concurrency)
    return paced


async def test_shards_in_different_buckets_identify_at_once() -> None:
    clock = Clock()
    paced = pacer(clock, 16)
    for shard_id in range(4):
        await paced.wait(shard_id)
    assert clock.sleeps == []


async def test_one_bucket_identifies_once_per_five_seconds() -> None:
    clock = Clock()
    paced = pacer(clock, 2)
    for shard_id in range(4):  # buckets 0, 1, 0, 1
        await paced.wait(shard_id)
    assert clock.sleeps == [5.0]  # shard 2 waits for shard 0's bucket; shard 3's bucket is free by then
    clock.now += 2
    await paced.wait(1)  # shard 1 reconnecting: shard 3 identified 2 s ago in the same bucket
    assert clock.sleeps == [5.0, 3.0]


async def test_without_discords_figure_it_is_one_identify_per_five_seconds() -> None:
    clock = Clock()
    paced = IdentifyPacer(monotonic=clock.monotonic, sleep=clock.sleep)
    paced.set_max_concurrency(0)
    assert paced.max_concurrency == 1
    await asyncio.gather(paced.wait(0), paced.wait(1))
    assert clock.sleeps == [5.0]


async def test_gateway_check_names_each_shard_before_any_connects() -> None:
    client = discord.AutoShardedClient(intents=discord.Intents.none(), shard_count=4, shard_ids=[1, 3])
    result = await gateway_check(client)()
    assert result.fields == {"shards": {"connected": 0, "total": 2, "state": {"1": "connecting", "3": "connecting"}}}
    assert result.problem == "discord: gateway connected on 0 of 2 shards (shard 1 connecting, shard 3 connecting)"


class Turns:
    """Identify turns as a shared database would give them: a queue per bucket, on the fake clock."""

    def __init__(self, clock: Clock, *, fail: bool = False) -> None:
        self.clock = clock
        self.fail = fail
        self.turns: dict[int, float] = {}
        self.calls: list[tuple[int, float]] = []

    async def take(self, bucket: int, spacing: float) -> float | None:
        self.calls.append((bucket, spacing))
        if self.fail:
            raise OSError("connection refused")
        previous = self.turns.get(bucket)
        turn = self.clock.now if previous is None else max(previous + spacing, self.clock.now)
        self.turns[bucket] = turn
        return turn - self.clock.now


async def test_shared_turns_replace_the_process_s_own_pacing(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    turns = Turns(clock)
    paced = pacer(clock, 2)
    paced.share(turns.take)
    turns.turns[0] = clock.now  # another process identified in bucket 0 just now
    with caplog.at_level(logging.INFO, logger="bot.discord_app.sharding"):
        for shard_id in range(4):  # buckets 0, 1, 0, 1
            await paced.wait(shard_id)
    spacing = IDENTIFY_INTERVAL + SHARED_MARGIN
    assert turns.calls == [(0, spacing), (1, spacing), (0, spacing), (1, spacing)]
    # Shard 0 waits for the other process's turn, shard 2 for shard 0's; shard 3's turn is free by then.
    assert clock.sleeps == [spacing, spacing]
    waits = [record.getMessage() for record in caplog.records if "for its turn to identify" in record.getMessage()]
    assert len(waits) == len(clock.sleeps)  # one line per wait
    assert waits[0] == "shard 0 waits 6.0s for its turn to identify (bucket 0 of 2, shared with the bot's other shards)"


async def test_without_shared_turns_or_with_the_database_down_the_process_paces_itself(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    paced = pacer(clock, 1)

    async def not_shared(bucket: int, spacing: float) -> float | None:
        return None

    paced.share(not_shared)
    await paced.wait(0)
    await paced.wait(1)
    assert clock.sleeps == [5.0]
    down = Turns(clock, fail=True)
    paced.share(down.take)
    await paced.wait(0)
    assert clock.sleeps == [5.0, 5.0]
    assert "could not take its identify turn from the database (connection refused)" in caplog.text


async def test_a_turn_too_far_away_is_waited_for_no_longer_than_the_bound() -> None:
    clock = Clock()
    paced = pacer(clock, 1)

    async def far(bucket: int, spacing: float) -> float | None:
        return 3600.0

    paced.share(far)
    await paced.wait(0)
    assert clock.sleeps == [MAX_IDENTIFY_WAIT]


def test_a_broken_max_concurrency_counts_as_one() -> None:
    paced = IdentifyPacer()
    for broken in (0, -3, 10**9, "16", 2.5, True, None):
        paced.set_max_concurrency(broken)
        assert paced.max_concurrency == 1, broken
    paced.set_max_concurrency(16)
    assert paced.max_concurrency == 16
