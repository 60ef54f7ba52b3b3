"""One job's way through the API: create (or find a lost create), poll to the end, download.

The engine (:mod:`bot.jobs.engine`) decides *when* a job runs; this module runs it: the
create step is :mod:`bot.jobs.creation`'s, the poll loop is here, and how the job ends once
its prediction has (the download) is :mod:`bot.jobs.outcome`'s. It reports through the
:class:`JobHost` (show a view, finish the job) and writes each step to the journal, so a
restart or another process can carry on.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import KW_ONLY, InitVar, dataclass, field, replace
from typing import Any, Protocol

from bot.api.accounts import Accounts
from bot.api.client import ReplicateClient
from bot.api.errors import ApiError, ServerError
from bot.api.predictions import Prediction, Progress
from bot.base.clock import Clock
from bot.i18n import Text
from bot.jobs.creation import JobEnded, PredictionCreator
from bot.jobs.end_estimate import ClockAnchor, EndEstimate, RunTimes
from bot.jobs.model import JobJournal, JobState, JobTimings, JobView, LiveJob
from bot.jobs.outcome import outcome, ran_too_long
from bot.jobs.poll_planner import PollPlanner
from bot.jobs.progress import ProgressEstimate, shown_percent
from bot.jobs.recovery import PredictionFinder
from bot.jobs.webhooks import PredictionEvents, stage
from bot.media.delivery import Downloader
from bot.storage import StorageError

log = logging.getLogger(__name__)


class JobHost(Protocol):
    """What the executor needs of the engine."""

    def show(self, job: LiveJob, view: JobView) -> None:
        """Hand a non-terminal view to the job's presenter without waiting."""
        ...

    async def finish(self, job: LiveJob, state: JobState, **changes: Any) -> None:
        """End the job with ``state`` and show its final view."""
        ...


