"""The Remix form: a Discord modal with a result's prompt (flags included) to edit, answered by its custom id.

A discord.py ``Modal`` lives only in the memory of the process that sent it: ``ViewStore.dispatch_modal``
drops a submit whose modal it does not know, and ``DynamicItem`` (what keeps the buttons working after a
restart) matches message components only, never a modal. So the form goes out as a plain form (stopped
before it is sent: the library keeps nothing of it) and every submit is read back from the interaction by
its custom id, ``imagine:remix-form:<job>[:<variation>]``, in :func:`submit_remix_form`, which the ``/imagine``
cog calls from its ``on_interaction`` listener: one way, the same before and after a restart.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Protocol

import discord

from bot.api.inputs import PROMPT_MAX
from bot.discord_app.answers import member_locale, refuse
from bot.discord_app.buttons import answering
from bot.discord_app.forms import submitted_value
from bot.discord_app.variations import Variation
from bot.i18n import Text, tr

log = logging.getLogger(__name__)

FORM_PREFIX = "imagine:remix-form:"
_FORM_ID = re.compile(r"imagine:remix-form:(?P<job>[0-9a-f]{1,32})(?::(?P<variation>v[1-9]|subtle|strong))?")
PROMPT_INPUT = "prompt"
"""The custom id of the form's one text input."""
TEXT_MAX = 4000  # Discord's limit on a text input's value


class RemixFormHandler(Protocol):
    """What a submitted Remix form does (``ButtonActions``)."""

    async def remix_submitted(
        self, interaction: discord.Interaction, job_id: str, variation: Variation | None, text: str
    ) -> None: ...


def form_id(job_id: str, variation: Variation | None) -> str:
    """The form's custom id: the job it remixes and, for a variation, which one."""
    return f"{FORM_PREFIX}{job_id}" if variation is None else f"{FORM_PREFIX}{job_id}:{variation.token}"


TITLE_MAX = 45
"""Characters of a modal's title (Discord's limit)."""


def form_title(variation: Variation | None) -> Text:
    """``Remix``, ``Remix: variation of image 2``, ``Remix: Vary (Subtle)`` (Discord allows 45 characters)."""
    if variation is None:
        return tr("Remix")
    if variation.strength is None:
        return tr("Remix: variation of image {number}", number=variation.number)
    return tr("Remix: {button}", button=variation.strength.label)


def remix_form(job_id: str, variation: Variation | None, text: str, locale: str | None = None) -> discord.ui.Modal:
    """The form, filled in with ``text`` (the prompt with its flags), ready to send, in the member's language
    (``locale``).

    The input allows :data:`~bot.api.inputs.PROMPT_MAX` characters, or the text's own length where the flags
    written back make it longer: the member shortens it, and the submit is checked as ``/imagine`` is.
    """
    title = form_title(variation).render(locale)[:TITLE_MAX]
    form = discord.ui.Modal(title=title, custom_id=form_id(job_id, variation), timeout=None)
    prompt: discord.ui.TextInput[discord.ui.Modal] = discord.ui.TextInput(
        custom_id=PROMPT_INPUT,
        style=discord.TextStyle.paragraph,
        default=text[:TEXT_MAX],
        min_length=1,
        max_length=min(TEXT_MAX, max(PROMPT_MAX, len(text))),
        required=True,
    )
    form.add_item(
        discord.ui.Label(
            text=tr("Prompt").render(locale),
            description=tr("Edit it as you like; flags go at the end: --ar 16:9 --no text").render(locale),
            component=prompt,
        )
    )
    # A plain form: discord.py keeps no stopped modal, so every submit reaches submit_remix_form alike.
    form.stop()
    return form


async def open_remix_form(
    interaction: discord.Interaction, job_id: str, variation: Variation | None, text: str
) -> None:
    """Answer a button press with the Remix form (the first answer: a form cannot follow a defer)."""
    await interaction.response.send_modal(remix_form(job_id, variation, text, member_locale(interaction)))


async def submit_remix_form(interaction: discord.Interaction, handler: RemixFormHandler) -> bool:
    """Hand a Remix form's submit to ``handler``; ``False`` (nothing done) for any other interaction."""
    if interaction.type is not discord.InteractionType.modal_submit:
        return False
    data: Mapping[str, Any] = interaction.data or {}
    custom_id = str(data.get("custom_id") or "")
    if not custom_id.startswith(FORM_PREFIX):
        return False
    async with answering(interaction):
        match = _FORM_ID.fullmatch(custom_id)
        text = submitted_value(data.get("components") or (), PROMPT_INPUT)
        if match is None or text is None:
            log.warning("a Remix form's submit could not be read: %r", custom_id)
            await refuse(interaction, tr("This form could not be read; press the button on the image again."))
            return True
        variation = Variation.from_token(match["variation"]) if match["variation"] else None
        await handler.remix_submitted(interaction, match["job"], variation, text)
    return True
