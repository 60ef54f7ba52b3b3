"""Identify pacing by Discord's ``max_concurrency`` buckets, and the per-shard gateway health."""

from __future__ import annotations

import asyncio
import logging
import math

import discord
import pytest

from bot.discord_app.health import gateway_check
from bot.discord_app.sharding import (
    CONNECT_WAIT,
    IDENTIFY_INTERVAL,
    RECONNECT_WAIT,
    SHARED_MARGIN,
    IdentifyPacer,
)


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


class YieldingClock(Clock):
    """A clock whose sleeps let the other waiters run: shards waiting together, not one after another."""

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        await asyncio.sleep(0)


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
        self.withins: list[float] = []

    async def take(self, bucket: int, spacing: float, within: float) -> float | None:
        self.calls.append((bucket, spacing))
        self.withins.append(within)
        if self.fail:
            raise OSError("connection refused")
        previous = self.turns.get(bucket)
        turn = self.clock.now if previous is None else max(previous + spacing, self.clock.now)
        if turn - self.clock.now > within:
            return math.inf  # as the database: nothing reserved
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

    async def not_shared(bucket: int, spacing: float, within: float) -> float | None:
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


async def test_a_turn_further_than_discord_py_waits_is_neither_reserved_nor_waited_for() -> None:
    """discord.py cancels a reconnect's identify after 60 s (a first connect's after 180 s): a turn it would
    cancel is wasted, so none is reserved past the bound and the shard connects again later instead."""
    clock = Clock()
    turns = Turns(clock)
    paced = pacer(clock, 1)
    paced.share(turns.take)
    spacing = IDENTIFY_INTERVAL + SHARED_MARGIN
    turns.turns[0] = clock.now + 60.0  # ten shards of other processes queued ahead in the one bucket
    with pytest.raises(TimeoutError):
        await paced.wait(3, reconnect=True)
    assert turns.withins == [RECONNECT_WAIT] and turns.turns[0] == clock.now + 60.0  # nothing reserved
    assert clock.sleeps == []
    await paced.wait(4)  # a first connect may wait longer
    assert turns.withins[-1] == CONNECT_WAIT and clock.sleeps == [60.0 + spacing]
    turns.turns[0] = clock.now + CONNECT_WAIT
    with pytest.raises(TimeoutError):
        await paced.wait(5)


async def test_the_wait_for_the_bucket_counts_against_the_bound() -> None:
    """Shards of one bucket queue on its lock first: what they waited there is not waited again for the turn."""
    clock = YieldingClock()
    turns = Turns(clock)
    paced = pacer(clock, 1)
    paced.share(turns.take)
    spacing = IDENTIFY_INTERVAL + SHARED_MARGIN
    waits = [paced.wait(shard, reconnect=True) for shard in range(10)]
    results = await asyncio.gather(*waits, return_exceptions=True)
    on_time = [result for result in results if result is None]
    # Each waited for the bucket behind the others, then for its turn: all within the bound, or refused
    # (shard 0 went at once, shard 1 waited alone before the others began).
    assert 2 < len(on_time) < len(results)
    assert all(isinstance(result, TimeoutError) for result in results[len(on_time) :])
    assert turns.withins[2:] == sorted(turns.withins[2:], reverse=True)  # what is left shrinks as they wait
    assert sum(clock.sleeps) <= RECONNECT_WAIT + spacing


async def test_a_bucket_held_past_the_bound_refuses_the_reconnect() -> None:
    clock = Clock()
    paced = pacer(clock, 1)
    stuck = asyncio.Event()

    async def hanging(bucket: int, spacing: float, within: float) -> float | None:
        await stuck.wait()
        return 0.0

    paced.share(hanging)
    first = asyncio.create_task(paced.wait(0))  # holds the bucket while the database does not answer
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(paced.wait(1, reconnect=True), 0.5)
    stuck.set()
    await first


def test_a_broken_max_concurrency_counts_as_one() -> None:
    paced = IdentifyPacer()
    for broken in (0, -3, 10**9, "16", 2.5, True, None):
        paced.set_max_concurrency(broken)
        assert paced.max_concurrency == 1, broken
    paced.set_max_concurrency(16)
    assert paced.max_concurrency == 16
