"""``/describe image:``: the checks and the charge, the run of the describe model, and the answer.

The request is admitted as ``/imagine``'s are (channel rules; the describe model is the owner's choice, as the
upscaler is, so it needs no place on the server's list; nothing typed to check for blocked words), then
charged one image against the member's daily images and its estimated cost against the budgets, but neither
held to nor moving the member's cooldown (pressing a suggestion's button right after is an ``/imagine`` like
any). Its end settles the charge (:meth:`DescribeCommand._settle`). One ``/describe`` at a time per member,
and as many at once per process as jobs (``IMAGINE_MAX_RUNNING``; past that refused at once): the check and
the charge happen under the member's lock, as a job's set-up does. The run itself
(:class:`~bot.jobs.describing.Describer`) takes seconds, so the answer is deferred ("thinking…") first.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import discord

from bot.api.modelref import ModelRef
from bot.base.errors import ImagineError
from bot.discord_app.answers import AnswerDeadline, answer_with_message, refusal, refuse, server_locale
from bot.discord_app.attachments import check_image_attachment
from bot.discord_app.describe_answer import describe_answer
from bot.discord_app.members import member_role_ids
from bot.i18n import tr
from bot.jobs.describing import DESCRIBE_TIMEOUT, Describer, DescribeRunFailed, RunUse
from bot.moderation.policy import Admission, RequestContext
from bot.storage import StorageError

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

log = logging.getLogger(__name__)

NOT_ENABLED = tr("/describe isn't enabled on this bot: its owner hasn't set a describe model (IMAGINE_DESCRIBE_MODEL).")
_LOCK_WAIT = 0.5  # seconds a request waits for the member's previous one's set-up (Discord waits 3 s in all)
BUSY = tr("Lots of images are being described right now; try again in a moment.")
_DATABASE_DOWN = tr("❌ The bot's database isn't answering, so /describe didn't run. Try again in a moment.")


@dataclass(frozen=True)
class _Charged:
    """A ``/describe`` admitted and charged: what its run needs, and what to give back."""

    admission: Admission
    day: date
    inputs: dict[str, Any]
    account: str | None
    """The server's own API account (``None``: the deployment's)."""


class DescribeCommand:
    """Runs members' ``/describe`` over the bot's core services."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        core = bot.core
        self.describer = Describer(
            core.accounts,
            input_schema=core.engine.input_schema,
            clock=core.clock,
            poll=core.tuning.poll.blind,
            prefer_wait=core.tuning.prefer_wait,
        )
        self._running: set[tuple[int, int]] = set()
        # As many describes at once as jobs (IMAGINE_MAX_RUNNING): each polls its prediction, and a crowd of
        # them must not take the HTTP session's connections and the API's request budget from the jobs.
        self._slots = asyncio.Semaphore(bot.settings.max_running)

    async def warm(self) -> None:
        """Read the describe model's schema now, so the first /describe knows its inputs (a slow read sends only the
        image, which a vision-language model refuses)."""
        model = self.bot.settings.describe_model
        if model is not None:
            try:
                await self.bot.core.client.input_schema(model)
            except ImagineError as exc:
                log.warning("could not read the input schema of the describe model %s: %s", model, exc)

    @property
    def timeout(self) -> float:
        """Seconds a run may take: :data:`DESCRIBE_TIMEOUT`, or ``IMAGINE_JOB_TIMEOUT`` where shorter."""
        return min(DESCRIBE_TIMEOUT, self.bot.settings.job_timeout)

    async def describe(self, interaction: discord.Interaction, image: discord.Attachment) -> None:
        """The whole command: refused privately, or answered in the channel with the suggestions."""
        model = self.bot.settings.describe_model
        guild_id, member_id = interaction.guild_id, interaction.user.id
        if model is None or guild_id is None:
            await refuse(interaction, NOT_ENABLED if model is None else tr("/describe works in servers only."))
            return
        key = (guild_id, member_id)
        if key in self._running:
            await refuse(interaction, tr("Your previous /describe is still running; wait for its answer."))
            return
        if self._slots.locked():  # refused at once: waiting would only hold the interaction past its deadline
            await refuse(interaction, BUSY)
            return
        self._running.add(key)
        try:
            async with self._slots:  # free (looked at just above, with no await since): taken at once
                async with AnswerDeadline(interaction):
                    charged = await self._check_and_charge(interaction, guild_id, model, image)
                if charged is not None:
                    # The model takes seconds: show "thinking…" now rather than at the deadline.
                    async with AnswerDeadline(interaction, defer_at=0):
                        await self._run_and_answer(interaction, model, charged, image.url)
        finally:
            self._running.discard(key)

    async def _check_and_charge(
        self, interaction: discord.Interaction, guild_id: int, model: ModelRef, image: discord.Attachment
    ) -> _Charged | None:
        """The attachment, then under the member's lock the policy, the model's inputs and the charge; ``None``
        once refused."""
        core = self.bot.core
        try:
            # Telling an image without a declared type means downloading it: done before taking the member's
            # lock, for which their /imagine waits only a moment.
            await check_image_attachment(core.downloader, image, image.filename, tr("your attachment"))
            lock = core.policy.member_lock(guild_id, interaction.user.id)
            try:
                await asyncio.wait_for(lock.acquire(), _LOCK_WAIT)
            except TimeoutError:
                await refuse(interaction, tr("Your previous request is still being set up; try again in a moment."))
                return None
            try:
                return await self._admit_and_charge(interaction, guild_id, model, image.url)
            finally:
                lock.release()
        except ImagineError as exc:
            await refuse(interaction, refusal(exc))
        except StorageError as exc:
            log.warning("the database failed while checking a /describe; refused: %s", exc)
            await refuse(interaction, _DATABASE_DOWN)
        return None

    async def _admit_and_charge(
        self, interaction: discord.Interaction, guild_id: int, model: ModelRef, image_url: str
    ) -> _Charged:
        core = self.bot.core
        asked = RequestContext(
            guild_id=guild_id,
            member_id=interaction.user.id,
            channel_id=interaction.channel_id,
            prompt="",
            parent_channel_id=getattr(interaction.channel, "parent_id", None),
            owner_model=model,
            role_ids=member_role_ids(interaction),
            command="/describe",
        )
        admission = await core.policy.admit(asked)
        # The server's own API account, if it has one (a refused key refuses the describe: never another key).
        account = await core.accounts.account_of_guild(guild_id)
        await core.accounts.client(account, guild_id)  # refused now, before the charge, if it cannot be used
        inputs = await self.describer.inputs(model, image_url)  # before the charge: a wrong model costs nothing
        # One image against the daily images (they bound it where no price is set) and its estimate against the
        # budgets; not the cooldown, so the member may /imagine a suggestion right away.
        admission = admission.priced(1, await core.pricing.estimate(model, 1))
        day = await core.policy.charge(admission, moves_cooldown=False)
        return _Charged(admission, day, inputs, account)

    async def _run_and_answer(
        self, interaction: discord.Interaction, model: ModelRef, charged: _Charged, image_url: str
    ) -> None:
        core = self.bot.core
        try:
            description = await self.describer.describe(
                model,
                charged.inputs,
                timeout=self.timeout,
                account=charged.account,
                guild_id=charged.admission.guild_id,
            )
        except DescribeRunFailed as exc:
            await self._settle(model, charged, exc.use)
            await refuse(interaction, refusal(exc))
            return
        await self._settle(model, charged, description.use)  # it ran: the blocked words change nothing of that
        try:
            # Read after the run, so a word blocked meanwhile keeps its suggestions out too.
            config = await core.repository.guild_config(charged.admission.guild_id)
            if config.blocked_words:
                description = description.without(core.policy.word_filter(config.blocked_words))
        except (ImagineError, StorageError) as exc:
            await refuse(interaction, refusal(exc) if isinstance(exc, ImagineError) else _DATABASE_DOWN)
            return
        # Answered in the channel: the whole channel reads it, in the server's language.
        answer = describe_answer(
            description.suggestions, blocked=description.blocked, image_url=image_url, locale=server_locale(interaction)
        )
        await answer_with_message(interaction, **answer)

    async def _settle(self, model: ModelRef, charged: _Charged, use: RunUse) -> None:
        """Book the run's real cost in place of its estimate, up or down; give the daily image back only when the
        model never ran (the create refused, or the prediction ended before it started).

        A run priced per image costs one image if it answered, none otherwise; per second, its ``predict_time``
        (the API bills failed and canceled runs too). A run whose end the bot lost sight of keeps its estimate.
        """
        admission = charged.admission
        repository = self.bot.core.repository
        try:
            if not use.ran:
                await repository.refund(
                    admission.guild_id, admission.member_id, admission.images, day=charged.day, cost=admission.cost
                )
            elif use.ended:
                spent = self.bot.core.pricing.actual(model, images=int(use.succeeded), predict_time=use.predict_time)
                await repository.move_spend(
                    admission.guild_id, admission.member_id, spent - admission.cost, day=charged.day
                )
        except StorageError as exc:
            log.warning("could not settle the cost of a /describe: %s", exc)
