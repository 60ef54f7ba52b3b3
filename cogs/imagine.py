"""``/imagine``: a thin command over the job engine, with buttons that survive restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_app.answers import AnswerDeadline, refuse
from bot.discord_app.members import member_role_ids
from bot.discord_app.presenter import DiscordPresenter, MessageTarget, TargetListener
from bot.errors import ImagineError, Refusal
from bot.inputs import ASPECT_RATIOS, PROMPT_MAX, ImagineOptions, check_image_upload
from bot.job_model import JobKind, JobRequest, JobState, JobView
from bot.jobs import ResumedJob
from bot.journal import Unfinished
from bot.modelref import ModelRef

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

log = logging.getLogger(__name__)

AUTOCOMPLETE_LIMIT = 25
_REROLL_SEED_RANGE = 2**32  # seeds every model accepts
_LOCK_WAIT = 0.5  # seconds a member's second request waits for the first one's set-up
_BUTTONS_PER_ROW = 5  # Discord's limit: images past the fifth get no U/V button


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
    await refuse(interaction, message)


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


class ImageButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"imagine:(?P<kind>upscale|vary):(?P<job>[0-9a-f]{1,32}):(?P<n>[1-9])",
):
    """``U<n>``/``V<n>``: upscale image n, or vary it, as a new job replying to this message.

    The custom id carries the job and the image's place; the job's request comes
    from the journal and the image from the clicked message, so it works after restarts.
    """

    def __init__(self, kind: JobKind, job_id: str, number: int) -> None:
        letter, row = ("U", 1) if kind is JobKind.UPSCALE else ("V", 2)
        super().__init__(
            discord.ui.Button(
                label=f"{letter}{number}",
                style=discord.ButtonStyle.secondary,
                custom_id=f"imagine:{kind}:{job_id}:{number}",
                row=row,
            )
        )
        self.kind, self.job_id, self.number = kind, job_id, number

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ImageButton:
        return cls(JobKind(match["kind"]), match["job"], int(match["n"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        async with _answering(interaction):
            await _cog(interaction).image_pressed(interaction, self.job_id, self.number, self.kind)


def job_components(view: JobView, *, upscale: bool = False) -> discord.ui.View:
    """The buttons under a job's message: Cancel while it runs; Re-roll, Delete, U1…Un and V1…Vn after.

    ``upscale``: an upscale model is set (``IMAGINE_UPSCALE_MODEL``). V buttons need a model whose
    schema takes an image. An upscale's result is an end point: it gets Delete only.
    """
    components = discord.ui.View(timeout=None)
    request = view.request
    if not view.terminal:
        components.add_item(CancelButton(view.job_id))
        return components
    if request.kind is not JobKind.UPSCALE:
        components.add_item(RerollButton(view.job_id))
    if request.requester_id is not None:
        components.add_item(DeleteButton(view.job_id, request.requester_id))
    if view.state is not JobState.SUCCEEDED or request.kind is JobKind.UPSCALE:
        return components
    numbers = range(1, min(len(view.images), _BUTTONS_PER_ROW) + 1)
    for kind, shown in ((JobKind.UPSCALE, upscale), (JobKind.VARY, request.image_input is not None)):
        if shown:
            for number in numbers:
                components.add_item(ImageButton(kind, view.job_id, number))
    return components


@dataclass(frozen=True)
class JobOrder:
    """What a member's interaction asks to start, before any check."""

    model_text: str | None
    options: ImagineOptions
    kind: JobKind = JobKind.IMAGINE
    owner_model: ModelRef | None = None
    """A model the bot's owner chose (the upscaler): not looked for on the server's list."""
    reply_to: int | None = None
    """The message the new job's message replies to (U and V jobs reply to their original)."""


# --------------------------------------------------------------------------- the cog


