"""``/imagine-admin apikey``: a server runs its jobs with its own API key (``set``, a form) or the bot's (``off``).

A mixin of the ``Admin`` cog (discord.py collects app commands and listeners from a cog's bases). The key is
typed into a form, never into a command option (options show in the client's history), is never echoed, and
is kept only once the API took it (:class:`bot.moderation.api_keys.ServerKeys`). Like the Remix form, the form
is answered by its custom id from an ``on_interaction`` listener, so a form opened before a restart still works;
the answer is deferred at once, since checking the key with the API may take longer than Discord's 3 s.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_app.forms import submitted_value
from bot.i18n import Text, tr
from bot.moderation.api_keys import MAX_KEY_LENGTH, KeyCheck

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

    _Mixin = commands.Cog
else:  # at run time a plain mixin: the Admin cog that inherits it is the cog
    _Mixin = object

log = logging.getLogger(__name__)

FORM_ID = "imagine:apikey-form"
KEY_INPUT = "key"
"""The custom id of the form's one text input."""


def _no_secret_key() -> Text:
    return tr(
        "❌ This bot cannot keep servers' own API keys: its owner must set `IMAGINE_SECRET_KEY` (the key that "
        "encrypts them) first. Until then this server uses the bot's API key."
    )


def key_form(locale: str | None = None) -> discord.ui.Modal:
    """The form, in the moderator's language: one text input for the key, empty (a stored key is never shown)."""
    form = discord.ui.Modal(title=tr("This server's API key").render(locale), custom_id=FORM_ID, timeout=None)
    key: discord.ui.TextInput[discord.ui.Modal] = discord.ui.TextInput(
        custom_id=KEY_INPUT,
        style=discord.TextStyle.short,
        min_length=8,
        max_length=MAX_KEY_LENGTH,
        required=True,
        placeholder="r8_…",
    )
    form.add_item(
        discord.ui.Label(
            text=tr("API key").render(locale),
            description=tr("Checked with the API before it is kept; stored encrypted, never shown again.").render(
                locale
            ),
            component=key,
        )
    )
    form.stop()  # a plain form: every submit reaches on_interaction, before and after a restart alike
    return form


_ANSWERS: dict[KeyCheck, Text] = {
    KeyCheck.REFUSED: tr(
        "❌ The prediction API refused that key (not valid, or revoked). Nothing was kept; this server's jobs "
        "still use the key they used before."
    ),
    KeyCheck.UNREACHABLE: tr(
        "❌ The prediction API could not be reached to check that key, so nothing was kept. Try again in a moment."
    ),
    KeyCheck.BUSY: tr("❌ Another key for this server is being checked right now; try again in a moment."),
    KeyCheck.MALFORMED: tr(
        "❌ That does not look like an API key (no spaces, at most {limit} characters).", limit=MAX_KEY_LENGTH
    ),
}


class ApiKeyCommands(_Mixin):
    """``/imagine-admin apikey set|off``; mixed into :class:`cogs.admin.Admin`."""

    bot: ImagineBot
    apikey = app_commands.Group(name="apikey", description="Run this server's jobs with its own API key")

    @apikey.command(name="set", description="Use this server's own API key (typed into a form, never shown)")
    async def apikey_set(self, interaction: discord.Interaction) -> None:
        """Open the form, or say why a key cannot be kept here."""
        if not self.bot.core.server_keys.available:
            await interaction.response.send_message(_no_secret_key().render(str(interaction.locale)), ephemeral=True)
            return
        await interaction.response.send_modal(key_form(str(interaction.locale)))

    @apikey.command(name="off", description="Go back to the bot's own API key")
    async def apikey_off(self, interaction: discord.Interaction) -> None:
        """Forget the server's key; its running jobs end on the account they started with."""
        assert interaction.guild_id is not None  # the cog's check refused DMs
        await interaction.response.defer(ephemeral=True, thinking=True)
        cleared = await self.bot.core.server_keys.turn_off(interaction.guild_id, actor_id=interaction.user.id)
        text = (
            tr("✅ This server's API key was removed: its new jobs use the bot's key again.")
            if cleared
            else tr("This server has no API key of its own: it already uses the bot's.")
        )
        await interaction.edit_original_response(content=text.render(str(interaction.locale)))

    @commands.Cog.listener("on_interaction")
    async def on_apikey_form(self, interaction: discord.Interaction) -> None:
        """A submitted key form: checked with the API and kept, or refused with the reason; never echoed."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: Mapping[str, Any] = interaction.data or {}
        if data.get("custom_id") != FORM_ID:
            return
        locale = str(interaction.locale)
        keys = self.bot.core.server_keys
        guild_id = interaction.guild_id
        if guild_id is None or not interaction.permissions.manage_guild:
            text = tr("Only members with the Manage Server permission can set this server's API key.")
            await interaction.response.send_message(text.render(locale), ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            if not keys.available:
                answer = _no_secret_key()
            else:
                key = submitted_value(data.get("components") or (), KEY_INPUT) or ""
                outcome = await keys.check_and_set(guild_id, key, actor_id=interaction.user.id)
                state = await keys.state(guild_id)
                answer = _ANSWERS.get(outcome) or tr(
                    "✅ The API took the key: this server's new jobs use it, with a request budget of their own. "
                    "API key: {state}.",
                    state=state,
                )
        except Exception:
            # Never with the exception's text: it could quote what was typed.
            log.error("could not keep the API key of guild %s", guild_id)
            answer = tr("Something went wrong while keeping that key; nothing was changed.")
        await interaction.edit_original_response(content=answer.render(locale))


async def add_key_field(bot: ImagineBot, embed: discord.Embed, guild_id: int, locale: str | None) -> discord.Embed:
    """``show``'s field on the server's key: ``API key: set, ends in …abcd`` (never more of it)."""
    state = await bot.core.server_keys.state(guild_id)
    return embed.add_field(name=tr("API key").render(locale), value=state.render(locale), inline=False)
