"""``/imagine``: a thin command over the job engine, with buttons that survive restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_app.presenter import DiscordPresenter, MessageTarget, TargetListener
from bot.errors import ImagineError, Refusal
from bot.inputs import ASPECT_RATIOS, PROMPT_MAX, ImagineOptions
from bot.job_model import JobState, JobView
from bot.jobs import ResumedJob
from bot.journal import Unfinished

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

log = logging.getLogger(__name__)

AUTOCOMPLETE_LIMIT = 25
_REROLL_SEED_RANGE = 2**32  # seeds every model accepts
_LOCK_WAIT = 0.5  # seconds a member's second request waits for the first one's set-up


def _bot(interaction: discord.Interaction) -> ImagineBot:
    return cast("ImagineBot", interaction.client)


def _cog(interaction: discord.Interaction) -> Imagine:
    cog = _bot(interaction).get_cog(Imagine.__cog_name__)
    if not isinstance(cog, Imagine):
        raise RuntimeError("the Imagine cog is not loaded")
    return cog


def _may_moderate(interaction: discord.Interaction) -> bool:
    """Manage Messages where the button was pressed (channel overwrites included)."""
    return bool(interaction.permissions.manage_messages)


async def _refuse(interaction: discord.Interaction, message: str) -> None:
    """An answer only the presser sees, whichever way the interaction was already answered."""
    if interaction.response.is_done():
        await interaction.followup.send(message, ephemeral=True)
    else:
        await interaction.response.send_message(message, ephemeral=True)


@contextlib.asynccontextmanager
async def _answering(interaction: discord.Interaction) -> AsyncIterator[None]:
    """Buttons bypass the command error handler: make every failure answer, never "This interaction failed"."""
    try:
        yield
    except Exception:
        reference = secrets.token_hex(3)
        log.exception("button failed (reference %s)", reference)
        with contextlib.suppress(discord.HTTPException):
            await _refuse(interaction, f"Something went wrong on our side (reference {reference}).")


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
        async with _answering(interaction):
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
        async with _answering(interaction):
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
        async with _answering(interaction):
            await self._delete(interaction)

    async def _delete(self, interaction: discord.Interaction) -> None:
        if interaction.user.id != self.owner_id and not _may_moderate(interaction):
            await _refuse(interaction, "Only the member who asked for this image, or a moderator, can delete it.")
            return
        await interaction.response.defer()
        try:
            # Through the interaction, so it works where the bot itself cannot read the channel.
            await interaction.delete_original_response()
        except discord.NotFound:
            pass
        except discord.HTTPException as exc:
            log.warning("could not delete job %s's message: %s", self.job_id, exc)
            await interaction.followup.send("The message could not be deleted.", ephemeral=True)


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
        self._warming: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(CancelButton, RerollButton, DeleteButton)
        self._warming = asyncio.create_task(self._warm_schemas(), name="warm-schemas")
        if self.bot.resume_jobs:
            # Before the gateway connects: resumed jobs hold their slots and count against every limit
            # before any new /imagine is checked. Their messages are edited in the background.
            core = self.bot.core
            await self.resume_jobs(await core.cluster.join())
            core.cluster.start(resume=self.resume_jobs, live_jobs=core.engine.live_job_ids, drop=core.engine.drop)

    async def _warm_schemas(self) -> None:
        """Read the bot-wide models' input schemas now, so the first /imagine answers fast."""
        client = self.bot.core.client
        results = await asyncio.gather(
            *(client.input_schema(model) for model in self.bot.settings.offered_models), return_exceptions=True
        )
        for model, result in zip(self.bot.settings.offered_models, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("could not read the input schema of %s: %s", model, result)

    def _recorder(self, job_id: str) -> TargetListener:
        """Tells the journal where the job's message is when it moves (found, or posted anew)."""
        journal = self.bot.core.journal

        async def record(moved: MessageTarget) -> None:
            await journal.shown(job_id, moved.to_json())

        return record

    def _presenter(self, job_id: str, target: MessageTarget, **kwargs: Any) -> DiscordPresenter:
        core = self.bot.core
        return DiscordPresenter(
            self.bot,
            target,
            components=job_components,
            clock=core.clock,
            min_interval=core.tuning.edit_interval,
            on_target=self._recorder(job_id),
            **kwargs,
        )

    async def resume_jobs(self, unfinished: list[Unfinished]) -> None:
        """Take back the jobs the last run left unfinished: each ends in its final message, none runs twice."""
        core = self.bot.core
        resumed: list[ResumedJob] = []
        for job in unfinished:
            if job.target is None:
                continue  # not a Discord job (the imagine command runs its own)
            try:
                presenter = self._presenter(job.job_id, MessageTarget.from_json(job.target))
            except Exception:
                log.exception("could not resume job %s; marking it failed", job.job_id)
                await core.journal.abandon(job.job_id, "could not be resumed after a restart")
                continue
            resumed.append(
                ResumedJob(
                    job.job_id,
                    job.request,
                    presenter,
                    prediction_id=job.prediction_id,
                    create_started_at=job.create_started_at,
                    age=job.age,
                )
            )
        core.engine.resume(resumed)
        for item in resumed:
            log.info("resumed job %s (prediction %s)", item.job_id, item.prediction_id or "not known yet")

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(CancelButton, RerollButton, DeleteButton)
        if self._warming is not None:
            self._warming.cancel()

    @app_commands.command(name="imagine", description="Generate an image from a text prompt")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What to draw; may end with flags: --ar 16:9 --seed 42 --no people",
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
        seed: app_commands.Range[int, 0, None] | None = None,
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
        lock = core.policy.member_lock(guild_id, member_id)
        try:
            # Discord waits 3 s for an answer: a request stuck behind the member's previous one is refused.
            await asyncio.wait_for(lock.acquire(), _LOCK_WAIT)
        except TimeoutError:
            await _refuse(interaction, "Your previous /imagine is still being set up; try again in a moment.")
            return
        try:
            await self._start_locked(interaction, guild_id, member_id, model_text, options)
        finally:
            lock.release()

    async def _start_locked(
        self,
        interaction: discord.Interaction,
        guild_id: int,
        member_id: int,
        model_text: str | None,
        options: ImagineOptions,
    ) -> None:
        core = self.bot.core
        try:
            options.check()
            model = await core.policy.check_request(
                guild_id=guild_id,
                channel_id=interaction.channel_id,
                parent_channel_id=getattr(interaction.channel, "parent_id", None),
                member_id=member_id,
                model_text=model_text,
                prompt=options.prompt,
            )
            request = await core.engine.prepare(
                model, options, requester_id=member_id, guild_id=guild_id, channel_id=interaction.channel_id
            )
            images = request.images_expected
            await core.policy.check_usage(guild_id=guild_id, member_id=member_id, images=images)
            day = await core.policy.charge(guild_id, member_id, images)
        except Refusal as exc:
            await _refuse(interaction, f"❌ {exc}")
            return
        request = replace(request, charged_images=images, charged_day=day)
        job_id = core.engine.new_job_id()
        queued = JobView(job_id, request, JobState.QUEUED, notes=request.notes)
        try:
            # Journaled before anything is shown: a crash after the placeholder goes out cannot orphan it.
            await core.engine.accept(job_id, request, MessageTarget.of(interaction, None).to_json())
        except BaseException:
            await core.policy.refund(guild_id, member_id, images, day)
            raise
        try:
            presenter = await DiscordPresenter.open(
                interaction,
                queued,
                components=job_components,
                clock=core.clock,
                min_interval=core.tuning.edit_interval,
                on_target=self._recorder(job_id),
            )
        except BaseException:
            await core.journal.abandon(job_id, "the placeholder could not be shown")
            await core.policy.refund(guild_id, member_id, images, day)
            raise
        try:
            await core.engine.submit(
                request, presenter, job_id=job_id, target=presenter.target.to_json(), journaled=True
            )
        except Exception as exc:
            await core.policy.refund(guild_id, member_id, images, day)
            reference = secrets.token_hex(3)
            log.exception("job %s could not be queued (reference %s)", job_id, reference)
            message = (
                exc.message
                if isinstance(exc, ImagineError)
                else f"The job could not be started (reference {reference})."
            )
            await core.journal.abandon(job_id, message)
            await presenter.show(replace(queued, state=JobState.FAILED, error=message))

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
        options = replace(request.options, seed=secrets.randbelow(_REROLL_SEED_RANGE))
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
