"""The whole bot, in process, between the fake Discord and the fake prediction API."""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord.gateway
import discord.http
import pytest

from bot.api.modelref import ModelRef
from bot.core import Tuning
from bot.discord_app.client import ImagineBot, configure_endpoints
from bot.discord_app.presenter import DiscordPresenter
from bot.jobs.engine import Backoff, PollPolicy
from bot.settings import Secret, Settings
from tests.conftest import FAST_LOOKUP
from tests.fakes.discord import FakeDiscord, FakeGuild, InteractionHandle, MessageVersion, Routes, StoredMessage
from tests.fakes.replicate import (
    FLUX_SCHNELL,
    FLUX_SCHNELL_LORA,
    FLUX_SCHNELL_LORA_VERSION,
    FakeReplicate,
    Scenario,
)
from tests.fakes.replicate.vocabulary import JsonDict

DISCORD_TOKEN = "fake-discord-token-e2e"
LORA_REF = f"{FLUX_SCHNELL_LORA}:{FLUX_SCHNELL_LORA_VERSION}"
# Fast polling; the edit budget stays Discord's real 5 edits per 5 s unless a test asks otherwise (the fake
# Discord's limit follows the tuning's: a test that compresses time compresses both).
TEST_TUNING = Tuning(
    poll=PollPolicy(blind=Backoff(first=0.05, growth=1.5, ceiling=0.2)), prefer_wait=0, lookup_delays=FAST_LOOKUP
)


CLOSE_BOUND = 90.0
"""Seconds a bot may take to close (far past any bound of its own) before the test fails, saying where it hung."""


async def imagine_in(
    discord: FakeDiscord, guild: FakeGuild, options: Mapping[str, Any], user: str = "member", **interaction: Any
) -> InteractionHandle:
    """``/imagine`` with ``options`` as the member named ``user`` in #general of ``guild``; ``interaction`` goes
    to the fake's ``slash`` (``token_lifetime``, ``attachment_size_limit``...)."""
    return await discord.slash(
        "imagine", options, user=guild.member(user), guild=guild, channel=guild.channel("general"), **interaction
    )


@dataclass
class Stack:
    """A running bot with its two fakes; ``guild`` and ``other`` are two servers it is in."""

    api: FakeReplicate
    discord: FakeDiscord
    guild: FakeGuild
    other: FakeGuild
    settings: Settings
    tuning: Tuning
    bot: ImagineBot | None = None
    task: asyncio.Task[None] | None = None

    async def start_bot(self) -> None:
        """Start (or start again) the bot process's in-process twin with the same settings and database."""
        identified = len(self.discord.identify_payloads)
        configure_endpoints(self.settings)
        serve_http = self.settings.http_listen is not None
        self.bot = ImagineBot(self.settings, tuning=self.tuning, guild_ready_timeout=0, serve_http=serve_http)
        self.task = asyncio.create_task(self.bot.start(DISCORD_TOKEN))
        # Generous: a restart within 5 s of the last IDENTIFY waits its turn (Discord's identify limit, which
        # the fake enforces), and a loaded CI machine adds to it.
        await self.discord.wait_for(lambda: len(self.discord.identify_payloads) > identified, 30, what="IDENTIFY")
        await asyncio.wait_for(self.bot.wait_until_ready(), 30)

    async def stop_bot(self) -> None:
        """Close the bot cleanly; a close that hangs fails the test with every task's stack, not the run."""
        try:
            if self.bot is not None:
                await asyncio.wait_for(self.bot.close(), CLOSE_BOUND)
            if self.task is not None:
                await asyncio.wait_for(asyncio.gather(self.task, return_exceptions=True), CLOSE_BOUND)
        except TimeoutError:
            stacks = io.StringIO()
            for task in asyncio.all_tasks():
                task.print_stack(limit=12, file=stacks)
            if self.task is not None:
                self.task.cancel()
            pytest.fail(f"the bot did not close within {CLOSE_BOUND:g}s; its tasks:\n{stacks.getvalue()}")
        finally:
            self.bot, self.task = None, None

    async def restart(self) -> None:
        """Stop and start the bot again on the same database."""
        await self.stop_bot()
        await self.start_bot()

    async def imagine(
        self, user: str = "member", *, guild: FakeGuild | None = None, **options: Any
    ) -> InteractionHandle:
        """``/imagine`` as ``user`` in #general of ``guild`` (default: the first server)."""
        return await imagine_in(self.discord, guild or self.guild, {"prompt": "a red fox", **options}, user)

    async def admin(
        self, command: str, user: str = "moderator", *, guild: FakeGuild | None = None, **options: Any
    ) -> InteractionHandle:
        """``/imagine-admin COMMAND`` (e.g. ``"models allow"``) as ``user``."""
        where = guild or self.guild
        return await self.discord.slash(
            f"imagine-admin {command}", options, user=where.member(user), guild=where, channel=where.channel("general")
        )

    async def models_offered(self, user: str = "member", typed: str = "") -> list[str]:
        """The models ``/imagine``'s autocomplete offers ``user`` who has typed ``typed`` into the model option."""
        handle = await self.discord.autocomplete(
            "imagine",
            {"prompt": "x", "model": typed},
            focused="model",
            user=self.guild.member(user),
            guild=self.guild,
            channel=self.guild.channel("general"),
        )
        return [choice["value"] for choice in (await handle.wait_callback()).data["choices"]]

    async def final_message(self, handle: InteractionHandle, timeout: float = 10.0) -> StoredMessage:
        """The interaction's message once it shows a terminal state."""
        return await handle.wait_message(lambda m: is_terminal(m), timeout=timeout)

    async def imagine_deleted_before_the_end(self) -> InteractionHandle:
        """``/imagine`` whose message someone deletes while it runs; returns once its prediction succeeded."""
        self.api.set_default_scenario(Scenario.manual())
        handle = await self.imagine()
        placeholder = await handle.wait_message()
        prediction = await self.api.wait_for_prediction()
        await self.discord.delete_message(placeholder)
        self.api.finish(prediction.id)
        return handle

    def presenter_of(self, message: StoredMessage) -> DiscordPresenter:
        """The presenter of the job ``message`` shows (the bot keeps ended jobs a while)."""
        assert self.bot is not None
        job = self.bot.core.engine.job(job_id_of(message))
        assert job is not None, f"the bot does not know the job of {message!r}"
        assert isinstance(job.presenter, DiscordPresenter)
        return job.presenter

    def assert_paced(self, message: StoredMessage) -> None:
        """The message's edits spent Discord's budget as the bot paces them (the tuning's): no 429; progress
        edits one gap apart, at most ``limit - 1`` of them in any window; the final within the limit."""
        window, limit = self.tuning.edit_window, self.tuning.edit_limit
        assert [edit for edit in self.discord.rate_limited if edit.message_id == message.id] == []
        edits = [version.at for version in message.history if version.route in EDIT_ROUTES]
        progress = edits[:-1] if is_terminal(message) else edits
        gap = window / (limit - 1)
        # The fake stamps a version on arrival; the bot counts the gap from the answer before: never less.
        assert all(later - earlier >= gap for earlier, later in itertools.pairwise(progress)), (gap, edits)
        assert all(sum(1 for later in progress if at <= later < at + window) < limit for at in progress), edits
        assert all(sum(1 for later in edits if at <= later < at + window) <= limit for at in edits), edits

    async def repost_after_deletion(self, prompt: str) -> tuple[StoredMessage, StoredMessage]:
        """``/imagine prompt`` whose placeholder is deleted while it runs: (placeholder, the result posted anew)."""
        self.api.set_default_scenario(Scenario.manual())
        handle = await self.imagine(prompt=prompt)
        placeholder = await handle.wait_message()
        prediction = await self.api.wait_for_prediction()
        await self.discord.delete_message(placeholder)
        self.api.finish(prediction.id)
        channel = self.guild.channel("general")
        repost = await self.discord.wait_for(
            lambda: next((m for m in self.discord.messages_in(channel) if m.attachments), None), 10, what="repost"
        )
        return placeholder, repost


