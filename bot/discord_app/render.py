"""How a job looks in Discord: one embed per view. Nothing else builds job messages."""

from __future__ import annotations

import discord

from bot.i18n import render
from bot.jobs.model import JobState, JobView
from bot.jobs.scheduling import EXACT_POSITIONS

_COLOURS = {
    JobState.QUEUED: discord.Colour.light_grey(),
    JobState.STARTING: discord.Colour.blurple(),
    JobState.PROCESSING: discord.Colour.blurple(),
    JobState.SUCCEEDED: discord.Colour.green(),
    JobState.FAILED: discord.Colour.red(),
    JobState.CANCELED: discord.Colour.dark_grey(),
    JobState.TIMED_OUT: discord.Colour.orange(),
}
_BAR_CELLS = 10
EMBED_TOTAL_LIMIT = 6000
ALT_TEXT_LIMIT = 1024  # Discord's limit on an attachment's description


def progress_bar(fraction: float) -> str:
    """``▰▰▰▱▱▱▱▱▱▱ 30%``."""
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * _BAR_CELLS)
    return f"{'▰' * filled}{'▱' * (_BAR_CELLS - filled)} {round(fraction * 100)}%"


def status_text(view: JobView) -> str:
    """The state line a member reads."""
    state = view.state
    if view.cancel_requested and not view.terminal:
        return "⏹️ Canceling…"
    if state is JobState.QUEUED:
        return f"⏳ Queued ({queue_place(view.queue_position)})" if view.queue_position else "⏳ Queued"
    if state is JobState.STARTING:
        return "🚀 Starting…"
    if state is JobState.PROCESSING:
        return f"🎨 Processing {progress_bar(view.progress.fraction)}" if view.progress else "🎨 Processing…"
    if state is JobState.SUCCEEDED:
        return "✅ Done"
    if state is JobState.CANCELED:
        who = f" by <@{view.canceled_by}>" if view.canceled_by else ""
        return f"⏹️ Canceled{who}"
    if state is JobState.TIMED_OUT:
        return "⌛ Timed out"
    return "❌ Failed"


def queue_place(position: int) -> str:
    """``position 3`` near the head; farther back, ``86 jobs ahead``.

    Far back the message is edited only when the place halves (:func:`~bot.jobs.scheduling.position_worth_showing`),
    so it gives the length of the line ahead, a rough figure, rather than an exact place gone stale.
    """
    if position <= EXACT_POSITIONS:
        return f"position {position}"
    return f"{position - 1} jobs ahead"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def alt_text(view: JobView) -> str:
    """An image's alt text (its attachment's description): the prompt the model was given, clipped to fit."""
    return _clip(view.request.prompt, ALT_TEXT_LIMIT)


def render_embed(view: JobView) -> discord.Embed:
    """The embed for ``view``: prompt, model, state, and the outcome's details."""
    request = view.request
    embed = discord.Embed(description=_clip(request.prompt, 4000), colour=_COLOURS[view.state])
    embed.set_author(name="/imagine")
    embed.add_field(name="Model", value=_clip(f"`{request.model}`", 1024), inline=True)
    embed.add_field(name="Status", value=status_text(view), inline=True)
    if request.requester_id:
        embed.add_field(name="Requested by", value=f"<@{request.requester_id}>", inline=True)
    if view.state is JobState.SUCCEEDED:
        if view.seed is not None:
            embed.add_field(name="Seed", value=str(view.seed), inline=True)
        timing = []
        if view.predict_time is not None:
            timing.append(f"model {view.predict_time:.1f}s")
        if view.elapsed is not None:
            timing.append(f"total {view.elapsed:.1f}s")
        if timing:
            embed.add_field(name="Time", value=", ".join(timing), inline=True)
    if view.error:
        embed.add_field(name="What happened", value=_clip(render(view.error), 1024), inline=False)
    if view.terminal and view.notes:
        embed.add_field(name="Note", value=_clip("\n".join(render(note) for note in view.notes), 1024), inline=False)
    embed.set_footer(text=f"job {view.job_id}")
    excess = len(embed) - EMBED_TOTAL_LIMIT
    if excess > 0:  # Discord refuses embeds over 6000 characters in all: the prompt gives way
        embed.description = _clip(request.prompt, max(1, len(embed.description or "") - excess))
    return embed
