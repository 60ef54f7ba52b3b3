"""One job's way through the API: create (or find a lost create), poll to the end, download.

The engine (:mod:`bot.jobs.engine`) decides *when* a job runs; this module runs it.
It reports through the :class:`JobHost` (show a view, finish the job) and
writes each step to the journal, so a restart or another process can carry on.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from bot.api.client import ReplicateClient
from bot.api.errors import ApiError, CreateOutcomeUnknown, RequestWithdrawn
from bot.api.predictions import Prediction, Progress
from bot.base.clock import Clock
from bot.base.errors import ImagineError
from bot.jobs.end_estimate import ClockAnchor, EndEstimate, RunTimes
from bot.jobs.model import JobJournal, JobState, JobTakenOver, JobView, LiveJob
from bot.jobs.poll_planner import PollPlanner, PollPolicy
from bot.jobs.progress import ProgressEstimate, shown_percent
from bot.jobs.recovery import Lookup, PredictionFinder
from bot.jobs.webhooks import PredictionEvents, stage
from bot.media.delivery import Downloader

log = logging.getLogger(__name__)

CREATE_ATTEMPTS = 3
"""Creates sent for one job at most, each after a lookup proved the one before made no prediction."""
MAX_IMAGES_PER_JOB = 10
"""Images one job shows at most: a Discord message carries at most 10 attachments."""


class JobHost(Protocol):
    """What the executor needs of the engine."""

    def show(self, job: LiveJob, view: JobView) -> None:
        """Hand a non-terminal view to the job's presenter without waiting."""
        ...

    async def finish(self, job: LiveJob, state: JobState, **changes: Any) -> None:
        """End the job with ``state`` and show its final view."""
        ...


class _Ended(Exception):
    """The create step ended the job: ``state`` and ``changes`` say how."""

    def __init__(self, state: JobState, **changes: Any) -> None:
        super().__init__(state)
        self.state = state
        self.changes = changes


