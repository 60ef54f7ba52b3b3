"""Hostile peers of the bot's HTTP server, through real sockets: bodies in pieces, too large, too slow;
headers that never end; connections by the hundred; forged webhooks by the dozen; a burst on /healthz.

The server runs with the real limits' logic and shortened waits (:class:`HttpLimits`), behind it the
real webhook receiver on a real (SQLite) repository. Peers are raw asyncio streams, so each byte goes
when the test says. Waits are bounded generously; the outcomes are asserted, not the timings.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from aiohttp.web_protocol import RequestHandler
from standardwebhooks import Webhook

from bot.jobs.webhooks import MAX_WEBHOOK_BYTES, WEBHOOK_PATH, PredictionEvents, WebhookReceiver
from bot.ops.health import Check
from bot.ops.http_guard import HttpLimits
from bot.ops.http_server import HttpServer
from bot.settings import HttpListen
from bot.storage.sqlite import MEMORY, SqliteRepository

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
FAST = HttpLimits(
    max_body_bytes=64 * 1024,
    max_connections=20,
    header_timeout=0.5,
    body_timeout=0.5,
    write_timeout=0.5,
    linger=0.2,
)
"""Short waits and small caps, so that each attack is seen through quickly."""

FAST_WEBHOOK_BYTES = 256 * 1024
"""The webhook route's cap with FAST (the real one is MAX_WEBHOOK_BYTES): above FAST's usual cap."""

LONG = 20.0
"""Bound on any wait for the server: far beyond every limit in FAST, on a loaded machine."""


@dataclass
class Served:
    server: HttpServer
    events: PredictionEvents
    pings: list[float]

    @property
    def port(self) -> int:
        return self.server.port


ServeFactory = Callable[..., Awaitable[Served]]


@pytest.fixture
async def serve() -> AsyncIterator[ServeFactory]:
    """Start the HTTP server with the webhook route (``limits`` as given); stop everything after the test."""
    started: list[tuple[HttpServer, WebhookReceiver, SqliteRepository]] = []

    async def start(
        limits: HttpLimits = FAST,
        metrics: Callable[[], bytes] = lambda: b"",
        *,
        webhook_bytes: int | None = None,
        check: Callable[[], Awaitable[None]] | None = None,
    ) -> Served:
        """``webhook_bytes``: the webhook route's cap (default: FAST_WEBHOOK_BYTES with FAST, else the real
        one); ``check``: awaited by /healthz's check (a slow one holds requests in their handler)."""
        repository = await SqliteRepository.open(MEMORY)
        events = PredictionEvents()
        receiver = WebhookReceiver(SECRET, events, repository)
        pings: list[float] = []

        async def database() -> Check:
            pings.append(time.monotonic())
            await repository.ping()
            if check is not None:
                await check()
            return Check({"database": "ok"})

        server = HttpServer(
            HttpListen("127.0.0.1", 0),
            checks={"database": database},
            metrics=metrics,
            limits=limits,
            check_timeout=LONG,
        )
        if webhook_bytes is None:
            webhook_bytes = FAST_WEBHOOK_BYTES if limits is FAST else MAX_WEBHOOK_BYTES
        server.add_routes(receiver.routes(), max_body_bytes=webhook_bytes)
        await server.start()
        started.append((server, receiver, repository))
        return Served(server, events, pings)

    yield start
    for server, receiver, repository in started:
        await server.stop()
        await receiver.close()
        await repository.close()


def prediction(prediction_id: str = "p1", status: str = "processing", logs: str = "") -> bytes:
    return json.dumps({"id": prediction_id, "status": status, "logs": logs, "input": {}, "output": None}).encode()


