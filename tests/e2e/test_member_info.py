"""``/imagine-info`` through the fake Discord: what a member may still do here, only for them, only theirs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.storage import JobRecord
from tests.e2e.conftest import LORA_REF, Stack, StackFactory, job_id_of
from tests.e2e.test_answer_deadline import SLOW_CHECK
from tests.e2e.test_budget import PRICES
from tests.e2e.test_moderation import answer
from tests.e2e.test_preferences import settings
from tests.e2e.test_roles import add_vip
from tests.fakes.discord import CallbackType, FakeGuild, InteractionHandle
from tests.fakes.replicate import FLUX_SCHNELL, FLUX_SCHNELL_LORA, Scenario


async def info(stack: Stack, user: str = "member", *, guild: FakeGuild | None = None) -> dict[str, Any]:
    """Run /imagine-info as ``user`` and return its (ephemeral) embed."""
    where = guild or stack.guild
    handle = await stack.discord.slash(
        "imagine-info", {}, user=where.member(user), guild=where, channel=where.channel("general")
    )
    callback = await handle.wait_callback()
    assert callback.type == CallbackType.CHANNEL_MESSAGE and callback.ephemeral, callback
    [embed] = callback.data["embeds"]
    return dict(embed)


def slow_down(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> None:
    """``owner.name`` (a read) takes :data:`SLOW_CHECK` seconds: past Discord's 3 s, only a defer saves the answer."""
    read: Callable[..., Awaitable[Any]] = getattr(owner, name)

    async def slow_read(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(SLOW_CHECK)
        return await read(*args, **kwargs)

    monkeypatch.setattr(owner, name, slow_read)


async def deferred_privately(handle: InteractionHandle) -> dict[str, Any]:
    """The answer to an interaction that had to defer: checked private all along, its data once it came."""
    callback = await handle.wait_callback(timeout=5)
    assert callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE and callback.accepted and callback.ephemeral
    message = await handle.wait_message(lambda m: not m.current.loading, timeout=10)
    assert message.ephemeral
    return message.payload()


def fields(embed: dict[str, Any]) -> dict[str, str]:
    """The embed's fields by name, names cut before any ``(…)`` note."""
    return {field["name"].split(" (")[0]: field["value"] for field in embed["fields"]}


async def test_a_fresh_member_may_do_everything(stack: Stack) -> None:
    embed = await info(stack)
    assert embed["description"] == "✅ You can use /imagine now."
    shown = fields(embed)
    assert shown["Images today"] == "No limit · 0 used today"
    assert shown["Cooldown"] == "None"
    assert shown["Your spend today"] == "$0.00 · no daily cap"
    assert shown["This server's monthly budget"] == "Has room"
    assert shown["Your jobs here"] == "None right now."
    assert shown["Models you may use here"] == f"`{FLUX_SCHNELL}` (server default), `{LORA_REF}`"
    assert embed["footer"]["text"] == "Only you can see this."


async def test_after_a_job_images_spend_and_cooldown_are_counted(make_stack: StackFactory) -> None:
    stack: Stack = await make_stack(prices=PRICES)
    await answer(stack, "limits", daily=5, cooldown=600)
    await answer(stack, "budget", monthly=1, member_daily=0.05)
    await stack.final_message(await stack.imagine(count=2))  # 2 images at $0.004

    embed = await info(stack)
    assert "You can use /imagine again <t:" in embed["description"]
    shown = fields(embed)
    assert shown["Images today"].startswith("3 of 5 left · resets <t:")
    assert shown["Cooldown"].startswith("600 s between requests · ready <t:")
    assert shown["Your spend today"].startswith("$0.008 of $0.05 · $0.042 left · resets <t:")
    assert shown["This server's monthly budget"] == "Has room"
    assert "$1.00" not in str(embed) and "$0.992" not in str(embed)  # the server's amounts are the moderators'

    assert shown["Your jobs here"] == "None right now."

    # Another member's day is their own.
    embed = await info(stack, "moderator")
    assert embed["description"] == "✅ You can use /imagine now."
    shown = fields(embed)
    assert shown["Images today"].startswith("5 of 5 left")
    assert shown["Your spend today"].startswith("$0.00 of $0.05")


async def test_a_used_up_month_says_when_it_resets_never_how_much(make_stack: StackFactory) -> None:
    stack: Stack = await make_stack(prices=PRICES)
    await answer(stack, "budget", monthly=0.008)
    await stack.final_message(await stack.imagine(count=2))  # 2 images at $0.004: the month's whole budget
    for member in ("member", "moderator"):  # the server's month is shared by everyone
        embed = await info(stack, member)
        assert embed["description"].startswith("⛔ This server's monthly budget is used up; it resets on <t:")
        assert fields(embed)["This server's monthly budget"].startswith("Used up · resets on <t:")
        assert "$0.008" not in str(embed).replace("$0.008 · no daily cap", "")  # only the member's own spend


async def test_a_spent_day_says_so(stack: Stack) -> None:
    await answer(stack, "limits", daily=1)
    await stack.final_message(await stack.imagine())
    embed = await info(stack)
    assert embed["description"].startswith("⛔ You have used all 1 of your images for today; more <t:")
    assert fields(embed)["Images today"].startswith("0 of 1 left")


async def test_running_and_queued_jobs_with_their_places_and_nobody_elses(make_stack: StackFactory) -> None:
    stack: Stack = await make_stack(max_running=1)
    stack.api.set_default_scenario(Scenario.manual())
    running = await stack.imagine(prompt="first fox")
    await running.wait_message()
    first = await stack.api.wait_for_prediction()
    theirs = await stack.imagine("moderator", prompt="the moderator's secret owl")
    await theirs.wait_message()
    waiting = await stack.imagine(prompt="second fox")
    await waiting.wait_message()

    shown = fields(await info(stack))
    # The moderator's job waits ahead (members take turns): the member's is second in line.
    assert shown["Your jobs here"] == (
        f"🚀 Starting · `{FLUX_SCHNELL}` · first fox\n⏳ Queued, position 2 · `{FLUX_SCHNELL}` · second fox"
    )
    theirs_shown = fields(await info(stack, "moderator"))
    assert theirs_shown["Your jobs here"] == f"⏳ Queued, position 1 · `{FLUX_SCHNELL}` · the moderator's secret owl"
    assert "fox" not in str(await info(stack, "moderator"))

    stack.api.start_processing(first.id)
    stack.api.set_progress(first.id, 2)
    await running.wait_message(lambda m: "%" in str(m.embeds))
    assert fields(await info(stack))["Your jobs here"].startswith("🎨 Processing ▰")

    for count, handle in enumerate((running, theirs, waiting), start=1):
        stack.api.finish((await stack.api.wait_for_prediction(count)).id)
        await stack.final_message(handle)
    assert fields(await info(stack))["Your jobs here"] == "None right now."


async def test_jobs_on_other_processes_are_counted_not_shown(stack: Stack) -> None:
    assert stack.bot is not None
    repository, now = stack.bot.core.repository, stack.bot.core.clock.now()
    member = stack.guild.member("member").id
    for job_id, state in (("peer-waiting", "queued"), ("peer-running", "running")):
        await repository.add_job(
            JobRecord(
                job_id=job_id,
                model=FLUX_SCHNELL,
                prompt="a prompt on another process",
                request={},
                state=state,
                created_at=now,
                guild_id=stack.guild.id,
                requester_id=member,
                owner="another-process",
            )
        )
    assert fields(await info(stack))["Your jobs here"] == "➕ 2 more on other processes (1 waiting)"
    assert fields(await info(stack, "moderator"))["Your jobs here"] == "None right now."


async def test_a_roles_limits_are_the_members(stack: Stack) -> None:
    vip = await add_vip(stack)
    await answer(stack, "limits", daily=2, concurrent=1)
    await answer(stack, "limits", daily=10, concurrent=3, role=vip)
    member, theirs = await info(stack), await info(stack, "vip")
    assert fields(member)["Images today"].startswith("2 of 2 left")
    assert fields(theirs)["Images today"].startswith("10 of 10 left")
    assert [f["name"] for f in member["fields"] if f["name"].startswith("Your jobs")] == [
        "Your jobs here (at most 1 at once)"
    ]
    assert [f["name"] for f in theirs["fields"] if f["name"].startswith("Your jobs")] == [
        "Your jobs here (at most 3 at once)"
    ]

    stack.api.set_default_scenario(Scenario.manual())
    handle = await stack.imagine()
    await handle.wait_message()
    prediction = await stack.api.wait_for_prediction()
    embed = await info(stack)
    assert "⏳ You have 1 job going, the most you may have at once" in embed["description"]
    stack.api.finish(prediction.id)
    await stack.final_message(handle)


async def test_models_only_for_a_role_are_listed_only_to_its_members(stack: Stack) -> None:
    vip = await add_vip(stack)
    await answer(stack, "models allow", model=FLUX_SCHNELL)
    await answer(stack, "models allow", model=LORA_REF, role=vip)
    assert fields(await info(stack))["Models you may use here"] == f"`{FLUX_SCHNELL}` (server default)"
    assert (
        fields(await info(stack, "vip"))["Models you may use here"]
        == f"`{FLUX_SCHNELL}` (server default), `{LORA_REF}`"
    )

    await answer(stack, "models remove", model=FLUX_SCHNELL)
    embed = await info(stack)
    assert fields(embed)["Models you may use here"] == "None: every model here is only for some roles."
    assert embed["description"].startswith("⛔ Every model here is only for members with some roles")


async def test_the_model_taken_is_the_members_preference_where_usable_else_the_servers(stack: Stack) -> None:
    await settings(stack, "set", model=LORA_REF)
    assert fields(await info(stack))["Models you may use here"] == f"`{LORA_REF}` (your preference), `{FLUX_SCHNELL}`"
    await stack.final_message(await stack.imagine())
    assert stack.api.last_prediction.model == FLUX_SCHNELL_LORA  # what /imagine-info said it would take
    # Another member's preference is their own.
    assert fields(await info(stack, "moderator"))["Models you may use here"].startswith(f"`{FLUX_SCHNELL}` (server")

    vip = await add_vip(stack)
    await answer(stack, "models allow", model=FLUX_SCHNELL)
    await answer(stack, "models allow", model=LORA_REF, role=vip)  # the preference is not the member's here
    assert fields(await info(stack))["Models you may use here"] == f"`{FLUX_SCHNELL}` (server default)"


async def test_a_slow_database_defers_privately_then_the_figures_take_its_place(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.bot is not None
    slow_down(monkeypatch, stack.bot.core.repository, "usage")
    where = stack.guild
    handle = await stack.discord.slash(
        "imagine-info", {}, user=where.member("member"), guild=where, channel=where.channel("general")
    )
    [embed] = (await deferred_privately(handle))["embeds"]
    assert embed["description"] == "✅ You can use /imagine now."


async def test_each_server_has_its_own_figures(stack: Stack) -> None:
    handle = await stack.imagine(guild=stack.other)
    assert job_id_of(await stack.final_message(handle))
    assert fields(await info(stack))["Images today"] == "No limit · 0 used today"
    assert fields(await info(stack, guild=stack.other))["Images today"] == "No limit · 1 used today"


async def test_the_command_is_synced_for_members(stack: Stack) -> None:
    [command] = [c for c in stack.discord.guild_commands[stack.guild.id] if c["name"] == "imagine-info"]
    assert not command.get("options")
    assert command.get("default_member_permissions") is None
