"""``/imagine-admin`` and its enforcement in ``/imagine``, through the fake Discord, on a real database."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import LORA_REF, Stack, status_of
from tests.fakes.discord import CallbackType
from tests.fakes.replicate import FLUX_SCHNELL

ADMIN_COMMANDS: list[tuple[str, dict[str, object]]] = [
    ("models allow", {"model": FLUX_SCHNELL}),
    ("models remove", {"model": FLUX_SCHNELL}),
    ("models list", {}),
    ("models default", {"model": FLUX_SCHNELL}),
    ("channels allow", {"channel": "general"}),
    ("channels remove", {"channel": "general"}),
    ("channels list", {}),
    ("words add", {"word": "cat"}),
    ("words remove", {"word": "cat"}),
    ("words list", {}),
    ("limits", {}),
    ("limits", {"cooldown": 5}),
    ("log channel", {"channel": "general"}),
    ("log off", {}),
    ("show", {}),
]


async def answer(stack: Stack, command: str, user: str = "moderator", **options: object) -> str:
    """Run an admin command and return its (ephemeral) answer, content and embeds flattened."""
    if "channel" in options and isinstance(options["channel"], str):
        options["channel"] = stack.guild.channel(options["channel"])
    handle = await stack.admin(command, user, **options)
    callback = await handle.wait_callback(accepted_only=True)
    if callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE:
        message = await handle.wait_message(lambda m: not m.current.loading)
        assert message.ephemeral
        return message.content + str(message.embeds)
    assert callback.ephemeral, f"{command}: answer is not ephemeral"
    return (callback.content or "") + str(callback.data.get("embeds", ""))


async def refusal(stack: Stack, user: str = "member", **options: object) -> str:
    """Run /imagine expecting an ephemeral refusal; returns its text."""
    handle = await stack.imagine(user, **options)
    callback = await handle.wait_callback()
    assert callback.type == CallbackType.CHANNEL_MESSAGE
    assert callback.ephemeral, f"not ephemeral: {callback.data}"
    return callback.content or ""


@pytest.mark.parametrize(("command", "options"), ADMIN_COMMANDS, ids=[c for c, _ in ADMIN_COMMANDS])
async def test_admin_commands_need_manage_server(stack: Stack, command: str, options: dict[str, object]) -> None:
    text = await answer(stack, command, "member", **dict(options))
    assert "Manage Server" in text
    assert await stack.bot.core.repository.audit_log(stack.guild.id) == []  # type: ignore[union-attr]


async def test_moderator_can_use_every_admin_command(stack: Stack) -> None:
    for command, options in ADMIN_COMMANDS:
        text = await answer(stack, command, **dict(options))
        assert "Manage Server" not in text and "went wrong" not in text, (command, text)
    audit = await stack.bot.core.repository.audit_log(stack.guild.id, limit=50)  # type: ignore[union-attr]
    assert {entry.action for entry in audit} >= {"models allow", "channels allow", "words add", "limits", "log channel"}
    assert all(entry.actor_id == stack.guild.member("moderator").id for entry in audit)


async def test_admin_commands_are_hidden_and_guild_only(stack: Stack) -> None:
    await stack.discord.wait_for(lambda: stack.discord.guild_commands.get(stack.guild.id), 5, what="sync")
    [admin] = [c for c in stack.discord.guild_commands[stack.guild.id] if c["name"] == "imagine-admin"]
    assert int(admin["default_member_permissions"]) == 0x20
    assert admin.get("contexts") in ([0], None) or admin.get("dm_permission") is False


async def test_model_allowlist_is_enforced_before_any_request(stack: Stack) -> None:
    assert "now allowed" in await answer(stack, "models allow", model=LORA_REF)
    assert "unknown" not in (await answer(stack, "models list")).lower()
    text = await refusal(stack, model=FLUX_SCHNELL)
    assert "not allowed" in text and LORA_REF in text
    assert stack.api.count("POST", "create") == 0

    final = await stack.final_message(await stack.imagine())  # no model named: the server's only one
    assert "Done" in status_of(final)
    assert stack.api.creates[-1].path == "/v1/predictions"

    assert "now allowed" in await answer(stack, "models allow", model=FLUX_SCHNELL)
    assert "now the default" in await answer(stack, "models default", model=FLUX_SCHNELL)
    await stack.final_message(await stack.imagine())
    assert stack.api.creates[-1].path.endswith("flux-schnell/predictions")

    assert "removed" in await answer(stack, "models remove", model=FLUX_SCHNELL)
    assert "not allowed" in await refusal(stack, model=FLUX_SCHNELL)
    assert "bot-wide" in await answer(stack, "models remove", model=LORA_REF)
    shown = await answer(stack, "show")
    assert "bot-wide" in shown and "models remove" in shown


async def test_unknown_model_and_default_outside_the_list_are_refused(stack: Stack) -> None:
    assert "no model" in await answer(stack, "models allow", model="someone/does-not-exist")
    assert "not a model reference" in await answer(stack, "models allow", model="nonsense")
    assert "allow it first" in await answer(stack, "models default", model="someone/else")


async def test_channel_restriction(stack: Stack) -> None:
    art = stack.guild.add_channel("art")
    await stack.discord.dispatch_guild_create(stack.guild)
    await answer(stack, "channels allow", channel=art)
    text = await refusal(stack)
    assert "this channel" in text and f"<#{art.id}>" in text
    assert stack.api.count("POST", "create") == 0


async def test_blocked_word_refusal_does_not_echo_the_word(stack: Stack) -> None:
    await answer(stack, "words add", word="weasel")
    text = await refusal(stack, prompt="a w.3.a.s.e.l in the snow")
    assert "blocked" in text and "weasel" not in text.lower()
    assert stack.api.count("POST", "create") == 0


async def test_cooldown_daily_and_concurrency_refusals(stack: Stack) -> None:
    await answer(stack, "limits", cooldown=3600)
    await stack.final_message(await stack.imagine())
    text = await refusal(stack)
    assert "again in" in text and ("59 min" in text or "1 h" in text)

    await answer(stack, "limits", cooldown=0, daily=3)
    await stack.final_message(await stack.imagine(count=2))
    text = await refusal(stack)
    assert "all 3" in text and "resets" in text

    await answer(stack, "limits", daily=0, concurrent=1)
    stack.api.set_default_scenario(start_delay=None, duration=None)
    before = len(stack.api.predictions)
    running = await stack.imagine()
    await stack.api.wait_for_prediction(before + 1)
    text = await refusal(stack)
    assert "at once" in text
    await running.wait_message()
    assert stack.api.count("POST", "create") == 3


async def test_daily_count_is_refunded_for_undelivered_images(stack: Stack) -> None:
    await answer(stack, "limits", daily=2)
    stack.api.set_default_scenario(final_status="failed", error="boom")
    await stack.final_message(await stack.imagine(count=2))
    stack.api.set_default_scenario(final_status="succeeded")
    final = await stack.final_message(await stack.imagine(count=2))  # refunded, so allowed again
    assert "Done" in status_of(final)
    assert "limit" in await refusal(stack)


async def test_settings_and_usage_survive_a_restart(stack: Stack) -> None:
    await answer(stack, "models allow", model=LORA_REF)
    await answer(stack, "limits", daily=1)
    await stack.final_message(await stack.imagine())
    await stack.restart()
    assert "limit" in await refusal(stack)
    assert "not allowed" in await refusal(stack, user="moderator", model=FLUX_SCHNELL)


async def test_servers_do_not_affect_each_other(stack: Stack) -> None:
    await answer(stack, "models allow", model=LORA_REF)
    await answer(stack, "words add", word="fox")
    await answer(stack, "limits", daily=1)
    final = await stack.final_message(await stack.imagine(guild=stack.other, model=FLUX_SCHNELL, count=2))
    assert "Done" in status_of(final)
    handle = await stack.admin("show", guild=stack.other)
    shown = str((await handle.wait_callback()).data.get("embeds"))
    assert "Blocked words (0)" in shown and "no changes yet" in shown and "Images per member per day: no limit" in shown
    assert "bot-wide list" in shown
