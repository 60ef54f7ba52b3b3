"""Identify pacing by Discord's ``max_concurrency`` buckets, and the per-shard gateway health."""

from __future__ import annotations

import asyncio

import discord

from bot.discord_app.health import gateway_check
from bot.discord_app.sharding import IdentifyPacer


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
