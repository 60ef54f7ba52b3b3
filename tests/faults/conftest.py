"""Fixtures of the fault tests: the in-process stack of ``tests/e2e`` and a watch for unhandled exceptions.

"No exception escapes to the log as unhandled" is checked by :class:`UnhandledWatch`:

* every log record at ERROR or above fails the test: the bot logs at ERROR only what it could not
  handle (its catch-alls: "job … failed unexpectedly", "presenter failed", "gave up showing job",
  "command failed", discord.py's "Ignoring exception in …"), and asyncio logs "Task exception was
  never retrieved" and "Unhandled exception" at ERROR too;
* every call of the event loop's exception handler fails the test (the same asyncio reports, caught even
  if logging were reconfigured), after a garbage collection at the end so that forgotten failed tasks
  report themselves;
* WARNING and below are handled conditions (a retried poll, a rate-limited edit) and are allowed;
* records of ``aiohttp.server``/``aiohttp.web``/``aiohttp.access`` are excluded: the bot runs no HTTP
  server, so they can only come from the fakes (which reset connections on purpose).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.e2e.conftest import make_stack, restore_discord_endpoints

__all__ = ["UnhandledWatch", "make_stack", "restore_discord_endpoints", "unhandled"]

_FAKE_SERVER_LOGGERS = ("aiohttp.server", "aiohttp.web", "aiohttp.access")


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(_FAKE_SERVER_LOGGERS):
            self.records.append(record)


class UnhandledWatch:
    """Collects ERROR log records and event-loop exception reports while a test runs."""

    def __init__(self) -> None:
        self.collector = _Collector()
        self.loop_reports: list[dict[str, Any]] = []

    def loop_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.loop_reports.append(context)
        loop.default_exception_handler(context)

    def problems(self) -> list[str]:
        """Every unhandled failure seen so far, one line each (with the exception where there is one)."""
        gc.collect()
        lines = []
        for record in self.collector.records:
            exc = record.exc_info[1] if record.exc_info else None
            lines.append(f"{record.levelname} {record.name}: {record.getMessage()}" + (f" [{exc!r}]" if exc else ""))
        for context in self.loop_reports:
            lines.append(f"event loop: {context.get('message')} [{context.get('exception')!r}]")
        return lines

    def check(self) -> None:
        """Fail the test if anything escaped."""
        problems = self.problems()
        assert not problems, "unhandled failures:\n" + "\n".join(problems)


@pytest.fixture
async def unhandled() -> AsyncIterator[UnhandledWatch]:
    """Watch the root logger and the running loop; the test calls :meth:`UnhandledWatch.check` at its end."""
    watch = UnhandledWatch()
    root = logging.getLogger()
    root.addHandler(watch.collector)
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(watch.loop_handler)
    try:
        yield watch
    finally:
        loop.set_exception_handler(previous)
        root.removeHandler(watch.collector)
