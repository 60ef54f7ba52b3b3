"""Takeover in process: two cores on one database, one goes silent, the other finishes its job.

The Discord side is left out (jobs are shown by recording presenters): what is
tested is the claim, the resume and the guarantee that a job is finished by one
process only, on both storage backends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.core import Core, Tuning
from bot.jobs.engine import JobState, ResumedJob
from bot.jobs.journal import Unfinished
from bot.jobs.webhooks import MAX_WEBHOOK_BYTES, PredictionEvents, WebhookReceiver
from bot.ops.http_server import HttpServer
from bot.settings import HttpListen, Secret, Settings
from tests.conftest import FAST_LOOKUP, FAST_POLL, RecordingPresenter
from tests.fakes.replicate import FLUX_SCHNELL, FakeReplicate, Scenario

FLUX = ModelRef.parse(FLUX_SCHNELL)
TAKEOVER_AFTER = 1.0


class Member:
    """One process of the deployment: a core, its presenters, and what it resumed."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.presenters: dict[str, RecordingPresenter] = {}
        self.resumed = asyncio.Event()

    async def resume(self, jobs: list[Unfinished]) -> None:
        resumed = []
        for job in jobs:
            presenter = self.presenters.setdefault(job.job_id, RecordingPresenter())
            resumed.append(ResumedJob.of(job, presenter))
        self.core.engine.resume(resumed)
        if resumed:
            self.resumed.set()

    async def join(self) -> None:
        await self.resume(await self.core.cluster.join())
        self.core.cluster.start(resume=self.resume, live_jobs=self.core.engine.live_job_ids, drop=self.core.engine.drop)


@pytest.fixture
async def members(database_url: str) -> AsyncIterator[Callable[[str], AsyncIterator[Member]]]:
    """Processes on one database of each backend in turn (``database_url``), and one fake API."""
    url = database_url
    api = FakeReplicate(seed=3, scenario=Scenario.manual())
    await api.start()
    cores: list[Core] = []

    async def member(name: str) -> Member:
        settings = Settings(
            replicate_api_token=Secret(api.token),
            replicate_base_url=api.base_url,
            database_url=url,
            takeover_after=TAKEOVER_AFTER,
        )
        core = await Core.open(settings, tuning=Tuning(poll=FAST_POLL, prefer_wait=0, lookup_delays=FAST_LOOKUP))
        core.cluster.name = name  # two processes on one machine: two names
        cores.append(core)
        return Member(core)

    member.api = api  # type: ignore[attr-defined]
    yield member  # type: ignore[misc]
    for core in cores:
        await core.close()
    await api.close()


async def test_a_silent_process_s_job_is_finished_by_another_once(members) -> None:  # type: ignore[no-untyped-def]
    api: FakeReplicate = members.api
    first, second = await members("process-a"), await members("process-b")
    await first.join()
    await second.join()
    request = await first.core.engine.prepare(FLUX, ImagineOptions(prompt="a lighthouse"))
    presenter = RecordingPresenter()
    first.presenters["job-a"] = presenter
    await first.core.engine.submit(request, presenter, job_id="job-a", target={"kind": "test"})
    prediction = await api.wait_for_prediction()
    await api.wait_for_requests("get", 1)

    # The first process stops answering (its heartbeat stops) but its job keeps running there.
    await first.core.cluster.stop()
    await asyncio.wait_for(second.resumed.wait(), 10)
    api.finish(prediction.id)
    await second.presenters["job-a"].wait_for(lambda view: view.terminal, timeout=10)
    # The first process polls the end too, but finds the job no longer its own: it shows nothing.
    await asyncio.wait_for(presenter.closed.wait(), 10)
    assert second.presenters["job-a"].views[-1].state is JobState.SUCCEEDED
    assert not presenter.views or not presenter.views[-1].terminal, "two final messages"
    assert api.count("POST", "create") == 1
    handle = second.core.engine.job("job-a")
    assert handle is not None
    await asyncio.wait_for(handle.wait(), 10)  # journaled as ended once its final view was shown
    record = await second.core.repository.get_job("job-a")
    assert record is not None and record.state == "succeeded" and record.owner == second.core.journal.owner

    # The first process comes back: it finds the job gone and leaves it alone.
    await first.core.cluster.beat(
        resume=first.resume, live_jobs=first.core.engine.live_job_ids, drop=first.core.engine.drop
    )
    assert first.core.engine.live_job_ids() == []
    assert api.count("POST", "create") == 1


async def test_a_restarted_process_takes_back_its_jobs_at_once(members) -> None:  # type: ignore[no-untyped-def]
    api: FakeReplicate = members.api
    first = await members("process-a")
    await first.join()
    request = await first.core.engine.prepare(FLUX, ImagineOptions(prompt="a fox"))
    await first.core.engine.submit(request, RecordingPresenter(), job_id="job-r", target={"kind": "test"})
    prediction = await api.wait_for_prediction()
    await api.wait_for_requests("get", 1)
    await first.core.cluster.stop()
    await first.core.engine.close()  # the process is gone; its journal says the job runs
    again = await members("process-a")  # same name: the same member of the deployment, restarted
    await again.join()
    assert "job-r" in again.presenters  # at once, not after the takeover time
    api.finish(prediction.id)
    await again.presenters["job-r"].wait_for(lambda view: view.terminal, timeout=10)
    assert again.presenters["job-r"].views[-1].state is JobState.SUCCEEDED
    assert again.core.cluster.live_processes == 1
    assert api.count("POST", "create") == 1


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # one process on SQLite: always the owner
async def test_a_webhook_landing_on_another_process_reaches_the_jobs_owner(members, database_url: str) -> None:  # type: ignore[no-untyped-def]
    """Behind a load balancer a webhook may reach any process: the owner hears of it through the database."""
    api: FakeReplicate = members.api
    api.set_default_scenario(Scenario(start_delay=0.05, duration=0.4))
    owner, other = await members("process-a"), await members("process-b")
    await owner.join()
    await other.join()
    # Only the other process has the HTTP route; the owner hears of webhooks through the database.
    landing = WebhookReceiver(api.webhook_secret, PredictionEvents(), other.core.repository)
    events = PredictionEvents()
    owners_receiver = WebhookReceiver(api.webhook_secret, events, owner.core.repository)
    server = HttpServer(HttpListen("127.0.0.1", 0), checks={}, metrics=lambda: b"")
    server.add_routes(landing.routes(), max_body_bytes=MAX_WEBHOOK_BYTES)
    await server.start()
    try:
        owner.core.engine.use_webhooks(f"http://127.0.0.1:{server.port}/webhooks/replicate", events)
        request = await owner.core.engine.prepare(FLUX, ImagineOptions(prompt="a heron"))
        presenter = RecordingPresenter()
        await owner.core.engine.submit(request, presenter, job_id="job-w", target={"kind": "test"})
        final = await presenter.wait_for(lambda view: view.terminal, timeout=10)
        assert final.state is JobState.SUCCEEDED, final.error
        assert api.count("GET", "get") == 0  # learned from the webhook the other process received
    finally:
        await server.stop()
        await landing.close()
        await owners_receiver.close()
