"""The clients under comparison, each driving its own instance of the fake prediction API.

* :class:`ImagineBotClient`: the real bot, in its own process (``python -m bench.botproc``,
  configured by environment variables like ``python -m bot``, production tuning), logged in to
  the fake Discord; a job is one ``/imagine`` interaction, and it is *delivered* when the fake
  Discord stores the first version of the interaction's message that carries the image.
* :class:`BaselineProcess`: one of the two baselines of :mod:`bench.baselines` (Replicate's
  official client, or the naive create / sleep 1 s / get loop), also in its own process; a job is
  delivered when its output file is in hand.

Every client answers :meth:`Client.run` with one :class:`~bench.baselines.Delivery` per prompt:
the wall-clock time (``time.time()``) at which the image was delivered, or why it was not. The
prompts are unique, which is how :mod:`bench.measure` finds each job's prediction in the fake API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from bench.baselines import BASELINE_NAMES, Delivery
from tests.fakes.discord import FakeDiscord, FakeGuild, FakeMember, InteractionHandle, MessageVersion
from tests.fakes.replicate import FakeReplicate

REPO = Path(__file__).resolve().parents[1]
DISCORD_TOKEN = "bench-discord-token"
_FAILED_WORDS = ("Failed", "Canceled", "Timed out")


class Client(Protocol):
    """A way of turning prompts into images in hand, against :attr:`api`."""

    name: str
    api: FakeReplicate

    async def run(self, prompts: Sequence[str], timeout: float) -> list[Delivery]:
        """Start one job per prompt at once; return when all have ended or ``timeout`` passed."""
        ...

    async def close(self) -> None:
        """Release connections and processes."""
        ...


# --------------------------------------------------------------------------- the real bot


def _status(version: MessageVersion) -> str:
    for embed in version.embeds:
        for field in embed.get("fields", []):
            if field.get("name") == "Status":
                return str(field.get("value", ""))
    return ""


def _what_happened(version: MessageVersion) -> str:
    for embed in version.embeds:
        for field in embed.get("fields", []):
            if field.get("name") == "What happened":
                return str(field.get("value", ""))
    return ""


class ImagineBotClient:
    """The real bot in its own process, between a fake Discord and :attr:`api`."""

    name = "imagine-bot"

    def __init__(
        self,
        api: FakeReplicate,
        workdir: Path,
        *,
        max_running: int,
        max_running_per_server: int,
        members: int = 8,
        log_level: str = "INFO",
        launcher: str = "bench.botproc",
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        """``launcher`` is the module run with ``python -m`` and ``extra_env`` goes on top of its environment
        (to try a variant of the bot; the benchmark itself uses the defaults)."""
        self.api = api
        self.launcher = launcher
        self.extra_env = dict(extra_env or {})
        self.workdir = workdir
        self.discord = FakeDiscord(token=DISCORD_TOKEN)
        self.settings_env = {
            "IMAGINE_MAX_RUNNING": str(max_running),
            "IMAGINE_MAX_RUNNING_PER_SERVER": str(max_running_per_server),
            "LOG_LEVEL": log_level,
        }
        self._member_count = members
        self._members: list[FakeMember] = []
        self._turn = 0
        self.guild: FakeGuild | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.report: dict[str, Any] | None = None
        self.last_push_s = 0.0
        """Seconds the last :meth:`run` took to push its interactions through the fake Discord."""

    async def start(self) -> None:
        """Start the fake Discord and the bot process; return once the bot has logged in."""
        await self.discord.start()
        guild = self.guild = self.discord.add_guild("Bench")
        self._members = [guild.add_member(f"member-{i:03d}") for i in range(self._member_count)]
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO),
            "DISCORD_TOKEN": DISCORD_TOKEN,
            "REPLICATE_API_TOKEN": self.api.token,
            "REPLICATE_BASE_URL": self.api.base_url,
            "DISCORD_API_BASE": self.discord.http_base,
            "DISCORD_GATEWAY_URL": self.discord.gateway_url,
            "IMAGINE_SYNC_GUILD": str(guild.id),
            "DATABASE_URL": f"sqlite:///{self.workdir / 'bot.db'}",
            **self.settings_env,
            **self.extra_env,
        }
        with (self.workdir / "bot.log").open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.launcher,
                env=env,
                cwd=self.workdir,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        synced = "PUT /applications/*/guilds/*/commands"
        await self.discord.wait_for(lambda: self.discord.requests_for(synced), 60, what="command sync")
        await self.discord.wait_for(lambda: self.discord.identify_payloads, 60, what="IDENTIFY")

    @property
    def pid(self) -> int:
        """The bot process's id."""
        assert self.process is not None
        return self.process.pid

    def rss_kib(self) -> int | None:
        """The bot process's resident memory now, in KiB."""
        with contextlib.suppress(OSError), open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def reset_monitor(self) -> None:
        """Restart the bot's event-loop stall record (SIGUSR1)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGUSR1)

    async def run(self, prompts: Sequence[str], timeout: float, rate: float | None = None) -> list[Delivery]:
        """Push one ``/imagine`` per prompt (members in turn), then wait for every message to end.

        ``rate``: push that many interactions per second instead of all at once.
        """
        assert self.guild is not None
        channel = self.guild.channel("general")
        handles: list[InteractionHandle] = []
        pushing = time.monotonic()
        for count, prompt in enumerate(prompts):
            if rate:
                await asyncio.sleep(max(0.0, pushing + count / rate - time.monotonic()))
            member = self._members[self._turn % len(self._members)]
            self._turn += 1
            handles.append(
                await self.discord.slash("imagine", {"prompt": prompt}, user=member, guild=self.guild, channel=channel)
            )
        self.last_push_s = time.monotonic() - pushing
        outcomes: dict[int, Delivery] = {}
        deadline = pushing + timeout
        while len(outcomes) < len(handles) and time.monotonic() < deadline:
            await asyncio.sleep(0.05 if len(handles) == 1 else 0.25)
            for index, (prompt, handle) in enumerate(zip(prompts, handles, strict=True)):
                if index not in outcomes:
                    outcome = self._outcome(prompt, handle)
                    if outcome is not None:
                        outcomes[index] = outcome
        return [
            replace(
                outcomes.get(index) or Delivery(prompt, None, f"no final message within {timeout:g} s"),
                answered_after=self._answered_after(handle),
            )
            for index, (prompt, handle) in enumerate(zip(prompts, handles, strict=True))
        ]

    @staticmethod
    def _answered_after(handle: InteractionHandle) -> float | None:
        if not handle.callbacks or handle.dispatched_at is None:
            return None
        return handle.callbacks[0].at - handle.dispatched_at

    @staticmethod
    def _outcome(prompt: str, handle: InteractionHandle) -> Delivery | None:
        message = handle.original_message
        if message is None:
            if handle.callbacks and not any(c.accepted for c in handle.callbacks):
                return Delivery(prompt, None, "interaction not acknowledged in time (Discord error 10062)")
            return None
        for index, version in enumerate(message.history):
            if version.attachments:
                gap = version.at - message.history[index - 1].at if index else None
                return Delivery(prompt, version.timestamp.timestamp(), previous_version_gap=gap)
        current = message.current
        if current.ephemeral:
            return Delivery(prompt, None, f"refused: {current.content}")
        status = _status(current)
        if any(word in status for word in _FAILED_WORDS):
            return Delivery(prompt, None, f"{status}: {_what_happened(current)}".strip(": "))
        return None

    async def stop(self) -> dict[str, Any]:
        """Ctrl-C the bot; return the JSON line it prints (stalls, peak memory)."""
        report: dict[str, Any] = {}
        process = self.process
        if process is not None and process.returncode is None:
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

    async def close(self) -> None:
        """Stop the bot (if still running) and the fake Discord."""
        await self.stop()
        await self.discord.close()


# --------------------------------------------------------------------------- the baselines


class BaselineProcess:
    """A baseline of :mod:`bench.baselines` in its own process (as the bot is), against :attr:`api`.

    Each :meth:`run` is one JSON line to the worker's stdin and one JSON line back.
    """

    def __init__(self, api: FakeReplicate, kind: str) -> None:
        self.api = api
        self.kind = kind
        self.name = BASELINE_NAMES[kind]
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the worker process."""
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO),
            "REPLICATE_API_TOKEN": self.api.token,
        }
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
