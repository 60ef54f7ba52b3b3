"""Answering an interaction within Discord's 3 s, whatever the work before the answer costs.

Discord drops an interaction that gets no answer within 3 seconds of being sent ("This interaction
failed", and the token is dead). The checks before ``/imagine``'s answer are quick as a rule, but a
slow database, a model schema fetched through a struggling API or a busy event loop can stretch them.
:class:`AnswerDeadline` watches the clock: if the real answer is not on its way shortly before the
deadline, it defers (the member sees "thinking…"), and the answer then takes the deferred message's
place (:func:`answer_with_message`) or, for a refusal, replaces it privately (:func:`refuse`). A command
whose every answer is private defers privately (``privately=True``): its answer then simply takes the
private "thinking…"'s place (:func:`answer_privately`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import discord

from bot.base.errors import ImagineError
from bot.i18n import Text, joined, render, tr

log = logging.getLogger(__name__)

#: Seconds after Discord sent the interaction at which an unanswered one is deferred (the limit is 3 s).
DEFER_AT = 2.0
_THINKING = "imagine:thinking"  # key in ``Interaction.extras``: deferred, nothing shown in its place yet
_DEADLINE = "imagine:deadline"  # key in ``Interaction.extras``: the watch, stopped before any answer
_PRIVATELY = "imagine:thinking-privately"  # key in ``Interaction.extras``: the deferred "thinking…" is ephemeral


Say = str | Text
"""What an answer says: a :class:`~bot.i18n.Text`, rendered in the reader's language, or a plain string."""


def member_locale(interaction: discord.Interaction) -> str:
    """The language of the member behind ``interaction`` (their Discord client's): what they alone read is in it."""
    return str(interaction.locale.value)


def server_locale(interaction: discord.Interaction) -> str | None:
    """The server's language (its community locale): what the whole channel reads is in it (``None``: English)."""
    locale = interaction.guild_locale
    return None if locale is None else str(locale.value)


def for_member(interaction: discord.Interaction, text: Say) -> str:
    """``text`` as the member behind ``interaction`` reads it."""
    return render(text, member_locale(interaction))


def refusal(error: ImagineError) -> Text:
    """A refusal's reason as a member reads it: ``❌`` and the error's own text (never flattened to English)."""
    return joined(("❌ ", error.text))


def is_thinking(interaction: discord.Interaction) -> bool:
    """Whether the interaction was deferred by :class:`AnswerDeadline` and still shows "thinking…"."""
    return bool(interaction.extras.get(_THINKING))


async def refuse(interaction: discord.Interaction, message: Say) -> None:
    """A refusal only the member sees (in their language), whichever way the interaction was already answered."""
    await answer_privately(interaction, message)


async def answer_privately(interaction: discord.Interaction, text: Say | None = None, **fields: Any) -> None:
    """An answer only the member sees (``text``, in their language, and any of ``embed``, ``allowed_mentions``:
    an embed is built from texts rendered with :func:`for_member`), whichever way the interaction was already
    answered."""
    message = None if text is None else for_member(interaction, text)
    await _stop_deadline(interaction)
    if is_thinking(interaction):
        interaction.extras[_THINKING] = False
        if interaction.extras.get(_PRIVATELY):
            # Deferred privately: the answer takes the private "thinking…"'s place.
            await interaction.edit_original_response(content=message, **fields)
            return
        # A deferred answer is visible to everyone: take it away and say it privately instead.
        with contextlib.suppress(discord.NotFound):
            await interaction.delete_original_response()
        await interaction.followup.send(message or discord.utils.MISSING, ephemeral=True, **fields)
    elif interaction.response.is_done():
        await interaction.followup.send(message or discord.utils.MISSING, ephemeral=True, **fields)
    else:
        await interaction.response.send_message(message, ephemeral=True, **fields)


async def reply_privately(
    interaction: discord.Interaction, content: Say | None = None, *, embed: discord.Embed | None = None
) -> None:
    """A private answer that pings no one (settings answers name roles and channels as mentions)."""
    await answer_privately(
        interaction, content, embed=embed or discord.utils.MISSING, allowed_mentions=discord.AllowedMentions.none()
    )


def something_went_wrong(reference: str) -> Text:
    """What a member reads of a failure the bot did not expect."""
    return tr("Something went wrong on our side (reference {reference}).", reference=reference)


