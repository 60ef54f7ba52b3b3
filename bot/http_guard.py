"""What keeps the bot's HTTP server safe from its peers: a cap on connections and bodies, and deadlines.

The server listens on a public address (the API's webhooks must reach it), so
anyone can connect. aiohttp leaves limits to the application; these are ours:

* **Headers** must arrive within :data:`HEADER_TIMEOUT` seconds of the
  connection opening (or of the previous answer on a kept-alive connection):
  aiohttp's keep-alive timer, which runs while it waits for a request, closes
  the connection otherwise, however slowly bytes trickle in.
* **Bodies** are read whole, up to :data:`MAX_BODY_BYTES` (a larger declared
  ``Content-Length`` is answered ``413`` before any byte is read; a chunked
  body gets ``413`` once it passes the cap), within :data:`BODY_TIMEOUT`
  seconds (else ``408``); either way the connection is closed after the
  answer. Handlers then have the body at once (``await request.read()``).
* **Answers** must be taken by the peer: a connection whose writes stay
  blocked for :data:`WRITE_TIMEOUT` seconds is dropped.
* **Connections**: at most :data:`MAX_CONNECTIONS` at once. At the cap a new
  connection takes the place of the oldest one that is not in a request
  (idle, or still sending its headers); when every one is in a request, the
  new one gets ``503`` and is closed.

Every refusal is logged, at most once a minute (:class:`bot.logs.ThrottledLog`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.logs import ThrottledLog

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body read: a ``completed`` webhook with long logs is several hundred KB at most. A larger
one is refused (``413``); the job still ends, through its safety poll, which reads up to 16 MiB."""

MAX_CONNECTIONS = 100
"""Connections held at once: far more than the API's deliveries, a scraper and a health check need, far
fewer than the descriptors the bot needs for Discord, the API and the database; bodies in memory stay
under ``MAX_CONNECTIONS * MAX_BODY_BYTES``."""

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
    max_connections: int = MAX_CONNECTIONS
    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    write_timeout: float = WRITE_TIMEOUT
    linger: float = LINGER


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
        self.limit = limits.max_connections
        self.write_timeout = limits.write_timeout
        self._open: dict[asyncio.Protocol, _Guarded] = {}  # by handler, oldest first
        self._busy: set[asyncio.Protocol] = set()
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
    def serving(self, handler: object) -> Iterator[None]:
        """Mark the connection of ``handler`` (``request.protocol``) as in a request: it is not closed for room."""
        protocol = cast(asyncio.Protocol, handler)
        self._busy.add(protocol)
        try:
            yield
        finally:
            self._busy.discard(protocol)

    def admit(self, connection: _Guarded) -> bool:
        """Whether a new connection may stay; at the cap, room is made by closing the oldest idle one."""
        if len(self._open) >= self.limit:
            idle = next((handler for handler in self._open if handler not in self._busy), None)
            if idle is None:
                self._refusals.warning("HTTP server: %d connections, all in a request; refused one", self.limit)
                return False
            self._evictions.warning("HTTP server: %d connections; closed the oldest idle one for a new one", self.limit)
            # Out of the count at once: the next newcomer in this same instant must not pick it again.
            self._open.pop(idle).drop()
        self._open[connection.handler] = connection
        return True

    def release(self, connection: _Guarded) -> None:
        """A connection has closed."""
        if self._open.get(connection.handler) is connection:
            del self._open[connection.handler]
        self._busy.discard(connection.handler)


class _Guarded(asyncio.Protocol):
    """One connection: admitted by the gate or refused, and dropped when the peer stops reading."""

    def __init__(self, gate: ConnectionGate, handler: asyncio.Protocol) -> None:
        self._gate = gate
        self.handler = handler
        self._admitted = False
        self._transport: asyncio.Transport | None = None
        self._stalled: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if not self._gate.admit(self):
            self._transport.write(_BUSY)
            self._transport.close()
            return
        self._admitted = True
        self.handler.connection_made(transport)

    def drop(self) -> None:
        """Close the connection now (the gate needs its place)."""
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._admitted:
            self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received() if self._admitted else None

    def pause_writing(self) -> None:
        if self._transport is not None and self._stalled is None:
            self._stalled = asyncio.get_running_loop().call_later(self._gate.write_timeout, self._transport.abort)
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
        self._gate.release(self)
        if self._admitted:
            self._admitted = False
            self.handler.connection_lost(exc)


def body_reader(gate: ConnectionGate, limits: HttpLimits) -> Middleware:
    """The middleware that reads every request's whole body (within the cap and the time) before its handler."""
    max_bytes, timeout = limits.max_body_bytes, limits.body_timeout
    too_large = f"the body is larger than {max_bytes} bytes"
    refusals = ThrottledLog(log)

    def refuse(request: web.Request, status: int, error: str) -> web.Response:
        # The path as sent, cut short and quoted: it comes from anyone.
        refusals.warning("HTTP server: %s %r answered %d: %s", request.method, request.raw_path[:100], status, error)
        response = web.json_response({"error": error}, status=status)
        response.force_close()
        return response

    @web.middleware
    async def read_body(request: web.Request, handler: Handler) -> web.StreamResponse:
        with gate.serving(request.protocol):
            declared = request.content_length
            if declared is not None and declared > max_bytes:
                return refuse(request, 413, too_large)
            try:
                async with asyncio.timeout(timeout):
                    body = await request.read()
            except TimeoutError:
                return refuse(request, 408, f"the body did not arrive within {timeout:g} s")
            except web.HTTPRequestEntityTooLarge:
                return refuse(request, 413, too_large)
            except web.RequestPayloadError:
                return refuse(request, 400, "the body is malformed")
            if len(body) > max_bytes:  # an application without client_max_size
                return refuse(request, 413, too_large)
            return await handler(request)

    return read_body
