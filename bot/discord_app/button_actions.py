"""What the job buttons do when pressed: Cancel, Re-roll, and ``U<n>``/``V<n>`` (Delete acts on its own).

:class:`ButtonActions` is the bot's :class:`~bot.discord_app.buttons.ButtonHandler`; every new job a
press asks for goes through the :class:`~bot.discord_app.starter.JobStarter` under the same rules as
``/imagine``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import discord

from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.base.errors import ImagineError, Refusal
from bot.discord_app.answers import refuse
from bot.discord_app.attachments import check_image_attachment
from bot.discord_app.members import may_moderate
from bot.discord_app.starter import JobOrder, JobStarter
from bot.jobs.model import JobKind, JobRequest

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

log = logging.getLogger(__name__)

_REROLL_SEED_RANGE = 2**32  # seeds every model accepts
_FORGOTTEN = "This image's settings are no longer known to the bot; run /imagine again."


class ButtonActions:
    """The presses of a job's buttons, over the bot's core services and the job starter."""

    def __init__(self, bot: ImagineBot, starter: JobStarter) -> None:
        self.bot = bot
        self.starter = starter

    async def _request_of(self, job_id: str) -> JobRequest | None:
        """A job's request: from memory while it is live, else from the journal (after a restart)."""
        core = self.bot.core
        job = core.engine.job(job_id)
        return job.view.request if job is not None else await core.journal.request_of(job_id)

    async def cancel_pressed(self, interaction: discord.Interaction, job_id: str) -> None:
        """The Cancel button."""
        job = self.bot.core.engine.job(job_id)
        if job is None or job.view.terminal:
            await refuse(interaction, "This job has already ended.")
            return
        if interaction.user.id != job.view.request.requester_id and not may_moderate(interaction):
            await refuse(interaction, "Only the member who asked for this image, or a moderator, can cancel it.")
            return
        await interaction.response.defer()
        await job.cancel(by=interaction.user.id)

    async def reroll_pressed(self, interaction: discord.Interaction, job_id: str) -> None:
        """The Re-roll button: same prompt and options, a new seed, a new job under the same rules."""
        request = await self._request_of(job_id)
        if request is None:
            await refuse(interaction, _FORGOTTEN)
            return
        options = replace(request.options, seed=secrets.randbelow(_REROLL_SEED_RANGE))
        await self.starter.start_order(interaction, JobOrder(str(request.model), options, request.kind))

    async def image_pressed(self, interaction: discord.Interaction, job_id: str, number: int, kind: JobKind) -> None:
        """``U<n>``/``V<n>``: a new job on image ``number`` of the clicked message, replying to it.

        The image is read from the clicked message as Discord sends it with the click (its
        attachment URLs are fresh then, wherever the bot runs and whatever it remembers).
        """
        upscale = self.bot.settings.upscale_model
        if kind is JobKind.UPSCALE and upscale is None:
            await refuse(interaction, "Upscaling is not set up on this bot.")
            return
        # Acknowledged at once (the message stays as it is): the new job's message is a reply, posted below.
        await interaction.response.defer()
        request = await self._request_of(job_id)
        if request is None:
            await refuse(interaction, _FORGOTTEN)
            return
        message = interaction.message
        attachments = message.attachments if message is not None else []
        if message is None or not 1 <= number <= len(attachments):
            await refuse(interaction, f"Image {number} is no longer on this message.")
            return
        image = attachments[number - 1]
        try:
            await check_image_attachment(self.bot.core.downloader, image, f"Image {number}", f"image {number}")
        except ImagineError as exc:
            await refuse(interaction, f"❌ {exc}")
            return
        if kind is JobKind.VARY:
            # The original's model, prompt and options, one image, a new seed.
            options = replace(request.options, count=1, seed=secrets.randbelow(_REROLL_SEED_RANGE), image=image.url)
            order = JobOrder(str(request.model), options, kind, reply_to=message.id)
        else:
            assert upscale is not None
            options = ImagineOptions(prompt=request.prompt, image=image.url)
            order = JobOrder(
                None, options, kind, owner_model=upscale, reply_to=message.id, check=self._upscaler_check(upscale)
            )
        await self.starter.start_order(interaction, order)

    def _upscaler_check(self, upscale: ModelRef) -> Callable[[], Awaitable[None]]:
        """Refuses an upscale when ``upscale``'s schema has no image input (none served: let it try).

        Run by the starter once the queue caps let the job through: it reads the model's schema.
        """

        async def check() -> None:
            schema = await self.bot.core.engine.input_schema(upscale)
            if schema is not None and schema.image_input is None:
                log.error("IMAGINE_UPSCALE_MODEL %s takes no image input; the U buttons cannot work", upscale)
                raise Refusal(f"The upscale model `{upscale}` takes no image, so it can't upscale.")

        return check
