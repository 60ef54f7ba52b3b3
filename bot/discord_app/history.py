"""How ``/imagine-history`` looks: a member's latest jobs as one embed, readable at a glance.

Pure rendering from journal records; the cog only fetches and answers.
"""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.i18n import Text, tr, tr_n
from bot.jobs.model import JobState
from bot.storage import JobRecord

HISTORY_SIZE = 10
"""Jobs shown: the member's latest, in this server."""
PROMPT_CLIP = 120
MODEL_CLIP = 60
ERROR_CLIP = 100
DESCRIPTION_LIMIT = 4096
EMPTY = tr("You have no /imagine jobs in this server yet. Try `/imagine prompt: a lighthouse at dusk`!")

_OUTCOMES: dict[JobState, Text] = {
    JobState.FAILED: tr("❌ Failed"),
    JobState.CANCELED: tr("⏹️ Canceled"),
    JobState.TIMED_OUT: tr("⌛ Timed out"),
}


def message_link(guild_id: int, channel_id: int | None, message_id: int | None) -> str | None:
    """The link that opens a message in Discord, where the message is known."""
    if channel_id is None or message_id is None:
        return None
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())  # one line per job: newlines would break the layout
    return text if len(text) <= limit else text[: limit - 1] + "…"


def outcome(record: JobRecord, locale: str | None = None) -> str:
    """What became of the job, in a few words (in the member's language, ``locale``)."""
    try:
        state = JobState(record.state)
    except ValueError:
        state = None  # queued, creating, running, finishing: the journal's steps of a job still going
    if state is JobState.SUCCEEDED:
        return tr_n("✅ {n} image", "✅ {n} images", record.images_delivered).render(locale)
    if state is None or not state.terminal:
        return tr("⏳ In progress").render(locale)
    text = _OUTCOMES[state].render(locale)
    if state is JobState.FAILED and record.error:
        text += f": {discord.utils.escape_markdown(_clip(record.error, ERROR_CLIP))}"
    return text


def history_line(record: JobRecord, guild_id: int, *, prompt_clip: int = PROMPT_CLIP, locale: str | None = None) -> str:
    """One job: when, outcome, model and a link on the first line; the prompt quoted below it."""
    parts = [
        f"<t:{int(record.created_at.timestamp())}:R>",
        outcome(record, locale),
        f"`{_clip(record.model, MODEL_CLIP).replace('`', '')}`",
    ]
    link = message_link(guild_id, record.channel_id, record.message_id)
    if link is not None:
        parts.append(f"[{tr('open').render(locale)}]({link})")
    line = " · ".join(parts)
    if prompt_clip > 0:
        line += f"\n> {discord.utils.escape_markdown(_clip(record.prompt, prompt_clip))}"
    return line


def history_embed(records: Sequence[JobRecord], guild_id: int, locale: str | None = None) -> discord.Embed:
    """The member's jobs in ``guild_id`` (newest first) as one embed, in their language (``locale``), within
    Discord's description limit."""
    count = len(records)
    description = ""
    # Prompts full of markdown escape to twice their length: shorten them until ten jobs fit.
    for prompt_clip in (PROMPT_CLIP, PROMPT_CLIP // 2, PROMPT_CLIP // 4, 0):
        description = "\n\n".join(
            history_line(record, guild_id, prompt_clip=prompt_clip, locale=locale) for record in records
        )
        if len(description) <= DESCRIPTION_LIMIT:
            break
    title = tr_n("Your /imagine job here", "Your latest {n} /imagine jobs here", count)
    embed = discord.Embed(
        title=title.render(locale),
        description=description[:DESCRIPTION_LIMIT],
        colour=discord.Colour.blurple(),
    )
    embed.set_footer(text=tr("Only you can see this.").render(locale))
    return embed
