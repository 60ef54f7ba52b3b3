"""Webhooks: sending a prediction's events in order, signing them (:func:`sign_webhook`), retrying
``completed``, recording every attempt (:class:`WebhookDelivery`) and the switches that lose, delay, tamper with,
date back or replay them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import aiohttp

from tests.fakes.replicate.vocabulary import WEBHOOK_EVENTS

if TYPE_CHECKING:
    from tests.fakes.replicate.predictions import FakePrediction
    from tests.fakes.replicate.vocabulary import JsonDict, WebhookEvent


def sign_webhook(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of a webhook, per Standard Webhooks (reference §5).

    ``v1,`` + base64 of HMAC-SHA256 over ``"{webhook_id}.{timestamp}.{raw body}"``, keyed with the
    base64-decoded part of ``secret`` after ``whsec_``.
    """
    key = base64.b64decode(secret.removeprefix("whsec_") + "==")
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@dataclass
class WebhookDelivery:
    """One attempt of the fake to deliver a webhook (see :attr:`FakeReplicate.webhook_deliveries`)."""

    prediction_id: str
    event: WebhookEvent
    webhook_id: str
    """``webhook-id``: the same on every retry of one delivery (and on a :meth:`~FakeReplicate.replay_webhook`)."""
    attempt: int
    """1 for the first try; retries of a ``completed`` webhook count up."""
    url: str
    timestamp: int
    """``webhook-timestamp`` sent (unix seconds)."""
    headers: dict[str, str]
    """The headers sent (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``, ``Content-Type``)."""
    body: bytes
    """The raw body sent (after any tampering)."""
    time: float
    """``time.monotonic()`` when the attempt was made."""
    status: int | None = None
    """HTTP status the receiver answered; ``None`` when there was no answer (see :attr:`error`)."""
    error: str | None = None
    """Why there was no answer: a connection failure, a timeout, or ``lost``
    (:meth:`~FakeReplicate.lose_next_webhooks`)."""
    finished: float | None = None
    """``time.monotonic()`` when the attempt ended (answered, failed or lost); ``None`` while in flight."""
    lost: bool = False
    """Never sent: taken by :meth:`~FakeReplicate.lose_next_webhooks`."""
    tampered: bool = False
    """The body was changed after signing (:meth:`~FakeReplicate.tamper_next_webhook`)."""
    stale: bool = False
    """The timestamp is in the past (:meth:`~FakeReplicate.stale_next_webhook`); the signature is valid."""
    replay: bool = False
    """Sent by :meth:`~FakeReplicate.replay_webhook` (same id, timestamp, signature and body as the original)."""

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def done(self) -> bool:
        """Whether the attempt has ended (answered, failed or lost)."""
        return self.finished is not None

    @property
    def json(self) -> Any:
        """The body parsed as JSON (``None`` if it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def signature(self) -> str:
        """The ``webhook-signature`` header sent."""
        return self.headers["webhook-signature"]


@dataclass
class _WebhookSwitch:
    action: Literal["drop", "fail", "tamper", "stale"]
    count: int
    events: frozenset[WebhookEvent]
    seconds: float = 0.0


class WebhooksMixin:
    """Part of :class:`FakeReplicate`: sending webhooks and the switches that bend them."""

    def _add_webhook_switch(
        self,
        action: Literal["drop", "fail", "tamper", "stale"],
        count: int,
        events: Sequence[WebhookEvent] | None,
        seconds: float = 0.0,
    ) -> None:
        chosen = frozenset(events) if events is not None else frozenset(WEBHOOK_EVENTS)
        unknown = chosen - set(WEBHOOK_EVENTS)
        if unknown:
            raise ValueError(f"unknown webhook events: {sorted(unknown)}")
        self._webhook_switches.append(_WebhookSwitch(action, count, chosen, seconds))

    def lose_next_webhooks(
        self,
        count: int = 1,
        events: Sequence[WebhookEvent] = ("completed",),
        *,
        mode: Literal["drop", "fail"] = "drop",
    ) -> None:
        """The next ``count`` webhook attempts of ``events`` are never sent (recorded with ``lost=True``).

        ``mode="drop"``: lost for good, as if the network ate a request the fake believes delivered; a lost
        ``completed`` is *not* retried. ``mode="fail"``: each attempt fails like a connection failure, so a
        ``completed`` is retried on :attr:`webhook_retry_delays` (``count`` below the number of attempts means
        a later retry gets through, with the same ``webhook-id``); an intermediate one is just gone.
        """
        self._add_webhook_switch(mode, count, events)

    def delay_webhooks(self, seconds: float) -> None:
        """Every webhook attempt from now on waits ``seconds`` before it is sent (``0``: no delay).

        Attempts of one prediction stay in order, so a delay also holds that prediction's later events."""
        self.webhook_delay = max(0.0, seconds)

    def tamper_next_webhook(self, count: int = 1, events: Sequence[WebhookEvent] | None = None) -> None:
        """The next ``count`` webhook attempts (of ``events``, ``None`` = any) are signed, then their body is
        changed (a ``"tampered": true`` key is added), so the signature no longer matches: a forgery. A
        receiver that refuses a ``completed`` with a non-2xx gets it again, correctly signed, on a retry."""
        self._add_webhook_switch("tamper", count, events)

    def stale_next_webhook(
        self, seconds: float = 600.0, *, count: int = 1, events: Sequence[WebhookEvent] | None = None
    ) -> None:
        """The next ``count`` webhook attempts (of ``events``, ``None`` = any) carry a ``webhook-timestamp``
        ``seconds`` in the past, correctly signed (a replay of an old message, as a receiver sees it)."""
        self._add_webhook_switch("stale", count, events, seconds)

    def clear_webhook_switches(self) -> None:
        """Drop pending lose/tamper/stale switches and the delay."""
        self._webhook_switches.clear()
        self.webhook_delay = 0.0

    async def replay_webhook(self, delivery: WebhookDelivery) -> WebhookDelivery:
        """Send an earlier delivery again, byte for byte: same URL, body, ``webhook-id``, timestamp and
        signature. Returns the new attempt's record (``replay=True``), once it has ended."""
        record = replace(
            delivery,
            headers=dict(delivery.headers),
            time=time.monotonic(),
            status=None,
            error=None,
            finished=None,
            lost=False,
            replay=True,
        )
        await self._post_webhook(record)
        return record

    def webhooks_for(
        self,
        prediction_id: str | None = None,
        event: WebhookEvent | None = None,
        *,
        ok: bool | None = None,
        done: bool = True,
    ) -> list[WebhookDelivery]:
        """Recorded webhook attempts matching ``prediction_id``/``event`` (``None`` = any); ``ok=True``: only
        those answered 2xx (``False``: only the others); ``done``: only attempts that have ended."""
        return [
            d
            for d in self.webhook_deliveries
            if (prediction_id is None or d.prediction_id == prediction_id)
            and (event is None or d.event == event)
            and (ok is None or d.ok == ok)
            and (not done or d.done)
        ]

    async def wait_for_webhooks(
        self,
        count: int = 1,
        *,
        prediction_id: str | None = None,
        event: WebhookEvent | None = None,
        ok: bool | None = None,
        timeout: float = 5.0,
    ) -> list[WebhookDelivery]:
        """Wait until at least ``count`` ended webhook attempts match (see :meth:`webhooks_for`); return them."""

        def matching() -> list[WebhookDelivery]:
            return self.webhooks_for(prediction_id, event, ok=ok)

        what = f"{count} webhook(s) {event or 'any'} for {prediction_id or 'any prediction'} (ok={ok})"
        await self.wait_until(lambda: len(matching()) >= count, timeout=timeout, what=what)
        return matching()

    @staticmethod
    def _touch(pred: FakePrediction) -> None:
        """Wake the prediction's webhook worker (its state changed)."""
        if pred._hook_wake is not None:
            pred._hook_wake.set()

    async def _webhook_worker(self, pred: FakePrediction, created: JsonDict) -> None:
        """Send one prediction's webhooks, in order: ``start`` (the state at creation), ``output``/``logs``
        when they change (each at most once per :attr:`webhook_min_interval`, the latest state wins; a pending
        one is superseded by ``completed``), then ``completed`` (retried) once terminal."""
        wake = pred._hook_wake
        assert wake is not None
        events = pred.webhook_events
        if "start" in events:
            await self._send_webhook(pred, "start", created)
        sent: dict[str, Any] = {"output": created["output"], "logs": created["logs"]}
        last: dict[str, float] = {"output": -math.inf, "logs": -math.inf}
        while True:
            wake.clear()
            if pred.terminal:
                if "completed" in events:
                    await self._send_webhook(pred, "completed", pred.to_json())
                return
            snapshot = pred.to_json()
            now = time.monotonic()
            wait: float | None = None
            due: WebhookEvent | None = None
            for event in ("output", "logs"):
                if event not in events or snapshot[event] == sent[event]:
                    continue
                left = last[event] + self.webhook_min_interval - now
                if left <= 0:
                    due = event
                    break
                wait = left if wait is None else min(wait, left)
            if due is not None:
                sent[due] = snapshot[due]
                last[due] = now
                await self._send_webhook(pred, due, snapshot)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await wake.wait()

    def _new_webhook_id(self) -> str:
        alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        return "msg_" + "".join(self._hook_rng.choice(alphabet) for _ in range(27))

    def _take_webhook_switch(self, action: str, event: WebhookEvent) -> _WebhookSwitch | None:
        for switch in self._webhook_switches:
            if switch.action == action and event in switch.events and switch.count > 0:
                switch.count -= 1
                if switch.count <= 0:
                    self._webhook_switches.remove(switch)
                return switch
        return None

    async def _send_webhook(self, pred: FakePrediction, event: WebhookEvent, payload: JsonDict) -> None:
        """Deliver one webhook: a single attempt, or for ``completed`` retries on :attr:`webhook_retry_delays`
        after a connection failure or a non-2xx answer (the same ``webhook-id``, a fresh timestamp)."""
        assert pred.webhook is not None
        body = json.dumps(payload, ensure_ascii=False).encode()
        webhook_id = self._new_webhook_id()
        delays = self.webhook_retry_delays if event == "completed" else ()
        attempt = 0
        while True:
            attempt += 1
            if self.webhook_delay > 0:
                await asyncio.sleep(self.webhook_delay)
            loss = self._take_webhook_switch("drop", event) or self._take_webhook_switch("fail", event)
            timestamp = int(time.time())
            stale = self._take_webhook_switch("stale", event)
            if stale is not None:
                timestamp -= math.ceil(stale.seconds)
            headers = {
                "Content-Type": "application/json",
                "webhook-id": webhook_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign_webhook(self._secret_of(pred), webhook_id, timestamp, body),
            }
            sent_body = body
            tampered = self._take_webhook_switch("tamper", event) is not None
            if tampered:
                sent_body = json.dumps({**payload, "tampered": True}, ensure_ascii=False).encode()
            record = WebhookDelivery(
                prediction_id=pred.id,
                event=event,
                webhook_id=webhook_id,
                attempt=attempt,
                url=pred.webhook,
                timestamp=timestamp,
                headers=headers,
                body=sent_body,
                time=time.monotonic(),
                tampered=tampered,
                stale=stale is not None,
            )
            if loss is not None:
                record.lost = True
                record.error = "lost"
                record.finished = time.monotonic()
                self.webhook_deliveries.append(record)
                self._notify()
                if loss.action == "drop":
                    return
            else:
                await self._post_webhook(record)
                if record.ok:
                    return
            if attempt > len(delays):
                return
            await asyncio.sleep(delays[attempt - 1])

    async def _post_webhook(self, record: WebhookDelivery) -> None:
        """Make one HTTP attempt of ``record`` (recorded in :attr:`webhook_deliveries`); no redirects followed."""
        self.webhook_deliveries.append(record)
        self._notify()
        session = self._webhook_session
        try:
            if session is None:
                raise RuntimeError("FakeReplicate not started")
            async with session.post(
                record.url,
                data=record.body,
                headers=record.headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
            ) as response:
                await response.read()
                record.status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError, RuntimeError) as exc:
            record.error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        record.finished = time.monotonic()
        self._notify()
