"""What members read from the Discord adapter, in their own language (issue 21): refusals keep their text to
the end, forms and embeds are drawn in the reader's locale, and a press reads a translated answer back."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import discord
import pytest

from bot.base.errors import Refusal
from bot.discord_app.answers import for_member, member_locale, refusal, server_locale
from bot.discord_app.describe_answer import describe_answer, prompt_of
from bot.discord_app.history import history_embed
from bot.discord_app.remix import remix_form
from bot.discord_app.variations import Variation, VaryStrength
from bot.i18n import available_languages, tr
from tests.fakes.discord.components import modal_problems


def interaction(locale: str, guild_locale: str | None = "en-US") -> discord.Interaction:
    return cast(
        discord.Interaction,
        SimpleNamespace(
            locale=discord.Locale(locale), guild_locale=discord.Locale(guild_locale) if guild_locale else None
        ),
    )


def test_a_refusal_keeps_its_text_and_shows_it_in_the_members_language() -> None:
    refused = Refusal(tr("Image {number} is no longer on this message.", number=2))
    assert str(refused) == "Image 2 is no longer on this message."  # logs and the mod-log: English
    assert refusal(refused).render("de") == "❌ Bild 2 ist nicht mehr in dieser Nachricht."
    assert refusal(Refusal("plain")).render("fr") == "❌ plain"


def test_the_member_reads_their_locale_and_the_channel_the_servers() -> None:
    asked = interaction("pt-BR", "de")
    assert (member_locale(asked), server_locale(asked)) == ("pt-BR", "de")
    assert server_locale(interaction("fr", None)) is None
    assert for_member(interaction("es-419"), tr("Only you can see this.")) == "Solo tú puedes ver esto."
    assert for_member(interaction("ja"), tr("Only you can see this.")) == "Only you can see this."


@pytest.mark.parametrize("locale", [None, *available_languages()])
@pytest.mark.parametrize("variation", [None, Variation(4), Variation(1, VaryStrength.SUBTLE)])
def test_the_remix_form_fits_discord_in_every_language(locale: str | None, variation: Variation | None) -> None:
    form = remix_form("f" * 32, variation, "a fox --ar 16:9", locale)
    assert modal_problems(form.to_dict()) == []


@pytest.mark.parametrize("locale", available_languages())
def test_a_press_reads_a_translated_describe_answer_back(locale: str) -> None:
    embed: discord.Embed = describe_answer(["a fox", "a hen"], blocked=1, image_url=None, locale=locale)["embed"]
    assert embed.title != "🔎 Prompts for this image"
    message = cast(Any, SimpleNamespace(embeds=[embed]))
    assert (prompt_of(message, 1), prompt_of(message, 2)) == ("a fox", "a hen")


def test_history_title_counts_in_the_members_language() -> None:
    assert history_embed([], 1, "de").title == "Deine letzten 0 /imagine-Aufträge hier"
    assert history_embed([], 1, "fr").title == "Ta tâche /imagine ici"  # French: 0 takes the singular
