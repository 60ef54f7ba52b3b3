"""The real bot in its own process, instrumented: ``python -m bench.botproc``.

Configured only by environment variables, exactly like ``python -m bot``
(:func:`bot.settings.load_settings`, the production :class:`bot.core.Tuning`),
serving the bot's HTTP server (and with it the webhook receiver) when ``IMAGINE_HTTP_LISTEN`` is set, as
``python -m bot`` does, plus an event-loop lag monitor running in the bot's own loop:

* a task sleeps 10 ms in a loop and records how late each wake-up was (the
  overshoot is time the loop spent on something else without yielding);
* ``SIGUSR1`` restarts the record (the benchmark sends it once the bot is up,
  so start-up work such as imports and command sync is not counted);
* ``gc.callbacks`` time every garbage collection (a pause of the whole process);
* ``SIGINT`` prints one JSON line on stdout and stops the bot cleanly::

      {"max_stall_ms": ..., "p99_stall_ms": ..., "stalls_over_50ms": ..., "stalls_over_100ms": ...,
       "max_stall_at_s": ..., "samples": ..., "max_gc_pause_ms": ..., "max_gc_pause_generation": ...,
       "gc_runs": ..., "ru_maxrss_kib": ..., "rss_now_kib": ...}

``ru_maxrss_kib`` is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (peak
resident memory of this process, KiB on Linux); ``max_stall_at_s`` is when the
largest stall happened, in seconds after the last reset.

The bot's own log goes to stderr as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import resource
import signal
import sys
import time
from typing import Any

from bot.base.logs import configure_logging
from bot.discord_app.client import ImagineBot, configure_endpoints
from bot.settings import SettingsError, load_environment, load_settings

TICK = 0.010
"""Seconds the monitor sleeps between wake-ups."""


class LoopLagMonitor:
    """Records how late ``asyncio.sleep(TICK)`` wakes up (the event loop's stalls), and garbage-collector pauses."""

    def __init__(self, tick: float = TICK) -> None:
        self._tick = tick
        self._gc_started = 0.0
        self.reset()
        gc.callbacks.append(self._on_gc)

    def reset(self) -> None:
        """Forget everything recorded so far."""
        self._since = time.perf_counter()
        self._lags: list[float] = []
        self._max = 0.0
        self._max_at = 0.0
        self._gc_max = 0.0
        self._gc_max_generation = -1
        self._gc_runs = 0

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        pause = time.perf_counter() - self._gc_started
        self._gc_runs += 1
        if pause > self._gc_max:
            self._gc_max, self._gc_max_generation = pause, info.get("generation", -1)

    async def run(self) -> None:
        """Measure until cancelled."""
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self._tick)
            after = time.perf_counter()
            lag = max(0.0, after - before - self._tick)
            self._lags.append(lag)
            if lag > self._max:
                self._max, self._max_at = lag, after - self._since

    def report(self) -> dict[str, Any]:
        """The figures since the last reset, in milliseconds."""
        lags = sorted(self._lags)
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else 0.0
        return {
            "max_stall_ms": round(self._max * 1000, 1),
            "p99_stall_ms": round(p99 * 1000, 1),
            "stalls_over_50ms": sum(1 for lag in lags if lag > 0.050),
            "stalls_over_100ms": sum(1 for lag in lags if lag > 0.100),
            "max_stall_at_s": round(self._max_at, 2),
            "samples": len(lags),
            "max_gc_pause_ms": round(self._gc_max * 1000, 1),
            "max_gc_pause_generation": self._gc_max_generation,
            "gc_runs": self._gc_runs,
        }


def _rss_now_kib() -> int | None:
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


async def _run() -> int:
    load_environment()
    try:
        settings = load_settings(require_discord=True)
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, log_format=settings.log_format, secrets=settings.secrets())
    configure_endpoints(settings)
    assert settings.discord_token is not None

    loop = asyncio.get_running_loop()
    monitor = LoopLagMonitor()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, monitor.reset)

    bot = ImagineBot(settings, serve_http=True)
    async with bot:
        runner = asyncio.create_task(bot.start(settings.discord_token.reveal()), name="bot")
        watcher = asyncio.create_task(monitor.run(), name="loop-lag-monitor")
        stopper = asyncio.create_task(stop.wait(), name="stop")
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        report = monitor.report()
        report["ru_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        report["rss_now_kib"] = _rss_now_kib()
        print(json.dumps(report), flush=True)
        watcher.cancel()
        stopper.cancel()
        await bot.close()
        await asyncio.gather(runner, watcher, stopper, return_exceptions=True)
    return 0


def main() -> int:
    """Entry point."""
    return asyncio.run(_run())


if __name__ == "__main__":
    sys.exit(main())
