"""The repository's command syncs and per-day tallies, on both backends."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.storage import DayTally, Repository, open_repository
from tests.storage import T0, FakeClock, make_job

GUILD, MEMBER = 1001, 2002


async def test_a_sync_runs_when_the_digest_changed_and_is_recorded_only_when_it_worked(
    repository: Repository,
) -> None:
    runs: list[str] = []

    async def sync() -> None:
        runs.append("sync")

    async def refused() -> None:
        raise RuntimeError("Discord said no")

    assert await repository.synced_digest("global") is None
    assert await repository.sync_commands_once("global", "aaa", sync, now=T0)
    assert not await repository.sync_commands_once("global", "aaa", sync, now=T0)
    assert await repository.sync_commands_once("global", "aaa", sync, now=T0, force=True)
    assert runs == ["sync", "sync"]
    with pytest.raises(RuntimeError):
        await repository.sync_commands_once("global", "bbb", refused, now=T0)
    assert await repository.synced_digest("global") == "aaa"
    assert await repository.sync_commands_once("global", "bbb", sync, now=T0)
    assert await repository.synced_digest("global") == "bbb"
    assert await repository.synced_digest("123") is None


async def test_syncers_of_several_processes_take_turns_and_sync_once(postgres_url: str, clock: FakeClock) -> None:
    """PostgreSQL: three repositories as three processes (SQLite serves one process, one repository)."""
    repositories = [await open_repository(postgres_url, clock=clock) for _ in range(3)]
    inside, most, runs = 0, 0, 0

    async def sync() -> None:
        nonlocal inside, most, runs
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.2)
        runs += 1
        inside -= 1

    try:
        done = await asyncio.gather(*(r.sync_commands_once("global", "d1", sync, now=T0) for r in repositories))
    finally:
        for repository in repositories:
            await repository.close()
    assert sorted(done) == [False, False, True]
    assert (runs, most) == (1, 1)


async def test_day_tallies_count_per_utc_day_and_model(repository: Repository) -> None:
    late = T0.replace(hour=23, minute=59)
    jobs = [
        make_job("a", guild_id=GUILD, requester_id=MEMBER, images_delivered=2, created=late),
        make_job("b", guild_id=GUILD, requester_id=MEMBER, images_delivered=1, created=late - timedelta(hours=1)),
        replace(make_job("c", guild_id=GUILD, requester_id=MEMBER, created=late), model="other/model"),
        make_job("d", guild_id=GUILD, requester_id=MEMBER, images_delivered=4, created=late + timedelta(minutes=2)),
        make_job("old", guild_id=GUILD, requester_id=MEMBER, images_delivered=4, created=T0 - timedelta(days=40)),
        make_job("elsewhere", guild_id=GUILD + 1, requester_id=MEMBER, images_delivered=4, created=late),
    ]
    for job in jobs:
        await repository.add_job(job)
    await repository.settle_cost("a", GUILD, MEMBER, reserved=0, actual=6_000, day=T0.date())
    tallies = await repository.job_day_tallies(GUILD, since=T0 - timedelta(days=30))
    day, next_day = T0.date(), T0.date() + timedelta(days=1)
    assert sorted(tallies, key=lambda t: (t.day, t.model)) == [
        DayTally(day, "black-forest-labs/flux-schnell", 2, 3, 6_000),
        DayTally(day, "other/model", 1, 0, 0),
        DayTally(next_day, "black-forest-labs/flux-schnell", 1, 4, 0),
    ]
