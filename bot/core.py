"""The core services, wired once from settings: one HTTP session, the API client, the engine, storage, policy.

Both front ends (the Discord bot and the ``imagine`` command) build one
:class:`Core` and hand it around; nothing here is global.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import aiohttp

from bot import __version__
from bot.api.accounts import Accounts
from bot.api.client import ReplicateClient, RetryPolicy
from bot.api.errors import ApiError, NotFound
from bot.api.ratelimit import RequestBudget
from bot.base.clock import Clock, SystemClock
from bot.i18n import Text
from bot.jobs.engine import JobEngine
from bot.jobs.journal import Journal
from bot.jobs.model import JobRequest, JobView
from bot.jobs.poll_planner import PollPolicy
from bot.jobs.recovery import LOOKUP_DELAYS, PredictionFinder
from bot.jobs.webhooks import PredictionEvents, WebhookReceiver
from bot.media.delivery import Downloader
from bot.media.fetch_guard import FetchGuard
from bot.moderation.api_keys import ServerKeys
from bot.moderation.costs import Pricing
from bot.moderation.modlog import ModLog
from bot.moderation.policy import Policy
from bot.moderation.queue_caps import QueueGate
from bot.ops.cluster import Cluster, new_incarnation, process_name, shards_text
from bot.ops.metrics import Metrics
from bot.settings import Settings
from bot.storage import QueuedJobs, Repository, open_repository

log = logging.getLogger(__name__)

USER_AGENT = f"imagine-bot/{__version__}"


@dataclass(frozen=True)
class Tuning:
    """Timings that are not user settings: production values by default, shorter in tests."""

    poll: PollPolicy = field(default_factory=PollPolicy)
    prefer_wait: int = 1
    """Seconds the create call may wait for the prediction (``Prefer: wait``) when polling; 0 to not ask.

    One second: a fast model's image comes in the create's answer, and a slower one's progress is shown
    from the first second (with webhooks the create is never held)."""
    estimate_tick: float = 0.25
    """How often the progress bar's estimate is looked at between polls (shown when its percentage changes)."""
    edit_window: float = 5.0
    """Seconds of Discord's sliding window of edits per message (see :mod:`bot.discord_app.pacing`)."""
    edit_limit: int = 5
    """Edits Discord allows one message per :attr:`edit_window`."""
    lookup_delays: tuple[float, ...] = LOOKUP_DELAYS
    """Seconds before each reading of the list of predictions when a create's answer was lost."""


class StartupError(Exception):
    """The bot cannot start as configured; the message names the setting (exit 2)."""


