"""Models only for some roles, and limits per role, through the fake Discord (roles in member payloads)."""

from __future__ import annotations

from tests.e2e.conftest import LORA_REF, Stack, field_of, status_of
from tests.e2e.test_buttons import button
from tests.e2e.test_moderation import answer, refusal
from tests.fakes.discord import FakeRole
from tests.fakes.replicate import FLUX_SCHNELL


async def add_vip(stack: Stack) -> FakeRole:
    """A VIP role and a member ``vip`` who has it, known to the bot as a new guild's roles would be."""
    vip = stack.guild.add_role("VIP")
    stack.guild.add_member("vip", roles=[vip])
    await stack.discord.dispatch_guild_create(stack.guild)
    return vip


async def test_a_model_for_a_role_is_theirs_alone(stack: Stack) -> None:
    vip = await add_vip(stack)
    assert "to everyone" in await answer(stack, "models allow", model=FLUX_SCHNELL)
    text = await answer(stack, "models allow", model=LORA_REF, role=vip)
    assert "only to members" in text and f"<@&{vip.id}>" in text

    final = await stack.final_message(await stack.imagine("vip", model=LORA_REF))
    assert "Done" in status_of(final)
    assert stack.api.creates[-1].path == "/v1/predictions"

    text = await refusal(stack, model=LORA_REF)
    assert f"`{LORA_REF}` is only for members with the <@&{vip.id}> role" in text
    assert stack.api.count("POST", "create") == 1

    assert await stack.models_offered("member") == [FLUX_SCHNELL]
    assert await stack.models_offered("vip") == [FLUX_SCHNELL, LORA_REF]
    listed = await answer(stack, "models list")
    assert f"`{LORA_REF}` — only <@&{vip.id}>" in listed

    # Re-roll is a new job under the presser's roles: the VIP's image is not a way in for others.
    pressed = await stack.discord.click(final, button(final, "reroll"), user=stack.guild.member("member"))
    callback = await pressed.wait_callback()
    assert callback.ephemeral and "only for members" in (callback.content or "")
    assert stack.api.count("POST", "create") == 1


async def test_allowing_without_a_role_opens_the_model_to_everyone(stack: Stack) -> None:
    vip = await add_vip(stack)
    await answer(stack, "models allow", model=LORA_REF, role=vip)
    text = await answer(stack, "models allow", model=LORA_REF)
    assert "to everyone" in text and f"was only for <@&{vip.id}>" in text
    final = await stack.final_message(await stack.imagine(model=LORA_REF))
    assert "Done" in status_of(final)
    shown = await answer(stack, "show")
    assert f"<@&{vip.id}>" in shown and "models allow" in shown  # the change is in the latest changes


async def test_a_default_only_for_a_role_falls_back_with_a_note(stack: Stack) -> None:
    vip = await add_vip(stack)
    await answer(stack, "models allow", model=LORA_REF, role=vip)
    assert "Every model on this server's list is only for some roles" in await answer(
        stack, "models allow", model=LORA_REF, role=stack.guild.add_role("Staff")
    )
    text = await refusal(stack)
    assert "Every model on this server is only for members with some roles" in text

    await answer(stack, "models allow", model=FLUX_SCHNELL)
    final = await stack.final_message(await stack.imagine())
    assert stack.api.creates[-1].path.endswith("flux-schnell/predictions")
    note = field_of(final, "Note") or ""
    assert f"default model `{LORA_REF}` is only for members with" in note


async def test_everyone_is_not_a_role_to_restrict_to(stack: Stack) -> None:
    text = await answer(stack, "models allow", model=LORA_REF, role=stack.guild.everyone)
    assert "@everyone is every member" in text
    assert "@everyone is every member" in await answer(stack, "limits", daily=5, role=stack.guild.everyone)
    assert await stack.bot.core.repository.audit_log(stack.guild.id) == []  # type: ignore[union-attr]


async def test_a_vip_role_gets_more_images_a_day(stack: Stack) -> None:
    vip = await add_vip(stack)
    await answer(stack, "limits", daily=1)
    text = await answer(stack, "limits", daily=3, role=vip)
    assert f"**Limits for <@&{vip.id}>**\nImages per member per day: 3\n" in text

    await stack.final_message(await stack.imagine())
    assert "all 1" in await refusal(stack)
    final = await stack.final_message(await stack.imagine("vip", count=3))
    assert "Done" in status_of(final)
    assert "all 3" in await refusal(stack, "vip")

    shown = await answer(stack, "show")
    assert f"<@&{vip.id}> — Images per member per day: 3" in shown
    limits = await answer(stack, "limits")
    assert f"<@&{vip.id}> — Images per member per day: 3" in limits


async def test_clearing_a_roles_limits(stack: Stack) -> None:
    vip = await add_vip(stack)
    await answer(stack, "limits", daily=1)
    await answer(stack, "limits", daily=3, role=vip)
    assert "no limits of its own" in await answer(stack, "limits", role=vip, clear=True)
    assert "name the `role`" in await answer(stack, "limits", clear=True)
    await stack.final_message(await stack.imagine("vip"))
    assert "all 1" in await refusal(stack, "vip")
    assert "none of its own" in await answer(stack, "limits", role=vip)
