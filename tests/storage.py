"""Test support for storage: a settable clock, and a PostgreSQL server made disposable.

PostgreSQL tests run against ``postgresql://postgres@127.0.0.1:5432/test``
(override with ``IMAGINE_TEST_POSTGRES_URL``). The session creates a database
of its own with a random name from that one and drops it at the end; each test
gets a fresh schema in it (``?search_path=`` in the URL, which asyncpg passes to
the server), so tests never see each other's rows. Where no server answers the
tests skip, saying why, except under ``CI=true``, where they fail: CI must
prove they ran.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bench.postgres import admin_url, execute_once
from bot.base.clock import SystemClock
from bot.storage import JobRecord, Repository
from bot.storage.postgres import PostgresRepository
from bot.storage.sqlite import SqliteRepository

T0 = datetime(2025, 3, 14, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    """Wall-clock time that moves only when the test says so; stamps audit entries."""

    def __init__(self, start: datetime = T0) -> None:
        self.current = start

    def monotonic(self) -> float:
        return self.current.timestamp()

    def now(self) -> datetime:
        return self.current

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


def make_job(job_id: str, *, created: datetime = T0, **fields: object) -> JobRecord:
    """A journal record with a JSON request that exercises nesting, floats, booleans and non-ASCII text."""
    return JobRecord(
        job_id=job_id,
        model="black-forest-labs/flux-schnell",
        prompt="a fox in the snow",
        request={"options": {"count": 2, "seed": None}, "notes": ["é", "🦊"], "nested": {"a": [1, 2.5, True]}},
        state="queued",
        created_at=created,
        **fields,  # type: ignore[arg-type]
    )


def with_database(url: str, database: str, *, search_path: str | None = None) -> str:
    """``url`` pointed at another database (and, optionally, a schema)."""
    parts = urlsplit(url)
    query = f"search_path={search_path}" if search_path else parts.query
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", query, ""))


def unavailable(reason: str) -> NoReturn:
    """Skip (a developer without PostgreSQL), or fail under ``CI=true`` (where the tests must run)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL tests must run in CI: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server for the tests ({reason}); set IMAGINE_TEST_POSTGRES_URL or start one")


def _run_aside(url: str, statement: str) -> None:
    """Run one statement from a thread of its own: callers may be inside a running event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, execute_once(url, statement)).result()


def create_database(prefix: str = "imagine_test") -> str:
    """A new, empty database on the test server; its URL. Skips or fails (see :func:`unavailable`)."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    try:
        _run_aside(admin_url(), f'CREATE DATABASE "{name}"')
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        unavailable(f"{type(exc).__name__}: {exc}")
    return with_database(admin_url(), name)


def drop_database(url: str) -> None:
    """Drop a database made by :func:`create_database`, whoever is still connected to it."""
    name = urlsplit(url).path.lstrip("/")
    _run_aside(admin_url(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def disposable_database(prefix: str = "imagine_test") -> Iterator[str]:
    """A database that exists for the ``with`` block only."""
    url = create_database(prefix)
    try:
        yield url
    finally:
        drop_database(url)


async def fresh_schema(database_url: str) -> str:
    """A new, empty schema in the database at ``database_url``; the URL that makes it the only one searched."""
    schema = f"t_{secrets.token_hex(6)}"
    await execute_once(database_url, f"CREATE SCHEMA {schema}")
    return with_database(database_url, urlsplit(database_url).path.lstrip("/"), search_path=schema)


class SkewedClock(SystemClock):
    """The real clock, off by ``offset`` seconds (a machine whose clock runs fast, or slow)."""

    def __init__(self, offset: float) -> None:
        self.offset = timedelta(seconds=offset)

    def now(self) -> datetime:
        return super().now() + self.offset


async def silence(repository: Repository, incarnation: str, seconds: float) -> None:
    """Make a process's last sign of life ``seconds`` old by the database's clock (a test cannot wait so long)."""
    if isinstance(repository, SqliteRepository):
        async with repository._transaction(write=True) as conn:
            await conn.execute(
                "UPDATE processes SET alive_at = strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now', ?) "
                "WHERE incarnation = ?",
                (f"-{seconds} seconds", incarnation),
            )
    else:
        assert isinstance(repository, PostgresRepository)
        async with repository._transaction() as conn:
            await conn.execute(
                "UPDATE processes SET alive_at = now() - make_interval(secs => $2) WHERE incarnation = $1",
                incarnation,
                float(seconds),
            )
