"""The processes the benchmark starts beside its own: an instrumented bot (:class:`InstrumentedBot`) and a
library baseline (:class:`BaselineProcess`), each started from this checkout, read while it runs and stopped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.baselines import BASELINE_NAMES, Delivery
from tests.fakes.discord import FakeDiscord
from tests.fakes.replicate import FakeReplicate

REPO = Path(__file__).resolve().parents[1]
_LIVE_PROCESSES = re.compile(r"(\d+) live process\(es\)")
"""What :mod:`bot.ops.cluster` logs when the number of live processes it shares the API budget with changes."""


def child_env(variables: Mapping[str, str]) -> dict[str, str]:
    """The environment of a process started from this checkout: the ``PATH``, the checkout importable, ``variables``."""
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **variables}


class InstrumentedBot:
    """One instrumented bot process (:mod:`bench.botproc` by default), its log in ``workdir/bot.log``."""

    def __init__(self, workdir: Path, env: Mapping[str, str], launcher: str = "bench.botproc") -> None:
        self.workdir = workdir
        self.env = dict(env)
        self.launcher = launcher
        self.process: asyncio.subprocess.Process | None = None
        self.report: dict[str, Any] | None = None

    @property
    def log_path(self) -> Path:
        """Where the bot's own log (its stderr) goes."""
        return self.workdir / "bot.log"

    async def start(self) -> None:
        """Start the process (without waiting for it to log in)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.launcher,
                env=self.env,
                cwd=self.workdir,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )

    @property
    def pid(self) -> int:
        """The process's id."""
        assert self.process is not None
        return self.process.pid

    def rss_kib(self) -> int | None:
        """The process's resident memory now, in KiB."""
        return self._status_kib("VmRSS")

    def peak_rss_kib(self) -> int | None:
        """The process's peak resident memory so far, in KiB (``VmHWM``).

        Unlike the ``ru_maxrss`` the bot reports, it starts from nothing at ``exec``: ``ru_maxrss`` starts
        from the benchmark process's own resident memory when it started the bot, which a late start shows.
        """
        return self._status_kib("VmHWM")

    def _status_kib(self, field: str) -> int | None:
        with contextlib.suppress(OSError), open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
        return None

    def reset_monitor(self) -> None:
        """Restart the bot's event-loop stall record (SIGUSR1)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGUSR1)

    def live_processes(self) -> int:
        """How many live processes the bot last said it shares the API budget with (1 until it says otherwise)."""
        with contextlib.suppress(OSError):
            seen = _LIVE_PROCESSES.findall(self.log_path.read_text(errors="replace"))
            if seen:
                return int(seen[-1])
        return 1

    async def stop(self) -> dict[str, Any]:
        """Ctrl-C the bot; return the JSON line it prints (stalls, peak memory); ``{}`` if it was not running."""
        report: dict[str, Any] = {}
        process = self.process
        if process is None or process.returncode is not None:
            return self.report or report
        assert process.stdout is not None
        process.send_signal(signal.SIGINT)
        try:
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            report = json.loads(line) if line.strip() else {}
            await asyncio.wait_for(process.wait(), 30)
        except (TimeoutError, ValueError):
            process.kill()
            await process.wait()
        self.report = report
        return report


class BaselineProcess:
    """A baseline of :mod:`bench.baselines` in its own process (as the bot is), against :attr:`api`.

    Each :meth:`run` is one JSON line to the worker's stdin and one JSON line back.
    """

    discord: FakeDiscord | None = None
    """A library client posts to no Discord."""

    def __init__(self, api: FakeReplicate, kind: str) -> None:
        self.api = api
        self.kind = kind
        self.name = BASELINE_NAMES[kind]
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the worker process."""
        env = child_env({"REPLICATE_API_TOKEN": self.api.token})
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.baselines",
            self.kind,
            self.api.base_url,
            env=env,
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=16 * 1024 * 1024,
        )

    async def run(self, prompts: Sequence[str], timeout: float) -> list[Delivery]:
        """Have the worker run every prompt at once."""
        process = self.process
        assert process is not None and process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps({"prompts": list(prompts), "timeout": timeout}).encode() + b"\n")
        await process.stdin.drain()
        line = await process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} worker exited (status {await process.wait()})")
        return [Delivery(**item) for item in json.loads(line)]

    async def close(self) -> None:
        """End the worker (end of input)."""
        process = self.process
        if process is not None and process.returncode is None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
