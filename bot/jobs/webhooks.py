"""Results pushed by the API: ``POST /webhooks/replicate``, verified, deduplicated, handed to the job.

With ``IMAGINE_WEBHOOK_URL`` set, every prediction is created with that
webhook and the events ``start``, ``logs`` and ``completed``. A delivery is
checked (standard-webhooks signature with the account's ``whsec_`` secret, a
timestamp within 5 minutes: else ``401`` and nothing happens), answered ``200``
at once, and only then recorded (once per ``webhook-id``: a retry or a replay
changes nothing) and pushed to :class:`PredictionEvents`, where the job waiting
for that prediction wakes up. On PostgreSQL the record also reaches the other
processes (``NOTIFY``), so the process that owns the job learns of a webhook
that landed elsewhere and reads its payload from the database; a job that
starts watching its prediction reads it once too (the webhook may have landed,
here or elsewhere, before the create's answer). Polling stays as a slow safety
net for a lost webhook.

Nothing is kept for long: ids for :data:`KEEP_WEBHOOKS` (dedupe), in the
database a prediction's newest payload only, and only when no job of this
process waits for it, for :data:`KEEP_PAYLOADS` (read, never taken: a process
still watching after a takeover must not take it from the new owner); both on
the database's clock. In memory a bounded number of bytes
(:class:`PredictionEvents`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import timedelta

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from bot.api.client import MAX_REPLY_BYTES
from bot.api.errors import ServerError
from bot.api.predictions import Prediction
from bot.base.logs import ThrottledLog
from bot.storage import Repository
from bot.storage.common import ENDED_STAGE

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/replicate"

MAX_WEBHOOK_BYTES = MAX_REPLY_BYTES
"""Largest webhook body read: a ``completed`` is the prediction the API would answer a poll with (``data:`` URL
outputs of about 10 MiB exist), so the cap of the API's replies."""

_RANK = {"starting": 0, "processing": 1}
"""How far a prediction is: a webhook never moves a prediction back (retries and replays come late)."""

KEEP_WEBHOOKS = timedelta(minutes=15)
"""How long webhook ids are kept: a copy of a delivery can come while its signature is within 5 minutes of its
timestamp, itself within 5 minutes of its arrival, so 10 minutes at most; the API retries a ``completed`` for
about a minute. The heartbeat forgets older ones (:class:`bot.ops.cluster.Cluster`)."""

KEEP_PAYLOADS = timedelta(minutes=1)
"""How long a payload is kept: the owner reads it within moments of the ``NOTIFY`` or of its job starting to
watch (or of the next ``NOTIFY``, should the database fail one); one not read by then is of a job nobody runs."""

UNWATCHED_BYTES = 8 * 1024 * 1024
"""The most :class:`PredictionEvents` keeps of states no job of this process waits for (yet)."""

ENTRY_OVERHEAD = 2048
"""Bytes counted for each kept state besides its body: the parsed objects weigh more than the JSON text."""


def _steps(prediction: Prediction) -> int:
    progress = prediction.progress
    return -1 if progress is None else progress.current


def stage(prediction: Prediction) -> int:
    """0 starting, 1 processing, 2 ended: a later state never gives way to an earlier one."""
    return ENDED_STAGE if prediction.terminal else _RANK.get(prediction.status, 0)


