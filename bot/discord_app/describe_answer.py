"""``/describe``'s answer: the suggestions numbered in an embed, and a button per suggestion that survives restarts.

A ``custom_id`` holds at most 100 characters, too few for a prompt: the button carries only its number, and
a press reads the prompt back from the pressed message's embed, which Discord sends with every press. The
press starts ``/imagine`` with that prompt through the job starter (every check and charge of ``/imagine``),
reached through the bot's button handler, as the job buttons reach it; this module sees both through small
protocols of its own, so it imports neither the client nor the ``/imagine`` cog.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, Protocol, cast

import discord

from bot.api.descriptions import MAX_SUGGESTIONS
from bot.api.inputs import ImagineOptions
from bot.discord_app.answers import refuse, tell_failure
from bot.i18n import available_languages, tr, tr_n

log = logging.getLogger(__name__)

TITLE = tr("🔎 Prompts for this image")
_LINE = re.compile(r"^\*\*(?P<n>[1-9])\.\*\* (?P<prompt>.+)$")
_COLOUR = discord.Colour.blurple()
_MARKDOWN = re.compile(r"([\\*_~|`<>#\[\]()@])")
_ESCAPED = re.compile(r"\\(.)")
EMBED_TEXT_MAX = 4096
"""Characters of an embed's description."""


def shown(prompt: str) -> str:
    """``prompt`` as the answer shows it: every character markdown gives a meaning escaped, so it reads as typed
    (never a link, a mention or formatting); :func:`read_back` undoes it exactly."""
    return _MARKDOWN.sub(r"\\\1", prompt)


def read_back(text: str) -> str:
    """The prompt :func:`shown` showed as ``text``."""
    return _ESCAPED.sub(r"\1", text)


class StartsImagine(Protocol):
    """The job starter, as a suggestion's button uses it (``JobStarter``)."""

    async def start_job(
        self, interaction: discord.Interaction, model_text: str | None, options: ImagineOptions
    ) -> None: ...


class HoldsStarter(Protocol):
    """The bot's button handler (the ``/imagine`` cog's ``ButtonActions``): it holds the job starter."""

    @property
    def starter(self) -> StartsImagine: ...


class _HandsOutPresses(Protocol):
    """The bot (``ImagineBot``) as a suggestion's button sees it."""

    @property
    def button_handler(self) -> HoldsStarter | None: ...


def titles() -> frozenset[str]:
    """The answer's title in every language it may have been shown in (a press reads the suggestions back)."""
    return frozenset(TITLE.render(code) for code in (None, *available_languages()))


def describe_answer(
    suggestions: Sequence[str], *, blocked: int = 0, image_url: str | None = None, locale: str | None = None
) -> dict[str, Any]:
    """The answer's fields (``embed``, ``view``) for ``answer_with_message``, in ``locale`` (the server's: the
    channel reads it): the suggestions numbered, one button each, and the image described as the thumbnail
    (while its link lasts)."""
    lines: list[str] = []
    for number, prompt in enumerate(suggestions[:MAX_SUGGESTIONS], 1):
        line = f"**{number}.** {shown(prompt)}"
        if sum(len(earlier) + 1 for earlier in lines) + len(line) > EMBED_TEXT_MAX:
            break  # escaped, a prompt thick with punctuation can outgrow the embed: the later ones are left out
        lines.append(line)
    embed = discord.Embed(title=TITLE.render(locale), description="\n".join(lines), colour=_COLOUR)
    if image_url is not None:
        embed.set_thumbnail(url=image_url)
    footer = tr("Press a number to /imagine that prompt.").render(locale)
    if blocked:
        left_out = tr_n(
            "{n} more was left out: a word this server blocks.",
            "{n} more were left out: words this server blocks.",
            blocked,
        )
        footer += " " + left_out.render(locale)
    embed.set_footer(text=footer)
    view = discord.ui.View(timeout=None)
    for number in range(1, len(lines) + 1):
        view.add_item(SuggestionButton(number))
    return {"embed": embed, "view": view}


def prompt_of(message: discord.Message | None, number: int) -> str | None:
    """Suggestion ``number`` as the answer ``message`` shows it, if it still does."""
    for embed in message.embeds if message is not None else ():
        if embed.title not in titles() or not embed.description:
            continue
        for line in embed.description.splitlines():
            match = _LINE.match(line)
            if match is not None and int(match["n"]) == number:
                return read_back(match["prompt"])
    return None


class SuggestionButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"describe:(?P<n>[1-9])"):
    """``1``…``4`` under a ``/describe`` answer: ``/imagine`` that suggestion, as the member who presses it."""

    def __init__(self, number: int) -> None:
        super().__init__(
            discord.ui.Button(label=str(number), style=discord.ButtonStyle.secondary, custom_id=f"describe:{number}")
        )
        self.number = number

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> SuggestionButton:
        return cls(int(match["n"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await self._pressed(interaction)
        except Exception as exc:
            # Buttons bypass the command error handler: every failure answers, never "This interaction failed".
            await tell_failure(interaction, exc, "a /describe suggestion's button")

    async def _pressed(self, interaction: discord.Interaction) -> None:
        prompt = prompt_of(interaction.message, self.number)
        if prompt is None:
            await refuse(interaction, tr("This suggestion can no longer be read; run /describe again."))
            return
        handler = cast(_HandsOutPresses, interaction.client).button_handler
        if handler is None:
            await refuse(interaction, tr("/imagine isn't available right now; try again in a moment."))
            return
        await handler.starter.start_job(interaction, None, ImagineOptions(prompt=prompt))
