"""Health checks: small async callables, each answering for one part of the bot.

The HTTP server runs them all for ``GET /healthz``; the core supplies the
database and job checks, the Discord front end the gateway one, and a test
can supply its own. A check never raises to its caller and never shows an
exception's message (a database URL could be in it): only its type.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Check:
    """One part's answer: fields for the body, and ``problem`` when that part is not healthy."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    problem: str | None = None


HealthCheck = Callable[[], Awaitable[Check]]


@dataclass(frozen=True)
class Health:
    """All checks together: healthy when none reported a problem."""

    fields: Mapping[str, Any]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether every part is healthy."""
        return not self.problems


async def run_checks(checks: Mapping[str, HealthCheck], *, timeout: float) -> Health:
    """Run every check at once; one that fails or takes longer than ``timeout`` seconds is a problem."""

    async def one(name: str, check: HealthCheck) -> Check:
        try:
            return await asyncio.wait_for(check(), timeout)
        except TimeoutError:
            return Check(problem=f"{name}: no answer within {timeout:g} s")
        except Exception as exc:
            return Check(problem=f"{name}: check failed ({type(exc).__name__})")

    results = await asyncio.gather(*(one(name, check) for name, check in checks.items()))
    fields: dict[str, Any] = {}
    for result in results:
        fields.update(result.fields)
    return Health(fields, tuple(result.problem for result in results if result.problem))


class HealthState:
    """The checks' latest answer, run again at most once per ``max_age`` seconds, whoever asks how often.

    ``/healthz`` is public: a burst of requests must not become a burst of database queries. Askers
    while a run is under way share it.
    """

    def __init__(
        self,
        checks: Mapping[str, HealthCheck],
        *,
        timeout: float,
        max_age: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._checks = dict(checks)
        self._timeout = timeout
        self.max_age = max_age
        self._clock = clock
        self._health: Health | None = None
        self._started_at = 0.0
        self._run: asyncio.Task[Health] | None = None
        self.runs = 0
        """How many times the checks have run."""

    async def current(self) -> Health:
        """The latest answer if it is fresh enough, else a new one (shared with whoever else asks meanwhile)."""
        if self._health is not None and self._clock() - self._started_at < self.max_age:
            return self._health
        if self._run is None:
            self._started_at = self._clock()
            self.runs += 1
            self._run = asyncio.create_task(self._refresh(), name="health-checks")
        # Shielded: one asker going away must not cancel the run the others wait for.
        return await asyncio.shield(self._run)

    async def _refresh(self) -> Health:
        try:
            self._health = await run_checks(self._checks, timeout=self._timeout)
            return self._health
        finally:
            self._run = None

    async def close(self) -> None:
        """Stop a run under way."""
        run, self._run = self._run, None
        if run is not None:
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run


class Pingable(Protocol):
    """A database that can answer a cheap question (:meth:`bot.storage.Repository.ping`)."""

    async def ping(self) -> None:
        """Raise if the database does not answer."""
        ...


class JobCounts(Protocol):
    """The engine's counts (:class:`bot.jobs.engine.JobEngine`)."""

    @property
    def running(self) -> int:
        """Jobs running now."""
        ...

    @property
    def queued(self) -> int:
        """Jobs waiting for a slot."""
        ...


def database_check(database: Pingable) -> HealthCheck:
    """Healthy when the database answers."""

    async def check() -> Check:
        try:
            await database.ping()
        except Exception as exc:
            return Check({"database": "unavailable"}, f"database: does not answer ({type(exc).__name__})")
        return Check({"database": "ok"})

    return check


def jobs_check(engine: JobCounts) -> HealthCheck:
    """Never unhealthy: the job counts, for whoever reads the body."""

    async def check() -> Check:
        return Check({"jobs": {"running": engine.running, "queued": engine.queued}})

    return check
