"""What every ``/imagine-admin`` command shares: the Manage Server check on every call, the answer to a failed
command, and the moderator's own language (every answer is for them alone).

The base of :class:`cogs.admin.Admin` and its mixins (:mod:`cogs.admin_safety`, :mod:`cogs.admin_apikey`); not an
extension of its own.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_app.answers import reply_privately
from bot.i18n import Text, tr
from bot.storage import Repository

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

log = logging.getLogger(__name__)


def locale_of(interaction: discord.Interaction) -> str:
    """The moderator's own language: every answer of these commands is for them alone."""
    return str(interaction.locale)


class AdminBase(commands.GroupCog):
    """The check, the error answer and the helpers of ``/imagine-admin``'s commands."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Manage Server, checked on every call whatever the command's visibility says."""
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        if not interaction.permissions.manage_guild:
            raise app_commands.MissingPermissions(["manage_guild"])
        return True

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.MissingPermissions):
            text = tr("You need the Manage Server permission to change /imagine settings.")
        elif isinstance(error, app_commands.NoPrivateMessage):
            text = tr("These settings belong to a server: use the command there.")
        else:
            log.error("admin command failed", exc_info=error)
            text = tr("Something went wrong saving that; nothing was changed.")
        await self._say(interaction, text)

    # ------------------------------------------------------------------ helpers

    @property
    def _repository(self) -> Repository:
        return self.bot.core.repository

    @staticmethod
    async def _say(interaction: discord.Interaction, text: Text) -> None:
        """A private answer to the moderator, in their own language."""
        await reply_privately(interaction, text.render(locale_of(interaction)))

    @staticmethod
    def _ids(interaction: discord.Interaction) -> tuple[int, int]:
        assert interaction.guild_id is not None  # interaction_check refused DMs
        return interaction.guild_id, interaction.user.id
