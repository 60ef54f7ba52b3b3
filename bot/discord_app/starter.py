"""Starting and resuming Discord jobs: checks, charge, journal, placeholder, submit, with a refund on each failure.

:class:`JobStarter` is the one way a member's interaction becomes a job (``/imagine``, Re-roll, U and V),
and the way unfinished jobs come back after a restart. It works over the bot's core services and
keeps no state of its own.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any, TypedDict

import discord

from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.base.clock import Clock
from bot.base.errors import ImagineError, Refusal
from bot.discord_app.answers import AnswerDeadline, refuse
from bot.discord_app.buttons import job_components
from bot.discord_app.members import member_role_ids
from bot.discord_app.presenter import ComponentsFactory, DiscordPresenter, MessageTarget, TargetListener
from bot.jobs.engine import ResumedJob
from bot.jobs.journal import NOT_STARTED, Unfinished
from bot.jobs.model import Generation, JobKind, JobRequest, JobState, JobTakenOver, JobView
from bot.moderation.policy import RequestContext
from bot.moderation.queue_caps import QueueTicket
from bot.storage import StorageError

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

log = logging.getLogger(__name__)

_LOCK_WAIT = 0.5  # seconds a member's second request waits for the first one's set-up

DATABASE_DOWN = (
    "❌ The bot's database is not answering, so your request was not started. Any images or spending it was "
    "charged are given back, but your cooldown may still apply. Try again in a moment."
)


class _PresenterOptions(TypedDict):
    components: ComponentsFactory
    clock: Clock
    edit_window: float
    edit_limit: int
    on_target: TargetListener


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
    origin: Generation | None = None  # an upscale's: the generation whose image it upscales (JobRequest.origin)
    check: Callable[[], Awaitable[None]] | None = None
    """The order's own check, raising :class:`~bot.base.errors.Refusal`: run once the queue caps let the job
    through (it may read from the API), before the job's schema is read and anything is charged."""


