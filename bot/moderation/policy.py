"""Moderation decisions: may this member, here, now, ask for this model and prompt?

:meth:`Policy.admit` answers with an :class:`Admission` (the model, the note, the member's limits, from one
read of the server's settings) or a :class:`~bot.base.errors.Refusal` whose message a member understands;
the usage check and the charge then go by the admission. Checks run in a fixed order (channel, model,
blocked words, cooldown, daily images, jobs at once) and nothing is sent to the API before all pass. A
member is known by their id and the ids of their roles: a model may be only for some roles, and roles may
have limits of their own. Knows nothing of Discord or HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import NoReturn

from bot.api.modelref import InvalidModelRef, ModelRef
from bot.base.clock import Clock
from bot.base.errors import BlockedWordRefusal, Refusal
from bot.base.money import BudgetScope
from bot.i18n import Text
from bot.moderation import wording
from bot.moderation.age_restriction import ChannelSafety
from bot.moderation.costs import budget_refusal, next_midnight_text
from bot.moderation.modlog import BlockedWordEvent
from bot.moderation.wordfilter import WordFilter
from bot.moderation.wording import role_mentions as role_mentions
from bot.moderation.wording import roles_phrase as roles_phrase
from bot.storage import Charge, GuildConfig, JobRecord, Limits, Repository, RoleLimits


def _model_or_none(text: str | None) -> ModelRef | None:
    """A stored model reference, or ``None`` for none or one that no longer reads as one."""
    try:
        return ModelRef.parse(text) if text else None
    except InvalidModelRef:
        return None


def _most_generous(server: int, roles: Iterable[int | None], best: Callable[[Iterable[int]], int]) -> int:
    values = [server, *(value for value in roles if value is not None)]
    return 0 if 0 in values else best(values)  # 0 is no limit: nothing is more generous


def effective_limits(server: Limits, role_limits: Iterable[RoleLimits], role_ids: Collection[int]) -> Limits:
    """A member's limits: per limit, the most generous of the server's and their roles' (0, no limit, is most).

    A role that does not set a limit leaves it to the others, so a role can only loosen the server's limits.
    """
    mine = [limits for limits in role_limits if limits.role_id in role_ids]
    return Limits(
        cooldown_seconds=_most_generous(server.cooldown_seconds, (r.cooldown_seconds for r in mine), min),
        daily_images=_most_generous(server.daily_images, (r.daily_images for r in mine), max),
        concurrent_jobs=_most_generous(server.concurrent_jobs, (r.concurrent_jobs for r in mine), max),
    )


@dataclass(frozen=True)
class RequestContext:
    """Who asks for what, and where: all the policy weighs to admit one request."""

    guild_id: int
    member_id: int
    channel_id: int | None
    prompt: str
    model_text: str | None = None
    """The model the member named; ``None``: the first one they may use (see :attr:`Admission.note`)."""
    parent_channel_id: int | None = None
    """The channel a thread belongs to: a thread of an allowed channel is allowed too."""
    owner_model: ModelRef | None = None
    """A model the bot's owner chose for a purpose (the upscaler): it needs no place on the server's list."""
    role_ids: frozenset[int] = frozenset()
    """The member's roles: some models are only for some roles, and roles may have limits of their own."""
    prompts: tuple[str, ...] = ()
    """Every prompt of a set asked at once (permutations, ``--repeat``), each read for blocked words; none:
    ``prompt`` alone."""
    preferred_model: str | None = None
    """The member's preferred model (``/imagine-settings``): taken when they name none and may use it here."""
    command: str = "/imagine"
    """The command asked with, as the refusals name it (``/describe`` goes through the same checks)."""
    age_restricted: bool = False
    """The channel (a thread: its channel) is age-restricted (see :mod:`bot.moderation.age_restriction`)."""

    @property
    def every_prompt(self) -> tuple[str, ...]:
        """The prompts the blocked words are looked for in."""
        return self.prompts or (self.prompt,)


