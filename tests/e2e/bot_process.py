"""The bot as a separate process (``python -m bot``), configured only by environment variables."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from bot.settings import parse_shard_ids
from tests.e2e.conftest import DISCORD_TOKEN
from tests.fakes.discord import FakeDiscord, FakeGuild
from tests.fakes.replicate import FakeReplicate

REPO = Path(__file__).resolve().parents[2]


def bot_env(api: FakeReplicate, discord: FakeDiscord, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of ``python -m bot`` between the two fakes (its database in ``workdir``)."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "DISCORD_TOKEN": DISCORD_TOKEN,
        "REPLICATE_API_TOKEN": api.token,
        "REPLICATE_BASE_URL": api.base_url,
        "DISCORD_API_BASE": discord.http_base,
        "DISCORD_GATEWAY_URL": discord.gateway_url,
        "DATABASE_URL": f"sqlite:///{workdir / 'bot.db'}",
        **extra,
    }


async def start_python_m_bot(
    *args: str,
    env: dict[str, str],
    cwd: Path,
    stdout: int | IO[bytes] = asyncio.subprocess.PIPE,
    stderr: int | IO[bytes] = asyncio.subprocess.PIPE,
) -> asyncio.subprocess.Process:
    """Start ``python -m bot ARGS`` without blocking the loop that serves the fakes; its output piped unless
    ``stdout``/``stderr`` say otherwise (``stderr=asyncio.subprocess.STDOUT`` merges the two)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, env=env, cwd=cwd, stdout=stdout, stderr=stderr
    )


UNCHANGED_GUILD_SYNC = "the commands are as last synced to guild"
"""What the bot logs when ``IMAGINE_SYNC_GUILD``'s commands need no sync (bot/discord_app/command_sync.py)."""


class BotProcess:
    """Start, kill (SIGKILL) and stop the real bot between the two fakes; the database stays in ``workdir``.

    ``extra_env`` adds or overrides variables (``DATABASE_URL``, ``DISCORD_SHARD_COUNT``...). Several
    processes may share the fakes; give each a ``workdir`` of its own (its logs live there) and its
    own ``guild`` (the one it syncs commands to).
    """

    def __init__(
        self, api: FakeReplicate, discord: FakeDiscord, guild: FakeGuild, workdir: Path, **extra_env: str
    ) -> None:
        self.api, self.discord, self.guild = api, discord, guild
        self.workdir = workdir
        defaults = {"IMAGINE_SYNC_GUILD": str(guild.id), "LOG_LEVEL": "DEBUG"}
        self.env = bot_env(api, discord, workdir, **{**defaults, **extra_env})
        self.process: asyncio.subprocess.Process | None = None
        self.logs: list[str] = []

    def shards(self) -> list[int]:
        """The shard ids this process identifies: ``DISCORD_SHARD_IDS``, else every shard of the count."""
        count = int(self.env.get("DISCORD_SHARD_COUNT") or self.discord.shard_count)
        ids = self.env.get("DISCORD_SHARD_IDS")
        return list(parse_shard_ids(ids, count)) if ids else list(range(count))

    async def start(self, *, timeout: float = 30) -> None:
        """Start the bot and wait (``timeout`` seconds each) until it has identified each of its shards and
        synced its commands (or found them as it last synced them: a restart of an unchanged bot sends none)."""
        identified = len(self.discord.identify_payloads)
        sync_route = f"PUT /applications/*/guilds/{self.env['IMAGINE_SYNC_GUILD']}/commands"
        synced = len(self.discord.requests_for(sync_route))
        with self._new_log() as log:
            self.process = await start_python_m_bot(env=self.env, cwd=self.workdir, stdout=log, stderr=log)
        wanted = set(self.shards())
        await self.discord.wait_for(
            lambda: wanted <= {shard for shard, _ in self.discord.identified_shards[identified:]},
            timeout,
            what=f"IDENTIFY of shards {sorted(wanted)}",
        )
        log_path = Path(self.logs[-1])

        def synced_or_unchanged() -> bool:
            if len(self.discord.requests_for(sync_route)) > synced:
                return True
            return UNCHANGED_GUILD_SYNC in log_path.read_text(encoding="utf-8", errors="replace")

        await self.discord.wait_for(synced_or_unchanged, timeout, what="sync")

    def _new_log(self) -> IO[bytes]:
        path = self.workdir / f"bot-{len(self.logs)}.log"
        self.logs.append(str(path))
        return path.open("wb")

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        assert self.process is not None
        self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        """Ctrl-C, as a person would."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    def last_output(self) -> str:
        """What the latest run of the bot printed."""
        return Path(self.logs[-1]).read_text(errors="replace")

    def output(self) -> str:
        """Everything every run of the bot printed."""
        return "".join(Path(name).read_text(errors="replace") for name in self.logs)


def one_process_per_shard(
    api: FakeReplicate,
    discord: FakeDiscord,
    guilds: Sequence[FakeGuild],
    database_url: str,
    workdir: Path,
    **extra_env: str,
) -> list[BotProcess]:
    """A deployment: process ``n`` runs only shard ``n`` of ``discord.shard_count`` and syncs ``guilds[n]``
    (a guild on that shard); all share one database, each logs in a folder of its own under ``workdir``."""
    processes = []
    for shard, guild in enumerate(guilds):
        shard_dir = workdir / f"shard-{shard}"
        shard_dir.mkdir()
        env = {
            "DATABASE_URL": database_url,
            "DISCORD_SHARD_COUNT": str(discord.shard_count),
            "DISCORD_SHARD_IDS": str(shard),
            **extra_env,
        }
        processes.append(BotProcess(api, discord, guild, shard_dir, **env))
    return processes


async def stop_all(processes: Sequence[BotProcess]) -> None:
    """Stop every process; none may have printed a traceback in any of its runs."""
    await asyncio.gather(*(process.stop() for process in processes))
    for process in processes:
        assert "Traceback" not in process.output(), process.output()