class Imagine(commands.Cog):
    """Image generation for members."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        self._warming: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(*_BUTTONS)
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

    def _components(self, view: JobView) -> discord.ui.View:
        return job_components(view, upscale=self.bot.settings.upscale_model is not None)

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
            components=self._components,
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
        self.bot.remove_dynamic_items(*_BUTTONS)
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
        image="An image to start from (for models that take one)",
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
        image: discord.Attachment | None = None,
    ) -> None:
        """Generate an image from a text prompt."""
        if image is not None:
            try:
                check_image_upload(image.content_type, image.size, image.filename)
            except Refusal as exc:
                await _refuse(interaction, f"❌ {exc}")
                return
        # The attachment's CDN URL goes to the API, which downloads it itself: no token of ours travels.
        options = ImagineOptions(
            prompt=prompt, aspect_ratio=aspect_ratio, count=count, seed=seed, image=image.url if image else None
        )
        await self.start_job(interaction, model, options)

    @imagine.autocomplete("model")
    async def model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """The models this member may use here that contain what was typed, at most 25."""
        if interaction.guild_id is None:
            return []
        typed = current.strip().lower()
        choices = []
        for ref in await self.bot.core.policy.usable_models(interaction.guild_id, member_role_ids(interaction)):
            value = str(ref)
            if typed in value.lower() and len(value) <= 100:
                choices.append(app_commands.Choice(name=value, value=value))
            if len(choices) == AUTOCOMPLETE_LIMIT:
                break
        return choices

    async def start_job(
        self, interaction: discord.Interaction, model_text: str | None, options: ImagineOptions
    ) -> None:
        """Start an ``/imagine`` job (see :meth:`start_order`)."""
        await self.start_order(interaction, JobOrder(model_text, options))

    async def start_order(self, interaction: discord.Interaction, order: JobOrder) -> None:
        """Check, charge, show the placeholder, then queue: the one way every job starts."""
        guild_id, member_id = interaction.guild_id, interaction.user.id
        if guild_id is None:
            await _refuse(interaction, "/imagine works in servers only.")
            return
        async with AnswerDeadline(interaction):
            await self._start_in_turn(interaction, guild_id, member_id, order)

    async def _start_in_turn(
        self, interaction: discord.Interaction, guild_id: int, member_id: int, order: JobOrder
    ) -> None:
        """One set-up at a time per member, so two quick clicks cannot both pass the same limits."""
        lock = self.bot.core.policy.member_lock(guild_id, member_id)
        try:
            # Discord waits 3 s for an answer: a request stuck behind the member's previous one is refused.
            await asyncio.wait_for(lock.acquire(), _LOCK_WAIT)
        except TimeoutError:
            await _refuse(interaction, "Your previous /imagine is still being set up; try again in a moment.")
            return
        try:
            await self._start_locked(interaction, guild_id, member_id, order)
        finally:
            lock.release()

    async def _start_locked(
        self,
        interaction: discord.Interaction,
        guild_id: int,
        member_id: int,
        order: JobOrder,
    ) -> None:
        core = self.bot.core
        options = order.options
        role_ids = member_role_ids(interaction)
        try:
            options.check()
            model = await core.policy.check_request(
                guild_id=guild_id,
                channel_id=interaction.channel_id,
                parent_channel_id=getattr(interaction.channel, "parent_id", None),
                member_id=member_id,
                model_text=order.model_text,
                prompt=options.prompt,
                owner_model=order.owner_model,
                role_ids=role_ids,
            )
            request = await core.engine.prepare(
                model,
                options,
                requester_id=member_id,
                guild_id=guild_id,
                channel_id=interaction.channel_id,
                kind=order.kind,
            )
            if order.model_text is None and order.owner_model is None:
                note = await core.policy.default_note(guild_id, role_ids)
                if note is not None:
                    request = replace(request, notes=(note, *request.notes))
            images = request.images_expected
            await core.policy.check_usage(guild_id=guild_id, member_id=member_id, images=images, role_ids=role_ids)
            cost = await core.pricing.estimate(request.model, images)
            day = await core.policy.charge(guild_id, member_id, images, role_ids=role_ids, cost=cost)
        except Refusal as exc:
            await _refuse(interaction, f"❌ {exc}")
            return
        request = replace(request, charged_images=images, charged_day=day, reserved_cost=cost)
        job_id = core.engine.new_job_id()
        queued = JobView(job_id, request, JobState.QUEUED, notes=request.notes)
        target = (
            MessageTarget.of(interaction, None)
            if order.reply_to is None
            else MessageTarget.reply(interaction, order.reply_to)
        )
        try:
            # Journaled before anything is shown: a crash after the placeholder goes out cannot orphan it.
            await core.engine.accept(job_id, request, target.to_json())
        except BaseException:
            await core.policy.refund(guild_id, member_id, images, day, cost=cost)
            raise
        try:
            presenter = await self._show_placeholder(interaction, job_id, target, queued)
        except BaseException as exc:
            await core.journal.abandon(job_id, "the placeholder could not be shown")
            await core.policy.refund(guild_id, member_id, images, day, cost=cost)
            if isinstance(exc, discord.Forbidden):
                await _refuse(interaction, "❌ I can't post in this channel, so I can't start that here.")
                return
            raise
        try:
            await core.engine.submit(
                request, presenter, job_id=job_id, target=presenter.target.to_json(), journaled=True
            )
        except Exception as exc:
            await core.policy.refund(guild_id, member_id, images, day, cost=cost)
            reference = secrets.token_hex(3)
            log.exception("job %s could not be queued (reference %s)", job_id, reference)
            message = (
                exc.message
                if isinstance(exc, ImagineError)
                else f"The job could not be started (reference {reference})."
            )
            await core.journal.abandon(job_id, message)
            await presenter.show(replace(queued, state=JobState.FAILED, error=message))

    async def _show_placeholder(
        self, interaction: discord.Interaction, job_id: str, target: MessageTarget, queued: JobView
    ) -> DiscordPresenter:
        """The interaction's own answer; or, for a reply, a channel message (an answer cannot reply)."""
        core = self.bot.core
        if target.reply_to is None:
            return await DiscordPresenter.open(
                interaction,
                queued,
                components=self._components,
                clock=core.clock,
                min_interval=core.tuning.edit_interval,
                on_target=self._recorder(job_id),
            )
        return await DiscordPresenter.post_reply(
            self.bot,
            target,
            queued,
            components=self._components,
            clock=core.clock,
            min_interval=core.tuning.edit_interval,
            on_target=self._recorder(job_id),
        )

    async def _request_of(self, job_id: str) -> JobRequest | None:
        """A job's request: from memory while it is live, else from the journal (after a restart)."""
        core = self.bot.core
        job = core.engine.job(job_id)
        return job.view.request if job is not None else await core.journal.request_of(job_id)

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
        request = await self._request_of(job_id)
        if request is None:
            await _refuse(interaction, _FORGOTTEN)
            return
        options = replace(request.options, seed=secrets.randbelow(_REROLL_SEED_RANGE))
        await self.start_order(interaction, JobOrder(str(request.model), options, request.kind))

    async def image_pressed(self, interaction: discord.Interaction, job_id: str, number: int, kind: JobKind) -> None:
        """``U<n>``/``V<n>``: a new job on image ``number`` of the clicked message, replying to it.

        The image is read from the clicked message as Discord sends it with the click (its
        attachment URLs are fresh then, wherever the bot runs and whatever it remembers).
        """
        upscale = self.bot.settings.upscale_model
        if kind is JobKind.UPSCALE and upscale is None:
            await _refuse(interaction, "Upscaling is not set up on this bot.")
            return
        # Acknowledged at once (the message stays as it is): the new job's message is a reply, posted below.
        await interaction.response.defer()
        request = await self._request_of(job_id)
        if request is None:
            await _refuse(interaction, _FORGOTTEN)
            return
        message = interaction.message
        attachments = message.attachments if message is not None else []
        if message is None or not 1 <= number <= len(attachments):
            await _refuse(interaction, f"Image {number} is no longer on this message.")
            return
        image = attachments[number - 1]
        try:
            check_image_upload(image.content_type, image.size, f"Image {number}")
        except Refusal as exc:
            await _refuse(interaction, f"❌ {exc}")
            return
        if kind is JobKind.VARY:
            # The original's model, prompt and options, one image, a new seed.
            options = replace(request.options, count=1, seed=secrets.randbelow(_REROLL_SEED_RANGE), image=image.url)
            order = JobOrder(str(request.model), options, kind, reply_to=message.id)
        else:
            assert upscale is not None
            if not await self._takes_image(upscale):
                log.error("IMAGINE_UPSCALE_MODEL %s takes no image input; the U buttons cannot work", upscale)
                await _refuse(interaction, f"❌ The upscale model `{upscale}` takes no image, so it can't upscale.")
                return
            options = ImagineOptions(prompt=request.prompt, image=image.url)
            order = JobOrder(None, options, kind, owner_model=upscale, reply_to=message.id)
        await self.start_order(interaction, order)

    async def _takes_image(self, model: ModelRef) -> bool:
        """Whether ``model``'s schema has an image input (``True`` where the API serves no schema)."""
        schema = await self.bot.core.engine.input_schema(model)
        return schema is None or schema.image_input is not None

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


_BUTTONS = (CancelButton, RerollButton, DeleteButton, ImageButton)
_FORGOTTEN = "This image's settings are no longer known to the bot; run /imagine again."


async def setup(bot: ImagineBot) -> None:
    """Load the Imagine cog."""
    await bot.add_cog(Imagine(bot))
