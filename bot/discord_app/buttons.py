"""The persistent buttons under a job's message: ``DynamicItem`` subclasses, so they survive restarts.

Each button's ``custom_id`` carries everything it needs (the job, the image's place, the owner), so a
click reaches the bot whatever it remembers. A press is handed to the bot's :class:`ButtonHandler`
(``ImagineBot.button_handler``, set while the ``/imagine`` cog is loaded) rather than to the cog
itself, which would make this module import the cog that imports it; the bot is seen through
:class:`HandsOutPresses`, so this module does not import the client that imports it either.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any, Protocol, cast

import discord

from bot.discord_app.answers import refuse, tell_failure
from bot.discord_app.members import may_moderate
from bot.discord_app.variations import Variation, VaryStrength
from bot.i18n import Text, render, tr
from bot.jobs.model import JobKind, JobState, JobView

log = logging.getLogger(__name__)

_BUTTONS_PER_ROW = 5  # Discord's limit: images past the fifth get no U/V button
_UPSCALE_ROW, _VARY_ROW, _VARY_STRENGTH_ROW = 1, 2, 3  # row 0: Re-roll, Remix, Delete (Cancel while running)


class ButtonHandler(Protocol):
    """What a press of a job's button does; Delete needs nothing but the interaction."""

    async def cancel_pressed(self, interaction: discord.Interaction, job_id: str) -> None: ...

    async def reroll_pressed(self, interaction: discord.Interaction, job_id: str) -> None: ...

    async def image_pressed(
        self, interaction: discord.Interaction, job_id: str, number: int, kind: JobKind
    ) -> None: ...

    async def remix_pressed(self, interaction: discord.Interaction, job_id: str) -> None: ...

    async def vary_pressed(self, interaction: discord.Interaction, job_id: str, variation: Variation) -> None: ...


class HandsOutPresses(Protocol):
    """The bot as buttons see it (``ImagineBot``): it knows who handles a press right now."""

    button_handler: ButtonHandler | None


def _handler(interaction: discord.Interaction) -> ButtonHandler:
    handler = cast(HandsOutPresses, interaction.client).button_handler
    if handler is None:
        raise RuntimeError("the Imagine cog is not loaded")
    return handler


@contextlib.asynccontextmanager
async def answering(interaction: discord.Interaction) -> AsyncIterator[None]:
    """Buttons bypass the command error handler: make every failure answer, never "This interaction failed"."""
    try:
        yield
    except Exception as exc:
        await tell_failure(interaction, exc, "a button")


_JOB_ACTIONS: dict[str, tuple[Text | str, str | None, discord.ButtonStyle]] = {
    "cancel": (tr("Cancel"), None, discord.ButtonStyle.secondary),
    "reroll": ("Re-roll", "🎲", discord.ButtonStyle.primary),
}
"""Each job-wide button's action (in its custom id): its label, emoji and style.

Labels are in the server's language, but for the product's own names (Re-roll, Remix, Vary (Subtle), U1, V1),
which the guides and every language's answers call them by."""


class JobButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"imagine:(?P<action>cancel|reroll):(?P<job>[0-9a-f]{1,32})",
):
    """Cancel a queued or running job (its requester, or a member with Manage Messages), or Re-roll an ended one
    (the same prompt and options again with a new seed)."""

    def __init__(self, action: str, job_id: str, locale: str | None = None) -> None:
        label, emoji, style = _JOB_ACTIONS[action]
        super().__init__(
            discord.ui.Button(
                label=render(label, locale), emoji=emoji, style=style, custom_id=f"imagine:{action}:{job_id}"
            )
        )
        self.action, self.job_id = action, job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JobButton:
        return cls(match["action"], match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        async with answering(interaction):
            handler = _handler(interaction)
            pressed = handler.cancel_pressed if self.action == "cancel" else handler.reroll_pressed
            await pressed(interaction, self.job_id)


class DeleteButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"imagine:delete:(?P<job>[0-9a-f]{1,32}):(?P<owner>\d+)"
):
    """Delete the result message (its requester, or a member with Manage Messages)."""

    def __init__(self, job_id: str, owner_id: int, locale: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=tr("Delete").render(locale),
                emoji="🗑️",
                style=discord.ButtonStyle.danger,
                custom_id=f"imagine:delete:{job_id}:{owner_id}",
            )
        )
        self.job_id = job_id
        self.owner_id = owner_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> DeleteButton:
        return cls(match["job"], int(match["owner"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        async with answering(interaction):
            await self._delete(interaction)

    async def _delete(self, interaction: discord.Interaction) -> None:
        if interaction.user.id != self.owner_id and not may_moderate(interaction):
            only = tr("Only the member who asked for this image, or a moderator, can delete it.")
            await refuse(interaction, only.render(interaction.locale.value))
            return
        await interaction.response.defer()
        try:
            # Through the interaction, so it works where the bot itself cannot read the channel.
            await interaction.delete_original_response()
        except discord.NotFound:
            pass
        except discord.HTTPException as exc:
            log.warning("could not delete job %s's message: %s", self.job_id, exc)
            failed = tr("The message could not be deleted.").render(interaction.locale.value)
            await interaction.followup.send(failed, ephemeral=True)


class ImageButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"imagine:(?P<kind>upscale|vary):(?P<job>[0-9a-f]{1,32}):(?P<n>[1-9])",
):
    """``U<n>``/``V<n>``: upscale image n, or vary it, as a new job replying to this message.

    The custom id carries the job and the image's place; the job's request comes
    from the journal and the image from the clicked message, so it works after restarts.
    """

    def __init__(self, kind: JobKind, job_id: str, number: int) -> None:
        letter, row = ("U", _UPSCALE_ROW) if kind is JobKind.UPSCALE else ("V", _VARY_ROW)
        super().__init__(
            discord.ui.Button(
                label=f"{letter}{number}",
                style=discord.ButtonStyle.secondary,
                custom_id=f"imagine:{kind}:{job_id}:{number}",
                row=row,
            )
        )
        self.kind, self.job_id, self.number = kind, job_id, number

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ImageButton:
        return cls(JobKind(match["kind"]), match["job"], int(match["n"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        async with answering(interaction):
            await _handler(interaction).image_pressed(interaction, self.job_id, self.number, self.kind)


class RemixButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"imagine:remix:(?P<job>[0-9a-f]{1,32})"):
    """``Remix``: a form with the prompt (flags included) to edit, then a new job with the original's model and
    options, replying to this message."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Remix", emoji="🖌️", style=discord.ButtonStyle.primary, custom_id=f"imagine:remix:{job_id}"
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RemixButton:
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        async with answering(interaction):
            await _handler(interaction).remix_pressed(interaction, self.job_id)


class VaryButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"imagine:vary-(?P<strength>subtle|strong):(?P<job>[0-9a-f]{1,32})",
):
    """``Vary (Subtle)``/``Vary (Strong)``: a variation of a single-image result's image with a low or a high
    strength (``IMAGINE_VARY_SUBTLE``/``IMAGINE_VARY_STRONG``), as a new job replying to this message."""

    def __init__(self, strength: VaryStrength, job_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label=strength.label,
                emoji="🪄",
                style=discord.ButtonStyle.secondary,
                custom_id=f"imagine:vary-{strength}:{job_id}",
                row=_VARY_STRENGTH_ROW,
            )
        )
        self.strength, self.job_id = strength, job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> VaryButton:
        return cls(VaryStrength(match["strength"]), match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        async with answering(interaction):
            await _handler(interaction).vary_pressed(interaction, self.job_id, Variation(1, self.strength))


#: Every button class, for ``add_dynamic_items`` / ``remove_dynamic_items``.
PERSISTENT_BUTTONS = (JobButton, DeleteButton, ImageButton, RemixButton, VaryButton)


def job_components(view: JobView, *, upscale: bool = False, locale: str | None = None) -> discord.ui.View:
    """The buttons under a job's message: Cancel while it runs; after, Re-roll, Remix and Delete, then U1…Un,
    V1…Vn and, on a single image, Vary (Subtle) and Vary (Strong), a row each.

    ``locale``: the server's, the language of the labels.
    ``upscale``: an upscale model is set (``IMAGINE_UPSCALE_MODEL``). V and Vary need a generation whose model's
    schema takes an image. An upscale's result stands for the generation it came from (its origin): it gets
    Remix and Vary on that generation's model and options, and no Re-roll, U or V (it is no generation itself).
    """
    components = discord.ui.View(timeout=None)
    request = view.request
    if not view.terminal:
        components.add_item(JobButton("cancel", view.job_id, locale))
        return components
    succeeded = view.state is JobState.SUCCEEDED
    upscaled = request.kind is JobKind.UPSCALE
    generation = request.generation
    if not upscaled:
        components.add_item(JobButton("reroll", view.job_id))
    if generation is not None and (succeeded or not upscaled):
        # Also after a failure: editing the prompt is how a member answers the API's refusal of it.
        components.add_item(RemixButton(view.job_id))
    if request.requester_id is not None:
        components.add_item(DeleteButton(view.job_id, request.requester_id, locale))
    if not succeeded or generation is None:
        return components
    if not upscaled:
        numbers = range(1, min(len(view.images), _BUTTONS_PER_ROW) + 1)
        for kind, shown in ((JobKind.UPSCALE, upscale), (JobKind.VARY, generation.image_input is not None)):
            if shown:
                for number in numbers:
                    components.add_item(ImageButton(kind, view.job_id, number))
    if len(view.images) == 1 and generation.image_input is not None:
        for strength in VaryStrength:
            components.add_item(VaryButton(strength, view.job_id))
    return components
