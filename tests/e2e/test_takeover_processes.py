"""Takeover between real processes: two ``python -m bot`` on one PostgreSQL, one shard each; one is SIGKILLed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.bot_process import BotProcess, one_process_per_shard, stop_all
from tests.e2e.conftest import DISCORD_TOKEN, imagine_in, is_terminal, status_of
from tests.fakes.discord import FakeDiscord, FakeGuild, InteractionHandle
from tests.fakes.replicate import FakeReplicate, Scenario

TAKEOVER_AFTER = "2"


@dataclass
class Deployment:
    api: FakeReplicate
    discord: FakeDiscord
    guilds: list[FakeGuild]
    processes: list[BotProcess]

    async def imagine(self, shard: int, prompt: str) -> InteractionHandle:
        return await imagine_in(self.discord, self.guilds[shard], {"prompt": prompt})


@pytest.fixture
async def deployment(postgres_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with (
        FakeReplicate(seed=17, scenario=Scenario.manual()) as api,
        FakeDiscord(token=DISCORD_TOKEN, shard_count=2) as fake,
    ):
        guilds = [fake.add_guild("Zero", shard=0), fake.add_guild("One", shard=1)]
        processes = one_process_per_shard(
            api, fake, guilds, postgres_url, tmp_path, IMAGINE_TAKEOVER_AFTER=TAKEOVER_AFTER
        )
        await asyncio.gather(*(process.start() for process in processes))
        try:
            yield Deployment(api, fake, guilds, processes)
        finally:
            await stop_all(processes)


async def test_a_killed_process_s_job_is_finished_by_the_other_and_never_twice(deployment: Deployment) -> None:
    api, (first, second) = deployment.api, deployment.processes
    handle = await deployment.imagine(0, "a lighthouse in a storm")
    prediction = await api.wait_for_prediction()
    api.set_progress(prediction.id, 1)
    await api.wait_for_requests("get", 1, timeout=15)  # the first process has journaled the id
    await first.kill()

    # Within the takeover time (plus a heartbeat) the second process polls the prediction.
    gets = api.count("GET", "get")
    await api.wait_for_requests("get", gets + 1, timeout=15)
    assert "took over 1 unfinished job" in second.output()
    api.finish(prediction.id)
    final = await handle.wait_message(is_terminal, timeout=20)
    assert "Done" in status_of(final), final.embeds
    assert [a.data for a in final.attachments] == [f.data for f in prediction.files]
    assert api.count("POST", "create") == 1

    # The first process comes back: the job is no longer its own, so it touches nothing.
    versions = len(final.history)
    messages = len(deployment.discord.messages)
    await first.start()
    await asyncio.sleep(1.5)  # a few of its heartbeats
    assert len(final.history) == versions
    assert len(deployment.discord.messages) == messages
    assert api.count("POST", "create") == 1
    assert "resumed job" not in first.last_output()


async def test_a_process_restarted_in_time_takes_its_own_jobs_back(deployment: Deployment) -> None:
    api, (first, second) = deployment.api, deployment.processes
    await second.stop()  # judges the first dead only after a minute, so the restart is surely in time
    second.env["IMAGINE_TAKEOVER_AFTER"] = "60"
    await second.start()
    handle = await deployment.imagine(0, "a fox in the snow")
    prediction = await api.wait_for_prediction()
    await api.wait_for_requests("get", 1, timeout=15)
    await first.kill()
    await first.start()  # back before the takeover time: its jobs are still its own
    api.finish(prediction.id)
    final = await handle.wait_message(is_terminal, timeout=20)
    assert "Done" in status_of(final), final.embeds
    assert "took over" not in second.output()
    assert api.count("POST", "create") == 1
