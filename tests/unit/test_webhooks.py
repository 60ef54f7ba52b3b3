"""The webhook receiver: signatures (with the published test vector), stale and forged deliveries, replays,
dedupe through the database, and the registry that wakes a job, never moving a prediction back."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from standardwebhooks import Webhook

from bot.api.predictions import Prediction
from bot.jobs.webhooks import ENTRY_OVERHEAD, MAX_WEBHOOK_BYTES, PredictionEvents, WebhookReceiver
from bot.ops.http_server import HttpServer
from bot.settings import HttpListen
from bot.storage import Repository

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()

# Published in the reference (replicate-python's own test): secret, id, timestamp, body -> signature.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signing_matches_the_published_test_vector() -> None:
    signed = Webhook(VECTOR_SECRET).sign(VECTOR_ID, datetime.fromtimestamp(VECTOR_TIMESTAMP, tz=UTC), VECTOR_BODY)
    assert signed == VECTOR_SIGNATURE


def prediction(status: str = "processing", logs: str = "", **extra: Any) -> dict[str, Any]:
    return {"id": "p1", "status": status, "logs": logs, "input": {}, "output": None, **extra}


def headers_for(
    body: bytes, *, webhook_id: str = "msg_1", at: float | None = None, secret: str = SECRET
) -> dict[str, str]:
    stamp = int(at if at is not None else time.time())
    signature = Webhook(secret).sign(webhook_id, datetime.fromtimestamp(stamp, tz=UTC), body.decode())
    return {"webhook-id": webhook_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}


class Receiving:
    def __init__(self, server: HttpServer, events: PredictionEvents, session: aiohttp.ClientSession) -> None:
        self.server, self.events, self.session = server, events, session

    async def post(self, data: dict[str, Any], **options: Any) -> int:
        body = json.dumps(data).encode()
        headers = options.pop("headers", None) or headers_for(body, **options)
        url = f"http://127.0.0.1:{self.server.port}/webhooks/replicate"
        async with self.session.post(url, data=body, headers=headers) as response:
            return response.status


@pytest.fixture
async def receiving(repository: Repository) -> AsyncIterator[Receiving]:
    events = PredictionEvents()
    receiver = WebhookReceiver(SECRET, events, repository)
    server = HttpServer(HttpListen("127.0.0.1", 0), checks={}, metrics=lambda: b"")
    server.add_routes(receiver.routes(), max_body_bytes=MAX_WEBHOOK_BYTES)
    await server.start()
    async with aiohttp.ClientSession() as session:
        yield Receiving(server, events, session)
    await receiver.close()
    await server.stop()


async def test_a_signed_delivery_is_answered_at_once_and_wakes_the_job(receiving: Receiving) -> None:
    woken = receiving.events.watch("p1")
    assert await receiving.post(prediction("succeeded", output=["https://x/y.png"])) == 200
    await asyncio.wait_for(woken.wait(), 5)
    latest = receiving.events.latest("p1")
    assert latest is not None and latest.status == "succeeded"


@pytest.mark.parametrize(
    "forgery",
    ["wrong secret", "tampered body", "stale", "from the future", "no signature"],
)
async def test_a_forged_or_stale_delivery_gets_401_and_changes_nothing(receiving: Receiving, forgery: str) -> None:
    data = prediction("succeeded")
    body = json.dumps(data).encode()
    if forgery == "wrong secret":
        headers = headers_for(body, secret="whsec_" + base64.b64encode(b"another key, not the account's").decode())
    elif forgery == "tampered body":
        headers = headers_for(json.dumps(prediction("failed")).encode())
    elif forgery == "stale":
        headers = headers_for(body, at=time.time() - 6 * 60)
    elif forgery == "from the future":
        headers = headers_for(body, at=time.time() + 6 * 60)
    else:
        headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(time.time()))}
    assert await receiving.post(data, headers=headers) == 401
    await asyncio.sleep(0.05)
    assert receiving.events.latest("p1") is None


async def test_a_replayed_webhook_id_gets_200_and_changes_nothing(receiving: Receiving, repository: Repository) -> None:
    assert await receiving.post(prediction("processing", logs="a"), webhook_id="msg_a") == 200
    await asyncio.sleep(0.05)
    assert await receiving.post(prediction("processing", logs="b"), webhook_id="msg_a") == 200  # same id again
    await asyncio.sleep(0.05)
    latest = receiving.events.latest("p1")
    assert latest is not None and latest.logs == "a"
    stored = await repository.read_webhook("p1")
    assert stored is not None and stored["logs"] == "a"


async def test_the_database_dedupes_across_processes(repository: Repository) -> None:
    first = await repository.record_webhook("msg_x", "p9", stage=1, payload={"id": "p9"})
    again = await repository.record_webhook("msg_x", "p9", stage=1, payload={"id": "p9", "again": True})
    done = await repository.record_webhook("msg_y", "p9", stage=2, payload={"id": "p9", "status": "succeeded"})
    later = await repository.record_webhook("msg_z", "p9", stage=1, payload={"id": "p9", "status": "processing"})
    assert (first, again, done, later) == (True, False, True, True)
    assert (await repository.read_webhook("p9") or {}).get("status") == "succeeded"  # the end wins
    assert await repository.read_webhook("unknown") is None


async def test_a_payload_is_kept_in_the_database_only_for_another_process(
    receiving: Receiving, repository: Repository
) -> None:
    """A job of this process waits for p1: it has the state, only the id is stored. Nobody here waits for p2:
    its payload stays for the process that runs its job (or until pruned)."""
    woken = receiving.events.watch("p1")
    assert await receiving.post(prediction("succeeded"), webhook_id="msg_1") == 200
    await asyncio.wait_for(woken.wait(), 5)
    assert await receiving.post(prediction("succeeded") | {"id": "p2"}, webhook_id="msg_2") == 200
    for _ in range(250):
        if receiving.events.latest("p2") is not None:
            break
        await asyncio.sleep(0.02)
    assert await repository.read_webhook("p1") is None
    assert (await repository.read_webhook("p2") or {}).get("status") == "succeeded"
    assert not await repository.record_webhook("msg_1", "p1", stage=2, payload=None)


async def test_a_delivery_for_an_unknown_prediction_is_accepted(receiving: Receiving) -> None:
    assert await receiving.post(prediction("starting") | {"id": "not-yet"}) == 200


def test_a_prediction_never_moves_back() -> None:
    events = PredictionEvents()
    done = Prediction.from_json(prediction("succeeded"))
    assert events.push(Prediction.from_json(prediction("processing", logs="50%")))
    assert events.push(done)
    assert not events.push(Prediction.from_json(prediction("processing", logs="75%")))  # late, out of order
    assert not events.push(Prediction.from_json(prediction("failed")))  # a second end changes nothing
    assert events.latest("p1") == done


def test_the_registry_keeps_a_bounded_number_of_bytes_of_states_nobody_waits_for() -> None:
    events = PredictionEvents(unwatched_bytes=3 * (ENTRY_OVERHEAD + 1000))
    events.watch("p0")
    for number in range(6):
        events.push(Prediction.from_json(prediction() | {"id": f"p{number}"}), size=1000)
    # p0 is waited for: kept whatever comes; of the others only the newest three fit.
    assert [events.latest(f"p{number}") is not None for number in range(6)] == [True, False, False, True, True, True]
    assert events.unwatched_size == 3 * (ENTRY_OVERHEAD + 1000)
    events.watch("p3")  # a job starts waiting: its state is no longer counted against the others
    assert events.unwatched_size == 2 * (ENTRY_OVERHEAD + 1000)
    for number in (0, 3, 4, 5):
        events.forget(f"p{number}")
    assert events.unwatched_size == 0


def test_a_newer_state_replaces_the_older_in_the_count() -> None:
    events = PredictionEvents(unwatched_bytes=10**6)
    events.push(Prediction.from_json(prediction(logs="a")), size=50_000)
    events.push(Prediction.from_json(prediction(logs="ab")), size=60_000)
    assert events.unwatched_size == ENTRY_OVERHEAD + 60_000


def test_a_state_larger_than_the_whole_room_pushes_out_nothing() -> None:
    """A 10 MiB ``completed`` nobody here waits for is left to the database, not kept at the others' cost."""
    events = PredictionEvents(unwatched_bytes=3 * (ENTRY_OVERHEAD + 1000))
    for number in range(2):
        events.push(Prediction.from_json(prediction() | {"id": f"p{number}"}), size=1000)
    events.push(Prediction.from_json(prediction("succeeded") | {"id": "huge"}), size=10 * 1024 * 1024)
    assert [events.latest(name) is not None for name in ("p0", "p1", "huge")] == [True, True, False]
    assert events.unwatched_size == 2 * (ENTRY_OVERHEAD + 1000)


