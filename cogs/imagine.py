"""``/imagine``: a thin command over the job starter, with buttons that survive restarts.

The buttons live in :mod:`bot.discord_app.buttons`, what their presses do in
:mod:`bot.discord_app.button_actions`, and how a job starts or resumes in :mod:`bot.discord_app.starter`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.api.inputs import ASPECT_RATIOS, PROMPT_MAX, ImagineOptions
from bot.base.errors import ImagineError
from bot.discord_app.age_restriction import is_age_restricted
from bot.discord_app.answers import AnswerDeadline, answer_command_error, refusal, refuse
from bot.discord_app.attachments import check_image_attachment
from bot.discord_app.button_actions import ButtonActions
from bot.discord_app.buttons import PERSISTENT_BUTTONS
from bot.discord_app.members import member_role_ids
from bot.discord_app.model_choices import usable_model_choices
from bot.discord_app.remix import submit_remix_form
from bot.discord_app.starter import JobStarter
from bot.i18n import tr

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

log = logging.getLogger(__name__)

_OPTIONS = {
    "prompt": "What to draw; may end with flags: --ar 16:9 --seed 42 --no people",
    "model": "Which model to use (this server's allowed models)",
    "aspect_ratio": "Width to height",
    "count": "How many images (1-4)",
    "seed": "Seed for a repeatable result",
    "image": "An image to start from (for models that take one)",
}
"""What each of ``/imagine``'s options says about itself in Discord."""


class Imagine(commands.Cog):
    """Image generation for members."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        self.starter = JobStarter(bot)
        self.button_actions = ButtonActions(bot, self.starter)
        self._warming: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        self.bot.button_handler = self.button_actions
        self.bot.add_dynamic_items(*PERSISTENT_BUTTONS)
        self._warming = asyncio.create_task(self._warm_schemas(), name="warm-schemas")
        if self.bot.resume_jobs:
            # Before the gateway connects: resumed jobs hold their slots and count against every limit
            # before any new /imagine is checked. Their messages are edited in the background.
            core = self.bot.core
            resume = self.starter.resume_jobs
            await resume(await core.cluster.join())
            core.cluster.start(resume=resume, live_jobs=core.engine.live_job_ids, drop=core.engine.drop)

    async def _warm_schemas(self) -> None:
        """Read the bot-wide models' input schemas now, so the first /imagine answers fast."""
        client = self.bot.core.client
        results = await asyncio.gather(
            *(client.input_schema(model) for model in self.bot.settings.offered_models), return_exceptions=True
        )
        for model, result in zip(self.bot.settings.offered_models, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("could not read the input schema of %s: %s", model, result)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A Remix form's submit, answered by its custom id: the form may have been opened before a restart."""
        await submit_remix_form(interaction, self.button_actions)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*PERSISTENT_BUTTONS)
        self.bot.button_handler = None
        if self._warming is not None:
            self._warming.cancel()

    @app_commands.command(name="imagine", description="Generate an image from a text prompt")
    @app_commands.guild_only()
    @app_commands.describe(**_OPTIONS)
    @app_commands.choices(aspect_ratio=[app_commands.Choice(name=ratio, value=ratio) for ratio in ASPECT_RATIOS])
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, PROMPT_MAX],
        model: str | None = None,
        aspect_ratio: str | None = None,
        count: app_commands.Range[int, 1, 4] | None = None,
        seed: app_commands.Range[int, 0, None] | None = None,
        image: discord.Attachment | None = None,
    ) -> None:
        """Generate an image from a text prompt."""
        if image is not None:
            # Telling an image without a declared type means downloading it: mind the 3 s to answer.
            async with AnswerDeadline(interaction):
                try:
                    await check_image_attachment(self.bot.core.downloader, image, image.filename, tr("your attachment"))
                except ImagineError as exc:
                    await refuse(interaction, refusal(exc))
                    return
        # The attachment's CDN URL goes to the API, which downloads it itself: no token of ours travels.
        options = ImagineOptions(
            prompt=prompt, aspect_ratio=aspect_ratio, count=count, seed=seed, image=image.url if image else None
        )
        await self.starter.start_job(interaction, model, options)

    @imagine.autocomplete("model")
    async def model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """The models this member may use here that contain what was typed, at most 25."""
        if interaction.guild_id is None:
            return []
        return await usable_model_choices(
            self.bot.core.policy,
            interaction.guild_id,
            member_role_ids(interaction),
            current,
            age_restricted=is_age_restricted(interaction.channel),
        )

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Every failure answers: never leave "This interaction failed"."""
        await answer_command_error(interaction, error, "/imagine")


async def setup(bot: ImagineBot) -> None:
    """Load the Imagine cog."""
    await bot.add_cog(Imagine(bot))