EDIT_ROUTES = (*Routes.WEBHOOK_EDITS, Routes.EDIT_MESSAGE)
"""The routes that edit a message, each counted under Discord's limit of edits per message."""


def job_id_of(message: StoredMessage) -> str:
    """The id of the job a message shows (its embed's footer)."""
    return str(message.embeds[0]["footer"]["text"]).split()[-1]  # "job ID", in the server's language


def status_of(message: StoredMessage | MessageVersion) -> str:
    """The Status field of the job embed (of the message now, or of one of its versions)."""
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
    stacks: list[Stack] = []

    async def start(
        *,
        api_prefix: str = "",
        tuning: Tuning = TEST_TUNING,
        models: tuple[str, ...] = (),
        discord_shards: int = 1,
        api_models: Mapping[str, JsonDict] | None = None,
        **settings: Any,
    ) -> Stack:
        """``discord_shards``: the count the fake Discord recommends; ``guild`` is on shard 0, ``other`` on the last.

        ``api_models``: what the fake API serves besides its default models, ``owner/name`` → cog
        ``openapi_schema``, registered before the bot first reads from it.
        """
        api = FakeReplicate(prefix=api_prefix, seed=5)
        for ref, schema in (api_models or {}).items():
            api.add_model(ref, schema=schema)
        fake_discord = FakeDiscord(
            token=DISCORD_TOKEN,
            shard_count=discord_shards,
            edit_limit=tuning.edit_limit,
            edit_window=tuning.edit_window,
        )
        await api.start()
        await fake_discord.start()
        guild = fake_discord.add_guild("Test", shard=0)
        other = fake_discord.add_guild("Other", shard=discord_shards - 1)
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
        stack = Stack(api, fake_discord, guild, other, config, tuning)
        stacks.append(stack)
        await stack.start_bot()
        return stack

    yield start
    for stack in stacks:
        await stack.stop_bot()
        await stack.discord.close()
        await stack.api.close()


@pytest.fixture
async def stack(make_stack: StackFactory) -> Stack:
    """The bot with default settings."""
    return await make_stack()  # type: ignore[no-any-return]
