"""Webhooks of the fake Replicate server (tests/fakes/replicate/), received by a tiny aiohttp server.

Signatures are checked with the ``standardwebhooks`` library (the reference implementation of the scheme
Replicate uses) and against the published test vector of reference §5.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from tests.fakes.replicate import (
    FLUX_SCHNELL,
    FakeReplicate,
    Scenario,
    WebhookDelivery,
    sign_webhook,
)

TOKEN = "r8_test_token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FLUX_CREATE = f"/v1/models/{FLUX_SCHNELL}/predictions"

JsonDict = dict[str, Any]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    time: float
    answered: int


class Receiver:
    """Records every POST; answers from ``statuses`` (then 200), or 401 when ``verify`` and the signature
    (checked with standardwebhooks, 5 minutes of tolerance) is bad."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.statuses: deque[int] = deque()
        self.verify: Webhook | None = None
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = self.statuses.popleft() if self.statuses else 200
        if self.verify is not None:
            try:
                self.verify.verify(body, dict(request.headers))
            except WebhookVerificationError:
                status = 401
        self.received.append(Received(dict(request.headers), body, time.monotonic(), status))
        return web.Response(status=status, text="ok")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/replicate"


@pytest.fixture
async def fake() -> AsyncIterator[FakeReplicate]:
    async with FakeReplicate(seed=99) as server:
        yield server


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/webhooks/replicate", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.port = int(runner.addresses[0][1])
    rec.runner = runner
    yield rec
    await runner.cleanup()


async def create(
    http: aiohttp.ClientSession,
    fake: FakeReplicate,
    webhook: str | None,
    events: Sequence[str] | None = None,
    *,
    expect: int = 201,
) -> JsonDict:
    body: JsonDict = {"input": {"prompt": "a lighthouse"}}
    if webhook is not None:
        body["webhook"] = webhook
    if events is not None:
        body["webhook_events_filter"] = list(events)
    async with http.post(fake.base_url + FLUX_CREATE, json=body, headers=AUTH) as response:
        data: JsonDict = await response.json(content_type=None)
        assert response.status == expect, data
        return data


async def get(http: aiohttp.ClientSession, fake: FakeReplicate, pid: str) -> JsonDict:
    async with http.get(f"{fake.base_url}/v1/predictions/{pid}", headers=AUTH) as response:
        assert response.status == 200
        data: JsonDict = await response.json()
        return data


def verify(fake: FakeReplicate, delivery: WebhookDelivery | Received) -> Any:
    return Webhook(fake.webhook_secret).verify(delivery.body, delivery.headers)


# ------------------------------------------------------------------------------------------ signing


def test_signature_matches_the_published_test_vector() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id, ts, body = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign_webhook(secret, msg_id, ts, body) == expected
    library = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), body.decode())
    assert library == expected


async def test_secret_route_serves_a_seeded_whsec_key(fake: FakeReplicate, http: aiohttp.ClientSession) -> None:
    url = f"{fake.base_url}/v1/webhooks/default/secret"
    async with http.get(url, headers=AUTH) as response:
        assert response.status == 200
        data = await response.json()
    assert data == {"key": fake.webhook_secret}
    assert data["key"].startswith("whsec_")
    assert len(base64.b64decode(data["key"].removeprefix("whsec_"))) == 32
    assert FakeReplicate(seed=99).webhook_secret == fake.webhook_secret
    assert FakeReplicate(seed=98).webhook_secret != fake.webhook_secret
    async with http.get(url) as response:
        assert response.status == 401
    fake.serve_webhook_secret = False
    async with http.get(url, headers=AUTH) as response:
        assert response.status == 404
        assert response.content_type == "application/problem+json"


