"""Moderation decisions: may this member, here, now, ask for this model and prompt?

Answers are an :class:`Admission` or a :class:`~bot.errors.Refusal` whose
message a member understands. Checks run in a fixed order (channel, model,
blocked words, cooldown, daily images, jobs at once) and nothing is sent to
the API before all pass. Knows nothing of Discord or HTTP.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime, timedelta
from typing import NoReturn

from bot.clock import Clock
from bot.costs import BudgetScope, budget_refusal
from bot.errors import BlockedWordRefusal, Refusal
from bot.modelref import InvalidModelRef, ModelRef
from bot.modlog import BlockedWordEvent
from bot.storage import Charge, GuildConfig, Limits, Repository
from bot.wordfilter import WordFilter


def _listing(models: Iterable[ModelRef], limit: int = 10) -> str:
    names = [f"`{model}`" for model in models]
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _duration(seconds: float) -> str:
    seconds = max(1, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


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
        """The models members may use in this server, its default first."""
        return self._models_of(await self._repository.guild_config(guild_id))

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

    async def check_request(
        self,
        *,
        guild_id: int,
        channel_id: int | None,
        member_id: int,
        model_text: str | None,
        prompt: str,
        parent_channel_id: int | None = None,
        owner_model: ModelRef | None = None,
    ) -> ModelRef:
        """Channel, model and blocked words, in that order: the model to use, or :class:`Refusal`.

        ``parent_channel_id`` is the channel a thread belongs to: a thread of an
        allowed channel is allowed too. ``owner_model`` is a model the bot's owner
        chose for a purpose (the upscaler): it needs no place on the server's list.
        """
        config = await self._repository.guild_config(guild_id)

        if config.channels and not {channel_id, parent_channel_id} & config.channels:
            where = ", ".join(f"<#{channel}>" for channel in sorted(config.channels))
            raise Refusal(f"/imagine can't be used in this channel. Try {where}.")

        allowed = self._models_of(config)
        if owner_model is not None:
            model = owner_model
        elif model_text:
            try:
                model = ModelRef.parse(model_text)
            except InvalidModelRef as exc:
                raise Refusal(str(exc)) from None
            if model not in allowed:
                raise Refusal(f"The model `{model}` is not allowed here. Allowed: {_listing(allowed)}.")
        else:
            model = allowed[0]

        word = self.word_filter(config.blocked_words).first_match(prompt) if config.blocked_words else None
        if word is not None:
            if self._on_blocked_word is not None:
                self._on_blocked_word(BlockedWordEvent(guild_id, member_id, channel_id, word, self._clock.now()))
            # The member is not told the word: a refusal that names it teaches how to get around it.
            raise BlockedWordRefusal(
                "Your prompt contains a word this server has blocked. Please rephrase it.", word=word
            )
        return model

    async def check_usage(self, *, guild_id: int, member_id: int, images: int) -> None:
        """Cooldown, daily images and jobs at once, in that order, without charging; or :class:`Refusal`."""
        limits = (await self._repository.guild_config(guild_id)).limits
        now = self._clock.now()
        usage = await self._repository.usage(guild_id, member_id, now=now)
        self._check_usage(limits, usage.last_request_at, usage.images_today, images, now)
        if not limits.concurrent_jobs:
            return
        active = await self._active_jobs(guild_id, member_id)
        if active >= limits.concurrent_jobs:
            raise Refusal(
                f"You already have {active} /imagine job{'s' if active != 1 else ''} going; this server allows "
                f"{limits.concurrent_jobs} at once. Wait for one to finish."
            )

    async def charge(self, guild_id: int, member_id: int, images: int, *, cost: int = 0) -> date:
        """Record the request against the cooldown and the daily images and reserve its estimated ``cost``
        (micro-dollars) against the budgets, in one step; the UTC day charged, or :class:`Refusal`."""
        limits = (await self._repository.guild_config(guild_id)).limits
        now = self._clock.now()
        charge = await self._repository.charge(guild_id, member_id, images, limits=limits, now=now, cost=cost)
        if not charge.charged:  # something changed since check(): say what
            self._check_usage(limits, charge.usage.last_request_at, charge.usage.images_today, images, now)
            if charge.over_budget is not None:
                await self._refuse_over_budget(guild_id, charge.over_budget, charge, cost, now.date())
            raise Refusal("You can't use /imagine right now; try again in a moment.")
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
    def _check_usage(limits: Limits, last: datetime | None, used: int, images: int, now: datetime) -> None:
        cooldown, daily = limits.cooldown_seconds, limits.daily_images
        if cooldown and last is not None:
            left = (last + timedelta(seconds=cooldown) - now).total_seconds()
            if left > 0:
                raise Refusal(f"Slow down: you can use /imagine again in {_duration(left)}.")
        if daily and used + images > daily:
            tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo)
            resets = f"<t:{int(tomorrow.timestamp())}:R> (midnight UTC)"
            if used >= daily:
                raise Refusal(f"You have used all {daily} of your images for today. The limit resets {resets}.")
            raise Refusal(
                f"That would make {used + images} images today; the limit is {daily} ({daily - used} left). "
                f"It resets {resets}."
            )

    async def refund(self, guild_id: int, member_id: int, images: int, day: date, *, cost: int = 0) -> None:
        """Give back images that were charged but not delivered, and the money reserved for them."""
        if images > 0 or cost > 0:
            await self._repository.refund(guild_id, member_id, images, day=day, cost=cost)
