"""The fair queue and the request budget, through the real engine and the fake API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from bot.api.client import ReplicateClient
from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.api.ratelimit import RequestBudget
from bot.jobs.engine import Backoff, JobEngine, JobState, PollPolicy
from bot.media.delivery import Downloader
from bot.media.fetch_guard import FetchGuard
from tests.conftest import Pipeline, RecordingPresenter
from tests.fakes.replicate import FLUX_SCHNELL, FakeReplicate, RateLimits, Scenario

FLUX = ModelRef.parse(FLUX_SCHNELL)


async def test_one_members_batch_does_not_starve_another(
    fake_api: FakeReplicate, make_pipeline: Callable[..., Pipeline]
) -> None:
    fake_api.set_default_scenario(Scenario.manual())
    pipeline = make_pipeline(max_running=2, max_running_per_server=2)
    engine = pipeline.engine

    async def submit(member: int) -> None:
        request = await engine.prepare(FLUX, ImagineOptions(prompt=f"by {member}"), requester_id=member, guild_id=1)
        await engine.submit(request, RecordingPresenter())

    for _ in range(8):
        await submit(member=1)
    await submit(member=2)
    started: list[str] = []
    for _ in range(9):
        prediction = await fake_api.wait_for_prediction(len(started) + 1)
        started.append(prediction.input["prompt"])
        fake_api.finish(prediction.id)
    assert started.index("by 2") < [i for i, p in enumerate(started) if p == "by 1"][2]
    assert started[:3] == ["by 1", "by 1", "by 2"]


async def test_queue_positions_are_shown_and_move(
    fake_api: FakeReplicate, make_pipeline: Callable[..., Pipeline]
) -> None:
    fake_api.set_default_scenario(Scenario.manual())
    engine = make_pipeline(max_running=1).engine
    presenters = [RecordingPresenter() for _ in range(3)]
    for member, presenter in enumerate(presenters):
        request = await engine.prepare(FLUX, ImagineOptions(prompt="x"), requester_id=member, guild_id=1)
        await engine.submit(request, presenter)
    await presenters[2].wait_for(lambda v: v.queue_position == 2)
    first = await fake_api.wait_for_prediction(1)
    fake_api.finish(first.id)
    await presenters[2].wait_for(lambda v: v.queue_position == 1)
    await presenters[1].wait_for(lambda v: v.state is JobState.STARTING)


async def test_300_jobs_at_once_stay_inside_the_rate_limits() -> None:
    """Replicate's published rates (600 creates and 3000 other requests a minute), with time compressed ten times."""
    window = 6.0
    limits = RateLimits(creates_per_window=600, others_per_window=3000, window=window)
    async with FakeReplicate(rate_limits=limits, scenario=Scenario(start_delay=0.1, duration=0.6)) as fake:
        async with aiohttp.ClientSession() as session:
            client = ReplicateClient(session, fake.base_url, fake.token, budget=RequestBudget(600, 3000, window=window))
            engine = JobEngine(
                client,
                Downloader(session, FetchGuard.of(fake.base_url)),
                max_running=100,
                max_running_per_server=100,
                prefer_wait=0,
                poll=PollPolicy(blind=Backoff(first=0.1, growth=1.5, ceiling=0.3)),
            )
            presenters = [RecordingPresenter() for _ in range(300)]
            started = time.monotonic()
            submitted_at = []
            jobs = []
            for member, presenter in enumerate(presenters):
                request = await engine.prepare(FLUX, ImagineOptions(prompt="fox"), requester_id=member, guild_id=1)
                submitted_at.append(time.monotonic())
                jobs.append(await engine.submit(request, presenter))
            finals = await asyncio.wait_for(asyncio.gather(*(job.wait() for job in jobs)), 120)
            elapsed = time.monotonic() - started
            await engine.close()
        assert all(view.state is JobState.SUCCEEDED for view in finals), {v.error for v in finals}
        assert fake.throttled_count == 0
        assert fake.count("POST", "create") == 300
        per_job = len(fake.api_requests) / 300
        waits = [
            (p.first_time(lambda v: v.state is not JobState.QUEUED) or 0.0) - at
            for p, at in zip(presenters, submitted_at, strict=True)
        ]
        print(
            f"\n300 jobs: {elapsed:.1f}s, {per_job:.2f} API requests per job, 0 throttled, "
            f"longest queue wait {max(waits):.2f}s"
        )