class PredictionEvents:
    """The latest pushed state of each prediction, and a wake-up for whoever waits on it.

    States of predictions nobody waits for yet are kept too (a ``start`` can arrive before the create's
    own answer; behind a load balancer, most are other processes' jobs), the newest of them only, up to
    ``unwatched_bytes`` in all. A watched prediction's state stays until its job forgets it: one each,
    so those are bounded by the jobs running and the HTTP server's body cap.
    """

    def __init__(self, *, unwatched_bytes: int = UNWATCHED_BYTES) -> None:
        self.unwatched_bytes = unwatched_bytes
        self._latest: dict[str, Prediction] = {}
        self._unwatched: OrderedDict[str, int] = OrderedDict()  # oldest first, with the bytes each weighs
        self._unwatched_total = 0
        self._changed: dict[str, asyncio.Event] = {}
        self._stored: Callable[[str], None] | None = None

    def on_watch(self, read_stored: Callable[[str], None]) -> None:
        """Have ``read_stored(prediction_id)`` look for a stored state whenever a job starts watching one
        whose end is not known here (:class:`WebhookReceiver` reads the database)."""
        self._stored = read_stored

    def push(self, prediction: Prediction, *, size: int = 0) -> bool:
        """Take a pushed state (``size``: its body's bytes); ``False`` if it says nothing newer than what is known."""
        known = self._latest.get(prediction.id)
        if known is not None and stage(prediction) < stage(known):
            return False
        if known is not None and stage(prediction) == stage(known) and _steps(prediction) < _steps(known):
            return False  # a late copy of an earlier ``logs``: the bar never moves back
        if known is not None and known.terminal:
            return False  # the end is the end: a second completed (a retry) changes nothing
        self._latest[prediction.id] = prediction
        event = self._changed.get(prediction.id)
        if event is None:
            self._keep_unwatched(prediction.id, size + ENTRY_OVERHEAD)
            return True
        event.set()
        return True

    def _keep_unwatched(self, prediction_id: str, weight: int) -> None:
        if weight > self.unwatched_bytes:
            # Kept, it would push out every other state: the database has it (read once its job watches).
            self._unwatched_total -= self._unwatched.pop(prediction_id, 0)
            del self._latest[prediction_id]
            return
        self._unwatched_total += weight - self._unwatched.pop(prediction_id, 0)
        self._unwatched[prediction_id] = weight
        while self._unwatched_total > self.unwatched_bytes and self._unwatched:
            stale, stale_weight = self._unwatched.popitem(last=False)
            self._unwatched_total -= stale_weight
            del self._latest[stale]

    @property
    def unwatched_size(self) -> int:
        """Bytes counted for the states nobody waits for."""
        return self._unwatched_total

    def latest(self, prediction_id: str) -> Prediction | None:
        """The newest pushed state of a prediction, if any."""
        return self._latest.get(prediction_id)

    def watch(self, prediction_id: str) -> asyncio.Event:
        """An event set whenever a newer state of the prediction arrives (clear it after reading)."""
        event = self._changed.setdefault(prediction_id, asyncio.Event())
        self._unwatched_total -= self._unwatched.pop(prediction_id, 0)
        known = self._latest.get(prediction_id)
        if known is not None:
            event.set()
        if self._stored is not None and (known is None or not known.terminal):
            # Landed before the job watched (on another process, or evicted here): nobody would say so again.
            self._stored(prediction_id)
        return event

    def watching(self, prediction_id: str) -> bool:
        """Whether a job of this process waits for the prediction."""
        return prediction_id in self._changed

    def forget(self, prediction_id: str) -> None:
        """The job is done with the prediction."""
        self._changed.pop(prediction_id, None)
        self._unwatched_total -= self._unwatched.pop(prediction_id, 0)
        self._latest.pop(prediction_id, None)


class WebhookReceiver:
    """The ``POST /webhooks/replicate`` handler."""

    def __init__(
        self,
        secret: str,
        events: PredictionEvents,
        repository: Repository,
        *,
        remember: int = 10000,
    ) -> None:
        self._verifier = Webhook(secret)
        self._events = events
        self._repository = repository
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self._tasks: set[asyncio.Task[None]] = set()
        self._refusals = ThrottledLog(log)
        repository.on_webhook(self._heard)
        events.on_watch(self._read_stored)

    def routes(self) -> Iterable[web.AbstractRouteDef]:
        """The route to add to the bot's HTTP server."""
        return [web.post(WEBHOOK_PATH, self.handle)]

    async def handle(self, request: web.Request) -> web.Response:
        """Verify, answer at once, and do the work after the answer.

        The body is whole: the HTTP server read it within its cap and time (:mod:`bot.ops.http_guard`).
        """
        body = await request.read()
        try:
            self._verifier.verify(body, dict(request.headers), json_parse=False)
        except (WebhookVerificationError, ValueError) as exc:
            # Anyone can send these: one line a minute says it happens, and how often.
            self._refusals.warning("refused a webhook: %s", exc)
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
        watched = self._events.watching(prediction.id)
        if watched:
            # A job of this process waits for it: it hears at once, before the record (a copy that another
            # process saw first changes nothing here: a prediction never moves back, and ends once).
            self._events.push(prediction, size=len(body))
        # Only another process's job needs the payload from the database.
        handed_off = None if watched else data
        try:
            fresh = await self._repository.record_webhook(
                webhook_id, prediction.id, stage=stage(prediction), payload=handed_off
            )
        except Exception:
            # The job still learns of it here; another process would find out by its safety poll.
            log.exception("could not record webhook %s for prediction %s", webhook_id, prediction.id)
            fresh = True
        if fresh and not watched:
            self._events.push(prediction, size=len(body))

    def _heard(self, prediction_id: str) -> None:
        """Another process (or this one) recorded a webhook: fetch it if a job here waits for it."""
        if self._events.watching(prediction_id):
            self._read_stored(prediction_id)

    def _read_stored(self, prediction_id: str) -> None:
        """Read the prediction's stored payload, in the background."""
        task = asyncio.create_task(self._fetch(prediction_id), name=f"webhook-fetch-{prediction_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch(self, prediction_id: str) -> None:
        try:
            payload = await self._repository.read_webhook(prediction_id)
            if payload is not None:
                data = dict(payload)
                self._events.push(Prediction.from_json(data), size=len(json.dumps(data)))
        except Exception as exc:
            log.warning("could not read the webhook of prediction %s: %s", prediction_id, exc)

    async def close(self) -> None:
        """Let the work of answered deliveries finish (briefly)."""
        tasks = list(self._tasks)
        if tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 2)
