"""A server's limits and caps as moderators read them, in ``show``, the admin answers and the mod-log.

``Cooldown: 30 s · Images per member per day: 5 · Jobs at once: no limit``; ``Monthly cap: $50.00 · Daily cap
per member: none``. The audit log keeps a short machine form of each change (``cooldown=0 daily=5``,
``monthly=$5.00 member_daily=no cap``): :func:`audit_value_text` reads it back into the same words.
"""

from __future__ import annotations

import re

from bot.base.money import usd
from bot.i18n import Joined, Text, joined, tr
from bot.moderation.policy import role_mentions
from bot.storage import Budget, Limits, RoleLimits

SEPARATOR = " · "
"""Between the parts of a line (limits, caps)."""
NO_CAP = "no cap"
"""How the audit log writes a cap of 0 (:func:`bot.base.money.cap_text`)."""
_AUDIT_LIMITS = re.compile(r"(?:role=(\d+) )?cooldown=(\d+|-) daily=(\d+|-) concurrent=(\d+|-)")
_AUDIT_BUDGET = re.compile(r"monthly=(.+?) member_daily=(.+)")


def limits_text(limits: Limits | RoleLimits) -> Joined:
    """``Cooldown: 30 s · Images per member per day: 5 · Jobs at once: 1``; a limit a role does not set is left out."""
    parts: list[Text] = []
    if limits.cooldown_seconds is not None:
        seconds = limits.cooldown_seconds
        parts.append(tr("Cooldown: none") if seconds == 0 else tr("Cooldown: {seconds} s", seconds=seconds))
    if limits.daily_images is not None:
        daily = limits.daily_images
        parts.append(
            tr("Images per member per day: no limit") if daily == 0 else tr("Images per member per day: {n}", n=daily)
        )
    if limits.concurrent_jobs is not None:
        jobs = limits.concurrent_jobs
        parts.append(tr("Jobs at once: no limit") if jobs == 0 else tr("Jobs at once: {n}", n=jobs))
    return joined(parts, SEPARATOR)


def caps_text(monthly: str | None, member_daily: str | None) -> Text:
    """Both caps on one line, each as an amount (``$50.00``) or ``None`` for no cap."""
    month = tr("Monthly cap: {amount}", amount=monthly) if monthly else tr("Monthly cap: none")
    day = (
        tr("Daily cap per member: {amount}", amount=member_daily) if member_daily else tr("Daily cap per member: none")
    )
    return joined([month, day], SEPARATOR)


def budget_text(budget: Budget) -> Text:
    """Both caps on one line: ``Monthly cap: $50.00 · Daily cap per member: none``."""
    return caps_text(
        usd(budget.monthly) if budget.monthly else None, usd(budget.member_daily) if budget.member_daily else None
    )


def audit_value_text(action: str, value: str) -> Text | None:
    """An audited ``limits``, ``limits role`` or ``budget`` value in words; ``None`` for any other."""
    if action in ("limits", "limits role") and (found := _AUDIT_LIMITS.fullmatch(value)):
        role, *figures = found.groups()
        cooldown, daily, concurrent = (None if figure == "-" else int(figure) for figure in figures)
        if role is None:
            return limits_text(Limits(cooldown or 0, daily or 0, concurrent or 0))
        own = limits_text(RoleLimits(int(role), cooldown, daily, concurrent))
        text = own if own.parts else tr("no limits of its own")
        return joined([role_mentions([int(role)]), text], " — ")
    if action == "budget" and (found := _AUDIT_BUDGET.fullmatch(value)):
        monthly, member_daily = (None if cap == NO_CAP else cap for cap in found.groups())
        return caps_text(monthly, member_daily)
    return None
