"""The clients under comparison, each driving its own instance of the fake prediction API.

* :class:`ImagineBotClient`: the real bot, in its own process (``python -m bench.botproc``,
  configured by environment variables like ``python -m bot``, production tuning), logged in to
  the fake Discord; a job is one ``/imagine`` interaction, and it is *delivered* when the fake
  Discord stores the first version of the interaction's message that carries the image.
  With ``webhooks=True`` the process also serves its HTTP server and the API pushes results to it
  (``IMAGINE_HTTP_LISTEN``, ``IMAGINE_WEBHOOK_URL``): polling is then only a safety net. Each delivery
  lists the percentages the job's message showed before the image (:mod:`bench.progress`).
* :class:`OfficialClientBot`: the peer a member would otherwise run, a discord.py bot built on
  Replicate's official client (:mod:`bench.peerbot`), driven and *delivered* exactly as the real bot.
* :class:`~bench.processes.BaselineProcess`: one of the two baselines of :mod:`bench.baselines` (Replicate's
  official client, or the naive create / sleep 1 s / get loop), also in its own process; a job is
  delivered when its output file is in hand.

Every client answers :meth:`Client.run` with one :class:`~bench.baselines.Delivery` per prompt:
the wall-clock time (``time.time()``) at which the image was delivered, or why it was not. The
prompts are unique, which is how :mod:`bench.measure` finds each job's prediction in the fake API.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, Self

from bench.baselines import Delivery
from bench.peerbot import FAILED_PREFIX
from bench.processes import InstrumentedBot, child_env
from bench.progress import field_value, percentages_shown, status_of
from bot.jobs.webhooks import WEBHOOK_PATH
from tests.fakes.discord import FakeDiscord, FakeGuild, FakeMember, InteractionHandle
from tests.fakes.replicate import FakeReplicate

DISCORD_TOKEN = "bench-discord-token"
_FAILED_WORDS = ("Failed", "Canceled", "Timed out")

WEBHOOKS_NAME = "imagine-bot (webhooks)"
"""The name of an :class:`ImagineBotClient` whose API pushes results by webhook."""
PEER_NAME = "official client bot"
"""The name of :class:`OfficialClientBot`."""
PEER_LAUNCHER = "bench.peerbot"


def free_port() -> int:
    """A TCP port of 127.0.0.1 free just now (the bot process binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Recorded(Protocol):
    """What :mod:`bench.measure` reads of a client: its name and the fakes that recorded its work."""

    name: str
    api: FakeReplicate

    @property
    def discord(self) -> FakeDiscord | None:
        """The fake Discord the client's messages go to (``None``: a library client, which posts nowhere)."""
        ...


class Client(Recorded, Protocol):
    """A way of turning prompts into images in hand, against :attr:`api`."""

    async def run(self, prompts: Sequence[str], timeout: float) -> list[Delivery]:
        """Start one job per prompt at once; return when all have ended or ``timeout`` passed."""
        ...

    async def close(self) -> None:
        """Release connections and processes."""
        ...


# --------------------------------------------------------------------------- the real bot


async def _poll_until(predicate: Callable[[], bool], timeout: float, *, what: str) -> None:
    """Check ``predicate`` every 0.1 s until it holds; ``TimeoutError`` naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.1)


class ImagineBotClient:
    """The real bot, between a fake Discord and :attr:`api`: one process, or a deployment of several.

    By default one process runs every shard Discord recommends (one) on its own SQLite file, in
    one server. With ``shards`` = N, N processes run one shard each (``DISCORD_SHARD_COUNT`` = N,
    ``DISCORD_SHARD_IDS`` = k) against a fake Discord of N shards, all on ``database_url``; the
    ``guilds`` servers are spread over the shards in turn, and the ``members`` over the servers.
    """

    name = "imagine-bot"
    shows_progress = True
    """Its messages show the prediction's progress: each delivery lists the percentages shown."""

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
        shards: int | None = None,
        guilds: int = 1,
        database_url: str | None = None,
        name: str | None = None,
        webhooks: bool = False,
    ) -> None:
        """``launcher`` is the module run with ``python -m`` and ``extra_env`` goes on top of its environment
        (to try a variant of the bot; the benchmark itself uses the defaults). ``database_url``: default, a
        SQLite file in the process's directory (one process only). ``webhooks``: each process serves its HTTP
        server on a free port of 127.0.0.1 (``IMAGINE_HTTP_LISTEN``) and has the API push results there
        (``IMAGINE_WEBHOOK_URL``; the signing secret read once from the API), as a deployment reachable by
        the API would be configured; the name then defaults to ``imagine-bot (webhooks)``."""
        if shards is not None and shards > 1 and database_url is None:
            raise ValueError("several processes need one shared database_url")
        self.api = api
        self.webhooks = webhooks
        if name is not None:
            self.name = name
        elif webhooks:
            self.name = WEBHOOKS_NAME
        self.launcher = launcher
        self.extra_env = dict(extra_env or {})
        self.workdir = workdir
        self.shards = shards
        self.database_url = database_url
        self.discord = FakeDiscord(token=DISCORD_TOKEN, shard_count=shards or 1)
        self.settings_env = {
            "IMAGINE_MAX_RUNNING": str(max_running),
            "IMAGINE_MAX_RUNNING_PER_SERVER": str(max_running_per_server),
            "LOG_LEVEL": log_level,
        }
        self._guild_count = guilds
        self._member_count = members
        self._seats: list[tuple[FakeGuild, FakeMember]] = []
        self._turn = 0
        self.guilds: list[FakeGuild] = []
        self.processes: list[InstrumentedBot] = []
        self.last_push_s = 0.0
        """Seconds the last :meth:`run` took to push its interactions through the fake Discord."""

    @property
    def guild(self) -> FakeGuild | None:
        """The first server."""
        return self.guilds[0] if self.guilds else None

    @property
    def report(self) -> dict[str, Any] | None:
        """The (first) process's report, once stopped."""
        return self.processes[0].report if self.processes else None

    def _add_guilds(self) -> None:
        """The servers, in turn on each shard; member i in server i mod the number of servers."""
        names = ["Bench"] if self._guild_count == 1 else [f"Bench {g}" for g in range(self._guild_count)]
        self.guilds = [
            self.discord.add_guild(name, shard=None if self.shards is None else g % self.shards)
            for g, name in enumerate(names)
        ]
        self._seats = []
        for i in range(self._member_count):
            guild = self.guilds[i % len(self.guilds)]
            self._seats.append((guild, guild.add_member(f"member-{i:03d}")))

    def _workdir(self, shard: int | None) -> Path:
        return self.workdir if shard is None else self.workdir / f"shard-{shard}"

    def _env(self, shard: int | None) -> dict[str, str]:
        """The environment of the process that runs ``shard`` (``None``: all): ``python -m bot``'s, as in the tests."""
        guild = self.guilds[0] if shard is None else next(g for g in self.guilds if self.discord.shard_of(g) == shard)
        env = child_env(
            {
                "DISCORD_TOKEN": DISCORD_TOKEN,
                "REPLICATE_API_TOKEN": self.api.token,
                "REPLICATE_BASE_URL": self.api.base_url,
                "DISCORD_API_BASE": self.discord.http_base,
                "DISCORD_GATEWAY_URL": self.discord.gateway_url,
                "IMAGINE_SYNC_GUILD": str(guild.id),
                "DATABASE_URL": self.database_url or f"sqlite:///{self._workdir(shard) / 'bot.db'}",
                **self.settings_env,
                **self.extra_env,
            }
        )
        if shard is not None:
            env |= {"DISCORD_SHARD_COUNT": str(self.shards), "DISCORD_SHARD_IDS": str(shard)}
        if self.webhooks:
            port = free_port()
            env |= {
                "IMAGINE_HTTP_LISTEN": f"127.0.0.1:{port}",
                "IMAGINE_WEBHOOK_URL": f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
            }
        return env

    async def start(self) -> None:
        """Start the fake Discord and the bot process(es); return once each has logged in and, with several,
        each counts all of them live (so that each takes its share of the API budget)."""
        await self.discord.start()
        self._add_guilds()
        shard_ids: list[int | None] = [None] if self.shards is None else list(range(self.shards))
        self.processes = [InstrumentedBot(self._workdir(shard), self._env(shard), self.launcher) for shard in shard_ids]
        await asyncio.gather(*(process.start() for process in self.processes))
        synced = "PUT /applications/*/guilds/*/commands"
        count = len(self.processes)
        await self.discord.wait_for(lambda: len(self.discord.requests_for(synced)) >= count, 60, what="command sync")
        wanted = set(range(self.shards or 1))
        await self.discord.wait_for(
            lambda: wanted <= {shard for shard, _ in self.discord.identified_shards}, 60, what="IDENTIFY"
        )
        if count > 1:
            await _poll_until(
                lambda: all(process.live_processes() == count for process in self.processes),
                60,
                what=f"every process counting {count} live processes",
            )

    @property
    def pid(self) -> int:
        """The (first) bot process's id."""
        return self.processes[0].pid

    def rss_kib(self) -> int | None:
        """The (first) bot process's resident memory now, in KiB."""
        return self.processes[0].rss_kib()

    def reset_monitor(self) -> None:
        """Restart every bot process's event-loop stall record (SIGUSR1)."""
        for process in self.processes:
            process.reset_monitor()

    async def run(self, prompts: Sequence[str], timeout: float, rate: float | None = None) -> list[Delivery]:
        """Push one ``/imagine`` per prompt (members in turn), then wait for every message to end.

        ``rate``: push that many interactions per second instead of all at once.
        """
        handles: list[InteractionHandle] = []
        pushing = time.monotonic()
        for count, prompt in enumerate(prompts):
            if rate:
                await asyncio.sleep(max(0.0, pushing + count / rate - time.monotonic()))
            guild, member = self._seats[self._turn % len(self._seats)]
            self._turn += 1
            handles.append(
                await self.discord.slash(
                    "imagine", {"prompt": prompt}, user=member, guild=guild, channel=guild.channel("general")
                )
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

    def _outcome(self, prompt: str, handle: InteractionHandle) -> Delivery | None:
        message = handle.original_message
        if message is None:
            if handle.callbacks and not any(c.accepted for c in handle.callbacks):
                return Delivery(prompt, None, "interaction not acknowledged in time (Discord error 10062)")
            return None
        for index, version in enumerate(message.history):
            if version.attachments:
                gap = version.at - message.history[index - 1].at if index else None
                shown = None
                if self.shows_progress:
                    shown = [(item.at, item.percent) for item in percentages_shown(message.history)]
                return Delivery(prompt, version.timestamp.timestamp(), previous_version_gap=gap, percentages=shown)
        current = message.current
        if current.ephemeral:
            return Delivery(prompt, None, f"refused: {current.content}")
        if current.content.startswith(FAILED_PREFIX):
            return Delivery(prompt, None, current.content)
        status = status_of(current)
        if any(word in status for word in _FAILED_WORDS):
            return Delivery(prompt, None, f"{status}: {field_value(current, 'What happened')}".strip(": "))
        return None

    async def stop(self) -> dict[str, Any]:
        """Ctrl-C every bot process; return the (first) one's JSON line (stalls, peak memory)."""
        reports = await asyncio.gather(*(process.stop() for process in self.processes))
        return reports[0] if reports else {}

    async def close(self) -> None:
        """Stop the bot (if still running) and the fake Discord."""
        await self.stop()
        await self.discord.close()

    async def __aenter__(self) -> Self:
        """Start it (:meth:`start`); closed on the way out, or at once if it does not start."""
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class OfficialClientBot(ImagineBotClient):
    """The peer a member would otherwise run (:mod:`bench.peerbot`): a discord.py bot on Replicate's official
    client, in its own process, logged in to its own fake Discord, against :attr:`api`.

    It is driven exactly as the real bot is (one ``/imagine`` per prompt, members in turn) and *delivered* the
    same way: when the fake Discord stores the version of the interaction's message that carries the image.
    It shows no progress, so its deliveries list no percentages.
    """

    name = PEER_NAME
    shows_progress = False

    def __init__(self, api: FakeReplicate, workdir: Path, *, members: int = 8) -> None:
        super().__init__(api, workdir, max_running=1, max_running_per_server=1, members=members, launcher=PEER_LAUNCHER)
