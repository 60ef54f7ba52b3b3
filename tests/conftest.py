"""Shared fixtures: the fake prediction API and the real core services pointed at it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from bot.api.client import ReplicateClient, RetryPolicy
from bot.api.ratelimit import RequestBudget
from bot.jobs.engine import Backoff, JobEngine, JobView, PollPolicy
from bot.jobs.recovery import PredictionFinder
from bot.media.delivery import Downloader
from bot.media.fetch_guard import FetchGuard
from bot.storage import Repository, open_repository
from tests.fakes.replicate import FakeReplicate
from tests.storage import FakeClock, disposable_database, fresh_schema

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FAST_POLL = PollPolicy(blind=Backoff(first=0.02, growth=1.5, ceiling=0.1))
FAST_RETRY = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05)
FAST_LOOKUP = (0.02, 0.1, 0.2)
"""Delays between readings of the list of predictions after a lost create (production: seconds)."""


def shared_file(relative: str) -> Path:
    """A file of the development workspace's ``../shared``; skips the test where it is absent."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is not present (it exists only in the development workspace, not in a user's clone)")
    return path


@dataclass
class RecordingPresenter:
    """Keeps every view it is shown; lets a test wait for a state without sleeping."""

    views: list[JobView] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the engine stops showing the job here (shutdown, or another process took it over)."""

    async def show(self, view: JobView) -> None:
        self.views.append(view)
        self.times.append(time.monotonic())
        self.changed.set()

    async def close(self) -> None:
        """Nothing to release."""
        self.closed.set()

    def first_time(self, predicate: Callable[[JobView], bool]) -> float | None:
        """When the first view matching ``predicate`` was shown."""
        return next((at for at, view in zip(self.times, self.views, strict=True) if predicate(view)), None)

    @property
    def states(self) -> list[str]:
        """Distinct successive states shown."""
        states: list[str] = []
        for view in self.views:
            if not states or states[-1] != view.state:
                states.append(view.state)
        return states

    async def wait_for(self, predicate: Callable[[JobView], bool], timeout: float = 5.0) -> JobView:
        """The first view (past or future) that matches ``predicate``."""
        async with asyncio.timeout(timeout):
            while True:
                for view in self.views:
                    if predicate(view):
                        return view
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeReplicate]:
    """A fake prediction API on 127.0.0.1 with its default models (flux-schnell, a versioned LoRA model, a captioner
    and a vision-language model)."""
    async with FakeReplicate(seed=1) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One HTTP session, as the bot has."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session for a test that speaks to a fake itself; its 10 s limit turns a hang into a failure."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client_session:
        yield client_session


@dataclass
class Pipeline:
    """The real client, downloader and engine, configured for fast tests."""

    client: ReplicateClient
    downloader: Downloader
    engine: JobEngine


@pytest.fixture
async def make_pipeline(
    fake_api: FakeReplicate, session: aiohttp.ClientSession
) -> AsyncIterator[Callable[..., Pipeline]]:
    """Build a pipeline against ``fake_api``; keyword arguments go to the engine."""
    engines: list[JobEngine] = []

    def build(*, base_url: str | None = None, token: str | None = None, **engine_args: object) -> Pipeline:
        base_url = base_url or fake_api.base_url
        client = ReplicateClient(
            session,
            base_url,
            token or fake_api.token,
            budget=RequestBudget(),
            retry=FAST_RETRY,
        )
        # Outputs come from the fake API's own host and port, as from a gateway serving its own files.
        downloader = Downloader(session, FetchGuard.of(base_url), timeout=0.5, attempts=2)
        engine_args.setdefault("poll", FAST_POLL)
        engine_args.setdefault("prefer_wait", 0)
        engine_args.setdefault("finder", PredictionFinder(client, delays=FAST_LOOKUP))
        engine = JobEngine(client, downloader, **engine_args)  # type: ignore[arg-type]
        engines.append(engine)
        return Pipeline(client, downloader, engine)

    yield build
    for engine in engines:
        await engine.close()


# ---------------------------------------------------------------------------- storage


@pytest.fixture
def clock() -> FakeClock:
    """A wall clock that moves only when the test says so."""
    return FakeClock()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of this session's own on the test server, dropped at the end (skips without a server)."""
    with disposable_database() as url:
        yield url


@pytest.fixture
async def postgres_url(postgres_database: str) -> str:
    """A fresh, empty schema in the session's database: the URL of a PostgreSQL store for one test."""
    return await fresh_schema(postgres_database)


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each backend in turn: a file under ``tmp_path``, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'imagine.db'}"
    return await fresh_schema(request.getfixturevalue("postgres_database"))


@pytest.fixture
async def repository(database_url: str, clock: FakeClock) -> AsyncIterator[Repository]:
    """A repository of each backend in turn, on an empty database, stamping audit entries with ``clock``."""
    repo = await open_repository(database_url, clock=clock)
    yield repo
    await repo.close()
