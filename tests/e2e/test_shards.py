"""Shards: one process running several, or one per process on a shared database; every guild is answered."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.discord_app.health import gateway_check
from bot.discord_app.sharding import IdentifyPacer
from tests.e2e.bot_process import one_process_per_shard, stop_all
from tests.e2e.conftest import DISCORD_TOKEN, Stack, StackFactory, is_terminal, status_of
from tests.e2e.test_cli import base_env, cli
from tests.fakes.discord import FakeDiscord, Routes
from tests.fakes.replicate import FakeReplicate


async def imagine_in_both_guilds(stack: Stack) -> None:
    """``/imagine`` in the guild of shard 0 and in that of shard 1 ends, each, with its image."""
    assert stack.discord.shard_of(stack.guild) == 0 and stack.discord.shard_of(stack.other) == 1
    handles = [await stack.imagine(guild=stack.guild), await stack.imagine(guild=stack.other)]
    for handle in handles:
        final = await stack.final_message(handle)
        assert "Done" in status_of(final), final.embeds
        assert final.attachments
    assert stack.discord.undelivered == []


async def test_one_process_runs_both_shards_it_is_told(make_stack: StackFactory) -> None:
    stack: Stack = await make_stack(discord_shards=2, shard_count=2)
    assert stack.bot is not None
    assert sorted(stack.discord.identified_shards) == [(0, 2), (1, 2)]
    await imagine_in_both_guilds(stack)
    # setup_hook runs once per process, not once per shard: one sync of IMAGINE_SYNC_GUILD.
    assert len(stack.discord.requests_for(Routes.PUT_GUILD_COMMANDS)) == 1
    health = await gateway_check(stack.bot)()
    assert health.problem is None
    assert health.fields["shards"] == {"connected": 2, "total": 2, "state": {"0": "connected", "1": "connected"}}


async def test_with_no_count_set_it_runs_as_many_shards_as_discord_recommends(make_stack: StackFactory) -> None:
    stack: Stack = await make_stack(discord_shards=2)
    assert stack.bot is not None and stack.bot.shard_count == 2
    assert sorted(stack.discord.identified_shards) == [(0, 2), (1, 2)]
    await imagine_in_both_guilds(stack)


async def test_a_shard_that_is_down_makes_the_process_unhealthy_until_it_is_back(make_stack: StackFactory) -> None:
    stack: Stack = await make_stack(discord_shards=2, shard_count=2)
    assert stack.bot is not None
    check = gateway_check(stack.bot)
    shard = stack.bot.get_shard(1)
    assert shard is not None
    await shard.disconnect()
    down = await check()
    assert down.problem == "discord: gateway connected on 1 of 2 shards (shard 1 disconnected)"
    assert down.fields["shards"]["state"] == {"0": "connected", "1": "disconnected"}
    # Its new IDENTIFY would wait 5 s for Discord's per-bucket limit (shard 1 identified just now): not here,
    # neither in the bot nor in the fake.
    stack.bot.identify_pacer = IdentifyPacer(interval=0)
    stack.discord.identify_window = 0
    identified = len(stack.discord.identify_payloads)
    await shard.connect()
    await stack.discord.wait_for(lambda: len(stack.discord.identify_payloads) > identified, 10, what="IDENTIFY")
    assert stack.discord.identified_shards[-1] == (1, 2)
    assert (await check()).problem is None
    await imagine_in_both_guilds(stack)


# --------------------------------------------------------------------------- one shard per process


async def test_two_processes_on_one_database_each_answer_the_guilds_of_their_shard(
    postgres_url: str, tmp_path: Path
) -> None:
    async with FakeReplicate(seed=13) as api, FakeDiscord(token=DISCORD_TOKEN, shard_count=2) as fake:
        guilds = [fake.add_guild("Zero", shard=0), fake.add_guild("One", shard=1)]
        processes = one_process_per_shard(api, fake, guilds, postgres_url, tmp_path)
        try:
            await asyncio.gather(*(process.start() for process in processes))
            # Each process identified its own shard, and only it.
            assert sorted(fake.identified_shards) == [(0, 2), (1, 2)]
            handles = [
                await fake.slash(
                    "imagine",
                    {"prompt": f"a fox on shard {shard}"},
                    user=guild.member("member"),
                    guild=guild,
                    channel=guild.channel("general"),
                )
                for shard, guild in enumerate(guilds)
            ]
            for shard, handle in enumerate(handles):
                assert handle.shard == (shard, 2)
                final = await handle.wait_message(lambda m: is_terminal(m), timeout=30)
                assert "Done" in status_of(final), final.embeds
                prediction = next(p for p in api.predictions.values() if p.input["prompt"] == f"a fox on shard {shard}")
                assert [a.data for a in final.attachments] == [f.data for f in prediction.files]
                # The process of that shard made the prediction; the other never heard of it.
                assert f"prediction {prediction.id} created" in processes[shard].output()
                assert prediction.id not in processes[1 - shard].output()
            assert fake.undelivered == []
            assert api.count("POST", "create") == 2
        finally:
            await stop_all(processes)


async def test_some_shards_on_sqlite_is_refused_naming_database_url(tmp_path: Path) -> None:
    env = base_env(
        DISCORD_TOKEN="t",
        REPLICATE_API_TOKEN="r",
        DISCORD_SHARD_COUNT="2",
        DISCORD_SHARD_IDS="0",
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
    )
    result = await cli(env=env, cwd=tmp_path)
    assert result.code == 2
    (line,) = result.err.splitlines()
    assert line.startswith("error: DATABASE_URL: "), line
    assert not (tmp_path / "bot.db").exists()


async def test_python_m_bot_sync_works_for_a_sharded_bot_without_connecting_a_shard(tmp_path: Path) -> None:
    async with FakeDiscord(token=DISCORD_TOKEN, shard_count=2) as fake:
        guild = fake.add_guild("Synced", shard=1)
        env = base_env(
            DISCORD_TOKEN=DISCORD_TOKEN,
            REPLICATE_API_TOKEN="r",
            DISCORD_API_BASE=fake.http_base,
            DISCORD_GATEWAY_URL=fake.gateway_url,
            DISCORD_SHARD_COUNT="2",
            DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        )
        in_guild = await cli("sync", "--guild", str(guild.id), env=env, cwd=tmp_path)
        assert in_guild.code == 0, in_guild.err
        # "synced N commands guild ID: /a, /b, …": N counts the names listed, whatever commands there are.
        head, _, names = in_guild.out.splitlines()[0].partition(": ")
        assert head == f"synced {len(names.split(', '))} commands guild {guild.id}", in_guild.out
        assert {"/imagine-history", "/imagine-info", "/describe", "/imagine-settings"} <= set(names.split(", ")), (
            in_guild.out
        )
        globally = await cli("sync", env=env, cwd=tmp_path)
        assert globally.code == 0, globally.err
        assert {c["name"] for c in fake.guild_commands[guild.id]} == {c["name"] for c in fake.global_commands}
        assert fake.identify_payloads == []