@dataclass(eq=False)
class JobExecutor:
    """Runs one job at a time per call of :meth:`run`; shared by all jobs of an engine."""

    host: JobHost
    client: ReplicateClient
    downloader: Downloader
    _: KW_ONLY
    clock: Clock
    journal: JobJournal | None
    finder: InitVar[PredictionFinder]
    timings: JobTimings
    accounts: Accounts
    webhook_url: str | None = field(default=None, init=False)
    """Set (with :attr:`events`): predictions are created with this webhook; polling is a safety net."""
    events: PredictionEvents | None = field(default=None, init=False)
    _creator: PredictionCreator = field(init=False)
    _planner: PollPlanner = field(init=False)
    _run_times: RunTimes = field(default_factory=RunTimes, init=False)

    def __post_init__(self, finder: PredictionFinder) -> None:
        self._creator = PredictionCreator(
            self.accounts, clock=self.clock, journal=self.journal, finder=finder, timings=self.timings
        )
        self._planner = PollPlanner(self.client.budget.other, self.timings.poll)

    async def run(self, job: LiveJob, prediction_id: str | None) -> None:
        """Run ``job`` to its end: from its create, or from a prediction it already has (after a restart)."""
        anchor: ClockAnchor | None = None
        if prediction_id is None:
            resumed = job.create_started_at is not None
            deadline = (job.submitted_at if resumed else self.clock.monotonic()) + self.timings.job_timeout
            self.host.show(job, replace(job.view, state=JobState.STARTING, queue_position=None))
            try:
                step = self._creator.recover if resumed else self._creator.create
                prediction, anchor = await step(job, webhook=self._webhook(job))
            except JobEnded as ended:
                await self.host.finish(job, ended.state, **ended.changes)
                return
        else:  # resumed: the prediction has been running since before the restart
            deadline = job.submitted_at + self.timings.job_timeout
            prediction = Prediction(id=prediction_id, status="starting")
        self._creator.claimed.add(prediction.id)
        pushed = self.events.watch(prediction.id) if self.events is not None and self._webhook(job) else None
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
            await self._creator.journaled(job)
            self._creator.claimed.discard(prediction.id)
            if self.events is not None:
                self.events.forget(prediction.id)

    def _webhook(self, job: LiveJob) -> str | None:
        """The webhook URL for the job's create; a server's own account is polled instead (its webhooks would be
        signed with that account's secret, which the receiver does not hold)."""
        return self.webhook_url if job.request.account is None else None

    async def _client(self, job: LiveJob) -> ReplicateClient:
        """The client of the job's API account; :class:`~bot.api.accounts.AccountUnavailable` if it is gone.

        Reading a server's key after a restart may meet a database hiccup: that is a poll to try again later
        (a transient :class:`~bot.api.errors.ServerError`), never the end of a job whose prediction runs on.
        """
        try:
            return await self.accounts.client(job.request.account, job.request.guild_id)
        except StorageError as exc:
            raise ServerError(f"the server's API key could not be read from the database: {exc}") from exc

    def _failure(self, job: LiveJob, exc: ApiError) -> Text | str:
        return self.accounts.failure(job.request.account, job.request.guild_id, exc)

    def _wall_anchor(self) -> ClockAnchor:
        """Maps the API's timestamps by the wall clock (a prediction this process did not create)."""
        return ClockAnchor(self.clock.now(), self.clock.monotonic())

    def _newest(self, prediction: Prediction) -> Prediction:
        """``prediction``, or what a webhook said of it since, if that is further on."""
        pushed = self.events.latest(prediction.id) if self.events is not None else None
        if pushed is not None and stage(pushed) >= stage(prediction):
            return pushed
        return prediction

    # ----------------------------------------------------------------- create

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
            now = self.clock.monotonic()
            estimate.saw(prediction, now, anchor)
            self._show_prediction(job, prediction, bar.observe(prediction.progress, now))
            if prediction.terminal:
                break
            if job.cancel_event.is_set() and not cancel_sent:
                cancel_sent = True
                prediction = await self._cancel_remote(job, prediction)
                continue
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0 and not fetch_now:
                prediction = await self._cancel_remote(job, prediction)
                if prediction.status == "succeeded":  # it finished as we gave up: deliver it
                    break
                await self.host.finish(
                    job,
                    JobState.TIMED_OUT,
                    prediction_id=prediction.id,
                    error=ran_too_long(self.timings.job_timeout),
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
                    error = self._failure(job, exc)
                    await self.host.finish(job, JobState.FAILED, prediction_id=prediction.id, error=error)
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
        client = await self._client(job)
        poll = asyncio.ensure_future(client.get(prediction_id, urgent=urgent))
        waiters = [asyncio.ensure_future(job.cancel_event.wait())] if cancelable else []
        try:
            done, _ = await asyncio.wait(
                {poll, *waiters},
                timeout=max(0.0, deadline - self.clock.monotonic()) + 1.0,
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
        end = self.clock.monotonic() + seconds
        wake = [event for event in (job.cancel_event if interruptible else None, pushed) if event is not None]
        while (left := end - self.clock.monotonic()) > 0:
            moving = job.view.state is JobState.PROCESSING and self.timings.progress_tick > 0
            step = min(left, self.timings.progress_tick) if moving else left
            await _sleep_unless(self.clock, wake, step)
            if any(event.is_set() for event in wake):
                return
            if moving and end - self.clock.monotonic() > 0.05:
                estimated = bar.estimate(self.clock.monotonic())
                shown = job.view.progress
                if estimated is not None and (shown is None or shown_percent(estimated) != shown_percent(shown)):
                    self.host.show(job, replace(job.view, progress=estimated))

    def _show_prediction(self, job: LiveJob, prediction: Prediction, progress: Progress | None) -> None:
        if prediction.terminal:
            return  # the terminal view comes with the outcome
        state = JobState.PROCESSING if prediction.status == "processing" else JobState.STARTING
        view = replace(job.view, state=state, prediction_id=prediction.id, progress=progress or job.view.progress)
        if view != job.view:
            self.host.show(job, view)

    async def _usual_run_time(self, job: LiveJob) -> float | None:
        if self.journal is None:
            return None
        try:
            return await self.journal.usual_run_time(str(job.request.model))
        except Exception as exc:
            log.warning("could not read the usual run time of %s: %s", job.request.model, exc)
            return None

    async def _cancel_remote(self, job: LiveJob, prediction: Prediction) -> Prediction:
        try:
            return await (await self._client(job)).cancel(prediction.id)
        except ApiError as exc:
            self._failure(job, exc)  # a server's key refused: marked rejected
            log.warning("could not cancel prediction %s: %s", prediction.id, exc)
            return prediction

    # ----------------------------------------------------------------- outcome

    async def _finish_prediction(self, job: LiveJob, prediction: Prediction, deadline: float) -> None:
        ended_at = self.clock.monotonic()
        state, changes = await outcome(
            job, prediction, self.downloader, timed_out=ended_at >= deadline - 1, job_timeout=self.timings.job_timeout
        )
        # Ended once its prediction is journaled: that write may still be going (see PredictionCreator.create).
        await self._creator.journaled(job)
        await self.host.finish(
            job,
            state,
            prediction_id=prediction.id,
            seed=prediction.seed,
            predict_time=prediction.predict_time,
            prediction_ended_at=ended_at,
            **changes,
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
