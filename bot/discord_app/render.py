"""How a job looks in Discord: one embed per view, in the server's language. Nothing else builds job messages."""

from __future__ import annotations

import discord

from bot.i18n import Text, joined, render, tr, tr_n
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


def status_text(view: JobView, locale: str | None = None) -> str:
    """The state line a member reads, in ``locale`` (the server's: the whole channel reads it)."""
    return render(_status(view), locale)


def _status(view: JobView) -> Text:
    state = view.state
    if view.cancel_requested and not view.terminal:
        return tr("⏹️ Canceling…")
    if state is JobState.QUEUED:
        if view.queue_position:
            return tr("⏳ Queued ({place})", place=queue_place(view.queue_position))
        return tr("⏳ Queued")
    if state is JobState.STARTING:
        return tr("🚀 Starting…")
    if state is JobState.PROCESSING:
        if view.progress:
            return tr("🎨 Processing {bar}", bar=progress_bar(view.progress.fraction))
        return tr("🎨 Processing…")
    if state is JobState.SUCCEEDED:
        return tr("✅ Done")
    if state is JobState.CANCELED:
        if view.canceled_by:
            return tr("⏹️ Canceled by {member}", member=f"<@{view.canceled_by}>")
        return tr("⏹️ Canceled")
    if state is JobState.TIMED_OUT:
        return tr("⌛ Timed out")
    return tr("❌ Failed")


def queue_place(position: int) -> Text:
    """``position 3`` near the head; farther back, ``86 jobs ahead``.

    Far back the message is edited only when the place halves (:func:`~bot.jobs.scheduling.position_worth_showing`),
    so it gives the length of the line ahead, a rough figure, rather than an exact place gone stale.
    """
    if position <= EXACT_POSITIONS:
        return tr("position {position}", position=position)
    return tr_n("{n} job ahead", "{n} jobs ahead", position - 1)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def alt_text(view: JobView) -> str:
    """An image's alt text (its attachment's description): the prompt the model was given, clipped to fit."""
    return _clip(view.request.prompt, ALT_TEXT_LIMIT)


def render_embed(view: JobView, locale: str | None = None) -> discord.Embed:
    """The embed for ``view`` in ``locale`` (the server's): prompt, model, state, and the outcome's details."""
    request = view.request
    embed = discord.Embed(description=_clip(request.prompt, 4000), colour=_COLOURS[view.state])
    embed.set_author(name="/imagine")

    def field(name: Text, value: object, *, inline: bool = True) -> None:
        embed.add_field(name=render(name, locale), value=_clip(render(value, locale), 1024), inline=inline)

    field(tr("Model"), f"`{request.model}`")
    field(tr("Status"), _status(view))
    if request.requester_id:
        field(tr("Requested by"), f"<@{request.requester_id}>")
    if view.state is JobState.SUCCEEDED:
        if view.seed is not None:
            field(tr("Seed"), str(view.seed))
        timing: list[Text] = []
        if view.predict_time is not None:
            timing.append(tr("model {seconds}s", seconds=f"{view.predict_time:.1f}"))
        if view.elapsed is not None:
            timing.append(tr("total {seconds}s", seconds=f"{view.elapsed:.1f}"))
        if timing:
            field(tr("Time"), joined(timing, ", "))
    if view.error:
        field(tr("What happened"), view.error, inline=False)
    if view.terminal and view.notes:
        field(tr("Note"), joined(view.notes, "\n"), inline=False)
    embed.set_footer(text=tr("job {job_id}", job_id=view.job_id).render(locale))
    excess = len(embed) - EMBED_TOTAL_LIMIT
    if excess > 0:  # Discord refuses embeds over 6000 characters in all: the prompt gives way
        embed.description = _clip(request.prompt, max(1, len(embed.description or "") - excess))
    return embed