async def _latest_status(events: PredictionEvents, prediction_id: str) -> str | None:
    for _ in range(250):
        latest = events.latest(prediction_id)
        if latest is not None:
            return latest.status
        await asyncio.sleep(0.02)
    return None


async def test_a_webhook_stored_before_its_job_watches_reaches_the_job(
    receiving: Receiving, repository: Repository
) -> None:
    """The ``completed`` lands (here on another process's receiver) while the owner's create is still pending:
    nobody watches, so it is stored; when the owner's job starts watching, it reads it at once."""
    assert await receiving.post(prediction("succeeded", output=["https://x/y.png"])) == 200
    for _ in range(250):
        if await repository.read_webhook("p1") is not None:
            break
        await asyncio.sleep(0.02)
    owners_events = PredictionEvents()
    owner = WebhookReceiver(SECRET, owners_events, repository)
    try:
        woken = owners_events.watch("p1")
        await asyncio.wait_for(woken.wait(), 5)
        assert await _latest_status(owners_events, "p1") == "succeeded"
    finally:
        await owner.close()


async def test_a_stale_watcher_does_not_take_the_payload_from_the_jobs_owner(repository: Repository) -> None:
    """After a takeover the old owner may still watch the prediction for a heartbeat: reading the stored
    payload there leaves it for the new owner."""
    assert await repository.record_webhook("msg_1", "p1", stage=2, payload=prediction("succeeded"))
    stale_events, owners_events = PredictionEvents(), PredictionEvents()
    stale = WebhookReceiver(SECRET, stale_events, repository)
    owner = WebhookReceiver(SECRET, owners_events, repository)
    try:
        stale_events.watch("p1")
        assert await _latest_status(stale_events, "p1") == "succeeded"
        owners_events.watch("p1")
        assert await _latest_status(owners_events, "p1") == "succeeded"
    finally:
        await stale.close()
        await owner.close()


def test_a_late_copy_of_an_earlier_logs_event_never_moves_the_bar_back() -> None:
    """A copy first recorded by another process reaches a watching job before the record: it is ignored."""
    events = PredictionEvents()
    events.watch("p1")
    later = Prediction.from_json(prediction(logs=" 50%|█████     | 2/4 [00:02<00:02,  1.00it/s]"))
    earlier = Prediction.from_json(prediction(logs=" 25%|██▌       | 1/4 [00:01<00:03,  1.00it/s]"))
    assert events.push(later)
    assert not events.push(earlier)
    assert events.latest("p1") is later
    canceled = Prediction.from_json(prediction("canceled", logs=None))  # an end with no logs still ends it
    assert events.push(canceled)
