"""One process running several shards: every guild's ``/imagine`` is answered, commands sync once."""

from __future__ import annotations

from bot.discord_app.health import gateway_check
from bot.discord_app.sharding import IdentifyPacer
from tests.e2e.conftest import Stack, StackFactory, status_of
from tests.fakes.discord import Routes


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
    # Its new IDENTIFY would wait 5 s for Discord's per-bucket limit (shard 1 identified just now): not here.
    stack.bot.identify_pacer = IdentifyPacer(interval=0)
    identified = len(stack.discord.identify_payloads)
    await shard.connect()
    await stack.discord.wait_for(lambda: len(stack.discord.identify_payloads) > identified, 10, what="IDENTIFY")
    assert stack.discord.identified_shards[-1] == (1, 2)
    assert (await check()).problem is None
    await imagine_in_both_guilds(stack)
