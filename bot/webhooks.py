"""Results pushed by the API: ``POST /webhooks/replicate``, verified, deduplicated, handed to the job.

With ``IMAGINE_WEBHOOK_URL`` set, every prediction is created with that
webhook and the events ``start``, ``logs`` and ``completed``. A delivery is
checked (standard-webhooks signature with the account's ``whsec_`` secret, a
timestamp within 5 minutes: else ``401`` and nothing happens), answered ``200``
at once, and only then recorded (once per ``webhook-id``: a retry or a replay
changes nothing) and pushed to :class:`PredictionEvents`, where the job waiting
for that prediction wakes up. On PostgreSQL the record also reaches the other
processes (``NOTIFY``), so the process that owns the job learns of a webhook
that landed elsewhere. Polling stays as a slow safety net for a lost webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Iterable

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from bot.clock import Clock
from bot.replicate import MAX_REPLY_BYTES, Prediction, ServerError
from bot.storage import Repository

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/replicate"

_RANK = {"starting": 0, "processing": 1}
"""How far a prediction is: a webhook never moves a prediction back (retries and replays come late)."""


def stage(prediction: Prediction) -> int:
    """0 starting, 1 processing, 2 ended: a later state never gives way to an earlier one."""
    return 2 if prediction.terminal else _RANK.get(prediction.status, 0)


class PredictionEvents:
    """The latest pushed state of each prediction, and a wake-up for whoever waits on it.

    Kept for predictions nobody waits for yet too (a ``start`` can arrive before the create's own
    answer), the newest :attr:`keep` of them.
    """

    def __init__(self, *, keep: int = 5000) -> None:
        self.keep = keep
        self._latest: OrderedDict[str, Prediction] = OrderedDict()
        self._changed: dict[str, asyncio.Event] = {}

    def push(self, prediction: Prediction) -> bool:
        """Take a pushed state; ``False`` if it says nothing newer than what is known."""
        known = self._latest.get(prediction.id)
        if known is not None and stage(prediction) < stage(known):
            return False
        if known is not None and known.terminal:
            return False  # the end is the end: a second completed (a retry) changes nothing
        self._latest[prediction.id] = prediction
        self._latest.move_to_end(prediction.id)
        while len(self._latest) > self.keep:
            stale, _ = self._latest.popitem(last=False)
            self._changed.pop(stale, None)
        event = self._changed.get(prediction.id)
        if event is not None:
            event.set()
        return True

    def latest(self, prediction_id: str) -> Prediction | None:
        """The newest pushed state of a prediction, if any."""
        return self._latest.get(prediction_id)

    def watch(self, prediction_id: str) -> asyncio.Event:
        """An event set whenever a newer state of the prediction arrives (clear it after reading)."""
        event = self._changed.setdefault(prediction_id, asyncio.Event())
        if prediction_id in self._latest:
            event.set()
        return event

    def watching(self, prediction_id: str) -> bool:
        """Whether a job of this process waits for the prediction."""
        return prediction_id in self._changed

    def forget(self, prediction_id: str) -> None:
        """The job is done with the prediction."""
        self._changed.pop(prediction_id, None)
        self._latest.pop(prediction_id, None)


class WebhookReceiver:
    """The ``POST /webhooks/replicate`` handler."""

    def __init__(
        self,
        secret: str,
        events: PredictionEvents,
        repository: Repository,
        clock: Clock,
        *,
        remember: int = 10000,
    ) -> None:
        self._verifier = Webhook(secret)
        self._events = events
        self._repository = repository
        self._clock = clock
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self._tasks: set[asyncio.Task[None]] = set()
        repository.on_webhook(self._heard)

    def routes(self) -> Iterable[web.AbstractRouteDef]:
        """The route to add to the bot's HTTP server."""
        return [web.post(WEBHOOK_PATH, self.handle)]

    async def handle(self, request: web.Request) -> web.Response:
        """Verify, answer at once, and do the work after the answer."""
        body = await request.content.read(MAX_REPLY_BYTES + 1)
        if len(body) > MAX_REPLY_BYTES:
            return web.json_response({"error": "too large"}, status=413)
        try:
            self._verifier.verify(body, dict(request.headers), json_parse=False)
        except (WebhookVerificationError, ValueError) as exc:
            log.warning("refused a webhook: %s", exc)
            return web.json_response({"error": "invalid signature"}, status=401)
        webhook_id = request.headers["webhook-id"]
        if webhook_id in self._seen:
            return web.json_response({"ok": True, "seen": True})
        self._seen[webhook_id] = None
        while len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        task = asyncio.create_task(self._accept(webhook_id, body), name=f"webhook-{webhook_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response({"ok": True})

    async def _accept(self, webhook_id: str, body: bytes) -> None:
        try:
            data = json.loads(body)
            prediction = Prediction.from_json(data)
        except (ValueError, ServerError) as exc:
            log.warning("a signed webhook (%s) holds no prediction: %s", webhook_id, exc)
            return
        try:
            fresh = await self._repository.record_webhook(
                webhook_id,
                prediction.id,
                status=prediction.status,
                terminal=prediction.terminal,
                payload=data,
                now=self._clock.now(),
            )
        except Exception:
            # The job still learns of it here; another process would find out by its safety poll.
            log.exception("could not record webhook %s for prediction %s", webhook_id, prediction.id)
            fresh = True
        if fresh:
            self._events.push(prediction)

    def _heard(self, prediction_id: str) -> None:
        """Another process (or this one) recorded a webhook: fetch it if a job here waits for it."""
        if not self._events.watching(prediction_id):
            return
        task = asyncio.create_task(self._fetch(prediction_id), name=f"webhook-fetch-{prediction_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch(self, prediction_id: str) -> None:
        try:
            payload = await self._repository.latest_webhook(prediction_id)
            if payload is not None:
                self._events.push(Prediction.from_json(dict(payload)))
        except Exception as exc:
            log.warning("could not read the webhook of prediction %s: %s", prediction_id, exc)

    async def close(self) -> None:
        """Let the work of answered deliveries finish (briefly)."""
        tasks = list(self._tasks)
        if tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 2)