def signed_head(body: bytes, *, webhook_id: str = "msg_1", length: int | None = None, secret: str = SECRET) -> bytes:
    """The request line and headers of a signed webhook (``length``: the ``Content-Length`` to declare)."""
    stamp = int(time.time())
    signature = Webhook(secret).sign(webhook_id, datetime.fromtimestamp(stamp, tz=UTC), body.decode())
    return (
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n"
        f"webhook-id: {webhook_id}\r\nwebhook-timestamp: {stamp}\r\nwebhook-signature: {signature}\r\n\r\n"
    ).encode()


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one response."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), LONG)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:] if line)
    }
    length = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), LONG)
    return status, headers, body


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Whether the server closes the connection (within :data:`LONG`), whatever it says first."""
    try:
        async with asyncio.timeout(LONG):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass  # reset: closed too
    return True


async def eventually(check: Callable[[], bool]) -> bool:
    """Whether ``check()`` comes to hold (within :data:`LONG`)."""
    deadline = time.monotonic() + LONG
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)


async def pushed(events: PredictionEvents, prediction_id: str) -> bool:
    """Whether the receiver hands the prediction to its registry (within :data:`LONG`)."""
    return await eventually(lambda: events.latest(prediction_id) is not None)


# ----------------------------------------------------------------------------- bodies


async def test_a_signed_body_sent_in_pieces_is_read_whole(serve: ServeFactory) -> None:
    served = await serve()
    body = prediction(logs="x" * 2000)
    reader, writer = await connect(served.port)
    writer.write(signed_head(body) + body[:700])
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(body[700:])
    await writer.drain()
    status, _, _ = await read_response(reader)
    assert status == 200
    assert await pushed(served.events, "p1")
    writer.close()


async def assert_succeeded_webhook_pushed(served: Served, body: bytes) -> None:
    """Send ``body`` signed in one write: answered 200, and p1's ``succeeded`` state reaches the events."""
    reader, writer = await connect(served.port)
    writer.write(signed_head(body) + body)
    await writer.drain()
    status, _, _ = await read_response(reader)
    assert status == 200
    assert await pushed(served.events, "p1")
    latest = served.events.latest("p1")
    assert latest is not None and latest.status == "succeeded"
    writer.close()


async def test_a_300_kb_signed_completed_webhook_is_accepted(serve: ServeFactory) -> None:
    served = await serve(HttpLimits())  # the real cap
    body = prediction(status="succeeded", logs="step 1/50\n" * 30_000)
    assert len(body) > 300_000
    await assert_succeeded_webhook_pushed(served, body)


async def test_a_10_mib_signed_completed_with_a_data_output_is_accepted_and_delivered(serve: ServeFactory) -> None:
    """``data:`` URL outputs make ``completed`` webhooks of ~10 MiB: the webhook route reads up to the API's cap."""
    served = await serve(HttpLimits())  # the real caps
    image = base64.b64encode(b"\x89PNG" + bytes(8_000_000)).decode()
    data = {"id": "p1", "status": "succeeded", "input": {}, "output": [f"data:image/png;base64,{image}"]}
    body = json.dumps(data).encode()
    assert len(body) > 10 * 1024 * 1024
    served.events.watch("p1")  # its job waits for it
    await assert_succeeded_webhook_pushed(served, body)


async def test_other_routes_keep_the_usual_cap(serve: ServeFactory) -> None:
    served = await serve()
    reader, writer = await connect(served.port)
    writer.write(f"POST /healthz HTTP/1.1\r\nHost: bot\r\nContent-Length: {FAST.max_body_bytes + 1}\r\n\r\n".encode())
    await writer.drain()
    status, _, _ = await read_response(reader)
    assert status == 413
    assert await closed_by_server(reader)


