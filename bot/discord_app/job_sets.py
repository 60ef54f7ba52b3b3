"""A set of jobs from one ``/imagine``: its ``{a, b}`` permutations and ``--repeat``, checked whole, run all or none.

Every check runs for the whole set before anything is charged or sent: the options and blocked words of
each prompt (one read of the server's settings), the queue caps for all its jobs, each job's request
against its model, the cooldown, the daily images and the member's jobs at once for all of them, the
budgets for their estimated cost together. Then ONE charge journals every job, each with its own share
of the images and cost, in one transaction, with no target (as a single job: a charge whose answer is lost
was refused to the member, and no restart runs it); then every job's target (a channel message of its own,
not yet posted) in one more: from then on a restart resumes each job (posting the message it never got),
none is lost, none runs twice. Every job's message is posted first, then all are queued: should one not be postable
(Discord refused it, or did not answer), none is queued, each is abandoned (its share given back) and each
message posted says why. Each job is then an ordinary job in its own message. The member's private answer lists
the jobs, with links.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

import aiohttp
import discord

from bot.base.errors import Refusal
from bot.discord_app.answers import answer_privately, member_locale, refusal, refuse, server_locale
from bot.discord_app.history import message_link
from bot.discord_app.job_launch import DATABASE_DOWN, JobLaunch, JobOrder, OrderPlan
from bot.discord_app.presenter import DiscordPresenter, MessageTarget
from bot.i18n import Text, joined, render, tr, tr_n
from bot.jobs.model import JobRequest, JobState, JobTakenOver, JobView
from bot.moderation.queue_caps import QueueTicket
from bot.storage import StorageError

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

log = logging.getLogger(__name__)


def not_started(number: int, why: Text) -> Text:
    """Why every job of a set ended before it ran (each journal's error, and what its posted message says)."""
    return tr(
        "The set did not start: the message of its job {number} could not be posted ({why}).", number=number, why=why
    )


def none_started(count: int, number: int, why: Text) -> Text:
    """The member's refusal when one message of their set could not be posted."""
    return tr(
        "❌ None of your {count} jobs started: I couldn't post the message of job {number} in this channel ({why}). "
        "Their images and money were given back, but your cooldown may still apply. Try again in a moment, or "
        "in another channel.",
        count=count,
        number=number,
        why=why,
    )


def no_permission(missing: Sequence[Text]) -> Text:
    """The member's refusal when the bot lacks a permission a set's messages need."""
    return tr(
        "❌ Your prompt makes several jobs, each posted as a message of its own, but I'm missing these permissions "
        "in this channel: {missing}. Nothing was started or charged. Ask a moderator to grant them, or try another "
        "channel (a single job works here: it answers you directly).",
        missing=joined(missing, ", "),
    )


THREADS = (discord.ChannelType.public_thread, discord.ChannelType.private_thread, discord.ChannelType.news_thread)


def missing_permissions(interaction: discord.Interaction, *, reply: bool) -> list[Text]:
    """The permissions the bot lacks in the interaction's channel to post a set's messages (Discord sends the
    bot's own, ``app_permissions``, with every interaction), by the names Discord shows them."""
    channel = interaction.channel
    in_thread = channel is not None and getattr(channel, "type", None) in THREADS
    needed = [
        ("view_channel", tr("View Channel")),
        ("send_messages_in_threads", tr("Send Messages in Threads"))
        if in_thread
        else ("send_messages", tr("Send Messages")),
        ("embed_links", tr("Embed Links")),
        ("attach_files", tr("Attach Files")),  # the finished images are attached to each job's message
    ]
    if reply:
        needed.append(("read_message_history", tr("Read Message History")))
    granted = interaction.app_permissions
    return [shown for flag, shown in needed if not getattr(granted, flag)]


ANSWER_LIMIT = 2000
"""Characters in a message's content (Discord's limit)."""
PROMPT_CLIPS = (100, 50, 20, 0)
"""How much of each prompt the answer shows: less, until every job's line fits."""


@dataclass(frozen=True)
class SetJob:
    """One job of a charged set: its id, where its message goes, and its request as charged."""

    job_id: str
    target: MessageTarget
    request: JobRequest


class JobSets:
    """Starts the sets of jobs that typed prompts make, over the same steps as one job (:class:`JobLaunch`)."""

    def __init__(self, bot: ImagineBot, launch: JobLaunch) -> None:
        self.bot = bot
        self.launch = launch

    async def start(
        self,
        interaction: discord.Interaction,
        guild_id: int,
        member_id: int,
        order: JobOrder,
        plan: OrderPlan,
        ticket: QueueTicket,
    ) -> None:
        """Check and charge the whole set, post every job's message, then queue them all and tell the member
        (privately); or, if any message could not be posted, none of them."""
        missing = missing_permissions(interaction, reply=order.reply_to is not None)
        if missing:
            # Before any charge: one job answers through the interaction, but a set posts channel messages.
            await refuse(interaction, no_permission(missing))
            return
        jobs = await self._check_and_charge(interaction, guild_id, member_id, order, plan, ticket)
        if jobs is None:
            return
        shown = await self._show_and_queue(jobs, server_locale(interaction))
        if not isinstance(shown, list):
            await refuse(interaction, shown)
            return
        prompts = [job.request.prompt for job in jobs]
        await answer_privately(interaction, set_answer(guild_id, prompts, shown, member_locale(interaction)))

    async def _check_and_charge(
        self,
        interaction: discord.Interaction,
        guild_id: int,
        member_id: int,
        order: JobOrder,
        plan: OrderPlan,
        ticket: QueueTicket,
    ) -> list[SetJob] | None:
        """Every check for the whole set, then one charge journaling every job: the jobs as charged, or
        ``None`` once refused (the member told why)."""
        core = self.bot.core
        launch = self.launch
        job_ids = [core.engine.new_job_id() for _ in plan.prompts]
        # One message of its own per job, in the interaction's channel (replying where the order does): journaled
        # before any is posted, so a job cut by a crash before its message went out gets it posted at the restart.
        target = (
            MessageTarget.channel_message(interaction)
            if order.reply_to is None
            else MessageTarget.reply(interaction, order.reply_to)
        )
        charging = False
        try:
            for prompt in plan.prompts:
                replace(order.options, prompt=prompt).check()
            admission = await core.policy.admit(launch.context(interaction, guild_id, member_id, order, plan))
            await ticket.check(guild_id, member_id, jobs=len(job_ids))
            if order.check is not None:
                await order.check()
            requests = [await launch.prepare(interaction, admission, order, plan, prompt) for prompt in plan.prompts]
            images = sum(request.images_expected for request in requests)
            await core.policy.check_usage(admission, images, jobs=len(requests))
            costs = [await core.pricing.estimate(request.model, request.images_expected) for request in requests]
            admission = admission.priced(images, sum(costs))

            def charged(day: date) -> list[SetJob]:
                return [
                    SetJob(
                        job_id,
                        target,
                        replace(request, charged_images=request.images_expected, charged_day=day, reserved_cost=cost),
                    )
                    for job_id, request, cost in zip(job_ids, requests, costs, strict=True)
                ]

            charging = True
            # Journaled with no target, as one job is (see the starter): should the charge's answer be lost, the
            # member reads that nothing started, and no restart may run the jobs. Their targets follow in one
            # transaction, before anything is posted: every job is resumed after a restart, or none.
            day = await core.policy.charge(
                admission,
                journal_set=lambda day: [core.journal.entry(job.job_id, job.request, None) for job in charged(day)],
            )
            await core.journal.placing_set({job_id: target.to_json() for job_id in job_ids})
        except Refusal as exc:
            await refuse(interaction, refusal(exc))
            return None
        except (StorageError, JobTakenOver) as exc:
            log.warning("the database failed while starting a set of %d jobs; refused: %s", len(job_ids), exc)
            if charging:
                # As for one job (see the starter): the charge may have landed with its answer lost.
                for job_id in job_ids:
                    core.journal.give_up(job_id)
            await refuse(interaction, DATABASE_DOWN)
            return None
        return charged(day)

    async def _show_and_queue(self, jobs: Sequence[SetJob], locale: str | None) -> list[MessageTarget] | Text:
        """Post every job's message first, then queue them all: where each is shown. If one cannot be posted,
        none is queued: all are abandoned (each share given back), the messages posted say why (in the server's
        language, ``locale``: the channel reads them), and the member's refusal is returned."""
        core = self.bot.core
        posted: list[tuple[DiscordPresenter, JobView]] = []
        for number, job in enumerate(jobs, 1):
            placeholder = self.launch.placeholder(job.job_id, job.request)
            try:
                # A channel message of the bot's own (a reply only where the order is one).
                presenter = await DiscordPresenter.post_reply(
                    self.bot, job.target, placeholder, **self.launch.presenting(job.job_id)
                )
            except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning("job %s of a set: its message could not be posted (%s); none starts", job.job_id, exc)
                why = _why_not_posted(exc)
                await self._call_off(jobs, posted, render(not_started(number, why), locale))
                return none_started(len(jobs), number, why)
            except BaseException:
                stopped = not_started(number, tr("the bot stopped"))
                await self._call_off(jobs, posted, render(stopped, locale))
                raise
            posted.append((presenter, placeholder))
            # Where the message is, before it may wait in the queue: a restart edits it, never posts another.
            await core.journal.shown(job.job_id, presenter.target.to_json())
        for presenter, placeholder in posted:
            await self.launch.submit(presenter, placeholder, locale=locale)
        return [presenter.target for presenter, _ in posted]

    async def _call_off(
        self, jobs: Sequence[SetJob], posted: Sequence[tuple[DiscordPresenter, JobView]], reason: str
    ) -> None:
        """None of the set runs: every job abandoned (its share given back), each posted message saying why."""
        for job in jobs:
            await self.bot.core.journal.abandon(job.job_id, reason)
        for presenter, placeholder in posted:
            try:
                await presenter.show(replace(placeholder, state=JobState.FAILED, error=reason))
            except Exception:
                log.exception(
                    "job %s of a set: could not say on its message that the set did not start", placeholder.job_id
                )


def _why_not_posted(exc: BaseException) -> Text:
    """What the member is told of a post that failed: Discord's refusal, or its silence."""
    if isinstance(exc, discord.Forbidden):
        return tr("I'm not allowed to post there")
    if isinstance(exc, discord.HTTPException) and exc.status < 500:
        return tr("Discord refused it: {status}", status=exc.status)
    return tr("Discord did not answer")


def set_answer(guild_id: int, prompts: Sequence[str], shown: Sequence[MessageTarget], locale: str | None = None) -> str:
    """The member's answer, in their language (``locale``): each job of the set, numbered, with a link to its
    message, within Discord's limit on a message's length."""
    head = tr_n(
        "Your prompt makes {n} job, in its own message:",
        "Your prompt makes {n} jobs, each in its own message:",
        len(prompts),
    ).render(locale)
    opened = tr("open").render(locale)
    text = head
    for clip in PROMPT_CLIPS:
        lines = [
            _job_line(number, prompt, target, guild_id, clip, opened)
            for number, (prompt, target) in enumerate(zip(prompts, shown, strict=True), 1)
        ]
        text = "\n".join([head, *lines])
        if len(text) <= ANSWER_LIMIT:
            return text
    return text[: ANSWER_LIMIT - 1] + "…"


def _job_line(number: int, prompt: str, target: MessageTarget, guild_id: int, clip: int, opened: str) -> str:
    line = f"{number}."
    if clip:
        flat = " ".join(prompt.split())
        shown = flat if len(flat) <= clip else flat[: clip - 1] + "…"
        line += f" {discord.utils.escape_markdown(shown)}"
    link = message_link(guild_id, target.channel_id, target.message_id)
    return f"{line} — [{opened}]({link})" if link else line
