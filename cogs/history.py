"""A member's own information here, only for them: ``/imagine-history`` (their latest jobs, from the journal) and
``/imagine-info`` (what they may still do today and this month)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_app.answers import AnswerDeadline, answer_privately, member_locale, refuse, tell_failure
from bot.discord_app.history import EMPTY, HISTORY_SIZE, history_embed
from bot.discord_app.member_info import info_embed
from bot.discord_app.members import member_role_ids
from bot.i18n import Text, tr
from bot.moderation.member_status import gather_member_status

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

log = logging.getLogger(__name__)


class History(commands.Cog):
    """What a member made here (when, prompt, model, outcome, a link to each message) and what they may still do."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine-history", description="Your latest /imagine jobs in this server")
    @app_commands.guild_only()
    async def history(self, interaction: discord.Interaction) -> None:
        """Answer with the member's latest jobs here, ephemerally."""
        if interaction.guild_id is None:  # guild_only already keeps it out of DMs; this is for the type checker
            await refuse(interaction, tr("/imagine-history works in servers only."))
            return
        async with AnswerDeadline(interaction, privately=True):
            records = await self.bot.core.journal.member_history(
                interaction.guild_id, interaction.user.id, limit=HISTORY_SIZE
            )
            if not records:
                await answer_privately(interaction, EMPTY)
                return
            await answer_privately(
                interaction,
                embed=history_embed(records, interaction.guild_id, member_locale(interaction)),
                allowed_mentions=discord.AllowedMentions.none(),
            )

    @app_commands.command(
        name="imagine-info", description="What you can still do here today: images, spend, cooldown, jobs, models"
    )
    @app_commands.guild_only()
    async def info(self, interaction: discord.Interaction) -> None:
        """Answer with the member's own figures here, ephemerally: nothing about any other member."""
        if interaction.guild_id is None:  # guild_only already keeps it out of DMs; this is for the type checker
            await refuse(interaction, tr("/imagine-info works in servers only."))
            return
        core = self.bot.core
        guild_id, member_id = interaction.guild_id, interaction.user.id
        # The reads may outlast Discord's 3 s on a slow database: past 2 s the answer is deferred, privately.
        async with AnswerDeadline(interaction, privately=True):
            # This process's own jobs first: one that ends meanwhile is then not counted as on another process.
            jobs = core.engine.member_jobs(guild_id, member_id)
            status = await gather_member_status(
                core.repository,
                core.policy,
                guild_id,
                member_id,
                member_role_ids(interaction),
                now=core.clock.now(),
                here=len(jobs),
                owner=core.journal.owner,
            )
            await answer_privately(
                interaction,
                embed=info_embed(status, jobs, member_locale(interaction)),
                allowed_mentions=discord.AllowedMentions.none(),
            )

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Every failure answers: never leave "This interaction failed"."""
        name = interaction.command.name if interaction.command is not None else "imagine-history"

        def unread(reference: str) -> Text:
            if name == "imagine-info":
                return tr(
                    "Your figures couldn't be read just now (reference {reference}); try again.", reference=reference
                )
            return tr("Your history couldn't be read just now (reference {reference}); try again.", reference=reference)

        # In place of the private "thinking…" when it deferred.
        await tell_failure(interaction, error, f"/{name}", unread)


async def setup(bot: ImagineBot) -> None:
    """Load the History cog."""
    await bot.add_cog(History(bot))
