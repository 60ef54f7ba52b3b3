"""The HTTP server on its own (no Discord): health checks decide 200 or 503, metrics are Prometheus' text."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bot import __version__
from bot.ops.health import Check, HealthCheck, database_check, jobs_check
from bot.ops.http_server import HttpServer, ListenError
from bot.ops.metrics import Metrics
from bot.settings import HttpListen
from bot.storage.sqlite import MEMORY, SqliteRepository

LOCAL = HttpListen("127.0.0.1", 0)

ServerFactory = Callable[..., Awaitable[tuple[HttpServer, str]]]


def fixed(fields: Mapping[str, object], problem: str | None = None) -> HealthCheck:
    """A check that always gives the same answer."""

    async def check() -> Check:
        return Check(fields, problem)

    return check


class Counts:
    """Stands in for the engine's counts."""

    running = 2
    queued = 5


@pytest.fixture
async def serve() -> AsyncIterator[ServerFactory]:
    """Start servers on free ports; stop them after the test."""
    servers: list[HttpServer] = []

    async def start(
        checks: Mapping[str, HealthCheck], metrics: Metrics | None = None, **options: float
    ) -> tuple[HttpServer, str]:
        server = HttpServer(LOCAL, checks=checks, metrics=(metrics or Metrics()).exposition, **options)
        await server.start()
        servers.append(server)
        return server, f"http://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        await server.stop()


async def get(url: str) -> tuple[int, str, str]:
    """Status, content type header and body of a GET."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


async def get_json(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def test_healthy_when_every_check_is() -> None:
    repository = await SqliteRepository.open(MEMORY)
    server = HttpServer(
        LOCAL,
        checks={
            "discord": fixed({"shards": {"connected": 1, "total": 1}}),
            "database": database_check(repository),
            "jobs": jobs_check(Counts()),
        },
        metrics=Metrics().exposition,
    )
    await server.start()
    try:
        status, body = await get_json(f"http://127.0.0.1:{server.port}/healthz")
        assert status == 200
        assert body == {
            "status": "ok",
            "version": __version__,
            "shards": {"connected": 1, "total": 1},
            "database": "ok",
            "jobs": {"running": 2, "queued": 5},
        }
        await repository.close()  # the database stops answering
        status, body = await get_json(f"http://127.0.0.1:{server.port}/healthz")
        for _ in range(100):  # the checks' answer is kept for a second
            if status == 503:
                break
            await asyncio.sleep(0.1)
            status, body = await get_json(f"http://127.0.0.1:{server.port}/healthz")
        assert status == 503
        assert body["status"] == "unavailable"
        assert body["reasons"] == ["database: does not answer (RepositoryClosedError)"]
        assert body["database"] == "unavailable"
    finally:
        await server.stop()
        await repository.close()


async def test_every_problem_is_a_reason(serve: ServerFactory) -> None:
    async def slow() -> Check:
        await asyncio.sleep(5)
        return Check()

    async def broken() -> Check:
        raise RuntimeError("postgresql://bot:hunter2@db/imagine is down")

    _, base = await serve(
        {
            "discord": fixed({"shards": {"connected": 0, "total": 1}}, "discord: gateway connected on 0 of 1 shards"),
            "database": slow,
            "other": broken,
        },
        check_timeout=0.2,
    )
    status, body = await get_json(f"{base}/healthz")
    assert status == 503
    assert sorted(body["reasons"]) == [  # type: ignore[arg-type]
        "database: no answer within 0.2 s",
        "discord: gateway connected on 0 of 1 shards",
        "other: check failed (RuntimeError)",
    ]
    assert "hunter2" not in str(body)


async def test_metrics_is_prometheus_text(serve: ServerFactory) -> None:
    metrics = Metrics()
    metrics.watch_jobs(running=lambda: 1, queued=lambda: 0)
    metrics.job_shown("succeeded", 3.0, 0.1)
    _, base = await serve({}, metrics)
    status, content_type, text = await get(f"{base}/metrics")
    assert status == 200
    assert content_type.startswith("text/plain") and "version=" in content_type
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {
        "imagine_jobs",
        "imagine_jobs_running",
        "imagine_jobs_queued",
        "imagine_api_requests",
        "imagine_job_duration_seconds",
        "imagine_delivery_overhead_seconds",
    } <= names


async def test_more_routes_can_be_added_before_start() -> None:
    server = HttpServer(LOCAL, checks={}, metrics=Metrics().exposition)

    async def hook(request: web.Request) -> web.Response:
        return web.Response(status=204)

    server.add_routes([web.post("/webhooks/replicate", hook)])
    await server.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://127.0.0.1:{server.port}/webhooks/replicate") as response,
        ):
            assert response.status == 204
        assert (await get_json(f"http://127.0.0.1:{server.port}/healthz"))[0] == 200
    finally:
        await server.stop()
        await server.stop()  # idempotent


async def test_address_in_use_is_a_listen_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HttpServer(HttpListen("127.0.0.1", port), checks={}, metrics=Metrics().exposition)
        with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{port}"):
            await server.start()
