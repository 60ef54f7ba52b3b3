"""What the policy tells a member: its refusals and notes, as texts shown in the member's language.

Each function words one decision of :mod:`bot.moderation.policy`, with its figures; :func:`role_mentions` and
:func:`roles_phrase` are shared with the moderators' answers. Knows nothing of Discord beyond its mention syntax.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable

from bot.api.modelref import ModelRef
from bot.i18n import Text, joined, tr, tr_n


def _jobs(count: int) -> Text:
    return tr_n("{n} /imagine job", "{n} /imagine jobs", count)


def listing(models: Iterable[ModelRef], limit: int = 10) -> Text | str:
    """The models as code spans, at most ``limit`` of them, and how many more."""
    names = [f"`{model}`" for model in models]
    shown = ", ".join(names[:limit])
    if len(names) <= limit:
        return shown
    return tr_n("{models} and {n} more", "{models} and {n} more", len(names) - limit, models=shown)


def duration(seconds: float) -> Text:
    """``45 seconds``, ``2 min 5 s``, ``1 h 10 min``: a wait, rounded up to the second."""
    seconds = max(1, math.ceil(seconds))
    if seconds < 60:
        return tr_n("{n} second", "{n} seconds", seconds)
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return (
            tr("{minutes} min {seconds} s", minutes=minutes, seconds=rest)
            if rest
            else tr("{minutes} min", minutes=minutes)
        )
    hours, minutes = divmod(minutes, 60)
    return tr("{hours} h {minutes} min", hours=hours, minutes=minutes) if minutes else tr("{hours} h", hours=hours)


def role_mentions(roles: Collection[int]) -> str:
    """``<@&1>, <@&2>`` (shown as the roles' names), in id order so the same roles always read the same."""
    return ", ".join(f"<@&{role}>" for role in sorted(roles))


def roles_phrase(roles: Collection[int]) -> Text:
    """``the @A role`` or ``one of the roles @A, @B``, as Discord mentions (rendered as names)."""
    if len(roles) == 1:
        return tr("the {role} role", role=role_mentions(roles))
    return tr("one of the roles {roles}", roles=role_mentions(roles))


def wrong_channel(command: str, channels: Collection[int]) -> Text:
    where = ", ".join(f"<#{channel}>" for channel in sorted(channels))
    return tr("{command} can't be used in this channel. Try {channels}.", command=command, channels=where)


def blocked_word() -> Text:
    """The member is not told the word: a refusal that names it teaches how to get around it."""
    return tr("Your prompt contains a word this server has blocked. Please rephrase it.")


def every_model_for_roles(model_roles: Iterable[tuple[ModelRef, Collection[int]]]) -> Text:
    only = joined((joined((f"`{name}`: ", roles_phrase(roles))) for name, roles in model_roles), "; ")
    return tr("Every model on this server is only for members with some roles ({models}).", models=only)


def fallback_note(used: ModelRef, preferred: str | None, default: ModelRef | None, roles: Collection[int]) -> Text:
    """Why a member who named no model got ``used``: their ``preferred`` model is not theirs here, and/or the
    server's ``default`` is only for ``roles`` (``None``: neither reason)."""
    if default is None:
        return tr(
            "Your preferred model `{preferred}` is not available to you here; used `{model}`.",
            preferred=preferred,
            model=used,
        )
    if not preferred:
        return tr(
            "This server's default model `{default}` is only for members with {roles}; used `{model}`.",
            default=default,
            roles=roles_phrase(roles),
            model=used,
        )
    return tr(
        "Your preferred model `{preferred}` is not available to you here, and this server's default model "
        "`{default}` is only for members with {roles}; used `{model}`.",
        preferred=preferred,
        default=default,
        roles=roles_phrase(roles),
        model=used,
    )


def model_not_allowed(model: ModelRef, allowed: Iterable[ModelRef]) -> Text:
    return tr("The model `{model}` is not allowed here. Allowed: {models}.", model=model, models=listing(allowed))


def model_for_roles(model: ModelRef, roles: Collection[int], usable: Collection[ModelRef]) -> Text:
    if usable:
        return tr(
            "The model `{model}` is only for members with {roles}. You may use {models}.",
            model=model,
            roles=roles_phrase(roles),
            models=listing(usable),
        )
    return tr("The model `{model}` is only for members with {roles}.", model=model, roles=roles_phrase(roles))


def too_many_jobs(active: int, most: int) -> Text:
    return tr(
        "You already have {jobs} going; you may have {most} at once. Wait for one to finish.",
        jobs=_jobs(active),
        most=most,
    )


def set_too_large(jobs: int, active: int, most: int) -> Text:
    """A set (permutations, ``--repeat``) of ``jobs`` that would take the member past ``most`` at once."""
    if active:
        return tr(
            "Your prompt makes {jobs}; you already have {active} going, and you may have {most} at once. "
            "Ask for fewer (fewer options in the braces, or a smaller --repeat), or wait for yours to finish.",
            jobs=_jobs(jobs),
            active=active,
            most=most,
        )
    return tr(
        "Your prompt makes {jobs}, and you may have {most} at once. "
        "Ask for fewer (fewer options in the braces, or a smaller --repeat).",
        jobs=_jobs(jobs),
        most=most,
    )


def busy(command: str) -> Text:
    return tr("You can't use {command} right now; try again in a moment.", command=command)


def cooldown(command: str, seconds: float) -> Text:
    return tr("Slow down: you can use {command} again in {wait}.", command=command, wait=duration(seconds))


def daily_images(used: int, images: int, daily: int, resets: Text) -> Text:
    """``used`` of ``daily`` images today, and a request for ``images`` more that would pass the limit."""
    if used >= daily:
        return tr_n(
            "You have used your only image for today. The limit resets {resets}.",
            "You have used all {n} of your images for today. The limit resets {resets}.",
            daily,
            resets=resets,
        )
    return tr(
        "That would make {total} images today; the limit is {daily} ({left} left). It resets {resets}.",
        total=used + images,
        daily=daily,
        left=daily - used,
        resets=resets,
    )
