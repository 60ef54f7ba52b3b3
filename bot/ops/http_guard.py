"""What keeps the bot's HTTP server safe from its peers: a cap on connections and bodies, and deadlines.

The server listens on a public address (the API's webhooks must reach it), so
anyone can connect. aiohttp leaves limits to the application; these are ours:

* **Headers** must arrive within :data:`HEADER_TIMEOUT` seconds of the
  connection opening (or of the previous answer on a kept-alive connection),
  else the connection is closed, however slowly bytes trickle in. The timer is
  ours (armed by the connection's protocol, stopped once a request is served),
  so it holds on every aiohttp version, whatever aiohttp's keep-alive timer does.
* **Bodies** are read whole, up to :data:`MAX_BODY_BYTES`, or up to the cap a
  route is given (:meth:`bot.ops.http_server.HttpServer.add_routes`: the signed
  webhook route takes the API's 16 MiB replies); a larger declared
  ``Content-Length`` is answered ``413`` before any byte is read, a chunked
  body gets ``413`` once it passes the cap. At most :data:`MAX_LARGE_BODIES`
  bodies over :data:`MAX_BODY_BYTES` (or chunked, on such a route) are read at
  once: another gets ``503`` with ``Retry-After`` (the API retries). A body
  must arrive within :data:`BODY_TIMEOUT` seconds (else ``408``); after any of
  these refusals the connection is closed. Handlers then have the body at once
  (``await request.read()``).
* **Answers** must be taken by the peer: a connection whose writes stay
  blocked for :data:`WRITE_TIMEOUT` seconds is dropped.
* **Connections**: at most :data:`MAX_CONNECTIONS` at once. At the cap a new
  connection takes the place of the oldest idle one (no request begun since
  its last answer) or else of the one whose request has been arriving longest
  (a slow sender: still in its headers or its body). A connection being served
  (request read, until its answer is written) is never closed for room: only
  when every one is being served does the newcomer get ``503``. No room is
  kept for loopback: behind a reverse proxy every peer is loopback, and a
  health probe gets in anyway unless every connection is being served.

Every refusal is logged, at most once a minute (:class:`bot.base.logs.ThrottledLog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import cast

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.base.logs import ThrottledLog

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body read on most routes; the webhook route takes larger ones (see :data:`MAX_LARGE_BODIES`)."""

MAX_LARGE_BODIES = 4
"""Bodies over :data:`MAX_BODY_BYTES` read at once (``completed`` webhooks with ``data:`` outputs or long logs):
a few, so that large bodies stay under ``MAX_LARGE_BODIES`` times the largest route cap in memory."""

MAX_CONNECTIONS = 100
"""Connections held at once: far more than the API's deliveries, a scraper and a health check need, far
fewer than the descriptors the bot needs for Discord, the API and the database; bodies in memory stay
under ``MAX_CONNECTIONS * MAX_BODY_BYTES`` plus the large ones."""

HEADER_TIMEOUT = 5.0
"""Seconds a connection may take to send a request's headers (and stay idle between requests)."""

BODY_TIMEOUT = 10.0
"""Seconds a request may take to send its whole body (a full body is then sent at 100 KB/s at least)."""

WRITE_TIMEOUT = 10.0
"""Seconds an answer may stay blocked by a peer that does not read it."""

LINGER = 2.0
"""Seconds the rest of a refused body is read and thrown away, so that the peer sees the answer."""


@dataclass(frozen=True)
class HttpLimits:
    """The server's limits (the defaults above; tests shorten the waits)."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_large_bodies: int = MAX_LARGE_BODIES
    max_connections: int = MAX_CONNECTIONS
    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    write_timeout: float = WRITE_TIMEOUT
    linger: float = LINGER


class Phase(Enum):
    """Where a connection is, for the gate's choice of which to close for room."""

    IDLE = "idle"
    """No request begun since the connection opened or since its last answer."""
    ARRIVING = "arriving"
    """A request's headers or body are arriving."""
    SERVED = "served"
    """Its request is read: being handled, or its answer being written."""


