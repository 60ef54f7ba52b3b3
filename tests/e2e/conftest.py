"""The whole bot, in process, between the fake Discord and the fake prediction API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord.gateway
import discord.http
import pytest

from bot.core import Tuning
from bot.discord_app.client import ImagineBot, configure_endpoints
from bot.jobs import PollPolicy
from bot.modelref import ModelRef
from bot.settings import Secret, Settings
from tests.fakes.discord import FakeDiscord, FakeGuild, InteractionHandle, StoredMessage
from tests.fakes.replicate import FLUX_SCHNELL, FLUX_SCHNELL_LORA, FLUX_SCHNELL_LORA_VERSION, FakeReplicate

DISCORD_TOKEN = "fake-discord-token-e2e"
LORA_REF = f"{FLUX_SCHNELL_LORA}:{FLUX_SCHNELL_LORA_VERSION}"
# Fast polling; the edit interval stays Discord's real 1.5 s unless a test asks otherwise.
TEST_TUNING = Tuning(poll=PollPolicy(first=0.05, growth=1.5, ceiling=0.2), prefer_wait=0)


@dataclass
class Stack:
    """A running bot with its two fakes."""

    api: FakeReplicate
    discord: FakeDiscord
    guild: FakeGuild
    bot: ImagineBot

    async def imagine(self, user: str = "member", **options: Any) -> InteractionHandle:
        """``/imagine`` as ``user`` in #general."""
        return await self.discord.slash(
            "imagine",
            {"prompt": "a red fox", **options},
            user=self.guild.member(user),
            guild=self.guild,
            channel=self.guild.channel("general"),
        )

    async def final_message(self, handle: InteractionHandle, timeout: float = 10.0) -> StoredMessage:
        """The interaction's message once it shows a terminal state."""
        return await handle.wait_message(lambda m: is_terminal(m), timeout=timeout)


def status_of(message: StoredMessage) -> str:
    """The Status field of the job embed."""
    for embed in message.embeds:
        for field in embed.get("fields", []):
            if field["name"] == "Status":
                return str(field["value"])
    return ""


def field_of(message: StoredMessage, name: str) -> str | None:
    """A field of the job embed, if present."""
    for embed in message.embeds:
        for field in embed.get("fields", []):
            if field["name"] == name:
                return str(field["value"])
    return None


def is_terminal(message: StoredMessage) -> bool:
    """Whether the message shows a job that has ended."""
    status = status_of(message)
    return any(word in status for word in ("Done", "Failed", "Canceled", "Timed out"))


@pytest.fixture
def restore_discord_endpoints() -> Any:
    """The bot points discord.py's class-level endpoints at the fake; put them back afterwards."""
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


StackFactory = Callable[..., Any]


@pytest.fixture
async def make_stack(tmp_path: Path, restore_discord_endpoints: Any) -> AsyncIterator[StackFactory]:
    """Start the real bot against both fakes; keyword arguments adjust settings and tuning."""
    started: list[tuple[ImagineBot, asyncio.Task[None], FakeReplicate, FakeDiscord]] = []

    async def start(
        *, api_prefix: str = "", tuning: Tuning = TEST_TUNING, models: tuple[str, ...] = (), **settings: Any
    ) -> Stack:
        api = FakeReplicate(prefix=api_prefix, seed=5)
        fake_discord = FakeDiscord(token=DISCORD_TOKEN)
        await api.start()
        await fake_discord.start()
        guild = fake_discord.add_guild("Test")
        config = Settings(
            replicate_api_token=Secret(api.token),
            discord_token=Secret(DISCORD_TOKEN),
            replicate_base_url=api.base_url,
            models=tuple(ModelRef.parse(m) for m in (FLUX_SCHNELL, LORA_REF, *models)),
            database_url=f"sqlite:///{tmp_path / 'imagine.db'}",
            discord_api_base=fake_discord.http_base,
            discord_gateway_url=fake_discord.gateway_url,
            sync_guild=guild.id,
            **settings,
        )
        configure_endpoints(config)
        bot = ImagineBot(config, tuning=tuning, guild_ready_timeout=0)
        task = asyncio.create_task(bot.start(DISCORD_TOKEN))
        started.append((bot, task, api, fake_discord))
        await fake_discord.wait_until_identified()
        await asyncio.wait_for(bot.wait_until_ready(), 10)
        return Stack(api, fake_discord, guild, bot)

    yield start
    for bot, task, api, fake_discord in started:
        await bot.close()
        await asyncio.gather(task, return_exceptions=True)
        await fake_discord.close()
        await api.close()


@pytest.fixture
async def stack(make_stack: StackFactory) -> Stack:
    """The bot with default settings."""
    return await make_stack()  # type: ignore[no-any-return]