async def test_non_loopback_webhook_and_unknown_events_are_refused(
    fake: FakeReplicate, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    refused = await create(http, fake, "https://example.com/hook", expect=422)
    assert refused["invalid_fields"][0]["field"] == "webhook"
    refused = await create(http, fake, "http://localhost:notaport/hook", expect=422)
    assert refused["invalid_fields"][0]["field"] == "webhook"
    refused = await create(http, fake, receiver.url, ["start", "finished"], expect=422)
    assert refused["invalid_fields"][0]["field"] == "webhook_events_filter.1"
    assert not fake.predictions
    assert not receiver.received


# ------------------------------------------------------------------------------------------ events


async def test_all_events_arrive_in_order_signed_and_equal_to_get(
    fake: FakeReplicate, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    created = await create(http, fake, receiver.url, ["start", "output", "logs", "completed"])
    pid = created["id"]
    await fake.wait_for_webhooks(prediction_id=pid, event="completed")
    deliveries = fake.webhooks_for(pid)
    events = [d.event for d in deliveries]
    assert events[0] == "start" and events[-1] == "completed"
    assert "logs" in events
    assert all(d.ok and d.attempt == 1 for d in deliveries)
    assert len({d.webhook_id for d in deliveries}) == len(deliveries)
    assert all(d.webhook_id.startswith("msg_") for d in deliveries)
    assert [r.body for r in receiver.received] == [d.body for d in deliveries]
    parsed = [verify(fake, r) for r in receiver.received]
    assert parsed[0]["status"] == "starting" and parsed[0]["id"] == pid
    assert parsed[-1] == await get(http, fake, pid)
    assert parsed[-1]["status"] == "succeeded"
    for r in receiver.received:
        assert abs(int(r.headers["webhook-timestamp"]) - time.time()) < 5


async def test_default_filter_is_output_and_completed(
    fake: FakeReplicate, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    fake.push_scenario(Scenario.manual())
    pid = (await create(http, fake, receiver.url))["id"]
    fake.start_processing(pid)
    fake.set_progress(pid, 2)
    fake.emit_output(pid)
    [output] = await fake.wait_for_webhooks(prediction_id=pid, event="output")
    assert output.json["status"] == "processing" and output.json["output"]
    fake.finish(pid)
    await fake.wait_for_webhooks(prediction_id=pid, event="completed")
    assert [d.event for d in fake.webhooks_for(pid)] == ["output", "completed"]


async def test_filter_is_respected_and_no_webhook_means_none(
    fake: FakeReplicate, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    pid = (await create(http, fake, receiver.url, ["start", "completed"]))["id"]
    quiet = (await create(http, fake, None))["id"]
    await fake.wait_for_status(quiet)
    await fake.wait_for_webhooks(prediction_id=pid, event="completed")
    assert [d.event for d in fake.webhook_deliveries] == ["start", "completed"]


async def test_logs_are_throttled_and_the_latest_state_wins(
    fake: FakeReplicate, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    fake.push_scenario(Scenario.manual())
    pid = (await create(http, fake, receiver.url, ["logs"]))["id"]
    fake.start_processing(pid)
    [first] = await fake.wait_for_webhooks(prediction_id=pid, event="logs")
    for step in (1, 2, 3):
        fake.set_progress(pid, step)
        await asyncio.sleep(0)
    latest = fake.predictions[pid].logs
    both = await fake.wait_for_webhooks(2, prediction_id=pid, event="logs")
    assert both[1].time - first.time >= fake.webhook_min_interval - 0.02
    assert both[1].json["logs"] == latest
    assert "3/4" in latest
    fake.finish(pid)
    await fake.wait_for_status(pid)
    assert [d.event for d in fake.webhooks_for(pid, done=False)] == ["logs", "logs"]


# ------------------------------------------------------------------------------------------ retries


async def test_completed_is_retried_with_the_same_id(
    fake: FakeReplicate, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.statuses.extend([500, 503])
    pid = (await create(http, fake, receiver.url, ["completed"]))["id"]
    await fake.wait_for_webhooks(prediction_id=pid, event="completed", ok=True)
    attempts = fake.webhooks_for(pid)
    assert [(d.attempt, d.status) for d in attempts] == [(1, 500), (2, 503), (3, 200)]
    assert len({d.webhook_id for d in attempts}) == 1
    first_ended = attempts[0].finished
    assert first_ended is not None
    assert attempts[1].time - first_ended >= fake.webhook_retry_delays[0] - 0.01
    for r in receiver.received:
        verify(fake, r)


async def test_intermediate_webhooks_are_never_retried(
    fake: FakeReplicate, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    fake.webhook_retry_delays = (0.01, 0.02)
    receiver.statuses.extend([500] * 10)
    pid = (await create(http, fake, receiver.url, ["start", "completed"]))["id"]
    await fake.wait_for_webhooks(3, prediction_id=pid, event="completed")
    await fake.wait_for_status(pid)
    assert [(d.event, d.attempt, d.status) for d in fake.webhooks_for(pid)] == [
        ("start", 1, 500),
        ("completed", 1, 500),
        ("completed", 2, 500),
        ("completed", 3, 500),
    ]


async def test_connection_failures_are_retried(fake: FakeReplicate, http: aiohttp.ClientSession) -> None:
    fake.webhook_retry_delays = (0.01,)
    pid = (await create(http, fake, f"http://127.0.0.1:{unused_port()}/hook", ["completed"]))["id"]
    attempts = await fake.wait_for_webhooks(2, prediction_id=pid)
    assert all(d.status is None and d.error for d in attempts)
    assert attempts[0].webhook_id == attempts[1].webhook_id


def unused_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------------ switches


async def test_lose_drop_sends_nothing_and_does_not_retry(
    fake: FakeReplicate, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    fake.lose_next_webhooks()
    pid = (await create(http, fake, receiver.url, ["start", "completed"]))["id"]
    [lost] = await fake.wait_for_webhooks(prediction_id=pid, event="completed")
    await asyncio.sleep(fake.webhook_retry_delays[0] * 2)
    assert lost.lost and lost.error == "lost" and lost.status is None
    assert len(fake.webhooks_for(pid, "completed", done=False)) == 1
    assert [verify(fake, r)["status"] for r in receiver.received] == ["starting"]


async def test_lose_fail_is_delivered_by_a_retry(
    fake: FakeReplicate, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    fake.lose_next_webhooks(2, mode="fail")
    pid = (await create(http, fake, receiver.url, ["completed"]))["id"]
    await fake.wait_for_webhooks(prediction_id=pid, ok=True)
    attempts = fake.webhooks_for(pid)
    assert [(d.attempt, d.lost, d.status) for d in attempts] == [(1, True, None), (2, True, None), (3, False, 200)]
    assert len({d.webhook_id for d in attempts}) == 1
    assert len(receiver.received) == 1


async def test_tampered_webhook_fails_verification_then_a_retry_is_genuine(
    fake: FakeReplicate, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.verify = Webhook(fake.webhook_secret)
    fake.tamper_next_webhook(events=["completed"])
    pid = (await create(http, fake, receiver.url, ["completed"]))["id"]
    await fake.wait_for_webhooks(prediction_id=pid, ok=True)
    forged, genuine = fake.webhooks_for(pid)
    assert forged.tampered and forged.status == 401 and forged.json["tampered"] is True
    assert not genuine.tampered and genuine.status == 200 and genuine.webhook_id == forged.webhook_id
    with pytest.raises(WebhookVerificationError):
        verify(fake, forged)


async def test_stale_webhook_is_correctly_signed_but_old(
    fake: FakeReplicate, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.verify = Webhook(fake.webhook_secret)
    fake.stale_next_webhook(3600)
    pid = (await create(http, fake, receiver.url, ["completed"]))["id"]
    await fake.wait_for_webhooks(prediction_id=pid, ok=True)
    stale, fresh = fake.webhooks_for(pid)
    assert stale.stale and stale.status == 401
    assert time.time() - stale.timestamp >= 3600
    assert stale.signature == sign_webhook(fake.webhook_secret, stale.webhook_id, stale.timestamp, stale.body)
    assert not fresh.stale and fresh.status == 200


async def test_replay_sends_the_same_bytes_again(
    fake: FakeReplicate, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    pid = (await create(http, fake, receiver.url, ["completed"]))["id"]
    [original] = await fake.wait_for_webhooks(prediction_id=pid)
    again = await fake.replay_webhook(original)
    assert again.replay and again.ok and again.attempt == original.attempt
    first, second = receiver.received
    assert first.body == second.body
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert first.headers[name] == second.headers[name]
    assert fake.webhook_deliveries[-1] is again


async def test_delay_holds_webhooks_but_not_the_api(
    fake: FakeReplicate, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    fake.delay_webhooks(0.3)
    began = time.monotonic()
    pid = (await create(http, fake, receiver.url, ["start", "completed"]))["id"]
    assert time.monotonic() - began < 0.3
    [start] = await fake.wait_for_webhooks(prediction_id=pid, event="start")
    assert start.time - began >= 0.3
    done = await fake.wait_for_status(pid)
    [completed] = await fake.wait_for_webhooks(prediction_id=pid, event="completed")
    assert completed.time - done.created_mono >= 0.6


async def test_every_terminal_status_completes(
    fake: FakeReplicate, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    fake.push_scenario(final_status="aborted")
    fake.push_scenario(Scenario.manual())
    aborted = (await create(http, fake, receiver.url, ["completed"]))["id"]
    canceled = (await create(http, fake, receiver.url, ["completed"]))["id"]
    async with http.post(f"{fake.base_url}/v1/predictions/{canceled}/cancel", headers=AUTH) as response:
        assert response.status == 200
    [one] = await fake.wait_for_webhooks(prediction_id=aborted)
    [two] = await fake.wait_for_webhooks(prediction_id=canceled)
    assert one.json["status"] == "aborted"
    assert two.json["status"] == "canceled" and two.json["logs"] is None
    assert two.json == await get(http, fake, canceled)
