"""``/describe image:``: prompts for an image from the owner's describe model, each a button to ``/imagine`` it.

A thin command over :mod:`bot.discord_app.describe_command`; the answer and its buttons, which survive
restarts, live in :mod:`bot.discord_app.describe_answer`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_app.answers import answer_command_error
from bot.discord_app.describe_answer import SuggestionButton
from bot.discord_app.describe_command import DescribeCommand

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot


class Describe(commands.Cog):
    """Prompt suggestions for members' images."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        self.command: DescribeCommand | None = None
        self._warming: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        self.command = DescribeCommand(self.bot)  # over the core, which exists once the bot is set up
        self.bot.add_dynamic_items(SuggestionButton)
        self._warming = asyncio.create_task(self.command.warm(), name="warm-describe-schema")

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(SuggestionButton)
        if self._warming is not None:
            self._warming.cancel()

    @app_commands.command(name="describe", description="Prompts that would make an image like yours")
    @app_commands.guild_only()
    @app_commands.describe(image="The image to describe (PNG, JPEG, WebP or GIF)")
    async def describe(self, interaction: discord.Interaction, image: discord.Attachment) -> None:
        """Up to four prompts for the image, each with a button that starts /imagine with it."""
        assert self.command is not None, "the cog is loaded"
        await self.command.describe(interaction, image)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Every failure answers: never leave "This interaction failed"."""
        await answer_command_error(interaction, error, "/describe")


async def setup(bot: ImagineBot) -> None:
    """Load the Describe cog."""
    await bot.add_cog(Describe(bot))
