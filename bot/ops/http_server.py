"""The bot's own HTTP server (``IMAGINE_HTTP_LISTEN``): ``GET /healthz`` and ``GET /metrics``.

It knows nothing of Discord: it is given health checks and a metrics
exposition, so tests can run it alone. More routes (``POST
/webhooks/replicate``) are added with :meth:`HttpServer.add_routes` before
:meth:`HttpServer.start`. Its limits (body cap, deadlines, connection cap) are
in :mod:`bot.ops.http_guard`; ``/healthz`` runs the checks at most once a second.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot import __version__
from bot.ops.health import HealthCheck, HealthState
from bot.ops.http_guard import ConnectionGate, HttpLimits, body_reader
from bot.settings import HttpListen

log = logging.getLogger(__name__)


class ListenError(Exception):
    """The server could not listen where it was told to; the message says why."""


class HttpServer:
    """An aiohttp application with the health and metrics routes, started and stopped with the bot."""

    def __init__(
        self,
        listen: HttpListen,
        *,
        checks: Mapping[str, HealthCheck],
        metrics: Callable[[], bytes],
        check_timeout: float = 2.0,
        limits: HttpLimits | None = None,
    ) -> None:
        """``checks`` answer ``/healthz`` (see :mod:`bot.ops.health`); ``metrics`` gives ``/metrics``' body."""
        self.limits = limits or HttpLimits()
        self._listen = listen
        self.health = HealthState(checks, timeout=check_timeout)
        self._metrics = metrics
        self._runner: web.AppRunner | None = None
        self._gate = ConnectionGate(self._new_handler, self.limits)
        self._body_caps: dict[web.AbstractRoute, int] = {}
        self._app = web.Application(
            client_max_size=self.limits.max_body_bytes,
            middlewares=[body_reader(self._gate, self.limits, self._body_caps)],
        )
        self._listener: asyncio.Server | None = None
        self._port: int | None = None
        self.add_routes([web.get("/healthz", self._healthz), web.get("/metrics", self._metrics_page)])

    def add_routes(self, routes: Iterable[web.AbstractRouteDef], *, max_body_bytes: int | None = None) -> None:
        """Serve more routes (before :meth:`start`); the place for ``POST /webhooks/replicate``.

        ``max_body_bytes``: these routes read bodies up to that many bytes rather than the server's usual
        cap, a few at once (:data:`bot.ops.http_guard.MAX_LARGE_BODIES`).
        """
        added = self._app.add_routes(routes)
        if max_body_bytes is not None:
            self._body_caps.update(dict.fromkeys(added, max_body_bytes))

    @property
    def port(self) -> int:
        """The port listened on (known once started)."""
        if self._port is None:
            raise RuntimeError("the HTTP server is not started")
        return self._port

    @property
    def connections(self) -> int:
        """Connections held now."""
        return self._gate.open

    async def start(self) -> None:
        """Listen; raises :class:`ListenError` if the address cannot be used."""
        # No access log: a scraper every few seconds would drown the bot's own lines. The header deadline is
        # the gate's own (bot.ops.http_guard); aiohttp's keep-alive timer, where it runs, only agrees with it.
        runner = web.AppRunner(
            self._app,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=self.limits.header_timeout,
            lingering_time=self.limits.linger,
            shutdown_timeout=5.0,
        )
        await runner.setup()
        self._runner = runner
        try:
            # Not a TCPSite: the gate stands between the socket and aiohttp to count connections.
            listener = await asyncio.get_running_loop().create_server(
                self._gate.protocol, self._listen.host, self._listen.port
            )
        except OSError as exc:
            self._runner = None
            await runner.cleanup()
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ListenError(f"cannot listen on {self._listen}: {reason}") from exc
        self._listener = listener
        # The bound port, which differs from the one asked for when that was 0 (tests).
        self._port = int(listener.sockets[0].getsockname()[1])
        log.info("HTTP server listening on %s (/healthz, /metrics)", self._listen)

    def _new_handler(self) -> asyncio.Protocol:
        """aiohttp's protocol for one connection (the runner's server is its factory)."""
        server = self._runner.server if self._runner is not None else None
        assert server is not None, "connections come only while the server runs"
        return server()

    async def stop(self) -> None:
        """Stop listening and finish requests in flight (briefly). Idempotent."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self.health.close()

    async def _healthz(self, request: web.Request) -> web.Response:
        health = await self.health.current()
        if health.ok:
            return web.json_response({"status": "ok", "version": __version__, **health.fields})
        body = {"status": "unavailable", "reasons": list(health.problems), "version": __version__, **health.fields}
        return web.json_response(body, status=503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        response = web.Response(body=self._metrics())
        # Set whole: the exposition's content type carries its version, which content_type= would drop.
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
