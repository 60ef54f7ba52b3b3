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
from bot.jobs.model import JobState
from bot.jobs.scheduling import MemberJob
from bot.moderation.member_status import MemberStatus

JOBS_SHOWN = 10
"""Jobs listed one by one; more are counted."""
PROMPT_CLIP = 60
MODELS_SHOWN = 25
TITLE = "What you can still do here"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())  # one line per job
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(moment_timestamp: float) -> str:
    return f"<t:{int(moment_timestamp)}:R>"


def headline(status: MemberStatus) -> str:
    """What stops the member from starting a job now, one line each; or that nothing does."""
    resets_today = _when(next_day(status.now.date()).timestamp())
    lines = []
    if not status.models:
        lines.append("⛔ Every model here is only for members with some roles, and you have none of them.")
    if status.images_left == 0:
        lines.append(
            f"⛔ You have used all {status.limits.daily_images} of your images for today; more {resets_today}."
        )
    if status.budget_left_today == 0:
        lines.append(f"⛔ You have spent your budget for today; it resets {resets_today}.")
    if status.budget_left_this_month == 0:
        lines.append(f"⛔ This server's monthly budget is used up; it resets on {_month_resets(status)}.")
    if status.jobs_left == 0:
        going = f"{status.active} job{'s' if status.active != 1 else ''}"
        lines.append(f"⏳ You have {going} going, the most you may have at once: start another when one ends.")
    if status.cooldown_ends is not None:
        lines.append(f"⏳ You can use /imagine again {_when(status.cooldown_ends.timestamp())}.")
    return "\n".join(lines) or "✅ You can use /imagine now."


def images_text(status: MemberStatus) -> str:
    """``3 of 5 left · resets …``, or ``No limit · 2 used today``."""
    left = status.images_left
    if left is None:
        return f"No limit · {status.images_today} used today"
    return f"{left} of {status.limits.daily_images} left · resets {_when(next_day(status.now.date()).timestamp())}"


def cooldown_text(status: MemberStatus) -> str:
    """``None``, or the cooldown's length and when the member may ask again."""
    seconds = status.limits.cooldown_seconds
    if not seconds:
        return "None"
    ready = "ready now" if status.cooldown_ends is None else f"ready {_when(status.cooldown_ends.timestamp())}"
    return f"{seconds} s between requests · {ready}"


def spend_today_text(status: MemberStatus) -> str:
    """The member's spend today against their daily cap (dollars as the moderators' budget answers show them)."""
    spent, left = status.spend.member_today, status.budget_left_today
    if left is None:
        return f"{usd(spent)} · no daily cap"
    resets = _when(next_day(status.now.date()).timestamp())
    return f"{usd(spent)} of {usd(status.budget.member_daily)} · {usd(left)} left · resets {resets}"


def _month_resets(status: MemberStatus) -> str:
    """The day the server's monthly budget starts again, as Discord shows a date in the reader's own zone."""
    return f"<t:{int(next_month(status.now.date()).timestamp())}:D>"


def month_text(status: MemberStatus) -> str:
    """Whether the server's monthly budget still has room: never its amounts, which only moderators see
    (``/imagine-admin budget``)."""
    if status.budget_left_this_month == 0:
        return f"Used up · resets on {_month_resets(status)}"
    return "Has room"


def job_line(job: MemberJob) -> str:
    """One job: where it is, its model and its prompt."""
    if job.state is JobState.QUEUED:
        where = f"⏳ Queued, position {job.position}" if job.position else "⏳ Queued"
    elif job.state is JobState.PROCESSING:
        where = f"🎨 Processing {progress_bar(job.progress)}" if job.progress is not None else "🎨 Processing"
    else:
        where = "🚀 Starting"
    model = _clip(job.model, 60).replace("`", "")
    return f"{where} · `{model}` · {discord.utils.escape_markdown(_clip(job.prompt, PROMPT_CLIP))}"


def jobs_text(status: MemberStatus, jobs: Sequence[MemberJob]) -> str:
    """The member's jobs on this process, as many as fit, then how many more run or wait on other processes."""
    tail = []
    if status.elsewhere:
        waiting = f" ({status.queued_elsewhere} waiting)" if status.queued_elsewhere else ""
        tail.append(f"➕ {status.elsewhere} more on other processes{waiting}")
    lines: list[str] = []
    for index, job in enumerate(jobs):
        line, more = job_line(job), f"… and {len(jobs) - index} more"
        if index >= JOBS_SHOWN or len("\n".join([*lines, line, more, *tail])) > FIELD_LIMIT:
            lines.append(more)
            break
        lines.append(line)
    return "\n".join([*lines, *tail]) or "None right now."


def models_text(status: MemberStatus) -> str:
    """The models the member may use, the one ``/imagine`` takes when they name none first, saying why."""
    if not status.models:
        return "None: every model here is only for some roles."
    taken = status.model_taken
    why = "your preference" if status.preferred_model is not None else "server default"
    ordered = [model for model in status.models if model == taken] + [m for m in status.models if m != taken]
    names = [f"`{model}`" + (f" ({why})" if model == taken else "") for model in ordered]
    shown = names[:MODELS_SHOWN]
    more = f" and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
    text = ", ".join(shown) + more
    return text if len(text) <= FIELD_LIMIT else _clip(text, FIELD_LIMIT)


def info_embed(status: MemberStatus, jobs: Sequence[MemberJob]) -> discord.Embed:
    """``/imagine-info``'s answer: the headline, then one field per figure."""
    embed = discord.Embed(title=TITLE, description=headline(status), colour=discord.Colour.blurple())
    embed.add_field(name="Images today", value=images_text(status))
    embed.add_field(name="Cooldown", value=cooldown_text(status))
    embed.add_field(name="Your spend today", value=spend_today_text(status))
    embed.add_field(name="This server's monthly budget", value=month_text(status))
    limit = status.limits.concurrent_jobs
    at_once = f" (at most {limit} at once)" if limit else ""
    embed.add_field(name=f"Your jobs here{at_once}", value=jobs_text(status, jobs), inline=False)
    embed.add_field(name="Models you may use here", value=models_text(status), inline=False)
    embed.set_footer(text="Only you can see this.")
    return embed
