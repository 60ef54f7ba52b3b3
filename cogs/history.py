"""``/imagine-history``: a member's own latest jobs in this server, from the journal, only for them."""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_app.history import EMPTY, HISTORY_SIZE, history_embed

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

log = logging.getLogger(__name__)


class History(commands.Cog):
    """What a member made here: when, prompt, model, outcome, and a link to each message."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine-history", description="Your latest /imagine jobs in this server")
    @app_commands.guild_only()
    async def history(self, interaction: discord.Interaction) -> None:
        """Answer with the member's latest jobs here, ephemerally."""
        if interaction.guild_id is None:  # guild_only already keeps it out of DMs; this is for the type checker
            await interaction.response.send_message("/imagine-history works in servers only.", ephemeral=True)
            return
        records = await self.bot.core.journal.member_history(
            interaction.guild_id, interaction.user.id, limit=HISTORY_SIZE
        )
        if not records:
            await interaction.response.send_message(EMPTY, ephemeral=True)
            return
        await interaction.response.send_message(
            embed=history_embed(records, interaction.guild_id),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Every failure answers: never leave "This interaction failed"."""
        reference = secrets.token_hex(3)
        log.error("/imagine-history failed (reference %s)", reference, exc_info=error)
        message = f"Your history could not be read just now (reference {reference}); try again in a moment."
        try:
            if interaction.response.is_done():
                await interaction.followup.send(message, ephemeral=True)
            else:
                await interaction.response.send_message(message, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not tell the member about failure %s", reference)


async def setup(bot: ImagineBot) -> None:
    """Load the History cog."""
    await bot.add_cog(History(bot))
