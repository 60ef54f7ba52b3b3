"""What every job's start shares, alone or in a set: the member's order read (their preferences, the prompt's
permutations), its request prepared, the job's presenter, and its submission to the engine.

:class:`JobLaunch` works over the bot's core services and keeps no state of its own; the starter
(:mod:`.starter`) runs one job through it, the set starter (:mod:`.job_sets`) several at once.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypedDict

import discord

from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.api.prompts import compose_prompt, expand_prompt
from bot.base.clock import Clock
from bot.base.errors import ImagineError
from bot.discord_app.age_restriction import is_age_restricted
from bot.discord_app.buttons import job_components
from bot.discord_app.members import member_role_ids
from bot.discord_app.presenter import ComponentsFactory, DiscordPresenter, MessageTarget, TargetListener
from bot.i18n import render, tr
from bot.jobs.model import Generation, JobKind, JobRequest, JobState, JobView
from bot.jobs.preparation import PreferredOptions
from bot.moderation.policy import Admission, RequestContext

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

log = logging.getLogger(__name__)

DATABASE_DOWN = tr(
    "❌ The bot's database is not answering, so your request was not started. Any images or money it was "
    "charged for are given back, but your cooldown may still apply. Try again in a moment."
)


class PresenterOptions(TypedDict):
    """What every presenter of a job is given, however its message came to be."""

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
    typed: bool = False
    """The prompt is as the member typed it (``/imagine``): their preferences (named options, suffix, model,
    aspect ratio, count) apply, and its ``{a, b}`` permutations and ``--repeat`` may make a set of jobs. An
    order made from a job's own request (Re-roll, U, V) keeps its prompt and options as they are."""


@dataclass(frozen=True)
class OrderPlan:
    """An order as its checks take it: the prompt of each of its jobs, and the member's preferences that apply."""

    prompts: tuple[str, ...]
    """One prompt: one job, started as ever; more: a set, run all or nothing."""
    preferred: PreferredOptions | None = None
    preferred_model: str | None = None


class JobLaunch:
    """The steps every job's start goes through, whichever way it was asked for."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    async def plan(self, order: JobOrder, member_id: int) -> OrderPlan:
        """The order's prompts, composed with the member's preferences and expanded, for a typed order; raises
        :class:`~bot.api.permutations.PermutationError` (a refusal) past the deployment's limit."""
        if not order.typed:
            return OrderPlan((order.options.prompt,))
        mine = await self.bot.core.repository.preferences(member_id)
        composed = compose_prompt(order.options.prompt, named=mine.options, suffix=mine.suffix)
        prompts = expand_prompt(composed, limit=self.bot.settings.max_permutations)
        return OrderPlan(tuple(prompts), PreferredOptions(mine.aspect_ratio, mine.count), mine.model)

    @staticmethod
    def context(
        interaction: discord.Interaction, guild_id: int, member_id: int, order: JobOrder, plan: OrderPlan
    ) -> RequestContext:
        """What the policy weighs: every prompt of the plan is read for blocked words, as composed."""
        return RequestContext(
            guild_id=guild_id,
            member_id=member_id,
            channel_id=interaction.channel_id,
            prompt=plan.prompts[0],
            model_text=order.model_text,
            parent_channel_id=getattr(interaction.channel, "parent_id", None),
            owner_model=order.owner_model,
            role_ids=member_role_ids(interaction),
            prompts=plan.prompts if len(plan.prompts) > 1 else (),
            preferred_model=plan.preferred_model,
            age_restricted=is_age_restricted(interaction.channel),
        )

    async def prepare(
        self, interaction: discord.Interaction, admission: Admission, order: JobOrder, plan: OrderPlan, prompt: str
    ) -> JobRequest:
        """One job's request: ``prompt``'s flags read, the preferences filled in, checked against the model, the
        safety checker as the channel allows (an upscale of an age-restricted model's image is one too)."""
        origin = order.origin.model if order.origin is not None else None
        admission.safety.check(origin)
        request = await self.bot.core.engine.prepare(
            admission.model,
            replace(order.options, prompt=prompt),
            requester_id=admission.member_id,
            guild_id=admission.guild_id,
            channel_id=interaction.channel_id,
            kind=order.kind,
            preferred=plan.preferred,
            checker=admission.safety.checker,
            spoiler=admission.safety.spoiler(admission.model, origin),
        )
        request = replace(request, origin=order.origin)
        if admission.note is not None:
            request = replace(request, notes=(admission.note, *request.notes))
        return request

    def components(self, view: JobView, locale: str | None = None) -> discord.ui.View:
        """A job message's buttons, labelled in ``locale`` (the server's)."""
        return job_components(view, upscale=self.bot.settings.upscale_model is not None, locale=locale)

    def _recorder(self, job_id: str) -> TargetListener:
        """Tells the journal where the job's message is when it moves (found, or posted anew)."""
        journal = self.bot.core.journal

        async def record(moved: MessageTarget) -> None:
            await journal.shown(job_id, moved.to_json())

        return record

    def presenting(self, job_id: str) -> PresenterOptions:
        """What every presenter of this job is given, however its message came to be."""
        core = self.bot.core
        return PresenterOptions(
            components=self.components,
            clock=core.clock,
            edit_window=core.tuning.edit_window,
            edit_limit=core.tuning.edit_limit,
            on_target=self._recorder(job_id),
        )

    def presenter(self, job_id: str, target: MessageTarget, **kwargs: Any) -> DiscordPresenter:
        """A presenter of the job at ``target`` (a resumed job's)."""
        return DiscordPresenter(self.bot, target, **self.presenting(job_id), **kwargs)

    def placeholder(self, job_id: str, request: JobRequest) -> JobView:
        """The first view of a charged job, before it is queued.

        A free slot here means the job starts as it is submitted: it says so from the first second. Should it
        wait after all (another set-up took the slot meanwhile), the engine shows its place in the queue.
        """
        state = JobState.STARTING if self.bot.core.engine.free_slots(request.guild_id) > 0 else JobState.QUEUED
        return JobView(job_id, request, state, notes=request.notes)

    async def submit(self, presenter: DiscordPresenter, placeholder: JobView, *, locale: str | None = None) -> None:
        """Queue the shown job; one that cannot be is abandoned (its charge given back) and shows why, in the
        server's language (``locale``): the whole channel reads the job's message."""
        core = self.bot.core
        job_id = placeholder.job_id
        try:
            await core.engine.submit(
                placeholder.request, presenter, job_id=job_id, target=presenter.target.to_json(), journaled=True
            )
        except Exception as exc:
            reference = secrets.token_hex(3)
            log.exception("job %s could not be queued (reference %s)", job_id, reference)
            message = render(
                exc.text
                if isinstance(exc, ImagineError)
                else tr("The job could not be started (reference {reference}).", reference=reference),
                locale,
            )
            await core.journal.abandon(job_id, message)
            await presenter.show(replace(placeholder, state=JobState.FAILED, error=message))
