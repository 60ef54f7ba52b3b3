"""``/imagine-settings`` through the fake Discord: a member's preferences and named options set, shown, refused
and forgotten, privately, and the same in every server of the bot."""

from __future__ import annotations

from typing import Any

from bot.storage import MAX_NAMED_OPTIONS, Preferences
from tests.e2e.conftest import LORA_REF, Stack
from tests.e2e.test_moderation import answer
from tests.fakes.discord import CallbackType, FakeGuild
from tests.fakes.replicate import FLUX_SCHNELL

COMMAND = "imagine-settings"


async def settings(
    stack: Stack, command: str, user: str = "member", *, guild: FakeGuild | None = None, **options: Any
) -> dict[str, Any]:
    """Run ``/imagine-settings COMMAND`` and return its answer's data, checked private and pinging no one."""
    where = guild or stack.guild
    handle = await stack.discord.slash(
        f"{COMMAND} {command}", options, user=where.member(user), guild=where, channel=where.channel("general")
    )
    callback = await handle.wait_callback()
    assert callback.type == CallbackType.CHANNEL_MESSAGE and callback.ephemeral, callback
    assert callback.data.get("allowed_mentions") == {"parse": []}, callback.data
    return dict(callback.data)


async def said(stack: Stack, command: str, user: str = "member", **options: Any) -> str:
    """The answer's text."""
    return str((await settings(stack, command, user, **options))["content"])


def fields(data: dict[str, Any]) -> dict[str, str]:
    """The preferences embed's fields, by name, and its description under ``"description"``."""
    [embed] = data["embeds"]
    return {"description": embed["description"]} | {field["name"]: field["value"] for field in embed["fields"]}


async def stored(stack: Stack, member: str = "member") -> Preferences:
    assert stack.bot is not None
    return await stack.bot.core.repository.preferences(stack.guild.member(member).id)


async def offered(stack: Stack, command: str, focused: str, typed: str, user: str = "member") -> list[str]:
    """What an option's autocomplete offers ``user`` who has typed ``typed``."""
    handle = await stack.discord.autocomplete(
        f"{COMMAND} {command}",
        {focused: typed},
        focused=focused,
        user=stack.guild.member(user),
        guild=stack.guild,
        channel=stack.guild.channel("general"),
    )
    return [choice["value"] for choice in (await handle.wait_callback()).data["choices"]]


async def test_set_then_show_every_preference(stack: Stack) -> None:
    data = await settings(
        stack, "set", model=LORA_REF, aspect_ratio="16:9", count=2, remix=True, suffix="in oil paint --no text"
    )
    shown = fields(data)
    assert data["embeds"][0]["title"] == "Preferences saved"
    assert shown["Model"] == f"`{LORA_REF}`"
    assert (shown["Aspect ratio"], shown["Count"]) == ("16:9", "2")
    assert shown["Remix"].startswith("on")
    assert shown["Suffix (added to every prompt)"] == "in oil paint --no text"
    assert "same in every server" in shown["description"] and "none yet" in shown["description"]
    assert await stored(stack) == Preferences(
        stack.guild.member("member").id, LORA_REF, "16:9", 2, True, "in oil paint --no text"
    )
    # `show`, and `set` with no option, show the same; another member has none.
    for command in ("show", "set"):
        again = await settings(stack, command)
        assert again["embeds"][0]["title"] == "Your preferences" and fields(again) == shown
    theirs = fields(await settings(stack, "show", "moderator"))
    assert "not set" in theirs["Model"] and theirs["Remix"] == "off"
    assert theirs["Suffix (added to every prompt)"] == "none"


async def test_a_set_changes_only_what_it_names_and_none_forgets(stack: Stack) -> None:
    await settings(stack, "set", model=LORA_REF, count=3, suffix="at dusk")
    shown = fields(await settings(stack, "set", remix=True))
    assert shown["Model"] == f"`{LORA_REF}`" and shown["Count"] == "3" and shown["Remix"].startswith("on")
    shown = fields(await settings(stack, "set", model="none", suffix="None", remix=False))
    assert "not set" in shown["Model"] and shown["Suffix (added to every prompt)"] == "none"
    assert shown["Count"] == "3" and shown["Remix"] == "off"


