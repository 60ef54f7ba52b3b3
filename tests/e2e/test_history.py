"""``/imagine-history`` through the fake Discord: the member's own latest jobs here, with links, only for them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.discord_app.history import EMPTY
from tests.e2e.conftest import Stack, status_of
from tests.e2e.test_member_info import deferred_privately, slow_down
from tests.fakes.discord import CallbackType, FakeGuild
from tests.fakes.replicate import NSFW_ERROR, Scenario


async def history(stack: Stack, user: str = "member", *, guild: FakeGuild | None = None) -> dict[str, Any]:
    """Run /imagine-history and return its (ephemeral) answer's data."""
    where = guild or stack.guild
    handle = await stack.discord.slash(
        "imagine-history", {}, user=where.member(user), guild=where, channel=where.channel("general")
    )
    callback = await handle.wait_callback()
    assert callback.type == CallbackType.CHANNEL_MESSAGE and callback.ephemeral, callback
    return dict(callback.data)


async def job_ended(stack: Stack, job_id: str) -> None:
    """Wait (up to 5 s) until the journal has the job's end, written after its final message went out."""
    assert stack.bot is not None
    for _ in range(250):
        job = await stack.bot.core.repository.get_job(job_id)
        if job is not None and job.ended_at is not None:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"job {job_id} did not end")


def link(stack: Stack, message_id: int, guild: FakeGuild | None = None) -> str:
    where = guild or stack.guild
    return f"https://discord.com/channels/{where.id}/{where.channel('general').id}/{message_id}"


async def test_nothing_yet_is_a_friendly_line(stack: Stack) -> None:
    answer = await history(stack)
    assert "no /imagine jobs in this server yet" in answer["content"]
    assert not answer.get("embeds")


async def test_the_members_own_jobs_here_newest_first_with_links(stack: Stack) -> None:
    done = await stack.final_message(await stack.imagine(prompt="a lighthouse at dusk --seed 3", count=2))
    stack.api.set_default_scenario(nsfw_dropped=1)
    failed = await stack.final_message(await stack.imagine(prompt="a *bold* fox"))
    assert "Failed" in status_of(failed)
    stack.api.set_default_scenario(Scenario())
    await stack.final_message(await stack.imagine("moderator", prompt="someone else's"))
    await stack.final_message(await stack.imagine(prompt="in the other server", guild=stack.other))

    [embed] = (await history(stack))["embeds"]
    first, second = embed["description"].split("\n\n")
    assert first.startswith("<t:") and ":R>" in first
    assert f"❌ Failed: {NSFW_ERROR}" in first and f"[open]({link(stack, failed.id)})" in first
    assert first.endswith("> a \\*bold\\* fox")  # markdown in a prompt shows as typed
    assert "✅ 2 images" in second and "`black-forest-labs/flux-schnell`" in second
    assert f"[open]({link(stack, done.id)})" in second
    assert second.endswith("> a lighthouse at dusk")  # the prompt the model got
    assert "someone else" not in embed["description"] and "other server" not in embed["description"]

    [elsewhere] = (await history(stack, guild=stack.other))["embeds"]
    assert "in the other server" in elsewhere["description"] and "lighthouse" not in elsewhere["description"]


async def test_a_job_still_running_shows_in_progress_with_its_link(stack: Stack) -> None:
    stack.api.set_default_scenario(Scenario.manual())
    handle = await stack.imagine(prompt="slow fox")
    placeholder = await handle.wait_message()
    prediction = await stack.api.wait_for_prediction()
    [embed] = (await history(stack))["embeds"]
    assert "⏳ In progress" in embed["description"]
    assert f"[open]({link(stack, placeholder.id)})" in embed["description"]
    stack.api.finish(prediction.id)
    await stack.final_message(handle)


async def test_a_result_posted_anew_is_the_one_linked(stack: Stack) -> None:
    placeholder, repost = await stack.repost_after_deletion("a lighthouse")
    await job_ended(stack, repost.embeds[0]["footer"]["text"].removeprefix("job "))
    [embed] = (await history(stack))["embeds"]
    assert f"[open]({link(stack, repost.id)})" in embed["description"]
    assert str(placeholder.id) not in embed["description"]


async def test_the_command_is_synced_for_members(stack: Stack) -> None:
    [command] = [c for c in stack.discord.guild_commands[stack.guild.id] if c["name"] == "imagine-history"]
    assert not command.get("options")
    assert command.get("default_member_permissions") is None  # every member may use it


async def test_a_slow_database_defers_privately_then_the_history_takes_its_place(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.bot is not None
    slow_down(monkeypatch, stack.bot.core.journal, "member_history")
    where = stack.guild
    handle = await stack.discord.slash(
        "imagine-history", {}, user=where.member("member"), guild=where, channel=where.channel("general")
    )
    assert (await deferred_privately(handle))["content"] == str(EMPTY)
