"""A job's create step: its prediction created (journaled around it), or found again where the answer was lost.

A create is never sent twice blindly: where its outcome is unknown, the prediction is looked up
(:mod:`bot.jobs.recovery`) and only sent again once that proved no prediction was made.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from typing import Any

from bot.api.accounts import Accounts
from bot.api.errors import ApiError, CreateOutcomeUnknown, RequestWithdrawn
from bot.api.predictions import Prediction
from bot.base.clock import Clock
from bot.i18n import Text, tr
from bot.jobs.end_estimate import ClockAnchor
from bot.jobs.model import JobJournal, JobState, JobTakenOver, JobTimings, LiveJob
from bot.jobs.recovery import Lookup, PredictionFinder

log = logging.getLogger(__name__)

CREATE_ATTEMPTS = 3
"""Creates sent for one job at most, each after a lookup proved the one before made no prediction."""


class JobEnded(Exception):
    """The create step ended the job: ``state`` and ``changes`` say how."""

    def __init__(self, state: JobState, **changes: Any) -> None:
        super().__init__(state)
        self.state = state
        self.changes = changes


@dataclass(eq=False)
class PredictionCreator:
    """Creates the predictions of an engine's jobs; shared by all of them."""

    accounts: Accounts
    """The client of each job's API account."""
    _: KW_ONLY
    clock: Clock
    journal: JobJournal | None
    finder: PredictionFinder
    timings: JobTimings
    claimed: set[str] = field(default_factory=set, init=False)
    """Predictions this process's jobs have, journaled or about to be: a lookup never takes one of them."""
    _journaling: dict[str, asyncio.Future[None]] = field(default_factory=dict, init=False)
    """Each job's created write, while it is still going."""

    async def journaled(self, job: LiveJob) -> None:
        """Wait for the job's created write, if one is still going (it raises a takeover, if there was one)."""
        written = self._journaling.pop(job.id, None)
        if written is not None:
            await written

    async def create(self, job: LiveJob, *, webhook: str | None) -> tuple[Prediction, ClockAnchor | None]:
        """Create the job's prediction, journaling around it, and find it again if the answer is lost.

        With it, the moment the create went out (the prediction's ``created_at`` on the API's clock).
        """
        request = job.request
        sent_at = 0.0

        def proceed() -> bool:
            nonlocal sent_at
            sent_at = self.clock.monotonic()
            return not job.cancel_event.is_set()

        if job.cancel_event.is_set():  # canceled while waiting for the budget: nothing to pay for
            raise JobEnded(JobState.CANCELED)
        job.creating = True
        try:
            for attempt in range(1, CREATE_ATTEMPTS + 1):
                started = await self._mark_creating(job)
                try:
                    client = await self.accounts.client(request.account, request.guild_id)
                    prediction = await client.create(
                        request.model,
                        request.inputs,
                        # Pushed by webhook, its progress is known at once: no need to hold the create.
                        wait=0 if webhook else self.timings.prefer_wait,
                        cancel_after=self.timings.job_timeout,
                        proceed=proceed,
                        webhook=webhook,
                    )
                except RequestWithdrawn:
                    raise JobEnded(JobState.CANCELED) from None
                except CreateOutcomeUnknown as exc:
                    lookup = await self._look_up(job, started)
                    if lookup.prediction is not None:
                        return lookup.prediction, None
                    if lookup.absent and attempt < CREATE_ATTEMPTS and not job.cancel_event.is_set():
                        log.warning("job %s: %s; no prediction was made, so it is sent again", job.id, exc.message)
                        continue
                    raise JobEnded(JobState.FAILED, error=_lost_create_message(exc.text, lookup)) from None
                except ApiError as exc:
                    error = self.accounts.failure(request.account, request.guild_id, exc)
                    raise JobEnded(JobState.FAILED, error=error) from None
                self.claimed.add(prediction.id)
                if self.journal is not None:
                    written = asyncio.ensure_future(self.journal.created(job.id, prediction.id))
                    if prediction.terminal:
                        # Ended in its create: the write goes on while the image downloads, and is waited
                        # for before the image is shown (a restart then always knows the prediction).
                        self._journaling[job.id] = written
                    else:
                        await written
                log.info("job %s: prediction %s created (%s)", job.id, prediction.id, prediction.status)
                created = prediction.created_at
                return prediction, None if created is None else ClockAnchor(created, sent_at)
            raise AssertionError("unreachable: the last attempt returns or raises")
        finally:
            job.creating = False
            job.created.set()

    async def _mark_creating(self, job: LiveJob) -> datetime:
        """Journal that a create is about to go out; without the mark a restart could create a second one."""
        started = self.clock.now()
        if self.journal is not None:
            try:
                await self.journal.creating(job.id, target=job.unjournaled_target)
                job.unjournaled_target = None
            except JobTakenOver:
                raise
            except Exception:
                log.exception("job %s: could not journal the create; not creating", job.id)
                error = tr("The bot could not record this job, so it did not start it.")
                # Its end may not be written either: still unfinished, a restart would run it.
                self.journal.give_up(job.id, str(error))
                raise JobEnded(JobState.FAILED, error=error) from None
        return started

    async def recover(self, job: LiveJob, *, webhook: str | None) -> tuple[Prediction, ClockAnchor | None]:
        """A job whose create may have gone out before a restart: find its prediction, or create it if none."""
        assert job.create_started_at is not None
        lookup = await self._look_up(job, job.create_started_at)
        if lookup.prediction is not None:
            return lookup.prediction, None
        if lookup.absent:
            log.info("job %s: its create before the restart made no prediction; creating it now", job.id)
            return await self.create(job, webhook=webhook)
        raise JobEnded(
            JobState.FAILED,
            error=tr(
                "The bot restarted just as this job was being started, and {reason}. It was not started again, so "
                "nothing is paid twice, and it did not count against your daily images. Please run /imagine again.",
                reason=lookup.reason or tr("the prediction could not be looked up"),
            ),
        )

    async def _look_up(self, job: LiveJob, since: datetime) -> Lookup:
        async def claim(prediction: Prediction) -> bool:
            if prediction.id in self.claimed:
                return False
            if self.journal is not None and not await self.journal.claim(job.id, prediction.id):
                return False
            self.claimed.add(prediction.id)
            return True

        try:
            client = await self.accounts.client(job.request.account, job.request.guild_id)
        except ApiError as exc:
            return Lookup(reason=exc.text)
        return await self.finder.find(job.request.model, job.request.inputs, since=since, claim=claim, client=client)


def _lost_create_message(what: Text | str, lookup: Lookup) -> Text:
    if lookup.absent:
        return tr(
            "{what}, and again on every try; the bot checked each time that no prediction was made, "
            "so nothing was paid. Please try again in a moment.",
            what=what,
        )
    return tr(
        "{what}, so it is unknown whether it started, and {reason}. It was not sent again, so nothing is paid twice.",
        what=what,
        reason=lookup.reason or tr("it could not be looked up"),
    )
