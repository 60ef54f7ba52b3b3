"""Each server in its own language: a job's message (the whole channel reads it) in the server's locale, whatever
the requester's own client language, and still after a restart; the slash commands synced with their
descriptions in every language the catalogs have."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.e2e.conftest import Stack, imagine_in
from tests.fakes.discord import StoredMessage
from tests.fakes.replicate import Scenario

LANGUAGES = ("de", "fr", "es-ES", "pt-BR")


def fields(message: StoredMessage) -> dict[str, str]:
    return {str(field["name"]): str(field["value"]) for field in message.embeds[0].get("fields", [])}


def labels(message: StoredMessage) -> list[str]:
    def walk(components: list[Any]) -> Iterator[str]:
        for component in components:
            if "label" in component:
                yield str(component["label"])
            yield from walk(component.get("components") or [])

    return list(walk(list(message.components)))


def footer(message: StoredMessage) -> str:
    return str(message.embeds[0]["footer"]["text"])


async def test_a_german_servers_job_message_is_german_and_stays_german_after_a_restart(stack: Stack) -> None:
    german = stack.other
    german.locale = "de"
    stack.api.set_default_scenario(Scenario.manual())
    # The requester's own client speaks English: the whole channel reads the message, in the server's language.
    handle = await imagine_in(stack.discord, german, {"prompt": "ein roter Fuchs"}, locale="en-US")
    placeholder = await handle.wait_message()
    shown = fields(placeholder)
    assert {"Modell", "Status", "Angefordert von"} <= shown.keys(), shown
    assert shown["Status"] in ("🚀 Wird gestartet…", "⏳ In der Warteschlange"), shown
    assert labels(placeholder) == ["Abbrechen"]
    assert footer(placeholder).startswith("Auftrag ")

    prediction = await stack.api.wait_for_prediction()
    await stack.api.wait_for_requests("get", 1)
    await stack.stop_bot()  # the job's language is journaled with it
    await stack.start_bot()
    stack.api.finish(prediction.id)
    final = await handle.wait_message(lambda m: fields(m).get("Status") == "✅ Fertig", timeout=15)
    assert final.attachments
    shown = fields(final)
    assert {"Modell", "Angefordert von", "Dauer"} <= shown.keys(), shown
    assert "Modell" in shown["Dauer"] and "gesamt" in shown["Dauer"]
    # Product names stay as the guides call them; the rest is German.
    assert {"Re-roll", "Remix", "Löschen"} <= set(labels(final)), labels(final)


async def test_an_english_servers_job_message_is_english_for_a_german_member(stack: Stack) -> None:
    handle = await imagine_in(stack.discord, stack.guild, {"prompt": "a red fox"}, locale="de")
    final = await stack.final_message(handle)
    shown = fields(final)
    assert shown["Status"] == "✅ Done" and {"Model", "Requested by", "Time"} <= shown.keys(), shown
    assert "Delete" in labels(final) and footer(final).startswith("job ")


async def test_the_synced_commands_carry_their_descriptions_in_every_language(stack: Stack) -> None:
    synced = {command["name"]: command for command in stack.discord.guild_commands[stack.guild.id]}
    imagine = synced["imagine"]
    localized = imagine["description_localizations"]
    assert set(LANGUAGES) <= localized.keys(), localized
    assert localized["de"] == "Ein Bild aus einer Textbeschreibung erzeugen"
    assert localized["es-419"] == localized["es-ES"]  # Latin American Spanish reads the Spanish catalog
    assert "en-US" not in localized and "ja" not in localized  # English is the default; no Japanese catalog
    # Every name is localized: the top-level commands are product names, the same in every language.
    assert imagine["name_localizations"] == dict.fromkeys((*LANGUAGES, "es-419"), "imagine")
    prompt = next(option for option in imagine["options"] if option["name"] == "prompt")
    assert set(LANGUAGES) <= prompt["description_localizations"].keys()
    model = next(option for option in imagine["options"] if option["name"] == "model")
    assert model["name_localizations"]["de"] == "modell" and model["name_localizations"]["pt-BR"] == "modelo"
    for command in synced.values():
        for owner in _named(command):
            assert {*LANGUAGES, "es-419"} <= (owner.get("name_localizations") or {}).keys(), owner["name"]
    admin = synced["imagine-admin"]
    assert admin["description_localizations"]["fr"] == "Gérer /imagine sur ce serveur"
    models = next(option for option in admin["options"] if option["name"] == "models")
    allow = next(option for option in models["options"] if option["name"] == "allow")
    assert allow["description_localizations"]["pt-BR"].startswith("Permite um modelo")
    assert (models["name_localizations"]["fr"], allow["name_localizations"]["de"]) == ("modèles", "erlauben")


def _named(command: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A synced command and every subcommand, group and option under it."""
    yield command
    for option in command.get("options") or []:
        yield from _named(option)