async def test_a_model_the_member_may_not_use_here_is_refused_with_theirs(stack: Stack) -> None:
    text = await said(stack, "set", model="someone/unknown", count=2)
    assert "`someone/unknown` is not a model you may use on this server" in text
    assert f"`{FLUX_SCHNELL}`" in text and f"`{LORA_REF}`" in text
    assert "not a model reference" in await said(stack, "set", model="not a model")
    # A model only for a role is refused to the others.
    vip = stack.guild.add_role("VIP")
    await answer(stack, "models allow", model=FLUX_SCHNELL)
    await answer(stack, "models allow", model=LORA_REF, role=vip)
    text = await said(stack, "set", model=LORA_REF)
    assert f"`{LORA_REF}` is not a model you may use" in text and f"You may use `{FLUX_SCHNELL}`." in text
    assert await stored(stack) == Preferences(stack.guild.member("member").id)  # nothing of a refused set is kept


async def test_one_refused_change_saves_none_of_those_given_with_it_and_says_so(stack: Stack) -> None:
    await settings(stack, "set", aspect_ratio="1:1")
    text = await said(stack, "set", model="someone/unknown", count=2, aspect_ratio="16:9", suffix="at dusk")
    assert "`someone/unknown` is not a model you may use" in text
    assert "Nothing was saved" in text and "/imagine-settings set" in text
    assert await stored(stack) == Preferences(stack.guild.member("member").id, aspect_ratio="1:1")
    for refused in ({"count": 9, "remix": True}, {"suffix": "x" * 301, "count": 2}):
        assert "Nothing was saved" in await said(stack, "set", **refused)
    assert await stored(stack) == Preferences(stack.guild.member("member").id, aspect_ratio="1:1")


async def test_values_out_of_range_are_refused_saying_which(stack: Stack) -> None:
    assert "count must be from 1 to 4, not 9" in await said(stack, "set", count=9)
    assert "aspect_ratio must be one of 1:1, 16:9" in await said(stack, "set", aspect_ratio="7:5")
    assert "The suffix is 301 characters long; it may have at most 300" in await said(stack, "set", suffix="x" * 301)
    assert await stored(stack) == Preferences(stack.guild.member("member").id)


async def test_named_options_are_set_replaced_shown_and_removed(stack: Stack) -> None:
    text = await said(stack, "option", name="Film", value="35mm film, grain --no digital")
    assert "`--film` now stands for: 35mm film, grain --no digital" in text and "--film`" in text
    await said(stack, "option", name="--wide", value="--ar 21:9")
    await said(stack, "option", name="film", value="*bold* grain")
    assert (await stored(stack)).options == {"film": "*bold* grain", "wide": "--ar 21:9"}
    description = fields(await settings(stack, "show"))["description"]
    assert "Named options** (2 of 20)" in description
    # Markdown is shown as typed (escaped: Discord shows `\*bold\*` as *bold*, `\--ar` as --ar).
    assert "`--film` → \\*bold\\* grain\n`--wide` → \\--ar 21:9" in description
    assert await said(stack, "option", name="FILM") == "✅ `--film` is removed."
    assert await said(stack, "option", name="film") == (
        "❌ You have no named option `--film`, so nothing was removed. Yours: `--wide`."
    )


async def test_option_names_and_values_that_cannot_be_are_refused_saying_why(stack: Stack) -> None:
    for name in ("ar", "Seed", "--no", "repeat", "r", "aspect"):
        assert "is a prompt flag the bot reads itself" in await said(stack, "option", name=name, value="x")
    assert "only letters a-z and digits 0-9" in await said(stack, "option", name="my style", value="x")
    assert "at most 32" in await said(stack, "option", name="a" * 33, value="x")
    assert "value is 501 characters long; it may have at most 500" in await said(
        stack, "option", name="long", value="x" * 501
    )
    assert (await stored(stack)).options == {}


