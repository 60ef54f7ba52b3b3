"""Members in their own language (issue 21), through the fake Discord: in one server, each member reads the bot's
private answers in their own Discord locale (``interaction.locale``); a locale with no catalog reads English."""

from __future__ import annotations

from typing import Any

import pytest

from bot.base.errors import Refusal
from bot.i18n import render
from bot.moderation.policy import RequestContext
from tests.e2e.conftest import Stack
from tests.e2e.test_moderation import answer
from tests.fakes.discord import CallbackType, Perm

MEMBERS = {"de": "hanna", "en-US": "member", "ja": "kenji"}
"""A member per locale, all in the same server."""


@pytest.fixture
def stack(stack: Stack) -> Stack:
    for locale, name in MEMBERS.items():
        if locale != "en-US":
            stack.guild.add_member(name)
    return stack


async def private(stack: Stack, command: str, locale: str, **options: Any) -> dict[str, Any]:
    """``command`` as the member of ``locale`` in #general: its answer's data, checked private."""
    where = stack.guild
    handle = await stack.discord.slash(
        command,
        options,
        user=where.member(MEMBERS[locale]),
        guild=where,
        channel=where.channel("general"),
        locale=locale,
    )
    callback = await handle.wait_callback(timeout=10)
    assert callback.type == CallbackType.CHANNEL_MESSAGE and callback.ephemeral, callback
    return dict(callback.data)


def field_names(data: dict[str, Any]) -> list[str]:
    [embed] = data["embeds"]
    return [field["name"] for field in embed["fields"]]


async def test_imagine_info_is_in_each_members_language(stack: Stack) -> None:
    german = (await private(stack, "imagine-info", "de"))["embeds"][0]
    assert german["title"] == "Was du hier noch tun kannst"
    assert german["description"] == "✅ Du kannst /imagine jetzt nutzen."
    assert german["footer"]["text"] == "Nur du kannst das sehen."
    assert "Bilder heute" in [field["name"] for field in german["fields"]]
    for locale in ("en-US", "ja"):  # Japanese has no catalog: English
        english = (await private(stack, "imagine-info", locale))["embeds"][0]
        assert english["title"] == "What you can still do here"
        assert english["description"] == "✅ You can use /imagine now."
        assert "Images today" in [field["name"] for field in english["fields"]]


async def test_imagine_settings_answers_and_refusals_are_in_each_members_language(stack: Stack) -> None:
    german = await private(stack, "imagine-settings show", "de")
    assert german["embeds"][0]["title"] == "Deine Einstellungen"
    assert field_names(german)[:2] == ["Modell", "Seitenverhältnis"]
    english = await private(stack, "imagine-settings show", "en-US")
    assert english["embeds"][0]["title"] == "Your preferences"
    assert field_names(english)[:2] == ["Model", "Aspect ratio"]

    refused = await private(stack, "imagine-settings option", "de", name="film")
    assert refused["content"].startswith("❌ Du hast keine benannte Option `--film`, deshalb wurde nichts entfernt.")
    for locale in ("en-US", "ja"):
        refused = await private(stack, "imagine-settings option", locale, name="film")
        assert refused["content"].startswith("❌ You have no named option `--film`, so nothing was removed.")


async def test_a_refusal_of_imagine_is_in_each_members_language(stack: Stack) -> None:
    """The adapter's own refusal (a set the bot can't post), and the policy's (a blocked word): each member reads
    them in their own locale."""
    stack.guild.channel("general").overwrite(stack.guild.bot_member, deny=Perm.ATTACH_FILES)
    prompt = "a {red, green} bird"
    german = await private(stack, "imagine", "de", prompt=prompt)
    assert "mir fehlen in diesem Kanal diese Berechtigungen: Dateien anhängen." in german["content"]
    for locale in ("en-US", "ja"):
        english = await private(stack, "imagine", locale, prompt=prompt)
        assert "I'm missing these permissions in this channel: Attach Files." in english["content"]

    await answer(stack, "words add", word="weasel")
    assert stack.bot is not None
    member = stack.guild.member(MEMBERS["de"])
    asked = RequestContext(stack.guild.id, member.id, stack.guild.channel("general").id, "a weasel")
    with pytest.raises(Refusal) as blocked:
        await stack.bot.core.policy.admit(asked)
    said = {locale: (await private(stack, "imagine", locale, prompt="a weasel"))["content"] for locale in MEMBERS}
    assert said["de"] == "❌ " + render(blocked.value.text, "de")
    assert said["en-US"] == said["ja"] == "❌ " + str(blocked.value)


async def test_a_member_types_the_names_their_discord_shows(stack: Stack) -> None:
    """``/imagine-settings anzeigen`` as a German member's Discord shows ``show``: Discord (and the fake) sends the
    base names, the bot answers as ever."""
    german = await private(stack, "imagine-settings anzeigen", "de")
    assert german["embeds"][0]["title"] == "Deine Einstellungen"
