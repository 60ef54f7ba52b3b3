"""What a member may still do in a server today and this month: the figures ``/imagine-info`` shows.

:func:`member_status` works them out from the stored records (pure); :func:`gather_member_status` reads
those records for one member. Only the member's own figures, and the server's monthly spend against the
cap every member shares (for whether it has room; its amounts are the moderators'); nothing of any other
member. Knows nothing of Discord.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.api.modelref import InvalidModelRef, ModelRef
from bot.moderation.policy import Policy, effective_limits
from bot.storage import Budget, GuildConfig, Limits, Repository, Spend, Usage


@dataclass(frozen=True)
class MemberStatus:
    """One member's standing in one server at ``now``: what is used, what is left, what they may use."""

    now: datetime
    limits: Limits
    """The member's limits here: the most generous of the server's and their roles' (0: no limit)."""
    images_today: int
    """Images charged to the member today (UTC); images a job did not deliver are given back."""
    cooldown_ends: datetime | None
    """When the member may ask again, while that is still to come; ``None``: they may now."""
    budget: Budget
    spend: Spend
    """The member's spend today and the whole server's this month."""
    models: tuple[ModelRef, ...]
    """The models the member may use here, the server's default (where it is one of them) first."""
    active: int
    """The member's jobs here that have not ended, on every process (the count ``concurrent`` limits)."""
    elsewhere: int = 0
    """Of ``active``, those on the bot's other processes (this process lists its own)."""
    queued_elsewhere: int = 0
    """Of ``elsewhere``, those still waiting for a slot."""
    preferred_model: ModelRef | None = None
    """The member's preferred model (``/imagine-settings``) where they may use it here; else ``None``."""

    @property
    def model_taken(self) -> ModelRef | None:
        """The model ``/imagine`` takes when the member names none: as the policy picks it, their preferred one
        where usable here, else the first they may use (the server's default unless that is only for roles)."""
        return self.preferred_model or (self.models[0] if self.models else None)

    @property
    def images_left(self) -> int | None:
        """Images the member may still make today; ``None``: no daily limit."""
        daily = self.limits.daily_images
        return max(0, daily - self.images_today) if daily else None

    @property
    def budget_left_today(self) -> int | None:
        """Micro-dollars the member may still spend today; ``None``: no daily cap."""
        cap = self.budget.member_daily
        return max(0, cap - self.spend.member_today) if cap else None

    @property
    def budget_left_this_month(self) -> int | None:
        """Micro-dollars the whole server may still spend this month; ``None``: no monthly cap."""
        cap = self.budget.monthly
        return max(0, cap - self.spend.month) if cap else None

    @property
    def jobs_left(self) -> int | None:
        """More jobs the member may start before their ``concurrent`` limit; ``None``: no limit."""
        limit = self.limits.concurrent_jobs
        return max(0, limit - self.active) if limit else None


def _model_or_none(text: str | None) -> ModelRef | None:
    """A stored model reference, or ``None`` for none or one stored in a form no longer read (never usable)."""
    if not text:
        return None
    try:
        return ModelRef.parse(text)
    except InvalidModelRef:
        return None


def cooldown_end(limits: Limits, last_request_at: datetime | None, now: datetime) -> datetime | None:
    """When the member's cooldown ends, if it has not yet at ``now``."""
    if not limits.cooldown_seconds or last_request_at is None:
        return None
    ends = last_request_at + timedelta(seconds=limits.cooldown_seconds)
    return ends if ends > now else None


def member_status(
    config: GuildConfig,
    role_ids: Collection[int],
    usage: Usage,
    budget: Budget,
    spend: Spend,
    models: tuple[ModelRef, ...],
    *,
    now: datetime,
    active: int,
    here: int,
    queued_elsewhere: int,
    preferred_model: str | None = None,
) -> MemberStatus:
    """The member's figures from the records read at ``now``.

    ``active`` counts the member's unfinished jobs here in the database (every process), ``here`` those this
    process holds and ``queued_elsewhere`` those waiting on other processes. The two reads are not one
    moment: a job that ends between them never makes a count below 0. ``preferred_model``: the member's
    preference as stored, kept only where it is one of ``models``.
    """
    preferred = _model_or_none(preferred_model)
    limits = effective_limits(config.limits, config.role_limits, role_ids)
    elsewhere = max(0, active - here)
    return MemberStatus(
        now=now,
        limits=limits,
        images_today=usage.images_today,
        cooldown_ends=cooldown_end(limits, usage.last_request_at, now),
        budget=budget,
        spend=spend,
        models=models,
        active=max(active, here),
        elsewhere=elsewhere,
        queued_elsewhere=min(queued_elsewhere, elsewhere),
        preferred_model=preferred if preferred in models else None,
    )


async def gather_member_status(
    repository: Repository,
    policy: Policy,
    guild_id: int,
    member_id: int,
    role_ids: Collection[int],
    *,
    now: datetime,
    here: int,
    owner: str,
) -> MemberStatus:
    """Read what :func:`member_status` needs for one member, in one round of concurrent reads.

    ``here``: the member's jobs in this server that this process (incarnation ``owner``) holds. The policy
    reads the server's settings for the usable models itself: a second read of them, but in the same round,
    so the answer waits for the slowest read, not for two in a row.
    """
    # Two gathers only because asyncio.gather is typed for up to six awaitables; both run at once.
    (config, usage, budget, spend, preferences), (models, active, queued) = await asyncio.gather(
        asyncio.gather(
            repository.guild_config(guild_id),
            repository.usage(guild_id, member_id, now=now),
            repository.budget(guild_id),
            repository.spend(guild_id, member_id, now=now),
            repository.preferences(member_id),
        ),
        asyncio.gather(
            policy.usable_models(guild_id, role_ids),
            repository.active_jobs(guild_id, member_id),
            repository.queued_jobs(guild_id, member_id, besides=owner),
        ),
    )
    return member_status(
        config,
        role_ids,
        usage,
        budget,
        spend,
        models,
        now=now,
        active=active,
        here=here,
        queued_elsewhere=queued.member,
        preferred_model=preferences.model,
    )
