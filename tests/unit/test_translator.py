"""The slash commands' translations: what discord.py syncs with :class:`CatalogTranslator`, checked as Discord
checks it (the fake's validation), and the fake's answers to localizations Discord would refuse."""

from __future__ import annotations

import gettext
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.discord_app import translator as translator_module
from bot.discord_app.translator import DESCRIPTION, NAME, CatalogTranslator, translated, valid_name
from tests.fakes.discord.commands import validate_commands
from tests.fakes.discord.errors import DiscordError
from tests.i18n.command_tree import tree_commands


async def synced_payload() -> list[dict[str, Any]]:
    """The bulk overwrite discord.py sends for the bot's commands with the translator installed."""
    client = discord.Client(intents=discord.Intents.none())
    tree = app_commands.CommandTree(client)
    for command in tree_commands():
        tree.add_command(command)
    translator = CatalogTranslator()
    await tree.set_translator(translator)
    return [await command.get_translated_payload(tree, translator) for command in tree.get_commands()]


async def test_the_synced_payload_is_one_discord_takes_with_every_language() -> None:
    payload = await synced_payload()
    validate_commands(payload)  # raises as Discord would answer 400
    for command in payload:
        assert {"de", "fr", "es-ES", "es-419", "pt-BR"} <= command["description_localizations"].keys(), command
        # The top-level commands are product names: localized as themselves, so Discord knows they are meant so.
        assert command["name_localizations"] == dict.fromkeys(("de", "fr", "es-ES", "es-419", "pt-BR"), command["name"])


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("imagine", True),
        ("imagine-admin", True),
        ("member_daily", True),
        ("größe", True),
        ("तस्वीर", True),  # Devanagari, its vowel signs included
        ("ภาพ", True),
        ("Imagine", False),
        ("two words", False),
        ("", False),
        ("x" * 33, False),
        ("a/b", False),
    ],
)
def test_names_as_discord_takes_them(name: str, valid: bool) -> None:
    assert valid_name(name) is valid


class _Catalog(gettext.NullTranslations):
    def __init__(self, found: str) -> None:
        super().__init__()
        self.found = found

    def pgettext(self, context: str, message: str) -> str:
        return self.found


@pytest.mark.parametrize(
    ("context", "found", "expected"),
    [
        (NAME, "bild", "bild"),
        (NAME, "Bild erzeugen", None),  # Discord would refuse the whole sync: left out, English shown
        (DESCRIPTION, "Erzeugt ein Bild", "Erzeugt ein Bild"),
        (DESCRIPTION, "x" * 101, None),
    ],
)
def test_a_translation_discord_would_refuse_is_left_out(
    monkeypatch: pytest.MonkeyPatch, context: str, found: str, expected: str | None
) -> None:
    monkeypatch.setattr(translator_module, "translations", lambda locale: _Catalog(found))
    assert translated(context, "imagine", "de") == expected


def test_names_are_localized_and_product_names_kept() -> None:
    assert translated(NAME, "channels", "de") == "kanäle"
    assert translated(NAME, "role", "pt-BR") == "cargo"
    assert translated(NAME, "aspect_ratio", "es-419") == "proporción"
    assert translated(NAME, "imagine-admin", "fr") == "imagine-admin"  # an entry the same as English counts
    assert translated(NAME, "imagine", "en-US") is None
    assert translated(NAME, "not a name of the tree", "de") is None


def test_english_and_languages_without_a_catalog_get_no_localization() -> None:
    text = "Generate an image from a text prompt"
    assert translated(DESCRIPTION, text, "en-US") is None
    assert translated(DESCRIPTION, text, "ja") is None
    assert translated(DESCRIPTION, text, "de") == "Ein Bild aus einer Textbeschreibung erzeugen"
    assert translated(DESCRIPTION, "not a text of the tree", "de") is None


# --------------------------------------------------------------------------- the fake's checks


def command(**extra: Any) -> dict[str, Any]:
    option = {"type": 3, "name": "prompt", "description": "What to draw", **extra.pop("option", {})}
    return {"type": 1, "name": "imagine", "description": "Generate an image", "options": [option], **extra}


def refusal(payload: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(DiscordError) as refused:
        validate_commands([payload])
    assert (refused.value.status, refused.value.code, refused.value.message) == (400, 50035, "Invalid Form Body")
    assert refused.value.errors is not None
    return refused.value.errors


def test_the_fake_takes_valid_localizations() -> None:
    validate_commands(
        [
            command(
                name_localizations={"de": "bild", "pt-BR": "imagem"},
                description_localizations={"es-419": "Genera una imagen", "fr": "Génère une image"},
                option={
                    "name_localizations": {"th": "ภาพ"},
                    "choices": [{"name": "Square", "value": "1:1", "name_localizations": {"de": "Quadrat"}}],
                },
            )
        ]
    )


def test_the_fake_refuses_a_locale_discord_does_not_have() -> None:
    errors = refusal(command(description_localizations={"pt_BR": "Gera uma imagem"}))
    assert errors["0"]["description_localizations"]["pt_BR"]["_errors"][0]["code"] == "BASE_TYPE_CHOICES"


def test_the_fake_refuses_a_bad_localized_command_name_without_its_locale() -> None:
    errors = refusal(command(name_localizations={"de": "Bild erzeugen"}))
    assert errors["0"]["name_localizations"]["_errors"][0]["code"] == "APPLICATION_COMMAND_INVALID_NAME"


def test_the_fake_refuses_a_bad_localized_option_name_with_its_locale() -> None:
    errors = refusal(command(option={"name_localizations": {"fr": "x" * 33}}))
    problem = errors["0"]["options"]["0"]["name_localizations"]["fr"]["_errors"][0]
    assert problem == {"code": "APPLICATION_COMMAND_INVALID_NAME", "message": "Command name is invalid"}


@pytest.mark.parametrize("text", ["", "x" * 101])
def test_the_fake_refuses_a_localized_description_out_of_bounds(text: str) -> None:
    errors = refusal(command(option={"description_localizations": {"de": text}}))
    problem = errors["0"]["options"]["0"]["description_localizations"]["de"]["_errors"][0]
    assert problem["code"] == "BASE_TYPE_BAD_LENGTH"


def test_the_fake_refuses_a_localized_choice_name_out_of_bounds() -> None:
    choice = {"name": "Square", "value": "1:1", "name_localizations": {"de": "x" * 101}}
    errors = refusal(command(option={"choices": [choice]}))
    problem = errors["0"]["options"]["0"]["choices"]["0"]["name_localizations"]["de"]["_errors"][0]
    assert problem["code"] == "BASE_TYPE_BAD_LENGTH"
