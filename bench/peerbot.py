"""The peer a member would otherwise run: a bot built on Replicate's official client, ``python -m bench.peerbot``.

The smallest real discord.py bot that does what such bots do, written the way their READMEs show it and
with every default: a :class:`discord.Client` with an application-command tree holding one ``/imagine prompt``
command, synced to one server. On ``/imagine`` it defers (Discord shows "thinking…"), runs
``await replicate.Client(api_token=..., base_url=...).async_run(model, input={"prompt": prompt})``, reads each
output file (``FileOutput.aread()``) and edits the deferred response to carry them
(``interaction.edit_original_response(attachments=[discord.File(...)])``). It shows no progress: the official
client tells it nothing before the end.

It knows nothing of imagine-bot: it reads only the environment :class:`bench.clients.ImagineBotClient` gives
a bot process (``DISCORD_TOKEN``, ``DISCORD_API_BASE``, ``DISCORD_GATEWAY_URL``, ``IMAGINE_SYNC_GUILD``,
``REPLICATE_API_TOKEN``, ``REPLICATE_BASE_URL``) and ignores the rest. Like :mod:`bench.botproc`, ``SIGINT``
prints one JSON line on stdout (``{"ru_maxrss_kib": ...}``) and stops it; ``SIGUSR1`` is ignored (it has no
event-loop record to restart).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import resource
import signal
import sys
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands
from replicate.client import Client as ReplicateClient

from bench.baselines import MODEL, file_output

FAILED_PREFIX = "❌ Failed"
"""How the peer's answer starts when a job fails (the benchmark counts it failed)."""


class PeerBot(discord.Client):
    """``/imagine``: defer, ``async_run`` with its defaults, read the files, edit the response to carry them."""

    def __init__(self, replicate: ReplicateClient, guild_id: int) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(intents=intents)
        self.replicate = replicate
        self.guild = discord.Object(id=guild_id)
        self.tree = app_commands.CommandTree(self)
        self.tree.add_command(app_commands.Command(name="imagine", description="Imagine an image", callback=imagine))

    async def setup_hook(self) -> None:
        """Sync ``/imagine`` to the one server (a guild sync takes effect at once)."""
        self.tree.copy_global_to(guild=self.guild)
        await self.tree.sync(guild=self.guild)


async def imagine(interaction: discord.Interaction[PeerBot], prompt: str) -> None:
    """Generate an image from ``prompt``."""
    replicate = interaction.client.replicate
    await interaction.response.defer()
    try:
        output = await replicate.async_run(MODEL, input={"prompt": prompt})
        files = []
        for item in output if isinstance(output, list) else [output]:
            file = file_output(item, replicate)
            name = PurePosixPath(urlsplit(file.url).path).name or "image.webp"
            files.append(discord.File(io.BytesIO(await file.aread()), filename=name))
        await interaction.edit_original_response(attachments=files)
    except Exception as exc:  # a failed job is shown to the member, as such bots do
        await interaction.edit_original_response(content=f"{FAILED_PREFIX}: {type(exc).__name__}: {exc}"[:2000])


def _point_discord_py_at(api_base: str | None, gateway_url: str | None) -> None:
    """``DISCORD_API_BASE`` / ``DISCORD_GATEWAY_URL`` (the fake Discord); discord.py keeps both process-wide."""
    if api_base:
        base = api_base.rstrip("/")
        discord.http.Route.BASE = base if "/api/v" in base else f"{base}/api/v10"
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


async def _run() -> int:
    env = os.environ
    _point_discord_py_at(env.get("DISCORD_API_BASE"), env.get("DISCORD_GATEWAY_URL"))
    replicate = ReplicateClient(api_token=env["REPLICATE_API_TOKEN"], base_url=env.get("REPLICATE_BASE_URL"))
    bot = PeerBot(replicate, int(env["IMAGINE_SYNC_GUILD"]))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    async with bot:
        runner = asyncio.create_task(bot.start(env["DISCORD_TOKEN"]), name="bot")
        stopper = asyncio.create_task(stop.wait(), name="stop")
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        print(json.dumps({"ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
        stopper.cancel()
        await bot.close()
        await asyncio.gather(runner, stopper, return_exceptions=True)
    await replicate._async_client.aclose()
    return 0


def main() -> int:
    """Entry point."""
    return asyncio.run(_run())


if __name__ == "__main__":
    sys.exit(main())