async def test_the_twenty_first_option_is_refused_until_one_goes(stack: Stack) -> None:
    for index in range(MAX_NAMED_OPTIONS):
        assert (await said(stack, "option", name=f"style{index}", value=f"look {index}")).startswith("✅")
    text = await said(stack, "option", name="onemore", value="text")
    assert "`--onemore` wasn't saved: you already have 20 named options" in text and "Remove one first" in text
    assert (await said(stack, "option", name="style0", value="changed")).startswith("✅")  # a held one may change
    await said(stack, "option", name="style1")
    assert (await said(stack, "option", name="onemore", value="text")).startswith("✅")
    assert "(20 of 20)" in fields(await settings(stack, "show"))["description"]


async def test_reset_forgets_everything(stack: Stack) -> None:
    assert "nothing to forget" in await said(stack, "reset")
    await settings(stack, "set", count=4, remix=True)
    await said(stack, "option", name="film", value="grain")
    assert "forgotten" in await said(stack, "reset")
    assert await stored(stack) == Preferences(stack.guild.member("member").id)


async def test_preferences_set_in_one_server_are_the_members_in_another(stack: Stack) -> None:
    allowed = await stack.admin("models allow", guild=stack.other, model=FLUX_SCHNELL)
    await allowed.wait_message(lambda m: not m.current.loading)  # deferred while the API is asked
    saved = await settings(stack, "set", model=LORA_REF, aspect_ratio="3:2", suffix="at dusk")
    assert fields(saved)["Model"] == f"`{LORA_REF}`", saved
    await said(stack, "option", name="film", value="grain")
    # The same Discord user, a member of the other server too.
    stack.other.add_member("traveller", user_id=stack.guild.member("member").id)

    elsewhere = fields(await settings(stack, "show", "traveller", guild=stack.other))
    # The other server allows only flux-schnell: the preference is kept, and the member is told it is not used there.
    assert elsewhere["Model"].startswith(f"`{LORA_REF}`\n⚠️ not one you may use on this server")
    assert elsewhere["Aspect ratio"] == "3:2" and elsewhere["Suffix (added to every prompt)"] == "at dusk"
    assert "`--film` → grain" in elsewhere["description"]
    # Changed there, seen here.
    await settings(stack, "set", "traveller", count=1, guild=stack.other)
    assert fields(await settings(stack, "show"))["Count"] == "1"
    assert fields(await settings(stack, "show"))["Model"] == f"`{LORA_REF}`"  # usable here: no warning


async def test_autocomplete_offers_the_members_models_and_options(stack: Stack) -> None:
    assert await offered(stack, "set", "model", "") == [FLUX_SCHNELL, LORA_REF]
    assert await offered(stack, "set", "model", "LORA") == [LORA_REF]
    await settings(stack, "set", model=FLUX_SCHNELL)
    assert await offered(stack, "set", "model", "") == [FLUX_SCHNELL, LORA_REF, "none"]  # a set model can go
    assert await offered(stack, "option", "name", "") == []
    for name in ("film", "wide", "fisheye"):
        await said(stack, "option", name=name, value="x")
    assert await offered(stack, "option", "name", "--FI") == ["film", "fisheye"]


async def test_in_a_dm_the_member_is_told_to_use_a_server(stack: Stack) -> None:
    handle = await stack.discord.slash(f"{COMMAND} show", {}, user=stack.guild.member("member"), dm=True)
    callback = await handle.wait_callback()
    assert callback.ephemeral and "in a server" in (callback.content or "")


async def test_the_command_is_synced_for_members_with_specs_subcommands(stack: Stack) -> None:
    [command] = [c for c in stack.discord.guild_commands[stack.guild.id] if c["name"] == COMMAND]
    assert command.get("default_member_permissions") is None  # every member may use it
    subcommands = {option["name"]: option for option in command["options"]}
    assert list(subcommands) == ["set", "option", "show", "reset"]
    assert [o["name"] for o in subcommands["set"]["options"]] == ["model", "aspect_ratio", "count", "remix", "suffix"]
    assert [o["name"] for o in subcommands["option"]["options"]] == ["name", "value"]
    assert not any(option.get("required") for option in subcommands["set"]["options"])