_BUSY_BODY = b'{"error": "the server holds as many connections as it takes; try again"}'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 5\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)
"""What a connection over the cap gets before it is closed (it may not even have sent its request yet)."""


class ConnectionGate:
    """Counts the server's connections and keeps them under ``limit`` (see the module's docstring)."""

    def __init__(self, handlers: Callable[[], asyncio.Protocol], limits: HttpLimits) -> None:
        """``handlers`` makes the protocol of one connection (aiohttp's ``web.Server``)."""
        self._handlers = handlers
        self.limits = limits
        self._open: dict[object, _Guarded] = {}  # by handler, oldest first
        self._refusals = ThrottledLog(log)
        self._evictions = ThrottledLog(log)

    @property
    def open(self) -> int:
        """Connections held now."""
        return len(self._open)

    def protocol(self) -> asyncio.Protocol:
        """The protocol factory for ``loop.create_server``."""
        return _Guarded(self, self._handlers())

    @contextmanager
    def request(self, handler: object) -> Iterator[Callable[[], None]]:
        """A request of the connection of ``handler`` (``request.protocol``) is being answered: its headers
        are in (the header deadline stops). Yields the call that marks its body read (never closed for room
        from then on); on exit its answer is written, and the connection idle."""
        connection = self._open.get(handler)
        if connection is None:  # closed for room meanwhile, or never admitted
            yield lambda: None
            return
        connection.headers_in()
        try:
            yield connection.served
        finally:
            connection.answered()

    def admit(self, connection: _Guarded) -> bool:
        """Whether a new connection may stay; at the cap, room is made by closing an idle or slow one."""
        if len(self._open) >= self.limit:
            victim = self._victim()
            if victim is None:
                self._refusals.warning("HTTP server: %d connections, all being served; refused one", self.limit)
                return False
            self._evictions.warning(
                "HTTP server: %d connections; closed one %s for a new one", self.limit, victim.phase.value
            )
            # Out of the count at once: the next newcomer in this same instant must not pick it again.
            del self._open[victim.handler]
            victim.drop()
        self._open[connection.handler] = connection
        return True

    @property
    def limit(self) -> int:
        """Connections held at most."""
        return self.limits.max_connections

    def _victim(self) -> _Guarded | None:
        """The oldest idle connection, else the one whose request has been arriving longest, else none."""
        arriving: _Guarded | None = None
        for connection in self._open.values():  # oldest first
            if connection.phase is Phase.IDLE:
                return connection
            if connection.phase is Phase.ARRIVING and (arriving is None or connection.since < arriving.since):
                arriving = connection
        return arriving

    def release(self, connection: _Guarded) -> None:
        """A connection has closed."""
        if self._open.get(connection.handler) is connection:
            del self._open[connection.handler]