@dataclass(frozen=True)
class Admission:
    """The policy's decision on one request, from one read of the server's settings: what the usage check, the
    charge and the job itself are held to, so none of them reads the settings again."""

    guild_id: int
    member_id: int
    model: ModelRef
    note: Text | None
    """Why a member who named no model did not get their preferred model or the server's default, if so."""
    limits: Limits
    """The member's limits here: the most generous of the server's and their roles' (:func:`effective_limits`)."""
    images: int = 0
    """Images the job is charged for, once known (:meth:`priced`)."""
    cost: int = 0
    """Micro-dollars the job is estimated to cost, reserved against the budgets by the charge."""
    command: str = "/imagine"
    """The command asked with (:attr:`RequestContext.command`), as the usage refusals name it."""
    safety: ChannelSafety = field(default_factory=ChannelSafety)
    """What the channel allows: the safety checker, and whether the model's images are spoilers."""

    def priced(self, images: int, cost: int) -> Admission:
        """The same decision for a job of ``images`` estimated at ``cost`` micro-dollars."""
        return replace(self, images=images, cost=cost)


class Policy:
    """Reads a server's settings and applies them to one request."""

    def __init__(
        self,
        repository: Repository,
        *,
        bot_models: tuple[ModelRef, ...],
        clock: Clock,
        active_jobs: Callable[[int, int], Awaitable[int]],
        on_blocked_word: Callable[[BlockedWordEvent], None] | None = None,
    ) -> None:
        """``bot_models``: the bot-wide list, default first; ``active_jobs(guild, member)``: queued + running.

        ``active_jobs`` counts in the database, so the jobs a member has on any process count.
        ``on_blocked_word`` hears of every prompt refused for a blocked word (the mod-log); it must not block.
        """
        self._repository = repository
        self._on_blocked_word = on_blocked_word
        self._bot_models = bot_models
        self._clock = clock
        self._active_jobs = active_jobs
        self._filters: dict[tuple[str, ...], WordFilter] = {}
        self._locks: dict[tuple[int, int], asyncio.Lock] = {}

    def _models_of(self, config: GuildConfig) -> tuple[ModelRef, ...]:
        models = [ModelRef.parse(text) for text in config.models] if config.models else list(self._bot_models)
        if config.default_model is not None:
            default = ModelRef.parse(config.default_model)
            if default in models:
                models.remove(default)
                models.insert(0, default)
        return tuple(models)

    async def allowed_models(self, guild_id: int) -> tuple[ModelRef, ...]:
        """The models on this server's list (or the bot-wide one), its default first, whoever may use them."""
        return self._models_of(await self._repository.guild_config(guild_id))

    @staticmethod
    def _roles_of(config: GuildConfig) -> dict[ModelRef, frozenset[int]]:
        return {ModelRef.parse(model): roles for model, roles in config.model_roles}

    def _usable(self, config: GuildConfig, role_ids: Collection[int]) -> tuple[ModelRef, ...]:
        restricted = self._roles_of(config)
        return tuple(
            model
            for model in self._models_of(config)
            if model not in restricted or not restricted[model].isdisjoint(role_ids)
        )

    async def usable_models(
        self, guild_id: int, role_ids: Collection[int] = frozenset(), *, age_restricted: bool = False
    ) -> tuple[ModelRef, ...]:
        """The models a member with these roles may use here (``age_restricted``: in such a channel), the server's
        default first if it is one of them."""
        config = await self._repository.guild_config(guild_id)
        safety = ChannelSafety.of(config, age_restricted=age_restricted)
        return tuple(
            model for model in self._usable(config, role_ids) if safety.age_restricted or not safety.is_nsfw(model)
        )

    def word_filter(self, words: tuple[str, ...]) -> WordFilter:
        """A compiled filter for this list of words (cached: lists change rarely)."""
        cached = self._filters.get(words)
        if cached is None:
            if len(self._filters) > 256:
                self._filters.clear()
            cached = self._filters[words] = WordFilter(words)
        return cached

    def member_lock(self, guild_id: int, member_id: int) -> asyncio.Lock:
        """Held from the first check to the job's submission, so one member's requests never race each other."""
        key = (guild_id, member_id)
        lock = self._locks.get(key)
        if lock is None:
            if len(self._locks) > 10_000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def admit(self, asked: RequestContext) -> Admission:
        """Channel, model and blocked words, in that order, from one read of the server's settings: the
        decision the rest of the request is held to, or :class:`Refusal`.

        A thread of an allowed channel is allowed too. A model only for some roles is refused to others, and
        with no model named the first one the member may use is taken (with a note when that is not the
        server's default). The owner's model (the upscaler) needs no place on the server's list.
        """
        config = await self._repository.guild_config(asked.guild_id)
        if config.channels and not {asked.channel_id, asked.parent_channel_id} & config.channels:
            raise Refusal(wording.wrong_channel(asked.command, config.channels))
        safety = ChannelSafety.of(config, age_restricted=asked.age_restricted)
        seen = safety.models_for_channel(config, asked.model_text, asked.command, owner_model=asked.owner_model)
        model, note = self._model_for(seen, asked)
        word = self._blocked_word(config.blocked_words, asked.every_prompt)
        if word is not None:
            if self._on_blocked_word is not None:
                event = BlockedWordEvent(asked.guild_id, asked.member_id, asked.channel_id, word, self._clock.now())
                self._on_blocked_word(event)
            # The member is not told the word: a refusal that names it teaches how to get around it.
            raise BlockedWordRefusal(wording.blocked_word(), word=word)
        limits = effective_limits(config.limits, config.role_limits, asked.role_ids)
        return Admission(asked.guild_id, asked.member_id, model, note, limits, command=asked.command, safety=safety)

    def _blocked_word(self, words: tuple[str, ...], prompts: Iterable[str]) -> str | None:
        """The first blocked word in the first prompt that has one."""
        if not words:
            return None
        found = self.word_filter(words)
        return next((word for word in map(found.first_match, prompts) if word is not None), None)

    def _model_for(self, config: GuildConfig, asked: RequestContext) -> tuple[ModelRef, Text | None]:
        """The model a request gets, and why it is not the member's preferred one or the server's default if
        they named none."""
        if asked.owner_model is not None:
            return asked.owner_model, None
        allowed = self._models_of(config)
        usable = self._usable(config, asked.role_ids)
        if not asked.model_text:
            preferred = _model_or_none(asked.preferred_model)
            if preferred is not None and preferred in usable:
                return preferred, None
            if not usable:
                raise Refusal(wording.every_model_for_roles(self._roles_of(config).items()))
            default = allowed[0]
            # The note answers a request that named no model; one that named an empty one never had it.
            restricted = usable[0] != default and asked.model_text is None
            if not (asked.preferred_model or restricted):
                return usable[0], None
            roles = self._roles_of(config).get(default, frozenset())
            return usable[0], wording.fallback_note(
                usable[0], asked.preferred_model, default if restricted else None, roles
            )
        try:
            model = ModelRef.parse(asked.model_text)
        except InvalidModelRef as exc:
            raise Refusal(exc.text) from None
        if model not in allowed:
            raise Refusal(wording.model_not_allowed(model, allowed))
        roles = self._roles_of(config).get(model, frozenset())
        if roles and roles.isdisjoint(asked.role_ids):
            raise Refusal(wording.model_for_roles(model, roles, usable))
        return model, None

    async def check_usage(
        self, admission: Admission, images: int, *, jobs: int = 1, moves_cooldown: bool = True
    ) -> None:
        """Cooldown, daily images and jobs at once, in that order, under the admission's limits, without
        charging; or :class:`Refusal`. ``images`` are the request's in all, ``jobs`` how many jobs it starts
        (a set: permutations, ``--repeat``), each counted against the member's jobs at once; a request that
        ``moves_cooldown`` not (``/describe``) is not held to the cooldown either."""
        limits = admission.limits
        now = self._clock.now()
        usage = await self._repository.usage(admission.guild_id, admission.member_id, now=now)
        last = usage.last_request_at if moves_cooldown else None
        self._check_usage(limits, last, usage.images_today, images, now, admission.command)
        most = limits.concurrent_jobs
        if not most:
            return
        active = await self._active_jobs(admission.guild_id, admission.member_id)
        if active >= most:
            raise Refusal(wording.too_many_jobs(active, most))
        if active + jobs > most:
            raise Refusal(wording.set_too_large(jobs, active, most))

    async def charge(
        self,
        admission: Admission,
        *,
        journal: Callable[[date], JobRecord] | None = None,
        journal_set: Callable[[date], Sequence[JobRecord]] | None = None,
        moves_cooldown: bool = True,
    ) -> date:
        """Record the request against the cooldown and the daily images and reserve its estimated cost against
        the budgets (see :meth:`Admission.priced`), in one step; the UTC day charged, or :class:`Refusal`.

        Under the admission's limits, as :meth:`check_usage`. ``journal(day)`` is the job's journal entry for a
        charge on ``day``: written in the same transaction, so no charge outlives a crash without the job that
        gives it back. ``journal_set(day)`` are a set's entries (permutations, ``--repeat``), charged as one
        request: all or none. With neither, the admission may be priced at 0 images. With
        ``moves_cooldown=False`` (``/describe``: one image against the daily images and its cost against the
        budgets, but a member may ``/imagine`` right after it) the cooldown is neither checked nor moved.
        """
        guild_id, limits, images, cost = admission.guild_id, admission.limits, admission.images, admission.cost
        if images < 1 and (journal is not None or journal_set is not None):
            raise ValueError("charge takes a priced admission (Admission.priced): it has no images to charge")
        now = self._clock.now()
        job = journal(now.date()) if journal is not None else None
        jobs = journal_set(now.date()) if journal_set is not None else ()
        charge = await self._repository.charge(
            guild_id,
            admission.member_id,
            images,
            limits=limits,
            now=now,
            cost=cost,
            job=job,
            jobs=jobs,
            moves_cooldown=moves_cooldown,
        )
        if not charge.charged:  # something changed since check_usage(): say what
            last = charge.usage.last_request_at if moves_cooldown else None
            self._check_usage(limits, last, charge.usage.images_today, images, now, admission.command)
            if charge.over_budget is not None:
                await self._refuse_over_budget(guild_id, charge.over_budget, charge, cost, now.date())
            raise Refusal(wording.busy(admission.command))
        return now.date()

    async def _refuse_over_budget(
        self, guild_id: int, scope: BudgetScope, charge: Charge, cost: int, day: date
    ) -> NoReturn:
        budget = await self._repository.budget(guild_id)
        if scope is BudgetScope.MONTHLY:
            spent, cap = charge.spend.month, budget.monthly
        else:
            spent, cap = charge.spend.member_today, budget.member_daily
        raise Refusal(budget_refusal(scope, spent=spent, cap=cap, cost=cost, day=day))

    @staticmethod
    def _check_usage(
        limits: Limits, last: datetime | None, used: int, images: int, now: datetime, command: str
    ) -> None:
        cooldown, daily = limits.cooldown_seconds, limits.daily_images
        if cooldown and last is not None:
            left = (last + timedelta(seconds=cooldown) - now).total_seconds()
            if left > 0:
                raise Refusal(wording.cooldown(command, left))
        if daily and used + images > daily:
            raise Refusal(wording.daily_images(used, images, daily, next_midnight_text(now.date())))
