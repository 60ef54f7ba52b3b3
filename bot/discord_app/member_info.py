"""How ``/imagine-info`` looks: what a member may still do here today and this month, as one embed.

Pure rendering from :class:`~bot.moderation.member_status.MemberStatus` and the member's jobs on this process;
the cog only gathers and answers. Only the member's own figures, and whether the server's monthly budget they
share still has room (never its amounts: those are the moderators').
"""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.base.money import next_day, next_month, usd
from bot.discord_app.admin_views import FIELD_LIMIT
from bot.discord_app.render import progress_bar
from bot.i18n import Text, joined, tr, tr_n
from bot.jobs.model import JobState
from bot.jobs.scheduling import MemberJob
from bot.moderation.member_status import MemberStatus

JOBS_SHOWN = 10
"""Jobs listed one by one; more are counted."""
PROMPT_CLIP = 60
MODELS_SHOWN = 25
TITLE = tr("What you can still do here")


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())  # one line per job
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(moment_timestamp: float) -> str:
    return f"<t:{int(moment_timestamp)}:R>"


def headline(status: MemberStatus, locale: str | None = None) -> str:
    """What stops the member from starting a job now, one line each; or that nothing does."""
    resets_today = _when(next_day(status.now.date()).timestamp())
    lines: list[Text] = []
    if not status.models:
        lines.append(tr("⛔ Every model here is only for members with some roles, and you have none of them."))
    if status.images_left == 0:
        lines.append(
            tr(
                "⛔ You have used all {limit} of your images for today; more {when}.",
                limit=status.limits.daily_images,
                when=resets_today,
            )
        )
    if status.budget_left_today == 0:
        lines.append(tr("⛔ You have spent your budget for today; it resets {when}.", when=resets_today))
    if status.budget_left_this_month == 0:
        lines.append(tr("⛔ This server's monthly budget is used up; it resets on {date}.", date=_month_resets(status)))
    if status.jobs_left == 0:
        lines.append(
            tr_n(
                "⏳ You have {n} job going, the most you may have at once: start another when it ends.",
                "⏳ You have {n} jobs going, the most you may have at once: start another when one ends.",
                status.active,
            )
        )
    if status.cooldown_ends is not None:
        lines.append(tr("⏳ You can use /imagine again {when}.", when=_when(status.cooldown_ends.timestamp())))
    return (joined(lines, "\n") if lines else tr("✅ You can use /imagine now.")).render(locale)


def images_text(status: MemberStatus, locale: str | None = None) -> str:
    """``3 of 5 left · resets …``, or ``No limit · 2 used today``."""
    left = status.images_left
    if left is None:
        return tr("No limit · {used} used today", used=status.images_today).render(locale)
    resets = _when(next_day(status.now.date()).timestamp())
    return tr(
        "{left} of {limit} left · resets {when}", left=left, limit=status.limits.daily_images, when=resets
    ).render(locale)


def cooldown_text(status: MemberStatus, locale: str | None = None) -> str:
    """``None``, or the cooldown's length and when the member may ask again."""
    seconds = status.limits.cooldown_seconds
    if not seconds:
        return tr("None").render(locale)
    ready = (
        tr("ready now")
        if status.cooldown_ends is None
        else tr("ready {when}", when=_when(status.cooldown_ends.timestamp()))
    )
    return tr("{seconds} s between requests · {ready}", seconds=seconds, ready=ready).render(locale)


def spend_today_text(status: MemberStatus, locale: str | None = None) -> str:
    """The member's spend today against their daily cap (dollars as the moderators' budget answers show them)."""
    spent, left = status.spend.member_today, status.budget_left_today
    if left is None:
        return tr("{spent} · no daily cap", spent=usd(spent)).render(locale)
    resets = _when(next_day(status.now.date()).timestamp())
    return tr(
        "{spent} of {cap} · {left} left · resets {when}",
        spent=usd(spent),
        cap=usd(status.budget.member_daily),
        left=usd(left),
        when=resets,
    ).render(locale)


def _month_resets(status: MemberStatus) -> str:
    """The day the server's monthly budget starts again, as Discord shows a date in the reader's own zone."""
    return f"<t:{int(next_month(status.now.date()).timestamp())}:D>"