class Core:
    """Everything that runs jobs, owned together and closed together.

    ``guard`` is the fetch guard whose resolver ``session`` connects through (:meth:`open` builds both
    from one guard); without one, the downloader's guard is built from ``settings``.
    """

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession,
        repository: Repository,
        *,
        clock: Clock | None = None,
        tuning: Tuning | None = None,
        guard: FetchGuard | None = None,
    ) -> None:
        self.settings = settings
        self.session = session
        self.repository = repository
        self.tuning = tuning or Tuning()
        self.clock = clock or SystemClock()
        self.metrics = Metrics()
        self.client = ReplicateClient(
            session,
            settings.replicate_base_url,
            settings.replicate_api_token.reveal(),
            budget=RequestBudget(settings.api_creates_per_minute, settings.api_requests_per_minute, clock=self.clock),
            clock=self.clock,
            on_response=self.metrics.api_response,
        )
        self.accounts = Accounts(self.client, self._account_client)
        """The client of each API account: the deployment's (:attr:`client`) and the servers' own keys."""
        self.downloader = Downloader(session, guard or FetchGuard.from_settings(settings), clock=self.clock)
        self.journal = Journal(repository, self.clock, owner=new_incarnation())
        self.cluster = Cluster(
            repository,
            self.journal,
            self.clock,
            self.accounts,
            name=process_name(settings.shard_ids),
            shards=shards_text(settings.shard_ids),
            takeover_after=settings.takeover_after,
        )
        self.engine = JobEngine(
            self.client,
            self.downloader,
            max_running=settings.max_running,
            max_running_per_server=settings.max_running_per_server,
            job_timeout=settings.job_timeout,
            prefer_wait=self.tuning.prefer_wait,
            poll=self.tuning.poll,
            clock=self.clock,
            on_end=self._settle,
            on_shown=self._measure,
            journal=self.journal,
            finder=PredictionFinder(self.client, clock=self.clock, delays=self.tuning.lookup_delays),
            progress_tick=self.tuning.estimate_tick,
            accounts=self.accounts,
        )
        # Front ends that queue members' jobs pass them through the gate; resumed jobs never do.
        self.queue_gate = QueueGate(
            total=settings.max_queued,
            per_member=settings.max_queued_per_member,
            elsewhere=lambda guild, member: repository.queued_jobs(guild, member, besides=self.journal.owner),
            here=lambda guild, member: QueuedJobs(self.engine.queued, self.engine.queued_by(guild, member)),
            free_slots=self.engine.free_slots,
        )
        self.webhooks: WebhookReceiver | None = None
        self.metrics.watch_jobs(running=lambda: self.engine.running, queued=lambda: self.engine.queued)
        # Posts nothing until a front end that can post starts it (the Discord bot does; the CLI does not).
        self.modlog = ModLog(repository)
        repository.on_settings_change(self.modlog.submit)
        self.server_keys = ServerKeys(
            repository,
            self.accounts,
            settings.secret_key.reveal() if settings.secret_key else None,
            clock=self.clock,
            on_event=self.modlog.submit,
            end_jobs=self._end_account,
        )
        self.pricing = Pricing(settings.prices, self.journal.usual_run_time)
        self.policy = Policy(
            repository,
            bot_models=settings.offered_models,
            clock=self.clock,
            active_jobs=repository.active_jobs,
            on_blocked_word=self.modlog.submit,
        )

    async def _end_account(self, guild_id: int, account: str, error: Text | str) -> int:
        """A server's key was refused: its jobs of that account end with ``error`` (never run on another key)."""
        ended = 0
        for job_id in self.engine.live_job_ids():
            job = self.engine.job(job_id)
            request = job.view.request if job is not None else None
            if request is not None and (request.guild_id, request.account) == (guild_id, account):
                ended += await self.engine.cancel(job_id, error=error)
        return ended

    def _account_client(self, key: str, retry: RetryPolicy | None) -> ReplicateClient:
        """A client for a server's own key, with a request budget of its own (the API's limits are per account)."""
        settings = self.settings
        return ReplicateClient(
            self.session,
            settings.replicate_base_url,
            key,
            budget=RequestBudget(settings.api_creates_per_minute, settings.api_requests_per_minute, clock=self.clock),
            retry=retry,
            clock=self.clock,
            on_response=self.metrics.api_response,
        )

    @classmethod
    async def open(cls, settings: Settings, *, clock: Clock | None = None, tuning: Tuning | None = None) -> Core:
        """A core with its own HTTP session and database (call inside a running event loop).

        Raises :class:`bot.storage.StorageError` if the database cannot be opened.
        """
        repository = await open_repository(settings.database_url, clock=clock)
        # One session for the API and for files; its resolver is the fetch guard's, so every file (and every
        # redirect hop) connects only to an address the guard permits. The API's own host is one of them.
        guard = FetchGuard.from_settings(settings)
        session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}, connector=guard.connector(limit=100))
        return cls(settings, session, repository, clock=clock, tuning=tuning, guard=guard)

    async def enable_webhooks(self) -> WebhookReceiver:
        """Create predictions with ``IMAGINE_WEBHOOK_URL`` from now on; the receiver for the HTTP server.

        The signing secret comes from ``REPLICATE_WEBHOOK_SECRET`` or, once, from the API. Raises
        :class:`StartupError` where neither can give it: never unsigned webhooks.
        """
        url = self.settings.webhook_url
        assert url is not None, "enable_webhooks needs IMAGINE_WEBHOOK_URL"
        secret = self.settings.webhook_secret.reveal() if self.settings.webhook_secret else await self._read_secret()
        events = PredictionEvents()
        self.webhooks = WebhookReceiver(secret, events, self.repository)
        self.engine.use_webhooks(url, events)
        log.info("predictions are created with webhooks to %s", url)
        return self.webhooks

    async def _read_secret(self) -> str:
        try:
            return await self.client.webhook_secret()
        except ApiError as exc:
            if isinstance(exc, NotFound) or exc.status in (405, 501):
                raise StartupError(
                    "REPLICATE_WEBHOOK_SECRET: IMAGINE_WEBHOOK_URL is set but the API serves no webhook secret "
                    "(GET /v1/webhooks/default/secret); set REPLICATE_WEBHOOK_SECRET to the account's whsec_ key"
                ) from None
            raise StartupError(
                f"REPLICATE_WEBHOOK_SECRET: could not read the webhook secret from the API ({exc.message}); "
                "set REPLICATE_WEBHOOK_SECRET or try again"
            ) from None

    async def _settle(self, view: JobView) -> None:
        await self._book(view.job_id, view.request, delivered=len(view.images), predict_time=view.predict_time)

    async def _book(self, job_id: str, request: JobRequest, *, delivered: int, predict_time: float | None) -> None:
        """Give back the daily images a job was charged for and did not deliver; book what it really cost.

        Each at most once per job (the repository marks the job), so a job that ends twice is booked once.
        """
        if not (request.guild_id and request.requester_id and request.charged_day):
            return
        undelivered = request.charged_images - delivered
        if undelivered > 0:
            await self.repository.refund_job(
                job_id, request.guild_id, request.requester_id, undelivered, day=request.charged_day
            )
        cost = self.pricing.actual(request.model, images=delivered, predict_time=predict_time)
        if cost or request.reserved_cost:
            await self.repository.settle_cost(
                job_id,
                request.guild_id,
                request.requester_id,
                reserved=request.reserved_cost,
                actual=cost,
                day=request.charged_day,
            )

    def _measure(self, view: JobView) -> None:
        """Count a job whose final message was just shown, with how long it took."""
        now = self.clock.monotonic()
        duration = now - view.accepted_at if view.accepted_at is not None else view.elapsed or 0.0
        delivery = now - view.prediction_ended_at if view.prediction_ended_at is not None else None
        self.metrics.job_shown(view.state.value, duration, delivery)

    async def close(self) -> None:
        """Stop the heartbeat, the engine and the mod-log, then close the HTTP session and the database."""
        await self.cluster.stop()
        if self.webhooks is not None:
            await self.webhooks.close()
        await self.engine.close()
        await self.server_keys.close()
        await self.journal.close()
        await self.modlog.close()
        await self.session.close()
        await self.repository.close()