class JobExecutor:
    """Runs one job at a time per call of :meth:`run`; shared by all jobs of an engine."""

    def __init__(
        self,
        host: JobHost,
        client: ReplicateClient,
        downloader: Downloader,
        *,
        clock: Clock,
        journal: JobJournal | None,
        finder: PredictionFinder,
        poll: PollPolicy,
        job_timeout: float,
        prefer_wait: int,
        progress_tick: float,
        create_attempts: int = CREATE_ATTEMPTS,
    ) -> None:
        self._host = host
        self._client = client
        self._downloader = downloader
        self._clock = clock
        self._journal = journal
        self._finder = finder
        self._planner = PollPlanner(client.budget.other, poll)
        self._run_times = RunTimes()
        self._timeout = job_timeout
        self._prefer_wait = prefer_wait
        self._progress_tick = progress_tick
        self._create_attempts = create_attempts
        self.webhook_url: str | None = None
        """Set (with :attr:`events`): predictions are created with this webhook; polling is a safety net."""
        self.events: PredictionEvents | None = None
        self._claimed: set[str] = set()  # predictions this process's jobs have, journaled or about to be
        self._journaling: dict[str, asyncio.Future[None]] = {}  # a job's created write, still going

    async def run(self, job: LiveJob, prediction_id: str | None) -> None:
        """Run ``job`` to its end: from its create, or from a prediction it already has (after a restart)."""
        anchor: ClockAnchor | None = None
        if prediction_id is None:
            resumed = job.create_started_at is not None
            deadline = (job.submitted_at if resumed else self._clock.monotonic()) + self._timeout
            self._host.show(job, replace(job.view, state=JobState.STARTING, queue_position=None))
            try:
                prediction, anchor = await (self._recover(job) if resumed else self._create(job))
            except _Ended as ended:
                await self._host.finish(job, ended.state, **ended.changes)
                return
        else:  # resumed: the prediction has been running since before the restart
            deadline = job.submitted_at + self._timeout
            prediction = Prediction(id=prediction_id, status="starting")
        self._claimed.add(prediction.id)
        pushed = self.events.watch(prediction.id) if self.events is not None else None
        try:
            await self._poll_to_end(
                job,
                self._newest(prediction),
                deadline,
                anchor=anchor or self._wall_anchor(),
                fetch_now=prediction_id is not None,
                pushed=pushed,
            )
        finally:
            self._planner.leave(job.id)
            await self._journaled(job)
            self._claimed.discard(prediction.id)
            if self.events is not None:
                self.events.forget(prediction.id)

    async def _journaled(self, job: LiveJob) -> None:
        """Wait for the job's created write, if one is still going (it raises a takeover, if there was one)."""
        written = self._journaling.pop(job.id, None)
        if written is not None:
            await written

    def _wall_anchor(self) -> ClockAnchor:
        """Maps the API's timestamps by the wall clock (a prediction this process did not create)."""
        return ClockAnchor(self._clock.now(), self._clock.monotonic())

    def _newest(self, prediction: Prediction) -> Prediction:
        """``prediction``, or what a webhook said of it since, if that is further on."""
        pushed = self.events.latest(prediction.id) if self.events is not None else None
        if pushed is not None and stage(pushed) >= stage(prediction):
            return pushed
        return prediction

    # ----------------------------------------------------------------- create

    async def _create(self, job: LiveJob) -> tuple[Prediction, ClockAnchor | None]:
        """Create the job's prediction, journaling around it, and find it again if the answer is lost.

        With it, the moment the create went out (the prediction's ``created_at`` on the API's clock).
        """
        request = job.request
        sent_at = 0.0

        def proceed() -> bool:
            nonlocal sent_at
            sent_at = self._clock.monotonic()
            return not job.cancel_event.is_set()

        if job.cancel_event.is_set():  # canceled while waiting for the budget: nothing to pay for
            raise _Ended(JobState.CANCELED)
        job.creating = True
        try:
            for attempt in range(1, self._create_attempts + 1):
                started = await self._mark_creating(job)
                try:
                    prediction = await self._client.create(
                        request.model,
                        request.inputs,
                        # Pushed by webhook, its progress is known at once: no need to hold the create.
                        wait=0 if self.webhook_url else self._prefer_wait,
                        cancel_after=self._timeout,
                        proceed=proceed,
                        webhook=self.webhook_url,
                    )
                except RequestWithdrawn:
                    raise _Ended(JobState.CANCELED) from None
                except CreateOutcomeUnknown as exc:
                    lookup = await self._look_up(job, started)
                    if lookup.prediction is not None:
                        return lookup.prediction, None
                    if lookup.absent and attempt < self._create_attempts and not job.cancel_event.is_set():
                        log.warning("job %s: %s; no prediction was made, so it is sent again", job.id, exc.message)
                        continue
                    raise _Ended(JobState.FAILED, error=_lost_create_message(exc.message, lookup)) from None
                except ApiError as exc:
                    raise _Ended(JobState.FAILED, error=exc.message) from None
                self._claimed.add(prediction.id)
                if self._journal is not None:
                    written = asyncio.ensure_future(self._journal.created(job.id, prediction.id))
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
        started = self._clock.now()
        if self._journal is not None:
            try:
                await self._journal.creating(job.id, target=job.unjournaled_target)
                job.unjournaled_target = None
            except JobTakenOver:
                raise
            except Exception:
                log.exception("job %s: could not journal the create; not creating", job.id)
                error = "The bot could not record this job, so it did not start it."
                # Its end may not be written either: still unfinished, a restart would run it.
                self._journal.give_up(job.id, error)
                raise _Ended(JobState.FAILED, error=error) from None
        return started

    async def _recover(self, job: LiveJob) -> tuple[Prediction, ClockAnchor | None]:
        """A job whose create may have gone out before a restart: find its prediction, or create it if none."""
        assert job.create_started_at is not None
        lookup = await self._look_up(job, job.create_started_at)
        if lookup.prediction is not None:
            return lookup.prediction, None
        if lookup.absent:
            log.info("job %s: its create before the restart made no prediction; creating it now", job.id)
            return await self._create(job)
        raise _Ended(
            JobState.FAILED,
            error=(
                "The bot restarted just as this job was being started, and "
                f"{lookup.reason or 'the prediction could not be looked up'}. It was not started again, so "
                "nothing is paid twice, and it did not count against your daily images. Please run /imagine again."
            ),
        )

    async def _look_up(self, job: LiveJob, since: datetime) -> Lookup:
        async def claim(prediction: Prediction) -> bool:
            if prediction.id in self._claimed:
                return False
            if self._journal is not None and not await self._journal.claim(job.id, prediction.id):
                return False
            self._claimed.add(prediction.id)
            return True

        return await self._finder.find(job.request.model, job.request.inputs, since=since, claim=claim)

    # ----------------------------------------------------------------- polling

    async def _poll_to_end(
        self,
        job: LiveJob,
        prediction: Prediction,
        deadline: float,
        *,
        anchor: ClockAnchor,
        fetch_now: bool,
        pushed: asyncio.Event | None = None,
    ) -> None:
        """Poll until the prediction ends (canceling it on request or at the deadline), then finish the job.

        Polls are aimed at the window where the prediction should end (:mod:`bot.jobs.poll_planner`). With
        webhooks (``pushed`` is set when one arrives) a pushed state is taken as a poll's answer and polls
        become a slow safety net, aimed past that window.
        """
        model = str(job.request.model)
        # The usual run time may be a database read: not for a prediction that ended in its create.
        usual = None if prediction.terminal else await self._usual_run_time(job)
        estimate = EndEstimate(self._run_times.run_time(model, usual), self._run_times.tail(model))
        bar = ProgressEstimate()
        blind_polls = late_polls = safety_polls = 0
        cancel_sent = False
        while True:
            now = self._clock.monotonic()
            estimate.saw(prediction, now, anchor)
            self._show_prediction(job, prediction, bar.observe(prediction.progress, now))
            if prediction.terminal:
                break
            if job.cancel_event.is_set() and not cancel_sent:
                cancel_sent = True
                prediction = await self._cancel_remote(prediction)
                continue
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0 and not fetch_now:
                prediction = await self._cancel_remote(prediction)
                if prediction.status == "succeeded":  # it finished as we gave up: deliver it
                    break
                await self._host.finish(
                    job,
                    JobState.TIMED_OUT,
                    prediction_id=prediction.id,
                    error=f"The prediction ran longer than {self._timeout:g} seconds, so it was canceled.",
                )
                return
            window = estimate.window()
            urgent = False
            if pushed is not None:
                delay = self._planner.policy.safety_gap(safety_polls, window, now)
            else:
                aim = self._planner.next_poll(job.id, window, now, blind_polls=blind_polls, late_polls=late_polls)
                delay, urgent = aim.delay, aim.urgent
                if window is None:
                    blind_polls += 1
                elif now > window[1]:
                    late_polls += 1
            delay = 0.0 if fetch_now else min(remaining, delay)
            fetch_now = False
            await self._wait(job, delay, bar, interruptible=not cancel_sent, pushed=pushed)
            if job.cancel_event.is_set() and not cancel_sent:
                continue
            if pushed is not None and pushed.is_set():
                pushed.clear()
                prediction = self._newest(prediction)
                continue
            safety_polls += pushed is not None
            try:
                polled = await self._poll(
                    job, prediction.id, urgent=urgent, deadline=deadline, cancelable=not cancel_sent
                )
                if polled is None:  # canceled, or out of time, while it waited for the budget
                    continue
                prediction = polled
            except ApiError as exc:
                if not exc.transient:
                    await self._host.finish(job, JobState.FAILED, prediction_id=prediction.id, error=exc.message)
                    return
                log.warning("job %s: polling %s failed (%s); will try again", job.id, prediction.id, exc)
        self._planner.leave(job.id)
        self._learn(model, prediction, estimate)
        await self._finish_prediction(job, prediction, deadline)

    async def _poll(
        self, job: LiveJob, prediction_id: str, *, urgent: bool, deadline: float, cancelable: bool
    ) -> Prediction | None:
        """One poll; ``None`` if the job was canceled or its deadline came while the poll waited its turn.

        A poll far from the end waits while polls near one go: a member's Cancel and the deadline must
        not wait behind it.
        """
        poll = asyncio.ensure_future(self._client.get(prediction_id, urgent=urgent))
        waiters = [asyncio.ensure_future(job.cancel_event.wait())] if cancelable else []
        try:
            done, _ = await asyncio.wait(
                {poll, *waiters},
                timeout=max(0.0, deadline - self._clock.monotonic()) + 1.0,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        if poll in done:
            return poll.result()
        poll.cancel()
        await asyncio.gather(poll, return_exceptions=True)
        return None

    def _learn(self, model: str, prediction: Prediction, estimate: EndEstimate) -> None:
        """Keep how long a succeeded prediction ran, to aim the next ones' polls."""
        if prediction.status != "succeeded":
            return
        # Windows aim at the moment it ended, which includes the upload of its outputs after predict_time.
        run_time = prediction.predict_time
        if prediction.started_at is not None and prediction.completed_at is not None:
            run_time = (prediction.completed_at - prediction.started_at).total_seconds()
        if run_time is None:
            return
        bar = estimate.bar
        bar_seconds = None if bar is None or bar.step_seconds is None else bar.total * bar.step_seconds
        self._run_times.learn(model, run_time, bar_seconds)

    async def _wait(
        self,
        job: LiveJob,
        seconds: float,
        bar: ProgressEstimate,
        *,
        interruptible: bool,
        pushed: asyncio.Event | None = None,
    ) -> None:
        """Sleep until the next poll, a cancel or a webhook; meanwhile move the bar as its rate says.

        The bar is looked at every ``progress_tick``, and a view goes to the presenter only when the
        percentage a member reads changes (the presenter paces the edits).
        """
        end = self._clock.monotonic() + seconds
        wake = [event for event in (job.cancel_event if interruptible else None, pushed) if event is not None]
        while (left := end - self._clock.monotonic()) > 0:
            moving = job.view.state is JobState.PROCESSING and self._progress_tick > 0
            step = min(left, self._progress_tick) if moving else left
            await _sleep_unless(self._clock, wake, step)
            if any(event.is_set() for event in wake):
                return
            if moving and end - self._clock.monotonic() > 0.05:
                estimated = bar.estimate(self._clock.monotonic())
                shown = job.view.progress
                if estimated is not None and (shown is None or shown_percent(estimated) != shown_percent(shown)):
                    self._host.show(job, replace(job.view, progress=estimated))

    def _show_prediction(self, job: LiveJob, prediction: Prediction, progress: Progress | None) -> None:
        if prediction.terminal:
            return  # the terminal view comes with the outcome
        state = JobState.PROCESSING if prediction.status == "processing" else JobState.STARTING
        view = replace(job.view, state=state, prediction_id=prediction.id, progress=progress or job.view.progress)
        if view != job.view:
            self._host.show(job, view)

    async def _usual_run_time(self, job: LiveJob) -> float | None:
        if self._journal is None:
            return None
        try:
            return await self._journal.usual_run_time(str(job.request.model))
        except Exception as exc:
            log.warning("could not read the usual run time of %s: %s", job.request.model, exc)
            return None

    async def _cancel_remote(self, prediction: Prediction) -> Prediction:
        try:
            return await self._client.cancel(prediction.id)
        except ApiError as exc:
            log.warning("could not cancel prediction %s: %s", prediction.id, exc)
            return prediction

    # ----------------------------------------------------------------- outcome

    async def _finish_prediction(self, job: LiveJob, prediction: Prediction, deadline: float) -> None:
        common: dict[str, Any] = {
            "prediction_id": prediction.id,
            "seed": prediction.seed,
            "predict_time": prediction.predict_time,
            "prediction_ended_at": self._clock.monotonic(),
        }
        finish = self._end
        if prediction.status == "succeeded":
            await self._deliver(job, prediction, common)
        elif prediction.status == "failed":
            error = prediction.error or "The prediction failed without saying why."
            await finish(job, JobState.FAILED, error=error, **common)
        elif prediction.status == "aborted":
            reason = f" ({prediction.error})" if prediction.error else ""
            await finish(
                job, JobState.FAILED, error=f"The API aborted the prediction before it started{reason}.", **common
            )
        elif job.cancel_event.is_set():
            await finish(job, JobState.CANCELED, **common)
        elif self._clock.monotonic() >= deadline - 1:
            error = f"The prediction ran longer than {self._timeout:g} seconds, so it was canceled."
            await finish(job, JobState.TIMED_OUT, error=error, **common)
        else:
            await finish(job, JobState.CANCELED, error="The prediction was canceled on the API's side.", **common)

    async def _end(self, job: LiveJob, state: JobState, **changes: Any) -> None:
        """End the job, once its prediction is journaled (the write may still be going: see :meth:`_create`)."""
        await self._journaled(job)
        await self._host.finish(job, state, **changes)

    async def _deliver(self, job: LiveJob, prediction: Prediction, common: dict[str, Any]) -> None:
        urls = prediction.output_urls
        refused = prediction.refused_outputs
        if not urls:
            if refused:
                more = f" (and {len(refused) - 1} more like it)" if len(refused) > 1 else ""
                error = f"The model's output was refused: {refused[0]}{more}."
            elif prediction.data_removed:
                error = "The prediction's outputs were already deleted by the API."
            else:
                error = "The model finished but returned no image."
            await self._end(job, JobState.FAILED, error=error, **common)
            return
        notes = list(job.view.notes)
        expected = job.request.images_expected
        shown = max(1, min(expected, MAX_IMAGES_PER_JOB))
        if len(urls) > shown:  # only what was asked is downloaded, shown and paid for
            notes.append(_surplus_note(len(urls), expected, shown))
            urls = urls[:shown]
        try:
            images = await self._downloader.fetch_all(urls, stem=f"imagine-{job.id}")
        except ImagineError as exc:
            await self._end(job, JobState.FAILED, error=exc.message, **common)
            return
        if refused:
            notes.append(f"{len(refused)} of the model's outputs were refused: {refused[0]}.")
        if len(images) < shown and not refused:
            notes.append(
                f"{len(images)} of {expected} images came back; the model's safety checker may have held some back."
            )
        await self._end(job, JobState.SUCCEEDED, images=tuple(images), notes=tuple(notes), **common)


def _surplus_note(returned: int, asked: int, shown: int) -> str:
    """Why fewer images are shown than the model returned."""
    if shown < asked:
        return f"The model returned {returned} images; a message holds at most {shown}, so the first {shown} are shown."
    return f"The model returned {returned} images for the {asked} asked; the first {shown} are shown."


def _lost_create_message(what: str, lookup: Lookup) -> str:
    if lookup.absent:
        return (
            f"{what}, and again on every try; the bot checked each time that no prediction was made, "
            "so nothing was paid. Please try again in a moment."
        )
    return (
        f"{what}, so it is unknown whether it started, and {lookup.reason or 'it could not be looked up'}. "
        "It was not sent again, so nothing is paid twice."
    )


async def _sleep_unless(clock: Clock, events: list[asyncio.Event], seconds: float) -> None:
    """Sleep ``seconds``, or less if one of ``events`` is set."""
    if any(event.is_set() for event in events):
        return
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait({sleeper, *waiters}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        for waiter in waiters:
            waiter.cancel()