class JobStarter:
    """Starts members' jobs and resumes unfinished ones, each shown in its Discord message."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    def _components(self, view: JobView) -> discord.ui.View:
        return job_components(view, upscale=self.bot.settings.upscale_model is not None)

    def _recorder(self, job_id: str) -> TargetListener:
        """Tells the journal where the job's message is when it moves (found, or posted anew)."""
        journal = self.bot.core.journal

        async def record(moved: MessageTarget) -> None:
            await journal.shown(job_id, moved.to_json())

        return record

    def _presenting(self, job_id: str) -> _PresenterOptions:
        """What every presenter of this job is given, however its message came to be."""
        core = self.bot.core
        return _PresenterOptions(
            components=self._components,
            clock=core.clock,
            edit_window=core.tuning.edit_window,
            edit_limit=core.tuning.edit_limit,
            on_target=self._recorder(job_id),
        )

    def _presenter(self, job_id: str, target: MessageTarget, **kwargs: Any) -> DiscordPresenter:
        return DiscordPresenter(self.bot, target, **self._presenting(job_id), **kwargs)

    async def resume_jobs(self, unfinished: list[Unfinished]) -> None:
        """Take back the jobs the last run left unfinished: each ends in its final message, none runs twice."""
        core = self.bot.core
        resumed: list[ResumedJob] = []
        for job in unfinished:
            if job.target is None:
                # Never shown: its set-up was given up (the member was told it did not start), or cut by a
                # crash (the member saw no answer). Either way it does not run; its charge is given back.
                await core.journal.abandon(job.job_id, NOT_STARTED)
                continue
            try:
                presenter = self._presenter(job.job_id, MessageTarget.from_json(job.target))
            except Exception:
                log.exception("could not resume job %s; marking it failed", job.job_id)
                await core.journal.abandon(job.job_id, "could not be resumed after a restart")
                continue
            resumed.append(ResumedJob.of(job, presenter))
        core.engine.resume(resumed)
        for item in resumed:
            log.info("resumed job %s (prediction %s)", item.job_id, item.prediction_id or "not known yet")

    async def start_job(
        self, interaction: discord.Interaction, model_text: str | None, options: ImagineOptions
    ) -> None:
        """Start an ``/imagine`` job (see :meth:`start_order`)."""
        await self.start_order(interaction, JobOrder(model_text, options))

    async def start_order(self, interaction: discord.Interaction, order: JobOrder) -> None:
        """Check, charge, show the placeholder, then queue: the one way every job starts."""
        guild_id, member_id = interaction.guild_id, interaction.user.id
        if guild_id is None:
            await refuse(interaction, "/imagine works in servers only.")
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
            await refuse(interaction, "Your previous /imagine is still being set up; try again in a moment.")
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
        job_id = core.engine.new_job_id()
        target = (
            MessageTarget.of(interaction, None)
            if order.reply_to is None
            else MessageTarget.reply(interaction, order.reply_to)
        )
        # The job's place under the queue caps is held from its check until it is queued (or given up).
        with core.queue_gate.ticket() as ticket:
            request = await self._check_and_charge(interaction, guild_id, member_id, order, ticket, job_id, target)
            if request is not None:
                await self._show_and_queue(interaction, job_id, target, request)

    async def _check_and_charge(
        self,
        interaction: discord.Interaction,
        guild_id: int,
        member_id: int,
        order: JobOrder,
        ticket: QueueTicket,
        job_id: str,
        target: MessageTarget,
    ) -> JobRequest | None:
        """Every check, then the charge with the job's journal entry: the request as charged, or ``None`` once
        refused."""
        core = self.bot.core
        options = order.options
        asked = RequestContext(
            guild_id=guild_id,
            member_id=member_id,
            channel_id=interaction.channel_id,
            prompt=options.prompt,
            model_text=order.model_text,
            parent_channel_id=getattr(interaction.channel, "parent_id", None),
            owner_model=order.owner_model,
            role_ids=member_role_ids(interaction),
        )
        charging = False
        try:
            options.check()
            admission = await core.policy.admit(asked)
            # Before the model's schema is read and anything is charged: a full queue costs nothing.
            await ticket.check(guild_id, member_id)
            if order.check is not None:
                await order.check()
            request = await core.engine.prepare(
                admission.model,
                options,
                requester_id=member_id,
                guild_id=guild_id,
                channel_id=interaction.channel_id,
                kind=order.kind,
            )
            request = replace(request, origin=order.origin)
            if admission.note is not None:
                request = replace(request, notes=(admission.note, *request.notes))
            images = request.images_expected
            await core.policy.check_usage(admission, images)
            admission = admission.priced(images, await core.pricing.estimate(request.model, images))

            def charged(day: date) -> JobRequest:
                return replace(request, charged_images=admission.images, charged_day=day, reserved_cost=admission.cost)

            # Charged and journaled in one transaction, before anything is shown: no crash keeps the charge
            # without the job that gives it back. Its target is written next, still before anything is
            # shown: only a job with one is resumed after a restart (resume_jobs), so a job refused below
            # never runs, though the database may keep it until the heartbeat abandons it.
            charging = True
            day = await core.policy.charge(
                admission, journal=lambda day: core.journal.entry(job_id, charged(day), None)
            )
            await core.journal.placing(job_id, target.to_json())
        except Refusal as exc:
            await refuse(interaction, f"❌ {exc}")
            return None
        except (StorageError, JobTakenOver) as exc:
            log.warning("the database failed while starting job %s; refused: %s", job_id, exc)
            if charging:
                # The charge's commit may have landed (now or later) with its answer lost: the job, if it
                # exists, is abandoned in the background, outside the member's lock and the queue's place.
                core.journal.give_up(job_id)
            await refuse(interaction, DATABASE_DOWN)
            return None
        return charged(day)

    async def _show_and_queue(
        self, interaction: discord.Interaction, job_id: str, target: MessageTarget, request: JobRequest
    ) -> None:
        """Show the charged and journaled job's placeholder, queue it; a job that fails on the way is abandoned
        (its charge given back)."""
        core = self.bot.core
        # A free slot here means the job starts as it is submitted: say so from the first second. Should it
        # wait after all (another set-up took the slot meanwhile), the engine shows its place in the queue.
        state = JobState.STARTING if core.engine.free_slots(request.guild_id) > 0 else JobState.QUEUED
        placeholder = JobView(job_id, request, state, notes=request.notes)
        try:
            presenter = await self._show_placeholder(interaction, job_id, target, placeholder)
        except BaseException as exc:
            await core.journal.abandon(job_id, "the placeholder could not be shown")
            if isinstance(exc, discord.Forbidden):
                await refuse(interaction, "❌ I can't post in this channel, so I can't start that here.")
                return
            raise
        try:
            await core.engine.submit(
                request, presenter, job_id=job_id, target=presenter.target.to_json(), journaled=True
            )
        except Exception as exc:
            reference = secrets.token_hex(3)
            log.exception("job %s could not be queued (reference %s)", job_id, reference)
            message = (
                exc.message
                if isinstance(exc, ImagineError)
                else f"The job could not be started (reference {reference})."
            )
            await core.journal.abandon(job_id, message)
            await presenter.show(replace(placeholder, state=JobState.FAILED, error=message))

    async def _show_placeholder(
        self, interaction: discord.Interaction, job_id: str, target: MessageTarget, placeholder: JobView
    ) -> DiscordPresenter:
        """The interaction's own answer; or, for a reply, a channel message (an answer cannot reply)."""
        if target.reply_to is None:
            return await DiscordPresenter.open(interaction, placeholder, **self._presenting(job_id))
        return await DiscordPresenter.post_reply(self.bot, target, placeholder, **self._presenting(job_id))
