"""Identify turns across processes: ``python -m bot`` processes on one PostgreSQL database, started at once
against a fake Discord that enforces the identify limit (one session start per bucket per 5 s, an invalid
session past it) across every connection.

What must hold, as the fake recorded it: every shard identifies, no IDENTIFY is refused, and the sessions
of each bucket start at least 5 s apart, even when a process is SIGKILLed just after its identify and
started again at once (its turn in the database outlives it; the bucket is not held any longer).
"""

from __future__ import annotations

import asyncio
from itertools import pairwise
from pathlib import Path

import pytest

from bot.discord_app.sharding import SHARED_MARGIN
from tests.e2e.bot_process import BotProcess, one_process_per_shard, stop_all
from tests.e2e.conftest import DISCORD_TOKEN
from tests.fakes.discord import IDENTIFY_WINDOW, FakeDiscord, IdentifyRecord
from tests.fakes.replicate import FakeReplicate

# A multi-process chaos run: `pytest -m slow` runs it, right after the main suite (see README, Testing).
pytestmark = pytest.mark.slow

WAITED = "for its turn to identify"
"""What a process logs (once per identify) when it waits for its bucket's turn."""

INVALIDATED = "session has been invalidated"
"""What discord.py logs when Discord answers an IDENTIFY with an invalid session."""


def deployment(api: FakeReplicate, fake: FakeDiscord, postgres_url: str, tmp_path: Path) -> list[BotProcess]:
    """One process per shard of ``fake.shard_count``, each with a guild on its shard, all on one database."""
    guilds = [fake.add_guild(f"Shard {shard}", shard=shard) for shard in range(fake.shard_count)]
    return one_process_per_shard(api, fake, guilds, postgres_url, tmp_path, LOG_LEVEL="INFO")


def assert_turns_kept(fake: FakeDiscord) -> None:
    """No IDENTIFY refused, and each bucket's sessions started a window apart (the fake's own times)."""
    assert fake.identify_violations == []
    for bucket in range(fake.max_concurrency):
        times = fake.identify_times(bucket)
        gaps = [later - earlier for earlier, later in pairwise(times)]
        print(f"bucket {bucket} of {fake.max_concurrency}: sessions started {[round(gap, 2) for gap in gaps]} s apart")
        assert all(gap >= IDENTIFY_WINDOW for gap in gaps), (bucket, gaps)


@pytest.mark.parametrize("max_concurrency", [1, 2])
async def test_four_processes_started_at_once_take_turns_to_identify(
    postgres_url: str, tmp_path: Path, max_concurrency: int
) -> None:
    # One bucket: the four take turns. Two: shards 0 and 2 take turns, 1 and 3 take theirs meanwhile.
    async with (
        FakeReplicate(seed=12) as api,
        FakeDiscord(token=DISCORD_TOKEN, shard_count=4, max_concurrency=max_concurrency) as fake,
    ):
        processes = deployment(api, fake, postgres_url, tmp_path)
        # Three turns may be ahead of a process, each a window and the margin long, after its start-up.
        timeout = 3 * (IDENTIFY_WINDOW + SHARED_MARGIN) + 30
        try:
            await asyncio.gather(*(process.start(timeout=timeout) for process in processes))
        finally:
            await stop_all(processes)
        assert sorted(fake.identified_shards) == [(shard, 4) for shard in range(4)]
        assert_turns_kept(fake)
        per_bucket = 4 // max_concurrency
        assert [len(fake.identify_times(bucket)) for bucket in range(max_concurrency)] == [per_bucket] * max_concurrency
        waits = [process.output().count(WAITED) for process in processes]
        assert max(waits) == 1, waits  # some process did wait, and said so once
        assert INVALIDATED not in "".join(process.output() for process in processes)


async def test_a_process_killed_after_its_identify_holds_its_bucket_no_longer_than_the_window(
    postgres_url: str, tmp_path: Path
) -> None:
    async with (
        FakeReplicate(seed=12) as api,
        FakeDiscord(token=DISCORD_TOKEN, shard_count=2, max_concurrency=1) as fake,
    ):
        processes = deployment(api, fake, postgres_url, tmp_path)
        tasks = [asyncio.create_task(process.start()) for process in processes]
        try:
            first: IdentifyRecord = await fake.wait_for(lambda: next(iter(fake.identifies), None), 30)
            holder, other = processes[first.shard_id], processes[1 - first.shard_id]
            await tasks[first.shard_id]
            # SIGKILLed inside its window, and started again at once (a crash-restart loop).
            await holder.kill()
            tasks.append(asyncio.create_task(holder.start()))
            # The other process identifies once the holder's window (and the margin) is over, not later.
            other_shard = other.shards()[0]
            await fake.wait_for(
                lambda: any(shard == other_shard for shard, _ in fake.identified_shards),
                IDENTIFY_WINDOW + SHARED_MARGIN + 15,
                what="the other process's IDENTIFY",
            )
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await stop_all(processes)
        shards = sorted(shard for shard, _ in fake.identified_shards)
        assert shards == sorted([first.shard_id, first.shard_id, other_shard])
        assert_turns_kept(fake)
        assert INVALIDATED not in "".join(process.output() for process in processes)
