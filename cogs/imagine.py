"""``/imagine``: a thin command over the job engine, with buttons that survive restarts."""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_app.presenter import DiscordPresenter, MessageTarget
from bot.errors import Refusal
from bot.inputs import ASPECT_RATIOS, PROMPT_MAX, ImagineOptions
from bot.jobs import JobState, JobView

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

log = logging.getLogger(__name__)

AUTOCOMPLETE_LIMIT = 25
_SEED_MAX = 2**32 - 1


def _bot(interaction: discord.Interaction) -> ImagineBot:
    return cast("ImagineBot", interaction.client)


def _cog(interaction: discord.Interaction) -> Imagine:
    cog = _bot(interaction).get_cog(Imagine.__cog_name__)
    if not isinstance(cog, Imagine):
        raise RuntimeError("the Imagine cog is not loaded")
    return cog


def _may_moderate(interaction: discord.Interaction) -> bool:
    permissions = getattr(interaction.user, "guild_permissions", None) or interaction.permissions
    return bool(permissions.manage_messages)


async def _refuse(interaction: discord.Interaction, message: str) -> None:
    """An answer only the presser sees, whichever way the interaction was already answered."""
    if interaction.response.is_done():
        await interaction.followup.send(message, ephemeral=True)
    else:
        await interaction.response.send_message(message, ephemeral=True)


# --------------------------------------------------------------------------- buttons


class CancelButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"imagine:cancel:(?P<job>[0-9a-f]{1,32})"):
    """Cancel a queued or running job (its requester, or a member with Manage Messages)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            discord.ui.Button(label="Cancel", style=discord.ButtonStyle.secondary, custom_id=f"imagine:cancel:{job_id}")
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> CancelButton:
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await _cog(interaction).cancel_pressed(interaction, self.job_id)


class RerollButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"imagine:reroll:(?P<job>[0-9a-f]{1,32})"):
    """Run the same prompt and options again with a new seed."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Re-roll", emoji="🎲", style=discord.ButtonStyle.primary, custom_id=f"imagine:reroll:{job_id}"
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RerollButton:
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await _cog(interaction).reroll_pressed(interaction, self.job_id)


class DeleteButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"imagine:delete:(?P<job>[0-9a-f]{1,32}):(?P<owner>\d+)"
):
    """Delete the result message (its requester, or a member with Manage Messages)."""

    def __init__(self, job_id: str, owner_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Delete",
                emoji="🗑️",
                style=discord.ButtonStyle.danger,
                custom_id=f"imagine:delete:{job_id}:{owner_id}",
            )
        )
        self.job_id = job_id
        self.owner_id = owner_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> DeleteButton:
        return cls(match["job"], int(match["owner"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        if interaction.user.id != self.owner_id and not _may_moderate(interaction):
            await _refuse(interaction, "Only the member who asked for this image, or a moderator, can delete it.")
            return
        await interaction.response.defer()
        if interaction.message is not None:
            with contextlib.suppress(discord.NotFound):
                await interaction.message.delete()


def job_components(view: JobView) -> discord.ui.View:
    """The buttons under a job's message: Cancel while it runs, Re-roll and Delete after."""
    components = discord.ui.View(timeout=None)
    if not view.terminal:
        components.add_item(CancelButton(view.job_id))
        return components
    components.add_item(RerollButton(view.job_id))
    if view.request.requester_id is not None:
        components.add_item(DeleteButton(view.job_id, view.request.requester_id))
    return components


# --------------------------------------------------------------------------- the cog


class Imagine(commands.Cog):
    """Image generation for members."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(CancelButton, RerollButton, DeleteButton)
        if self.bot.resume_jobs:
            await self.resume_jobs()

    async def resume_jobs(self) -> None:
        """Take back the jobs the last run left unfinished: each ends in its final message, none runs twice."""
        core = self.bot.core
        for job in await core.journal.unfinished():
            if job.target is None:
                continue  # not a Discord job (the imagine command runs its own)
            presenter = DiscordPresenter(
                self.bot,
                MessageTarget.from_json(job.target),
                components=job_components,
                clock=core.clock,
                min_interval=core.tuning.edit_interval,
            )
            await core.engine.resume(
                job.job_id,
                job.request,
                presenter,
                prediction_id=job.prediction_id,
                create_started=job.create_started,
                age=job.age,
            )
            log.info("resumed job %s (prediction %s)", job.job_id, job.prediction_id or "not created yet")

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(CancelButton, RerollButton, DeleteButton)

    @app_commands.command(name="imagine", description="Generate an image from a text prompt")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What to draw",
        model="Which model to use (this server's allowed models)",
        aspect_ratio="Width to height",
        count="How many images (1-4)",
        seed="Seed for a repeatable result",
    )
    @app_commands.choices(aspect_ratio=[app_commands.Choice(name=ratio, value=ratio) for ratio in ASPECT_RATIOS])
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, PROMPT_MAX],
        model: str | None = None,
        aspect_ratio: str | None = None,
        count: app_commands.Range[int, 1, 4] | None = None,
        seed: app_commands.Range[int, 0, _SEED_MAX] | None = None,
    ) -> None:
        """Generate an image from a text prompt."""
        options = ImagineOptions(prompt=prompt, aspect_ratio=aspect_ratio, count=count, seed=seed)
        await self.start_job(interaction, model, options)

    @imagine.autocomplete("model")
    async def model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """This server's allowed models that contain what was typed, at most 25."""
        if interaction.guild_id is None:
            return []
        typed = current.strip().lower()
        choices = []
        for ref in await self.bot.core.policy.allowed_models(interaction.guild_id):
            value = str(ref)
            if typed in value.lower() and len(value) <= 100:
                choices.append(app_commands.Choice(name=value, value=value))
            if len(choices) == AUTOCOMPLETE_LIMIT:
                break
        return choices

    async def start_job(
        self, interaction: discord.Interaction, model_text: str | None, options: ImagineOptions
    ) -> None:
        """Check, charge, show the placeholder, then queue: the one way every job starts."""
        core = self.bot.core
        guild_id, member_id = interaction.guild_id, interaction.user.id
        if guild_id is None:
            await _refuse(interaction, "/imagine works in servers only.")
            return
        images = options.count or 1
        async with core.policy.member_lock(guild_id, member_id):
            try:
                options.check()
                model = await core.policy.check(
                    guild_id=guild_id,
                    channel_id=interaction.channel_id,
                    member_id=member_id,
                    model_text=model_text,
                    prompt=options.prompt,
                    images=images,
                )
                request = await core.engine.prepare(
                    model, options, requester_id=member_id, guild_id=guild_id, channel_id=interaction.channel_id
                )
                day = await core.policy.charge(guild_id, member_id, images)
            except Refusal as exc:
                await _refuse(interaction, f"❌ {exc}")
                return
            request = replace(request, charged_images=images, charged_day=day)
            job_id = core.engine.new_job_id()
            try:
                presenter = await DiscordPresenter.open(
                    interaction,
                    JobView(job_id, request, JobState.QUEUED, notes=request.notes),
                    components=job_components,
                    clock=core.clock,
                    min_interval=core.tuning.edit_interval,
                )
                await core.engine.submit(request, presenter, job_id=job_id, target=presenter.target.to_json())
            except BaseException:
                await core.policy.refund(guild_id, member_id, images, day)
                raise

    async def cancel_pressed(self, interaction: discord.Interaction, job_id: str) -> None:
        """The Cancel button."""
        job = self.bot.core.engine.job(job_id)
        if job is None or job.view.terminal:
            await _refuse(interaction, "This job has already ended.")
            return
        if interaction.user.id != job.view.request.requester_id and not _may_moderate(interaction):
            await _refuse(interaction, "Only the member who asked for this image, or a moderator, can cancel it.")
            return
        await interaction.response.defer()
        await job.cancel(by=interaction.user.id)

    async def reroll_pressed(self, interaction: discord.Interaction, job_id: str) -> None:
        """The Re-roll button: same prompt and options, a new seed, a new job under the same rules."""
        core = self.bot.core
        job = core.engine.job(job_id)
        request = job.view.request if job is not None else await core.journal.request_of(job_id)
        if request is None:
            await _refuse(interaction, "This image's settings are no longer known to the bot; run /imagine again.")
            return
        options = replace(request.options, seed=secrets.randbelow(_SEED_MAX + 1))
        await self.start_job(interaction, str(request.model), options)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Every failure answers: never leave "This interaction failed"."""
        if isinstance(error, app_commands.CheckFailure):
            await _refuse(interaction, f"❌ {error}")
            return
        reference = secrets.token_hex(3)
        log.error("command failed (reference %s)", reference, exc_info=error)
        try:
            await _refuse(interaction, f"Something went wrong on our side (reference {reference}).")
        except discord.HTTPException:
            log.warning("could not tell the member about failure %s", reference)


async def setup(bot: ImagineBot) -> None:
    """Load the Imagine cog."""
    await bot.add_cog(Imagine(bot))