async def tell_failure(
    interaction: discord.Interaction,
    error: BaseException,
    what: str,
    message: str | Callable[[str], Say] = something_went_wrong,
) -> None:
    """Log an unexpected failure of ``what`` and tell the member, privately, with a reference to find it by
    (``message``: the text for a reference, or a string with ``{reference}`` in it): never leave "This
    interaction failed"."""
    reference = secrets.token_hex(3)
    log.error("%s failed (reference %s)", what, reference, exc_info=error)
    text = message.format(reference=reference) if isinstance(message, str) else message(reference)
    try:
        await answer_privately(interaction, text)
    except discord.HTTPException:
        log.warning("could not tell the member about failure %s", reference)


async def answer_command_error(interaction: discord.Interaction, error: BaseException, command: str) -> None:
    """A slash command's failure answered: a check it failed said as the refusal, anything else as
    :func:`tell_failure`."""
    if isinstance(error, discord.app_commands.CheckFailure):
        # A check of ours may give its reason as a text to translate; discord.py's own are English.
        reason = error.args[0] if error.args and isinstance(error.args[0], Text) else str(error)
        await refuse(interaction, joined(("❌ ", reason)))
        return
    await tell_failure(interaction, error, command)


@dataclass(frozen=True)
class Answer:
    """The visible message that answered an interaction, and how it came."""

    message_id: int
    edited_deferred: bool
    """It took the deferred "thinking…" message's place: an edit of that message, under Discord's budget of
    edits per message (a first answer is not one)."""


async def answer_with_message(interaction: discord.Interaction, **fields: Any) -> Answer:
    """Answer with a visible message (or turn the deferred "thinking…" into it).

    Whether it was deferred is known only here, once a defer still in flight has come back: a caller
    that asked :func:`is_thinking` before the call may have been told no.
    """
    await _stop_deadline(interaction)
    if is_thinking(interaction):
        message = await interaction.edit_original_response(**fields)
        interaction.extras[_THINKING] = False
        return Answer(message.id, edited_deferred=True)
    response = await interaction.response.send_message(**fields)
    resource = response.resource
    if isinstance(resource, discord.Message):
        return Answer(resource.id, edited_deferred=False)
    return Answer((await interaction.original_response()).id, edited_deferred=False)


async def _stop_deadline(interaction: discord.Interaction) -> None:
    deadline = interaction.extras.get(_DEADLINE)
    if isinstance(deadline, AnswerDeadline):
        await deadline.stop()


class AnswerDeadline:
    """Defers the interaction if it is still unanswered at :data:`DEFER_AT` seconds of age.

    Use as ``async with AnswerDeadline(interaction):`` around the work that ends with the answer; the
    answer itself goes through :func:`refuse`, :func:`answer_privately` or :func:`answer_with_message`
    (not after ``privately``: its message would be private), which stop the watch first
    (waiting for a defer already in flight, so two answers never race) and know whether it deferred.
    """

    def __init__(
        self, interaction: discord.Interaction, *, defer_at: float = DEFER_AT, privately: bool = False
    ) -> None:
        self._interaction = interaction
        self._defer_at = defer_at
        self._privately = privately
        self._lock = asyncio.Lock()
        self._stopped = False
        self._task: asyncio.Task[None] | None = None

    def _delay(self) -> float:
        age = (discord.utils.utcnow() - self._interaction.created_at).total_seconds()
        # A clock behind Discord's reads a negative age: never wait longer than the whole allowance.
        return min(self._defer_at, max(0.0, self._defer_at - age))

    async def __aenter__(self) -> AnswerDeadline:
        if not self._interaction.response.is_done():
            self._interaction.extras[_DEADLINE] = self
            self._task = asyncio.create_task(self._defer_when_due(), name="answer-deadline")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop watching; from here on the caller answers (waits for a defer already being sent)."""
        async with self._lock:
            self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _defer_when_due(self) -> None:
        await asyncio.sleep(self._delay())
        async with self._lock:
            if self._stopped or self._interaction.response.is_done():
                return
            try:
                await self._interaction.response.defer(thinking=True, ephemeral=self._privately)
            except discord.HTTPException as exc:
                log.warning("could not defer interaction %s in time: %s", self._interaction.id, exc)
                return
            self._interaction.extras[_THINKING] = True
            self._interaction.extras[_PRIVATELY] = self._privately
            log.info("interaction %s deferred: its answer took longer than %.1f s", self._interaction.id, DEFER_AT)
