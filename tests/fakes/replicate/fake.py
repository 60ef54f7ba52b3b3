"""The fake itself: :class:`FakeReplicate` (its switches and state, serving, models, scenarios and waits)
put together from the parts of the other modules.
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from tests.fakes.replicate.accounts import AccountsMixin
from tests.fakes.replicate.faults import FaultsMixin
from tests.fakes.replicate.http import HttpMixin
from tests.fakes.replicate.models import ModelsMixin
from tests.fakes.replicate.outputs import OutputsMixin
from tests.fakes.replicate.predictions import PredictionsMixin, Scenario
from tests.fakes.replicate.ratelimits import RateLimits, RateLimitsMixin
from tests.fakes.replicate.routes import RoutesMixin
from tests.fakes.replicate.timeline import TimelineMixin
from tests.fakes.replicate.vocabulary import FAST_WEBHOOK_RETRY_DELAYS, TERMINAL_STATUSES
from tests.fakes.replicate.webhooks import WebhooksMixin
from tests.fakes.server import LoopbackServer

if TYPE_CHECKING:
    from tests.fakes.replicate.faults import Chaos, Fault
    from tests.fakes.replicate.http import RecordedRequest
    from tests.fakes.replicate.models import FakeModel
    from tests.fakes.replicate.predictions import FakePrediction
    from tests.fakes.replicate.vocabulary import JsonDict, Status
    from tests.fakes.replicate.webhooks import WebhookDelivery, _WebhookSwitch


class FakeReplicate(
    AccountsMixin,
    RoutesMixin,
    HttpMixin,
    WebhooksMixin,
    RateLimitsMixin,
    FaultsMixin,
    OutputsMixin,
    TimelineMixin,
    PredictionsMixin,
    ModelsMixin,
    LoopbackServer,
):
    """An aiohttp server on 127.0.0.1 that behaves like Replicate's predictions API.

    Args:
        token: the API token every API route requires (``Bearer`` or ``Token`` scheme).
        prefix: path prefix of the API routes, e.g. ``"/replicate"`` to mimic a gateway (``""`` = none).
        port: TCP port; ``0`` picks a free ephemeral port.
        scenario: the default :class:`Scenario` (also settable later as :attr:`default_scenario`).
        rate_limits: ``True`` enforces Replicate's documented limits, a :class:`RateLimits` custom ones.
        urls_base: origin used in ``urls.get``/``urls.cancel`` (default ``https://api.replicate.com``).
        stream_base: origin of ``urls.stream``; web_base: origin of ``urls.web``.
        min_cancel_after: lower clamp for ``Cancel-After`` (Replicate's minimum is 5 s).
        default_models: register the default models (flux-schnell, flux-dev, flux-schnell-lora, a captioner and a
            vision-language model).
        seed: seed for ids, log seeds and tqdm rates (deterministic runs); also for :attr:`webhook_secret` and
            webhook ids (from a generator of their own, so prediction ids do not depend on webhooks).
        webhook_secret: the ``whsec_…`` signing secret (default: ``whsec_`` + base64 of 32 seeded random bytes).
        webhook_retry_delays: pauses before each retry of a ``completed`` webhook
            (default :data:`FAST_WEBHOOK_RETRY_DELAYS`; :data:`REPLICATE_WEBHOOK_RETRY_DELAYS` is production-like).
    """

    def __init__(
        self,
        *,
        token: str = "r8_test_token",
        prefix: str = "",
        port: int = 0,
        scenario: Scenario | None = None,
        rate_limits: bool | RateLimits = False,
        urls_base: str = "https://api.replicate.com",
        stream_base: str = "https://stream.replicate.com",
        web_base: str = "https://replicate.com",
        min_cancel_after: float = 5.0,
        default_models: bool = True,
        seed: int | None = None,
        webhook_secret: str | None = None,
        webhook_retry_delays: Sequence[float] = FAST_WEBHOOK_RETRY_DELAYS,
    ) -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"prefix must be '' or start with '/' and not end with '/': {prefix!r}")
        self.token = token
        self.prefix = prefix
        self.default_scenario: Scenario = scenario or Scenario()
        """Scenario for predictions when no queued one is pending."""
        self.rate_limits: RateLimits | None = (
            RateLimits() if rate_limits is True else rate_limits if isinstance(rate_limits, RateLimits) else None
        )
        self.urls_base = urls_base.rstrip("/")
        self.stream_base = stream_base.rstrip("/")
        self.web_base = web_base.rstrip("/")
        self.min_cancel_after = min_cancel_after

        self.requests: list[RecordedRequest] = []
        """Every request received, in arrival order."""
        self.predictions: dict[str, FakePrediction] = {}
        """Every prediction created, by id (insertion order = creation order)."""
        self.models: dict[str, FakeModel] = {}
        """Registered models by ``owner/name``."""
        self.faults: list[Fault] = []
        """Pending faults (consumed in order of registration)."""
        self.throttled_count = 0
        """Number of 429 responses sent (injected or enforced)."""
        self.active_chaos: Chaos | None = None
        """The running :meth:`chaos` mode, if any."""
        self.max_sync_wait: float | None = None
        """Longest a ``Prefer: wait`` create is held, in seconds (``None``: as asked, up to 60; ``0``: answer at
        once, as a gateway without sync mode does)."""
        self.serve_list = True
        """``False``: ``GET /v1/predictions`` answers 404, as on gateways that serve only the prediction routes."""
        self.list_page_size = 100
        """Predictions per page of ``GET /v1/predictions`` (Replicate's is 100)."""
        self.scenario_chooser: Callable[[JsonDict], Scenario | None] | None = None
        """Picks a prediction's scenario from its ``input`` (e.g. by a tag in the prompt); ``None`` from it
        falls back to the queued scenarios, then the default."""

        self._hook_rng = random.Random(None if seed is None else f"webhooks:{seed}")
        self.webhook_secret: str = webhook_secret or "whsec_" + base64.b64encode(self._hook_rng.randbytes(32)).decode()
        """The signing secret of the first account's webhooks, served by ``GET /v1/webhooks/default/secret``."""
        self._init_accounts()
        self.serve_webhook_secret = True
        """``False``: ``GET /v1/webhooks/default/secret`` answers 404, like a gateway without the route."""
        self.webhook_retry_delays: tuple[float, ...] = tuple(webhook_retry_delays)
        """Pauses before each retry of a ``completed`` webhook (its attempts: one more than this has entries)."""
        self.webhook_min_interval = 0.5
        """Throttle of ``logs`` and ``output`` webhooks: at most one of each per this many seconds per prediction."""
        self.webhook_timeout = 5.0
        """Seconds the fake waits for a receiver's answer before counting the attempt as failed."""
        self.webhook_delay = 0.0
        """Seconds every webhook attempt waits before it is sent (:meth:`delay_webhooks`)."""
        self.webhook_deliveries: list[WebhookDelivery] = []
        """Every webhook attempt (sent, failed or lost), in the order they were made."""
        self._webhook_switches: list[_WebhookSwitch] = []
        self._webhook_session: aiohttp.ClientSession | None = None

        super().__init__(port)
        self._rng = random.Random(seed)
        self._scenario_queue: deque[Scenario] = deque()
        self._windows: dict[str, deque[float]] = {"create": deque(), "other": deque()}
        self._changed = asyncio.Event()
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()

        if default_models:
            self._add_default_models()

    shutdown_timeout = 0.5

    async def start(self) -> None:
        """Bind 127.0.0.1 and start serving."""
        await self._serve()
        self._closing = False
        # Replicate does not follow redirects; no cookies, no proxies from the environment.
        self._webhook_session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)

    def _application(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=8 * 1024 * 1024)
        p = self.prefix
        app.router.add_post(p + "/v1/models/{owner}/{name}/predictions", self._handle_create_model, name="create_model")
        app.router.add_post(p + "/v1/predictions", self._handle_create_version, name="create_version")
        app.router.add_get(p + "/v1/predictions", self._handle_list, name="list")
        app.router.add_get(p + "/v1/predictions/{id}", self._handle_get, name="get")
        app.router.add_post(p + "/v1/predictions/{id}/cancel", self._handle_cancel, name="cancel")
        app.router.add_get(p + "/v1/models/{owner}/{name}", self._handle_model, name="model")
        app.router.add_get(p + "/v1/models/{owner}/{name}/versions", self._handle_versions, name="versions")
        app.router.add_get(p + "/v1/models/{owner}/{name}/versions/{version}", self._handle_version, name="version")
        app.router.add_get(p + "/v1/webhooks/default/secret", self._handle_webhook_secret, name="webhook_secret")
        app.router.add_get(p + "/v1/account", self._handle_account, name="account")
        app.router.add_get("/files/{id}/{filename}", self._handle_file, name="file")
        app.router.add_get("/evil/redirect", self._handle_evil_redirect, name="evil_redirect")
        app.router.add_get("/evil/endless", self._handle_evil_endless, name="evil_endless")
        app.router.add_get("/evil/not-image", self._handle_evil_not_image, name="evil_not_image")
        return app

    async def close(self) -> None:
        """Stop timelines, release held/stalled requests and shut the server down. Idempotent."""
        if self._runner is None:
            return
        self._closing = True
        self._notify()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._webhook_session is not None:
            session, self._webhook_session = self._webhook_session, None
            await session.close()
        await self._stop_serving()

    @property
    def base_url(self) -> str:
        """What a client uses as its API base: ``http://127.0.0.1:{port}{prefix}`` (append ``/v1/...``)."""
        return self.origin + self.prefix

    def set_default_scenario(self, scenario: Scenario | None = None, /, **changes: Any) -> Scenario:
        """Replace the default scenario: ``scenario`` (or the current default) with ``changes`` applied."""
        self.default_scenario = replace(scenario or self.default_scenario, **changes)
        return self.default_scenario

    def push_scenario(self, scenario: Scenario | None = None, /, *, count: int = 1, **changes: Any) -> Scenario:
        """Queue a scenario for the next ``count`` created predictions (FIFO, before the default).

        ``scenario`` defaults to the current default scenario; ``changes`` are applied on top, e.g.
        ``fake.push_scenario(final_status="failed", error="boom")``. Only requests that actually create a
        prediction consume the queue (not 4xx answers, not faults that answer before processing).
        """
        chosen = replace(scenario or self.default_scenario, **changes)
        self._scenario_queue.extend([chosen] * count)
        return chosen

    def clear_scenarios(self) -> None:
        """Drop queued per-prediction scenarios."""
        self._scenario_queue.clear()

    @property
    def last_prediction(self) -> FakePrediction:
        """The most recently created prediction (LookupError if none)."""
        if not self.predictions:
            raise LookupError("no prediction has been created")
        return next(reversed(self.predictions.values()))

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_until(self, predicate: Callable[[], bool], *, timeout: float = 5.0, what: str = "condition") -> None:
        """Return once ``predicate()`` is true; it is re-checked after every request and state change.

        Raises ``TimeoutError`` naming ``what`` after ``timeout`` seconds.
        """
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"FakeReplicate: timed out after {timeout}s waiting for {what}") from None

    async def wait_for_status(self, prediction_id: str, *statuses: Status, timeout: float = 5.0) -> FakePrediction:
        """Wait until the prediction has one of ``statuses`` (none given = any terminal status)."""
        wanted = frozenset(statuses) or TERMINAL_STATUSES

        def reached() -> bool:
            pred = self.predictions.get(prediction_id)
            return pred is not None and pred.status in wanted

        await self.wait_until(reached, timeout=timeout, what=f"{prediction_id} in {sorted(wanted)}")
        return self.predictions[prediction_id]

    async def wait_for_prediction(self, count: int = 1, *, timeout: float = 5.0) -> FakePrediction:
        """Wait until ``count`` predictions exist; return the ``count``-th (1-based)."""
        await self.wait_until(lambda: len(self.predictions) >= count, timeout=timeout, what=f"{count} prediction(s)")
        return list(self.predictions.values())[count - 1]