class _Guarded(asyncio.Protocol):
    """One connection: admitted by the gate or refused, held to the header deadline, and dropped when the
    peer stops reading."""

    def __init__(self, gate: ConnectionGate, handler: asyncio.Protocol) -> None:
        self._gate = gate
        self.handler = handler
        self.phase = Phase.IDLE
        self.since = 0.0
        """When the request now arriving began (the loop's clock)."""
        self._admitted = False
        self._transport: asyncio.Transport | None = None
        self._stalled: asyncio.TimerHandle | None = None
        self._headers_due: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if not self._gate.admit(self):
            self._transport.write(_BUSY)
            self._transport.close()
            return
        self._admitted = True
        self._await_headers()
        self.handler.connection_made(transport)

    def _await_headers(self) -> None:
        """Arm the header deadline: the next request's headers are due within it."""
        self._stop_header_deadline()
        loop = asyncio.get_running_loop()
        self._headers_due = loop.call_later(self._gate.limits.header_timeout, self._headers_late)

    def _stop_header_deadline(self) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def _headers_late(self) -> None:
        self._headers_due = None
        self.drop()

    def headers_in(self) -> None:
        """A request's headers are in: its body is what arrives now (under the body deadline)."""
        self._stop_header_deadline()
        if self.phase is Phase.IDLE:  # a request read from bytes that came with the previous one
            self.phase, self.since = Phase.ARRIVING, asyncio.get_running_loop().time()

    def served(self) -> None:
        """The request is read: it is handled and answered, and the connection is not closed for room."""
        self.phase = Phase.SERVED

    def answered(self) -> None:
        """The answer is written: the connection waits for the next request (under the header deadline)."""
        self.phase = Phase.IDLE
        if self._admitted:
            self._await_headers()

    def drop(self) -> None:
        """Close the connection now (the gate needs its place, or its headers are late)."""
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self.phase is Phase.IDLE:
            self.phase, self.since = Phase.ARRIVING, asyncio.get_running_loop().time()
        if self._admitted:
            self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received() if self._admitted else None

    def pause_writing(self) -> None:
        if self._transport is not None and self._stalled is None:
            self._stalled = asyncio.get_running_loop().call_later(
                self._gate.limits.write_timeout, self._transport.abort
            )
        if self._admitted:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None
        if self._admitted:
            self.handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._stalled is not None:
            self._stalled.cancel()
        self._stop_header_deadline()
        self._gate.release(self)
        if self._admitted:
            self._admitted = False
            self.handler.connection_lost(exc)


_LARGE_BUSY = "too many large bodies are being read at once; try again"


def body_reader(gate: ConnectionGate, limits: HttpLimits, caps: Mapping[web.AbstractRoute, int]) -> Middleware:
    """The middleware that reads every request's whole body (within its route's cap in ``caps``, else
    ``limits.max_body_bytes``, and within the time) before its handler, and writes the answer."""
    small, timeout = limits.max_body_bytes, limits.body_timeout
    large_reads = 0
    refusals = ThrottledLog(log)

    def refuse(request: web.Request, status: int, error: str, *, retry_after: int | None = None) -> web.Response:
        # The path as sent, cut short and quoted: it comes from anyone.
        refusals.warning("HTTP server: %s %r answered %d: %s", request.method, request.raw_path[:100], status, error)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        response = web.json_response({"error": error}, status=status, headers=headers)
        response.force_close()
        return response

    async def read(request: web.Request, cap: int, handler: Handler, served: Callable[[], None]) -> web.StreamResponse:
        too_large = f"the body is larger than {cap} bytes"
        # A copy that reads up to this route's cap (the application's own cap is the small one).
        request = request.clone(client_max_size=cap)
        try:
            async with asyncio.timeout(timeout):
                body = await request.read()
        except TimeoutError:
            return refuse(request, 408, f"the body did not arrive within {timeout:g} s")
        except web.HTTPRequestEntityTooLarge:
            return refuse(request, 413, too_large)
        except web.RequestPayloadError:
            return refuse(request, 400, "the body is malformed")
        if len(body) > cap:  # an application without client_max_size
            return refuse(request, 413, too_large)
        served()
        response = await handler(request)
        # Written here, while the connection counts as served; aiohttp's own prepare and write_eof then do nothing.
        with contextlib.suppress(ConnectionError):
            await response.prepare(request)
            await response.write_eof()
        return response

    @web.middleware
    async def read_body(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal large_reads
        with gate.request(request.protocol) as served:
            cap = caps.get(request.match_info.route, small)
            declared = request.content_length
            if declared is not None and declared > cap:
                return refuse(request, 413, f"the body is larger than {cap} bytes")
            if cap <= small or (declared is not None and declared <= small):
                return await read(request, cap, handler, served)
            if large_reads >= limits.max_large_bodies:
                return refuse(request, 503, _LARGE_BUSY, retry_after=5)
            large_reads += 1
            try:
                return await read(request, cap, handler, served)
            finally:
                large_reads -= 1

    return read_body