def month_text(status: MemberStatus, locale: str | None = None) -> str:
    """Whether the server's monthly budget still has room: never its amounts, which only moderators see
    (``/imagine-admin budget``)."""
    if status.budget_left_this_month == 0:
        return tr("Used up · resets on {date}", date=_month_resets(status)).render(locale)
    return tr("Has room").render(locale)


def job_line(job: MemberJob, locale: str | None = None) -> str:
    """One job: where it is, its model and its prompt."""
    where: Text
    if job.state is JobState.QUEUED:
        where = tr("⏳ Queued, position {position}", position=job.position) if job.position else tr("⏳ Queued")
    elif job.state is JobState.PROCESSING:
        where = (
            tr("🎨 Processing {bar}", bar=progress_bar(job.progress))
            if job.progress is not None
            else tr("🎨 Processing")
        )
    else:
        where = tr("🚀 Starting")
    model = _clip(job.model, 60).replace("`", "")
    return f"{where.render(locale)} · `{model}` · {discord.utils.escape_markdown(_clip(job.prompt, PROMPT_CLIP))}"


def jobs_text(status: MemberStatus, jobs: Sequence[MemberJob], locale: str | None = None) -> str:
    """The member's jobs on this process, as many as fit, then how many more run or wait on other processes."""
    tail = []
    if status.elsewhere:
        more_elsewhere = (
            tr(
                "➕ {count} more on other processes ({waiting} waiting)",
                count=status.elsewhere,
                waiting=status.queued_elsewhere,
            )
            if status.queued_elsewhere
            else tr("➕ {count} more on other processes", count=status.elsewhere)
        )
        tail.append(more_elsewhere.render(locale))
    lines: list[str] = []
    for index, job in enumerate(jobs):
        line, more = job_line(job, locale), tr("… and {count} more", count=len(jobs) - index).render(locale)
        if index >= JOBS_SHOWN or len("\n".join([*lines, line, more, *tail])) > FIELD_LIMIT:
            lines.append(more)
            break
        lines.append(line)
    return "\n".join([*lines, *tail]) or tr("None right now.").render(locale)


def models_text(status: MemberStatus, locale: str | None = None) -> str:
    """The models the member may use, the one ``/imagine`` takes when they name none first, saying why."""
    if not status.models:
        return tr("None: every model here is only for some roles.").render(locale)
    taken = status.model_taken
    why = (tr("your preference") if status.preferred_model is not None else tr("server default")).render(locale)
    ordered = [model for model in status.models if model == taken] + [m for m in status.models if m != taken]
    names = [f"`{model}`" + (f" ({why})" if model == taken else "") for model in ordered]
    shown = names[:MODELS_SHOWN]
    text = ", ".join(shown)
    if len(names) > len(shown):
        text = tr("{models} and {count} more", models=text, count=len(names) - len(shown)).render(locale)
    return text if len(text) <= FIELD_LIMIT else _clip(text, FIELD_LIMIT)


def info_embed(status: MemberStatus, jobs: Sequence[MemberJob], locale: str | None = None) -> discord.Embed:
    """``/imagine-info``'s answer, in the member's language (``locale``): the headline, then one field per
    figure."""
    embed = discord.Embed(
        title=TITLE.render(locale), description=headline(status, locale), colour=discord.Colour.blurple()
    )
    embed.add_field(name=tr("Images today").render(locale), value=images_text(status, locale))
    embed.add_field(name=tr("Cooldown").render(locale), value=cooldown_text(status, locale))
    embed.add_field(name=tr("Your spend today").render(locale), value=spend_today_text(status, locale))
    embed.add_field(name=tr("This server's monthly budget").render(locale), value=month_text(status, locale))
    limit = status.limits.concurrent_jobs
    jobs_heading = (
        tr("Your jobs here (at most {limit} at once)", limit=limit) if limit else tr("Your jobs here")
    ).render(locale)
    embed.add_field(name=jobs_heading, value=jobs_text(status, jobs, locale), inline=False)
    embed.add_field(name=tr("Models you may use here").render(locale), value=models_text(status, locale), inline=False)
    embed.set_footer(text=tr("Only you can see this.").render(locale))
    return embed
