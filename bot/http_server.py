"""The bot's own HTTP server (``IMAGINE_HTTP_LISTEN``): ``GET /healthz`` and ``GET /metrics``.

It knows nothing of Discord: it is given health checks and a metrics
exposition, so tests can run it alone. More routes (``POST
/webhooks/replicate``) are added with :meth:`HttpServer.add_routes` before
:meth:`HttpServer.start`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot import __version__
from bot.health import HealthCheck, run_checks
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
    ) -> None:
        """``checks`` answer ``/healthz`` (see :mod:`bot.health`); ``metrics`` gives ``/metrics``' body."""
        self._listen = listen
        self._checks = dict(checks)
        self._metrics = metrics
        self._check_timeout = check_timeout
        self._app = web.Application()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self.add_routes([web.get("/healthz", self._healthz), web.get("/metrics", self._metrics_page)])

    def add_routes(self, routes: Iterable[web.AbstractRouteDef]) -> None:
        """Serve more routes (before :meth:`start`); the place for ``POST /webhooks/replicate``."""
        self._app.add_routes(routes)

    @property
    def port(self) -> int:
        """The port listened on (known once started)."""
        if self._port is None:
            raise RuntimeError("the HTTP server is not started")
        return self._port

    async def start(self) -> None:
        """Listen; raises :class:`ListenError` if the address cannot be used."""
        # No access log: a scraper every few seconds would drown the bot's own lines.
        runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._listen.host, self._listen.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ListenError(f"cannot listen on {self._listen}: {reason}") from exc
        self._runner = runner
        # The bound port, which differs from the one asked for when that was 0 (tests).
        self._port = int(runner.addresses[0][1])
        log.info("HTTP server listening on %s (/healthz, /metrics)", self._listen)

    async def stop(self) -> None:
        """Stop listening and finish requests in flight. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        health = await run_checks(self._checks, timeout=self._check_timeout)
        if health.ok:
            return web.json_response({"status": "ok", "version": __version__, **health.fields})
        body = {"status": "unavailable", "reasons": list(health.problems), "version": __version__, **health.fields}
        return web.json_response(body, status=503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        response = web.Response(body=self._metrics())
        # Set whole: the exposition's content type carries its version, which content_type= would drop.
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