async def test_only_a_few_large_bodies_are_read_at_once(serve: ServeFactory) -> None:
    """Bodies over the usual cap, on the webhook route: the first few are read, the others get 503 with
    Retry-After at once (the API retries); once those are read, another large one is taken."""
    limits = HttpLimits(max_body_bytes=64 * 1024, max_large_bodies=2, body_timeout=LONG, header_timeout=LONG)
    served = await serve(limits, webhook_bytes=FAST_WEBHOOK_BYTES)
    bodies = [prediction(f"p{number}", logs="x" * 100_000) for number in range(5)]
    peers = [await connect(served.port) for _ in bodies]
    for number, ((_, writer), body) in enumerate(zip(peers, bodies, strict=True)):
        writer.write(signed_head(body, webhook_id=f"msg_{number}") + body[:1000])
        await writer.drain()
    answers = [asyncio.create_task(read_response(reader)) for reader, _ in peers]
    assert await eventually(lambda: sum(answer.done() for answer in answers) >= 3)
    refused = [answer.result() for answer in answers if answer.done()]
    assert [status for status, _, _ in refused] == [503, 503, 503]
    assert all(headers.get("retry-after") == "5" for _, headers, _ in refused)
    for (_, writer), body, answer in zip(peers, bodies, answers, strict=True):
        if not answer.done():
            writer.write(body[1000:])
            await writer.drain()
    statuses = sorted(status for status, _, _ in await asyncio.gather(*answers))
    assert statuses == [200, 200, 503, 503, 503]
    body = prediction("p9", logs="x" * 100_000)
    reader, writer = await connect(served.port)
    writer.write(signed_head(body, webhook_id="msg_9") + body)
    await writer.drain()
    status, _, _ = await read_response(reader)
    assert status == 200  # the slots are free again
    for _, peer in [*peers, (reader, writer)]:
        peer.close()


async def test_a_declared_length_over_the_cap_gets_413_before_any_body(serve: ServeFactory) -> None:
    served = await serve()
    body = prediction()
    reader, writer = await connect(served.port)
    writer.write(signed_head(body, length=FAST_WEBHOOK_BYTES + 1))  # and not one byte of it
    await writer.drain()
    status, headers, answer = await read_response(reader)
    assert status == 413
    assert headers.get("connection") == "close"
    assert "larger than" in json.loads(answer)["error"]
    assert await closed_by_server(reader)
    assert served.events.latest("p1") is None


async def test_a_chunked_body_over_the_cap_gets_413(serve: ServeFactory) -> None:
    served = await serve()
    reader, writer = await connect(served.port)
    writer.write(
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: bot\r\nTransfer-Encoding: chunked\r\n"
        "webhook-id: msg_1\r\nwebhook-timestamp: 1\r\nwebhook-signature: v1,x\r\n\r\n".encode()
    )
    chunk = b"x" * 16384
    try:
        for _ in range(FAST_WEBHOOK_BYTES // len(chunk) + 2):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
    except ConnectionError:
        pass  # the server may close while the rest is still on its way
    status, _, _ = await read_response(reader)
    assert status == 413
    assert await closed_by_server(reader)


async def test_a_body_that_never_comes_is_closed(serve: ServeFactory, caplog: pytest.LogCaptureFixture) -> None:
    """The measured attack: headers with Content-Length 100, no body; 408 and closed, not held for ever."""
    caplog.set_level(logging.WARNING)
    served = await serve()
    peers = [await connect(served.port) for _ in range(10)]
    for _, writer in peers:
        writer.write(signed_head(b"", length=100))
        await writer.drain()
    for reader, _ in peers:
        status, _, _ = await read_response(reader)
        assert status == 408
        assert await closed_by_server(reader)
    assert len([record for record in caplog.records if "answered 408" in record.getMessage()]) == 1  # not ten


async def test_a_malformed_chunked_body_gets_400(serve: ServeFactory) -> None:
    served = await serve()
    reader, writer = await connect(served.port)
    writer.write(
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: bot\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n".encode()
    )
    await writer.drain()
    status, _, _ = await read_response(reader)
    assert status == 400
    assert await closed_by_server(reader)


async def test_a_body_sent_a_byte_at_a_time_is_cut_off(serve: ServeFactory) -> None:
    served = await serve()
    body = prediction()
    reader, writer = await connect(served.port)
    writer.write(signed_head(body))

    async def trickle() -> None:
        for byte in body:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.1)

    trickling = asyncio.create_task(trickle())
    try:
        status, _, _ = await read_response(reader)
        assert status == 408
        assert await closed_by_server(reader)
    finally:
        trickling.cancel()
        await asyncio.gather(trickling, return_exceptions=True)
    assert served.events.latest("p1") is None


