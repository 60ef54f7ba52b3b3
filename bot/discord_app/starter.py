"""Starting and resuming Discord jobs: checks, charge, journal, placeholder, submit, with a refund on each failure.

:class:`JobStarter` is the one way a member's interaction becomes a job (``/imagine``, Re-roll, U and V),
and the way unfinished jobs come back after a restart. A typed prompt is first composed with the member's
preferences and expanded (:mod:`.job_launch`): one prompt is one job, started here; several are a set, started
all or none by :mod:`.job_sets`. It works over the bot's core services and keeps no state of its own.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING

import discord

from bot.api.inputs import ImagineOptions
from bot.base.errors import Refusal
from bot.discord_app.answers import AnswerDeadline, refusal, refuse, server_locale
from bot.discord_app.job_launch import DATABASE_DOWN, JobLaunch, JobOrder, OrderPlan
from bot.discord_app.job_sets import JobSets
from bot.discord_app.presenter import DiscordPresenter, MessageTarget
from bot.i18n import tr
from bot.jobs.engine import ResumedJob
from bot.jobs.journal import NOT_STARTED, Unfinished
from bot.jobs.model import JobRequest, JobTakenOver, JobView
from bot.moderation.queue_caps import QueueTicket
from bot.storage import StorageError

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

__all__ = ["DATABASE_DOWN", "JobOrder", "JobStarter"]

log = logging.getLogger(__name__)

_LOCK_WAIT = 0.5  # seconds a member's second request waits for the first one's set-up


class JobStarter:
    """Starts members' jobs and resumes unfinished ones, each shown in its Discord message."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        self.launch = JobLaunch(bot)
        self.sets = JobSets(bot, self.launch)

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
                presenter = self.launch.presenter(job.job_id, MessageTarget.from_json(job.target))
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
        """Start what an ``/imagine`` asks for, as typed: the member's preferences apply, and its permutations
        may make a set of jobs (see :meth:`start_order`)."""
        await self.start_order(interaction, JobOrder(model_text, options, typed=True))

    async def start_order(self, interaction: discord.Interaction, order: JobOrder) -> None:
        """Check, charge, show the placeholder, then queue: the one way every job starts."""
        guild_id, member_id = interaction.guild_id, interaction.user.id
        if guild_id is None:
            await refuse(interaction, tr("/imagine works in servers only."))
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
            await refuse(interaction, tr("Your previous /imagine is still being set up; try again in a moment."))
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
        try:
            plan = await self.launch.plan(order, member_id)
        except Refusal as exc:
            await refuse(interaction, refusal(exc))
            return
        except StorageError as exc:
            log.warning("the database failed while reading a member's preferences; refused: %s", exc)
            await refuse(interaction, DATABASE_DOWN)
            return
        # The jobs' places under the queue caps are held from their check until they are queued (or given up).
        with core.queue_gate.ticket() as ticket:
            if len(plan.prompts) > 1:
                await self.sets.start(interaction, guild_id, member_id, order, plan, ticket)
                return
            job_id = core.engine.new_job_id()
            target = (
                MessageTarget.of(interaction, None)
                if order.reply_to is None
                else MessageTarget.reply(interaction, order.reply_to)
            )
            request = await self._check_and_charge(
                interaction, guild_id, member_id, order, plan, ticket, job_id, target
            )
            if request is not None:
                await self._show_and_queue(interaction, job_id, target, request)

    async def _check_and_charge(
        self,
        interaction: discord.Interaction,
        guild_id: int,
        member_id: int,
        order: JobOrder,
        plan: OrderPlan,
        ticket: QueueTicket,
        job_id: str,
        target: MessageTarget,
    ) -> JobRequest | None:
        """Every check, then the charge with the job's journal entry: the request as charged, or ``None`` once
        refused."""
        core = self.bot.core
        launch = self.launch
        charging = False
        try:
            replace(order.options, prompt=plan.prompts[0]).check()  # as composed
            admission = await core.policy.admit(launch.context(interaction, guild_id, member_id, order, plan))
            # Before the model's schema is read and anything is charged: a full queue costs nothing.
            await ticket.check(guild_id, member_id)
            if order.check is not None:
                await order.check()
            request = await launch.prepare(interaction, admission, order, plan, plan.prompts[0])
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
            await refuse(interaction, refusal(exc))
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
        placeholder = self.launch.placeholder(job_id, request)
        try:
            presenter = await self._show_placeholder(interaction, job_id, target, placeholder)
        except BaseException as exc:
            await self.bot.core.journal.abandon(job_id, "the placeholder could not be shown")
            if isinstance(exc, discord.Forbidden):
                await refuse(interaction, tr("❌ I can't post in this channel, so I can't start that here."))
                return
            raise
        await self.launch.submit(presenter, placeholder, locale=server_locale(interaction))

    async def _show_placeholder(
        self, interaction: discord.Interaction, job_id: str, target: MessageTarget, placeholder: JobView
    ) -> DiscordPresenter:
        """The interaction's own answer; or, for a reply, a channel message (an answer cannot reply)."""
        presenting = self.launch.presenting(job_id)
        if target.reply_to is None:
            return await DiscordPresenter.open(interaction, placeholder, **presenting)
        return await DiscordPresenter.post_reply(self.bot, target, placeholder, **presenting)
