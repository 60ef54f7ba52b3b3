"""What the job buttons do when pressed: Cancel, Re-roll, Remix, ``U<n>``/``V<n>`` and Vary (Delete acts on
its own), and what a submitted Remix form does.

:class:`ButtonActions` is the bot's :class:`~bot.discord_app.buttons.ButtonHandler` and the Remix form's
:class:`~bot.discord_app.remix.RemixFormHandler`; every new job a press or a form asks for goes through the
:class:`~bot.discord_app.starter.JobStarter` under the same rules as ``/imagine``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import discord

from bot.api.flags import prompt_with_flags, remix_options
from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.base.errors import ImagineError, Refusal
from bot.discord_app.answers import refusal, refuse
from bot.discord_app.attachments import check_image_attachment
from bot.discord_app.members import may_moderate
from bot.discord_app.remix import open_remix_form
from bot.discord_app.source_images import fresh_image
from bot.discord_app.starter import JobOrder, JobStarter
from bot.discord_app.variations import Variation
from bot.i18n import tr
from bot.jobs.model import Generation, JobKind, JobRequest
from bot.storage import StorageError

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

log = logging.getLogger(__name__)

_REROLL_SEED_RANGE = 2**32  # seeds every model accepts
# Discord wants a press answered within 3 s, and a form (Remix) cannot follow a defer: a press waits this long
# for the job's request from the journal, and as long again for the member's Remix setting (V and Vary).
_JOURNAL_WAIT = 1.0
_PREFERENCES_WAIT = 1.0
_FORGOTTEN = tr("The bot no longer knows this image's settings; run /imagine again.")
_NO_ORIGIN = tr(
    "This upscale was made before the bot remembered the image it came from; "
    "use the buttons under the original image instead."
)
_NO_MESSAGE = tr("The message with this image is gone, so nothing was started.")
_NO_PREFERENCES = tr("Your Remix setting couldn't be read just now, so nothing was started; press the button again.")
_SLOW_JOURNAL = tr(
    "The bot's database is slow to answer just now, so this image's settings couldn't be read and nothing was "
    "started; press the button again in a moment."
)


def _new_seed() -> int:
    return secrets.randbelow(_REROLL_SEED_RANGE)


class ButtonActions:
    """The presses of a job's buttons and the submits of Remix forms, over the bot's core and the job starter."""

    def __init__(self, bot: ImagineBot, starter: JobStarter) -> None:
        self.bot = bot
        self.starter = starter

    async def _request_of(self, interaction: discord.Interaction, job_id: str) -> JobRequest | None:
        """A job's request: from memory while it is live, else from the journal (after a restart), waiting at
        most :data:`_JOURNAL_WAIT`; refused, ``None``, when not known or not read in time."""
        core = self.bot.core
        job = core.engine.job(job_id)
        if job is not None:
            return job.view.request
        try:
            request = await asyncio.wait_for(core.journal.request_of(job_id), _JOURNAL_WAIT)
        except (StorageError, TimeoutError) as exc:
            log.warning("could not read job %s's request from the journal: %r", job_id, exc)
            await refuse(interaction, _SLOW_JOURNAL)
            return None
        if request is None:
            await refuse(interaction, _FORGOTTEN)
        return request

    async def _generation_of(self, interaction: discord.Interaction, job_id: str) -> Generation | None:
        """The generation a job's images stand for (an upscale's origin); refused, ``None``, when not known."""
        request = await self._request_of(interaction, job_id)
        if request is None:
            return None
        if request.generation is None:
            await refuse(interaction, _NO_ORIGIN)
        return request.generation

    async def cancel_pressed(self, interaction: discord.Interaction, job_id: str) -> None:
        """The Cancel button."""
        job = self.bot.core.engine.job(job_id)
        if job is None or job.view.terminal:
            await refuse(interaction, tr("This job has already ended."))
            return
        if interaction.user.id != job.view.request.requester_id and not may_moderate(interaction):
            await refuse(interaction, tr("Only the member who asked for this image, or a moderator, can cancel it."))
            return
        await interaction.response.defer()
        await job.cancel(by=interaction.user.id)

    async def reroll_pressed(self, interaction: discord.Interaction, job_id: str) -> None:
        """The Re-roll button: same prompt and options, a new seed, a new job under the same rules."""
        request = await self._request_of(interaction, job_id)
        if request is None:
            return
        options = await self._with_fresh_image(interaction, replace(request.options, seed=_new_seed()))
        if options is not None:
            await self.starter.start_order(interaction, JobOrder(str(request.model), options, request.kind))

    async def remix_pressed(self, interaction: discord.Interaction, job_id: str) -> None:
        """The Remix button: the form with the prompt and its flags; its submit is :meth:`remix_submitted`."""
        generation = await self._generation_of(interaction, job_id)
        if generation is not None:
            await open_remix_form(interaction, job_id, None, prompt_with_flags(generation.options))

    async def vary_pressed(self, interaction: discord.Interaction, job_id: str, variation: Variation) -> None:
        """``V<n>``, ``Vary (Subtle)``, ``Vary (Strong)``: a variation as a new job replying to the message; with the
        member's Remix setting on, the Remix form first."""
        generation = await self._generation_of(interaction, job_id)
        if generation is None:
            return
        try:
            preferences = self.bot.core.repository.preferences(interaction.user.id)
            remix = (await asyncio.wait_for(preferences, _PREFERENCES_WAIT)).remix
        except (StorageError, TimeoutError) as exc:
            log.warning("could not read member %s's preferences: %s", interaction.user.id, exc)
            await refuse(interaction, _NO_PREFERENCES)
            return
        if remix:
            await open_remix_form(interaction, job_id, variation, prompt_with_flags(generation.options))
            return
        # Acknowledged at once (the message stays as it is): the new job's message is a reply, posted below.
        await interaction.response.defer()
        await self._vary(interaction, generation, variation, replace(generation.options, seed=_new_seed()))

    async def remix_submitted(
        self, interaction: discord.Interaction, job_id: str, variation: Variation | None, text: str
    ) -> None:
        """A Remix form's submit: the edited prompt with the original's model and options (a new seed unless the
        text names one), or, for a form a variation opened, that variation with the edited prompt."""
        await interaction.response.defer()
        generation = await self._generation_of(interaction, job_id)
        if generation is None:
            return
        options = remix_options(generation.options, text, _new_seed())
        if variation is not None:
            await self._vary(interaction, generation, variation, options)
            return
        fresh = await self._with_fresh_image(interaction, options)
        if fresh is None:
            return
        if interaction.message is None:
            await refuse(interaction, _NO_MESSAGE)
            return
        order = JobOrder(str(generation.model), fresh, generation.kind, reply_to=interaction.message.id)
        await self.starter.start_order(interaction, order)

    async def _with_fresh_image(
        self, interaction: discord.Interaction, options: ImagineOptions
    ) -> ImagineOptions | None:
        """``options`` with their image (a variation's) taken anew from the message it came from: the URL the job
        was given has expired by now, or died with its message; refused, ``None``, when it cannot be had."""
        if options.image is None:
            return options
        try:
            image = await fresh_image(self.bot, interaction.message, options.image)
        except Refusal as exc:
            await refuse(interaction, exc.text)
            return None
        return replace(options, image=image)

    async def _vary(
        self, interaction: discord.Interaction, generation: Generation, variation: Variation, options: ImagineOptions
    ) -> None:
        """A variation job: ``generation``'s model with ``options`` (seeded), one image, the pressed image as its
        image input and the strength of the variation pressed: Vary's, or none (the model's own) for ``V<n>``,
        never the strength ``generation`` itself was varied with."""
        image = await self._image_of(interaction, variation.number)
        if image is None:
            return
        strength = variation.strength.value_in(self.bot.settings) if variation.strength else None
        options = replace(options, count=1, image=image.url, strength=strength)
        assert interaction.message is not None  # _image_of found the image on it
        order = JobOrder(str(generation.model), options, JobKind.VARY, reply_to=interaction.message.id)
        await self.starter.start_order(interaction, order)

    async def image_pressed(self, interaction: discord.Interaction, job_id: str, number: int, kind: JobKind) -> None:
        """``U<n>``/``V<n>``: a new job on image ``number`` of the clicked message, replying to it."""
        if kind is JobKind.VARY:
            await self.vary_pressed(interaction, job_id, Variation(number))
            return
        upscale = self.bot.settings.upscale_model
        if upscale is None:
            await refuse(interaction, tr("Upscaling isn't set up on this bot."))
            return
        await interaction.response.defer()
        request = await self._request_of(interaction, job_id)
        if request is None:
            return
        image = await self._image_of(interaction, number)
        if image is None:
            return
        assert interaction.message is not None  # _image_of found the image on it
        order = JobOrder(
            None,
            ImagineOptions(prompt=request.prompt, image=image.url),
            kind,
            owner_model=upscale,
            reply_to=interaction.message.id,
            check=self._upscaler_check(upscale),
            origin=request.generation,  # what Remix and Vary on the upscaled image run
        )
        await self.starter.start_order(interaction, order)

    async def _image_of(self, interaction: discord.Interaction, number: int) -> discord.Attachment | None:
        """Image ``number`` of the clicked message, checked as a model's image input; refused, ``None``, if not.

        Read from the message as Discord sends it with the click (its attachment URLs are fresh then,
        wherever the bot runs and whatever it remembers).
        """
        message = interaction.message
        attachments = message.attachments if message is not None else []
        if not 1 <= number <= len(attachments):
            await refuse(interaction, tr("Image {number} is no longer on this message.", number=number))
            return None
        image = attachments[number - 1]
        try:
            await check_image_attachment(
                self.bot.core.downloader,
                image,
                tr("Image {number}", number=number),
                tr("image {number}", number=number),
            )
        except ImagineError as exc:
            await refuse(interaction, refusal(exc))
            return None
        return image

    def _upscaler_check(self, upscale: ModelRef) -> Callable[[], Awaitable[None]]:
        """Refuses an upscale when ``upscale``'s schema has no image input (none served: let it try).

        Run by the starter once the queue caps let the job through: it reads the model's schema.
        """

        async def check() -> None:
            schema = await self.bot.core.engine.input_schema(upscale)
            if schema is not None and schema.image_input is None:
                log.error("IMAGINE_UPSCALE_MODEL %s takes no image input; the U buttons cannot work", upscale)
                raise Refusal(
                    tr("The upscale model `{model}` takes no image, so it can't upscale.", model=str(upscale))
                )

        return check