# ----------------------------------------------------------------------------- headers and connections


async def test_headers_that_never_end_are_closed(serve: ServeFactory) -> None:
    """Slowloris: a header line now and then keeps no connection open past the header deadline."""
    served = await serve()
    reader, writer = await connect(served.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\n")

    async def trickle() -> None:
        for number in range(1000):
            writer.write(f"X-Slow-{number}: 1\r\n".encode())
            await writer.drain()
            await asyncio.sleep(0.1)

    trickling = asyncio.create_task(trickle())
    try:
        assert await closed_by_server(reader)
    finally:
        trickling.cancel()
        await asyncio.gather(trickling, return_exceptions=True)


async def test_idle_connections_are_closed_and_capped_and_never_lock_others_out(serve: ServeFactory) -> None:
    served = await serve()
    idle = await asyncio.gather(*(connect(served.port) for _ in range(3 * FAST.max_connections)))  # at once
    await asyncio.sleep(0.05)
    assert served.server.connections <= FAST.max_connections
    # A newcomer takes an idle one's place: health checks and webhooks still get in.
    reader, writer = await connect(served.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n")
    await writer.drain()
    status, _, _ = await read_response(reader)
    assert status == 200
    writer.close()
    for idle_reader, _ in idle:
        assert await closed_by_server(idle_reader)
    assert await eventually(lambda: served.server.connections == 0)


async def test_at_the_cap_with_every_connection_being_served_a_newcomer_gets_503(serve: ServeFactory) -> None:
    release = asyncio.Event()
    limits = HttpLimits(max_connections=3, body_timeout=LONG, header_timeout=LONG, linger=0.1)
    served = await serve(limits, check=release.wait)
    busy = [await connect(served.port) for _ in range(3)]
    for _, writer in busy:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n")  # held in its handler
        await writer.drain()
    assert await eventually(lambda: len(served.pings) >= 1)
    await asyncio.sleep(0.2)
    reader, writer = await connect(served.port)
    status, headers, _ = await read_response(reader)
    assert status == 503
    assert headers.get("retry-after") == "5"
    assert await closed_by_server(reader)
    assert served.server.connections == 3
    release.set()
    for busy_reader, busy_writer in busy:
        status, _, _ = await read_response(busy_reader)
        assert status == 200
        busy_writer.close()


async def test_at_the_cap_a_newcomer_takes_the_place_of_the_slowest_sender(serve: ServeFactory) -> None:
    """Peers trickling bodies at the cap lock nobody out: a health probe closes the one sending longest."""
    served = await serve(HttpLimits(max_connections=3, body_timeout=LONG, header_timeout=LONG, linger=0.1))
    slow = [await connect(served.port) for _ in range(3)]
    for _, writer in slow:
        writer.write(signed_head(b"", length=100) + b"{")  # a body that hardly comes
        await writer.drain()
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    reader, writer = await connect(served.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n")
    await writer.drain()
    status, _, _ = await read_response(reader)
    assert status == 200
    assert await closed_by_server(slow[0][0])  # the first to start sending
    assert served.server.connections <= 3
    for _, slow_writer in slow:
        slow_writer.close()
    writer.close()


async def test_an_answer_being_written_is_not_closed_for_room(serve: ServeFactory) -> None:
    """A connection whose answer is still being written counts as served: at the cap an idle one makes room."""
    answer = b"#" * 4 * 1024 * 1024
    limits = HttpLimits(max_connections=2, header_timeout=LONG, write_timeout=LONG, linger=0.1)
    asked: list[bool] = []
    served = await serve(limits, metrics=lambda: asked.append(True) or answer)
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    probe.setblocking(False)
    await asyncio.get_running_loop().sock_connect(probe, ("127.0.0.1", served.port))
    slow_reader, slow_writer = await asyncio.open_connection(sock=probe)
    slow_writer.write(b"GET /metrics HTTP/1.1\r\nHost: bot\r\n\r\n")  # its answer is not read for now
    await slow_writer.drain()
    assert await eventually(lambda: bool(asked))
    await asyncio.sleep(0.2)
    idle_reader, idle_writer = await connect(served.port)
    idle_writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n")
    await idle_writer.drain()
    status, _, _ = await read_response(idle_reader)
    assert status == 200  # now idle, kept alive
    _, newcomer = await connect(served.port)
    assert await closed_by_server(idle_reader)
    status, _, body = await read_response(slow_reader)
    assert status == 200 and body == answer
    for writer in (slow_writer, idle_writer, newcomer):
        writer.close()


async def test_headers_are_due_whatever_aiohttp_does(serve: ServeFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp before 3.10 arms no timer until a first answer: the header deadline is the server's own."""
    original = RequestHandler.connection_made

    def without_keepalive_timer(handler: RequestHandler, transport: asyncio.BaseTransport) -> None:
        original(handler, transport)
        handler.keep_alive(True)  # cancels the timer that recent aiohttp arms here

    monkeypatch.setattr(RequestHandler, "connection_made", without_keepalive_timer)
    served = await serve()
    silent_reader, _ = await connect(served.port)
    partial_reader, partial_writer = await connect(served.port)
    partial_writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\n")
    await partial_writer.drain()
    assert await closed_by_server(silent_reader)
    assert await closed_by_server(partial_reader)
    assert await eventually(lambda: served.server.connections == 0)


async def test_a_peer_that_does_not_read_the_answer_is_dropped(serve: ServeFactory) -> None:
    served = await serve(metrics=lambda: b"#" * 4 * 1024 * 1024)
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    probe.setblocking(False)
    await asyncio.get_running_loop().sock_connect(probe, ("127.0.0.1", served.port))
    _, writer = await asyncio.open_connection(sock=probe)
    # Answers far larger than any socket buffer, never read: the server's writes block, then it gives up.
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: bot\r\n\r\n" * 8)
    await writer.drain()
    assert await eventually(lambda: served.server.connections == 0)
    writer.close()


# ----------------------------------------------------------------------------- logs and /healthz


async def test_refusals_are_logged_at_most_once_a_minute(serve: ServeFactory, caplog: pytest.LogCaptureFixture) -> None:
    served = await serve()
    caplog.set_level(logging.WARNING)
    forger = "whsec_" + base64.b64encode(b"not the account's key, a forger's").decode()
    for number in range(30):
        body = prediction(prediction_id=f"forged-{number}")
        reader, writer = await connect(served.port)
        writer.write(signed_head(body, webhook_id=f"msg_{number}", secret=forger) + body)
        await writer.drain()
        status, _, _ = await read_response(reader)
        assert status == 401
        writer.close()
    refusals = [record for record in caplog.records if record.getMessage().startswith("refused a webhook")]
    assert len(refusals) == 1
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


async def test_a_burst_on_healthz_runs_the_checks_at_most_once_a_second(serve: ServeFactory) -> None:
    served = await serve(HttpLimits())

    async def ask() -> int:
        reader, writer = await connect(served.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n\r\n")
        await writer.drain()
        status, _, _ = await read_response(reader)
        writer.close()
        return status

    started = time.monotonic()
    for _ in range(5):
        statuses = await asyncio.gather(*(ask() for _ in range(40)))
        assert set(statuses) == {200}
    elapsed = time.monotonic() - started
    assert 1 <= len(served.pings) <= int(elapsed) + 1
