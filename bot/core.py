"""The core services, wired once from settings: one HTTP session, the API client, the engine.

Both front ends (the Discord bot and the ``imagine`` command) build one
:class:`Core` and hand it around; nothing here is global.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp

from bot import __version__
from bot.clock import Clock, SystemClock
from bot.delivery import Downloader, GuardedResolver
from bot.jobs import JobEngine, PollPolicy
from bot.ratelimit import RequestBudget
from bot.replicate import ReplicateClient
from bot.settings import Settings

USER_AGENT = f"imagine-bot/{__version__}"


@dataclass(frozen=True)
class Tuning:
    """Timings that are not user settings: production values by default, shorter in tests."""

    poll: PollPolicy = field(default_factory=PollPolicy)
    prefer_wait: int = 3
    """Seconds the create call may wait for the prediction (``Prefer: wait``); 0 to not ask."""
    edit_interval: float = 1.5
    """Least time between two edits of one Discord message."""


class Core:
    """Everything that runs jobs, owned together and closed together."""

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession,
        *,
        clock: Clock | None = None,
        tuning: Tuning | None = None,
    ) -> None:
        self.settings = settings
        self.tuning = tuning or Tuning()
        self.session = session
        self.clock = clock or SystemClock()
        self.client = ReplicateClient(
            session,
            settings.replicate_base_url,
            settings.replicate_api_token.reveal(),
            budget=RequestBudget(clock=self.clock),
            clock=self.clock,
        )
        self.downloader = Downloader(session, clock=self.clock)
        self.engine = JobEngine(
            self.client,
            self.downloader,
            max_running=settings.max_running,
            max_running_per_server=settings.max_running_per_server,
            job_timeout=settings.job_timeout,
            prefer_wait=self.tuning.prefer_wait,
            poll=self.tuning.poll,
            clock=self.clock,
        )

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock | None = None, tuning: Tuning | None = None) -> Core:
        """A core with its own HTTP session (call inside a running event loop)."""
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(), limit=100)
        session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}, connector=connector)
        return cls(settings, session, clock=clock, tuning=tuning)

    async def close(self) -> None:
        """Stop the engine and close the HTTP session."""
        await self.engine.close()
        await self.session.close()
