"""Commands that sync themselves: globally at start-up only when the tree changed, once for many processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.discord_app.client import ImagineBot
from bot.discord_app.command_sync import scope_of
from tests.e2e.bot_process import BotProcess, stop_all
from tests.e2e.conftest import DISCORD_TOKEN, StackFactory
from tests.e2e.test_cli import base_env, cli
from tests.fakes.discord import FakeDiscord, Routes
from tests.fakes.replicate import FakeReplicate


def global_syncs(discord: FakeDiscord) -> int:
    return len(discord.requests_for(Routes.PUT_GLOBAL_COMMANDS))


async def test_a_start_syncs_only_when_the_commands_changed(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await make_stack()
    assert global_syncs(stack.discord) == 1
    assert "imagine" in {command["name"] for command in stack.discord.global_commands}
    guild_syncs = len(stack.discord.requests_for(Routes.PUT_GUILD_COMMANDS))
    assert guild_syncs == 1  # IMAGINE_SYNC_GUILD: the development guild too

    await stack.restart()
    assert global_syncs(stack.discord) == 1  # unchanged: nothing sent
    assert len(stack.discord.requests_for(Routes.PUT_GUILD_COMMANDS)) == guild_syncs  # nor to the guild

    # A new version of the bot, whose /imagine says something else (the tree is complete when it syncs).
    sync_commands = ImagineBot.sync_commands

    async def changed_then_synced(bot: ImagineBot) -> None:
        command = bot.tree.get_command("imagine")
        assert command is not None
        command.description = "Turn a text prompt into images"
        await sync_commands(bot)

    monkeypatch.setattr(ImagineBot, "sync_commands", changed_then_synced)
    await stack.restart()
    assert global_syncs(stack.discord) == 2
    assert len(stack.discord.requests_for(Routes.PUT_GUILD_COMMANDS)) == guild_syncs + 1
    (imagine,) = [command for command in stack.discord.global_commands if command["name"] == "imagine"]
    assert imagine["description"] == "Turn a text prompt into images"

    await stack.restart()
    assert global_syncs(stack.discord) == 2


async def test_a_refused_sync_is_not_recorded_and_the_next_start_tries_again(make_stack: StackFactory) -> None:
    stack = await make_stack()
    assert stack.bot is not None
    scope = scope_of(None, stack.bot.application_id)
    assert await stack.bot.core.repository.synced_digest(scope) is not None
    assert await stack.bot.core.repository.synced_digest(scope_of(None, 1)) is None  # another application's
    await stack.bot.core.repository.sync_commands_once(scope, "0" * 64, _noop, now=stack.bot.core.clock.now())
    stack.discord.fail_next(Routes.PUT_GLOBAL_COMMANDS, status=503)
    await stack.restart()
    assert stack.bot is not None
    assert await stack.bot.core.repository.synced_digest(scope) == "0" * 64  # Discord refused: not recorded
    await stack.restart()
    assert global_syncs(stack.discord) >= 2
    assert stack.bot is not None
    assert await stack.bot.core.repository.synced_digest(scope) != "0" * 64


async def _noop() -> None:
    return None


async def test_two_processes_starting_at_once_on_postgresql_sync_once(postgres_url: str, tmp_path: Path) -> None:
    async with FakeReplicate(seed=3) as api, FakeDiscord(token=DISCORD_TOKEN, shard_count=2) as fake:
        guilds = [fake.add_guild("Zero", shard=0), fake.add_guild("One", shard=1)]
        processes = []
        for shard, guild in enumerate(guilds):
            workdir = tmp_path / f"shard-{shard}"
            workdir.mkdir()
            env = {"DATABASE_URL": postgres_url, "DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": str(shard)}
            processes.append(BotProcess(api, fake, guild, workdir, **env))
        try:
            await asyncio.gather(*(process.start() for process in processes))
            assert global_syncs(fake) == 1
            outputs = [process.output() for process in processes]
            assert sum("synced" in out and "commands globally" in out for out in outputs) == 1, outputs
        finally:
            await stop_all(processes)


async def test_python_m_bot_sync_always_syncs_and_records_the_global_digest(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = await make_stack()
    assert global_syncs(stack.discord) == 1
    await stack.stop_bot()
    env = base_env(
        DISCORD_TOKEN=DISCORD_TOKEN,
        DISCORD_API_BASE=stack.discord.http_base,
        DISCORD_GATEWAY_URL=stack.discord.gateway_url,
        DATABASE_URL=stack.settings.database_url,
    )
    result = await cli("sync", env=env, cwd=tmp_path)
    assert result.code == 0, result.err
    assert global_syncs(stack.discord) == 2  # forced, though nothing changed
    in_guild = await cli("sync", "--guild", str(stack.other.id), env=env, cwd=tmp_path)
    assert in_guild.code == 0, in_guild.err
    assert global_syncs(stack.discord) == 2
    await stack.start_bot()
    assert global_syncs(stack.discord) == 2  # what sync recorded is what the bot has
    stack.discord.fail_next(Routes.PUT_GLOBAL_COMMANDS, status=403)
    refused = await cli("sync", env=env, cwd=tmp_path)
    assert refused.code == 1 and "Discord refused the sync globally: 403" in refused.err, refused.err
    assert "Traceback" not in refused.err
