"""``/imagine-admin`` in the reader's language, through the fake Discord (issue 21).

An answer is for the moderator who asked: their own Discord locale. A mod-log post is read by the whole
mod-log channel: the server's preferred locale, whoever caused it.
"""

from __future__ import annotations

from tests.e2e.conftest import Stack
from tests.e2e.test_moderation import answer, refusal
from tests.e2e.test_modlog import BLOCKED_PROMPT, entry_in, text_of
from tests.fakes.discord import CallbackType, FakeMember


async def answer_in(stack: Stack, command: str, moderator: FakeMember, locale: str, **options: object) -> str:
    """An admin command run by ``moderator`` whose Discord speaks ``locale``; its private answer, flattened."""
    handle = await stack.discord.slash(
        f"imagine-admin {command}",
        options,
        user=moderator,
        guild=stack.guild,
        channel=stack.guild.channel("general"),
        locale=locale,
    )
    callback = await handle.wait_callback(accepted_only=True)
    if callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE:
        message = await handle.wait_message(lambda m: not m.current.loading)
        return message.content + str(message.embeds)
    assert callback.ephemeral
    return (callback.content or "") + str(callback.data.get("embeds", ""))


async def test_each_moderator_reads_show_in_their_own_language(stack: Stack) -> None:
    guild = stack.guild
    english = guild.member("moderator")
    french = guild.add_member("moderatrice", roles=[guild.role("Moderator")])
    await stack.discord.dispatch_guild_create(guild)

    shown = await answer_in(stack, "show", french, "fr")
    assert "Réglages de /imagine" in shown
    assert "Délai entre deux demandes : aucun · Images par membre et par jour : aucune limite" in shown
    assert "Plafond mensuel : aucun · Plafond quotidien par membre : aucun" in shown
    assert "aucune modification pour le moment" in shown and "Cooldown" not in shown

    shown = await answer_in(stack, "show", english, "en-US")
    assert "/imagine settings" in shown
    assert "Cooldown: none · Images per member per day: no limit · Jobs at once: no limit" in shown
    assert "Monthly cap: none · Daily cap per member: none" in shown and "Délai" not in shown

    # Answers to changes too; the change itself is recorded once, whoever reads it.
    changed = await answer_in(stack, "limits", french, "fr", cooldown=30)
    assert "Limites modifiées" in changed and "30 s" in changed
    assert "✅ Mot ||renard|| bloqué." in await answer_in(stack, "words add", french, "fr", word="renard")
    assert "Ce mot était déjà bloqué." in await answer_in(stack, "words add", french, "fr", word="renard")
    assert "That word was already blocked." in await answer_in(stack, "words add", english, "en-US", word="renard")
    history = await answer_in(stack, "show", english, "en-US")
    assert "Cooldown: none · Images per member per day: no limit · Jobs at once: no limit → Cooldown: 30 s" in history
    assert "Latest changes" in history

    # A language without a catalog reads English.
    assert "/imagine settings" in await answer_in(stack, "show", english, "ja")


async def test_the_mod_log_of_a_german_server_is_german(stack: Stack) -> None:
    guild = stack.guild
    guild.locale = "de"
    channel = guild.add_channel("mod-log")
    await stack.discord.dispatch_guild_create(guild)
    # The moderator's Discord is in English: their answer is English, the channel's post German.
    assert "The mod-log goes to" in await answer(stack, "log channel", channel=channel)
    await answer(stack, "limits", cooldown=30)
    logged = text_of(await entry_in(stack, channel, "Wartezeit: 30 s"))
    assert "Einstellung geändert" in logged
    assert "Wartezeit: keine · Bilder pro Mitglied und Tag: kein Limit" in logged
    assert "Setting changed" not in logged and "Cooldown" not in logged

    await answer(stack, "words add", word="weasel")
    await refusal(stack, prompt=BLOCKED_PROMPT)
    blocked = text_of(await entry_in(stack, channel, "Prompt abgelehnt: gesperrtes Wort"))
    assert "||weasel||" in blocked and " in <#" in blocked


async def test_a_moderator_types_the_names_their_discord_shows_and_reads_them_back(stack: Stack) -> None:
    """A German moderator's Discord shows ``/imagine-admin wörter hinzufügen wort:``; Discord (and the fake) sends
    the base names, and the answers name the options as the German moderator sees them."""
    german = stack.guild.member("moderator")
    assert "renard" in await answer_in(stack, "wörter hinzufügen", german, "de", wort="renard")
    assert "renard" in await answer_in(stack, "words list", german, "de")
    refused = await answer_in(stack, "limits", german, "de", zurücksetzen=True)
    assert "❌ `zurücksetzen` löscht die Limits einer Rolle: Gib die `rolle` an." in refused
    refused = await answer_in(stack, "usage", german, "de", tage=0)
    assert refused.startswith("❌ `tage` geht von 1 bis")
