"""The job engine: one request's way from the queue to a terminal state.

A job goes ``queued → starting → processing → succeeded | failed | canceled |
timed_out``, and every change is shown to its :class:`Presenter` as an
immutable :class:`JobView`. The engine knows nothing of Discord or SQL: the
Discord cog and the CLI are two presenters of the same views.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from typing import Any, Protocol

from bot.clock import Clock, SystemClock
from bot.delivery import Downloader, ImageFile
from bot.errors import ImagineError
from bot.inputs import ImagineOptions, InputSchema, plan_inputs
from bot.modelref import ModelRef
from bot.replicate import ApiError, Prediction, Progress, ReplicateClient, RequestWithdrawn

log = logging.getLogger(__name__)


class JobState(StrEnum):
    """Where a job is."""

    QUEUED = "queued"
    STARTING = "starting"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMED_OUT = "timed_out"

    @property
    def terminal(self) -> bool:
        """Whether the job has ended."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED, JobState.TIMED_OUT})


@dataclass(frozen=True)
class JobRequest:
    """Everything needed to run one generation, already checked against the model."""

    model: ModelRef
    options: ImagineOptions
    inputs: Mapping[str, Any]
    notes: tuple[str, ...] = ()
    images_expected: int = 1
    requester_id: int | None = None
    guild_id: int | None = None
    channel_id: int | None = None
    charged_images: int = 0
    """Images counted against the requester's daily limit; what is not delivered is refunded."""
    charged_day: date | None = None

    @property
    def prompt(self) -> str:
        """The member's prompt."""
        return self.options.prompt


@dataclass(frozen=True)
class JobView:
    """An immutable snapshot of what the requester should see now."""

    job_id: str
    request: JobRequest
    state: JobState
    queue_position: int | None = None
    progress: Progress | None = None
    prediction_id: str | None = None
    error: str | None = None
    images: tuple[ImageFile, ...] = ()
    seed: int | None = None
    predict_time: float | None = None
    elapsed: float | None = None
    notes: tuple[str, ...] = ()
    cancel_requested: bool = False
    canceled_by: int | None = None
    accepted_at: float | None = field(default=None, compare=False, repr=False)
    """On the engine's monotonic clock, set in the final view: when the job was accepted."""
    prediction_ended_at: float | None = field(default=None, compare=False, repr=False)
    """On the engine's monotonic clock, set in the final view: when the bot learned the prediction ended."""

    @property
    def terminal(self) -> bool:
        """Whether this is the job's last view."""
        return self.state.terminal


class Presenter(Protocol):
    """Shows a job's views to someone.

    ``show`` must return quickly for non-terminal views (coalesce slow output
    yourself); for the terminal view it returns once that view was delivered
    or delivery was given up on.
    """

    async def show(self, view: JobView) -> None:
        """Show ``view``."""
        ...

    async def close(self) -> None:
        """The process is stopping before the job ended: stop showing it (it resumes after a restart)."""
        ...


class JobJournal(Protocol):
    """Where the engine writes each step of a job down (see :mod:`bot.journal`)."""

    async def accepted(self, job_id: str, request: JobRequest, target: Mapping[str, Any] | None) -> None:
        """Before the job is queued."""
        ...

    async def creating(self, job_id: str) -> None:
        """Just before the create request goes out."""
        ...

    async def created(self, job_id: str, prediction_id: str) -> None:
        """As soon as the prediction's id is known."""
        ...

    async def ended(self, view: JobView) -> None:
        """With the final view."""
        ...


@dataclass(frozen=True)
class PollPolicy:
    """How often to poll a running prediction.

    Fast first (most image models finish in seconds), slower for long jobs, and
    never so often that all running jobs together would spend more than
    ``budget_share`` of the request budget on polling.
    """

    first: float = 1.0
    growth: float = 1.25
    ceiling: float = 2.0
    budget_share: float = 0.6
    near_end: float = 0.2
    """Shortest wait, used when the model's progress bar says it is about to finish."""

    def interval(
        self,
        polls: int,
        running: int,
        budget_per_second: float,
        *,
        remaining: float | None = None,
        polls_at_end: int = 0,
    ) -> float:
        """Seconds to wait before the next poll of one prediction.

        ``remaining`` is what the model's progress bar expects (seconds to its
        last step): the poll is aimed just past it, so a finished image is
        noticed at once instead of up to a whole interval later. Once the bar
        is full, waits double from ``near_end`` while the model finishes up.
        """
        own = min(self.ceiling, self.first * self.growth**polls)
        if remaining is not None:
            aim = remaining + 0.05 if remaining > 0 else self.near_end * 2**polls_at_end
            own = min(own, max(self.near_end, aim))
        shared = running / max(1e-6, budget_per_second * self.budget_share)
        return max(own, shared)


# --------------------------------------------------------------------------- the queue


class FairQueue:
    """Waiting jobs, served round-robin between members, under per-server caps.

    One member's ten jobs take turns with everyone else's: after a member is
    served they go to the back of the line.
    """

    def __init__(self) -> None:
        self._lines: OrderedDict[Hashable, deque[_Job]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(line) for line in self._lines.values())

    def push(self, job: _Job) -> None:
        """Add ``job`` behind its member's earlier jobs."""
        self._lines.setdefault(job.member_key, deque()).append(job)

    def remove(self, job: _Job) -> bool:
        """Take ``job`` out of the queue; ``False`` if it was not waiting."""
        line = self._lines.get(job.member_key)
        if line is None or job not in line:
            return False
        line.remove(job)
        if not line:
            del self._lines[job.member_key]
        return True

    def pop(self, may_start: Callable[[_Job], bool], running: Callable[[Hashable], int] = lambda _: 0) -> _Job | None:
        """The next job that ``may_start``: from the member with the fewest jobs running, members in turn."""
        chosen: Hashable | None = None
        fewest = 0
        for key, line in self._lines.items():
            if may_start(line[0]):
                load = running(key)
                if chosen is None or load < fewest:
                    chosen, fewest = key, load
                    if load == 0:
                        break
        if chosen is None:
            return None
        line = self._lines.pop(chosen)
        job = line.popleft()
        if line:
            self._lines[chosen] = line  # back of the line
        return job

    def in_order(self) -> Iterator[_Job]:
        """Waiting jobs in the order they would start if every cap were free."""
        lines = [list(line) for line in self._lines.values()]
        depth = max((len(line) for line in lines), default=0)
        for round_ in range(depth):
            for line in lines:
                if round_ < len(line):
                    yield line[round_]


# --------------------------------------------------------------------------- jobs


@dataclass(eq=False)
class _Job:
    id: str
    request: JobRequest
    presenter: Presenter
    submitted_at: float
    view: JobView
    cancel_event: asyncio.Event = field(default_factory=asyncio.Event)
    canceled_by: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    pending: JobView | None = None
    pump: asyncio.Task[None] | None = None
    creating: bool = False
    keep_images: bool = False
    created: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once a create in flight has its answer (an id, or a failure)."""

    @property
    def member_key(self) -> Hashable:
        return (self.request.guild_id, self.request.requester_id)

    @property
    def server_key(self) -> Hashable:
        return self.request.guild_id


class Job:
    """A handle on a submitted job."""

    def __init__(self, engine: JobEngine, job: _Job) -> None:
        self._engine = engine
        self._job = job

    @property
    def id(self) -> str:
        """The job's id (also in its buttons)."""
        return self._job.id

    @property
    def view(self) -> JobView:
        """The latest view."""
        return self._job.view

    async def cancel(self, by: int | None = None) -> bool:
        """Ask the job to stop; ``False`` if it had already ended."""
        return await self._engine.cancel(self.id, by=by)

    async def wait(self) -> JobView:
        """Wait for the job to end and return its final view (images included)."""
        self._job.keep_images = True
        await self._job.done.wait()
        return self._job.view


class JobEngine:
    """Runs jobs: a fair queue, global and per-server caps, create → poll → download."""

    def __init__(
        self,
        client: ReplicateClient,
        downloader: Downloader,
        *,
        max_running: int = 8,
        max_running_per_server: int = 4,
        job_timeout: float = 600.0,
        prefer_wait: int = 3,
        schema_timeout: float = 1.5,
        poll: PollPolicy | None = None,
        clock: Clock | None = None,
        new_id: Callable[[], str] = lambda: secrets.token_hex(6),
        keep_ended: int = 2000,
        on_end: Callable[[JobView], Awaitable[None]] | None = None,
        on_shown: Callable[[JobView], None] | None = None,
        journal: JobJournal | None = None,
    ) -> None:
        """``on_end`` runs for every job's final view just before its presenter shows it (it must be idempotent);
        ``on_shown`` right after (it must not raise)."""
        self._client = client
        self._downloader = downloader
        self._max_running = max_running
        self._max_per_server = max_running_per_server
        self._timeout = job_timeout
        self._prefer_wait = prefer_wait
        self._schema_timeout = schema_timeout
        self._poll = poll or PollPolicy()
        self._clock = clock or SystemClock()
        self._new_id = new_id
        self._queue = FairQueue()
        self._jobs: dict[str, _Job] = {}
        self._ended: deque[str] = deque()
        self._keep_ended = keep_ended
        self._on_end = on_end
        self._on_shown = on_shown
        self._journal = journal
        self._active: dict[Hashable, int] = {}
        self._running: dict[Hashable, int] = {}
        self._running_members: dict[Hashable, int] = {}
        self._polling = 0  # jobs past their create: they share the budget for polls
        self._running_total = 0
        self._closed = False

    # ----------------------------------------------------------------- public

    async def prepare(
        self,
        model: ModelRef,
        options: ImagineOptions,
        *,
        requester_id: int | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
    ) -> JobRequest:
        """Check ``options`` against the model's schema and build a request, or raise ``InputRejected``.

        The schema is read once per model and cached; if it takes longer than
        ``schema_timeout`` the options are sent unchecked (the fetch goes on and
        fills the cache for next time), so members always get an answer fast.
        """
        options.check()
        schema = await self._schema(model)
        planned = plan_inputs(options, schema)
        return JobRequest(
            model=model,
            options=options,
            inputs=planned.inputs,
            notes=planned.notes,
            images_expected=planned.images_expected,
            requester_id=requester_id,
            guild_id=guild_id,
            channel_id=channel_id,
        )

    def new_job_id(self) -> str:
        """A fresh job id, for a front end that must show the job before submitting it."""
        return self._new_id()

    async def submit(
        self,
        request: JobRequest,
        presenter: Presenter,
        *,
        job_id: str | None = None,
        target: Mapping[str, Any] | None = None,
    ) -> Job:
        """Journal and queue ``request``; its presenter sees every view from the first ``queued`` one on.

        ``target`` is the front end's own note of where the job is shown, kept
        in the journal so the job can be resumed after a restart.
        """
        if self._closed:
            raise ImagineError("The bot is shutting down; try again in a moment.")
        job_id = job_id or self._new_id()
        if self._journal is not None:  # first: a job the journal does not know is not accepted
            await self._journal.accepted(job_id, request, target)
        job = self._new_job(job_id, request, presenter)
        self._queue.push(job)
        self._dispatch()
        if job.task is None:
            self._show_positions()
        else:
            self._show(job, job.view)
        return Job(self, job)

    async def resume(
        self,
        job_id: str,
        request: JobRequest,
        presenter: Presenter,
        *,
        prediction_id: str | None,
        create_started: bool,
        age: float = 0.0,
    ) -> Job:
        """Take back a journaled job after a restart, never creating a second prediction.

        With a prediction id it is polled to its end (it is already running, so
        it takes a slot at once); with a create that may have gone out but no
        id, it ends with a clear message (asking again is the member's call);
        otherwise it takes its place in the queue again.
        """
        job = self._new_job(job_id, request, presenter, age=age)
        if prediction_id is not None:
            self._start(job, prediction_id=prediction_id)
        elif create_started:
            await self._finish(
                job,
                JobState.FAILED,
                error=(
                    "The bot restarted just as this job was being started, so it cannot tell whether the "
                    "image was begun. It was not started again, so nothing is paid twice, and it did not count "
                    "against your daily images. Please run /imagine again."
                ),
            )
        else:
            self._queue.push(job)
            self._dispatch()
            if job.task is None:
                self._show_positions()
        return Job(self, job)

    def _new_job(self, job_id: str, request: JobRequest, presenter: Presenter, *, age: float = 0.0) -> _Job:
        job = _Job(
            id=job_id,
            request=request,
            presenter=presenter,
            submitted_at=self._clock.monotonic() - age,
            view=JobView(job_id, request, JobState.QUEUED, notes=request.notes),
        )
        self._jobs[job_id] = job
        self._active[job.member_key] = self._active.get(job.member_key, 0) + 1
        return job

    def job(self, job_id: str) -> Job | None:
        """The job with this id, while the process knows it."""
        job = self._jobs.get(job_id)
        return Job(self, job) if job else None

    def active_jobs(self, guild_id: int | None, member_id: int | None) -> int:
        """A member's jobs that have not ended (waiting or running)."""
        return self._active.get((guild_id, member_id), 0)

    @property
    def queued(self) -> int:
        """Jobs waiting for a slot."""
        return len(self._queue)

    @property
    def running(self) -> int:
        """Jobs running now."""
        return self._running_total

    async def cancel(self, job_id: str, *, by: int | None = None) -> bool:
        """Cancel a job: a waiting one ends now, a running one is canceled on the API too."""
        job = self._jobs.get(job_id)
        if job is None or job.view.terminal or job.cancel_event.is_set():
            return False
        job.canceled_by = by
        job.cancel_event.set()
        if self._queue.remove(job):
            await self._finish(job, JobState.CANCELED)
            self._show_positions()
        else:
            self._show(job, replace(job.view, cancel_requested=True))
        return True

    async def close(self) -> None:
        """Stop taking jobs and stop the running ones' tasks (their predictions are left alone)."""
        self._closed = True
        # A create in flight is let finish (and its id journaled), or a restart could not find its
        # prediction; a job already delivering its final view is let finish too.
        settling = [
            asyncio.ensure_future(job.created.wait() if job.creating else job.done.wait())
            for job in self._jobs.values()
            if job.creating or (job.view.terminal and not job.done.is_set())
        ]
        if settling:
            await asyncio.wait(settling, timeout=self._prefer_wait + 15)
            for waiter in settling:
                waiter.cancel()
        unfinished = [job for job in self._jobs.values() if not job.done.is_set()]
        tasks = [task for job in unfinished for task in (job.task, job.pump) if task is not None and not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for job in unfinished:
            try:
                await job.presenter.close()
            except Exception:
                log.exception("presenter of job %s failed to close", job.id)

    # ----------------------------------------------------------------- scheduling

    def _dispatch(self) -> None:
        while self._running_total < self._max_running:
            job = self._queue.pop(
                lambda j: self._running.get(j.server_key, 0) < self._max_per_server,
                lambda member: self._running_members.get(member, 0),
            )
            if job is None:
                return
            self._start(job)

    def _start(self, job: _Job, *, prediction_id: str | None = None) -> None:
        self._running_total += 1
        self._running[job.server_key] = self._running.get(job.server_key, 0) + 1
        self._running_members[job.member_key] = self._running_members.get(job.member_key, 0) + 1
        job.task = asyncio.create_task(self._run(job, prediction_id), name=f"job-{job.id}")

    def _show_positions(self) -> None:
        for position, job in enumerate(self._queue.in_order(), start=1):
            if job.view.queue_position != position:
                self._show(job, replace(job.view, queue_position=position))

    def _show(self, job: _Job, view: JobView) -> None:
        """Record a non-terminal view and hand it to the presenter without waiting on it.

        One pump per job delivers views in order; a view superseded before the
        presenter took it is skipped (the newest state wins).
        """
        job.view = view
        job.pending = view
        if job.pump is None or job.pump.done():
            job.pump = asyncio.create_task(self._pump(job), name=f"show-{job.id}")

    async def _pump(self, job: _Job) -> None:
        while job.pending is not None:
            view, job.pending = job.pending, None
            await self._present(job, view)

    async def _present(self, job: _Job, view: JobView) -> None:
        try:
            await job.presenter.show(view)
        except Exception:
            log.exception("presenter failed to show job %s (%s)", job.id, view.state)

    async def _finish(self, job: _Job, state: JobState, **changes: Any) -> None:
        view = replace(
            job.view,
            state=state,
            queue_position=None,
            elapsed=self._clock.monotonic() - job.submitted_at,
            canceled_by=job.canceled_by if state is JobState.CANCELED else None,
            accepted_at=job.submitted_at,
            **changes,
        )
        job.view = view
        job.pending = None
        if job.pump is not None:
            await asyncio.gather(job.pump, return_exceptions=True)
        # Bookkeeping (refunds) first, so a member who reads the outcome can act on it at once;
        # it is idempotent per job, as a job resumed after a crash here ends a second time.
        if self._on_end is not None:
            try:
                await self._on_end(view)
            except Exception:
                log.exception("bookkeeping after job %s failed", job.id)
        self._active[job.member_key] -= 1
        if not self._active[job.member_key]:
            del self._active[job.member_key]
        await self._present(job, view)
        if self._on_shown is not None:
            self._on_shown(view)
        if self._journal is not None:
            await self._journal.ended(view)
        job.done.set()
        # Ended jobs stay known for a while (Re-roll reads them); their images' bytes only if
        # someone waits for them (the imagine command), not for the presenter that already sent them.
        if not job.keep_images:
            job.view = replace(view, images=())
        self._ended.append(job.id)
        while len(self._ended) > self._keep_ended:
            self._jobs.pop(self._ended.popleft(), None)

    # ----------------------------------------------------------------- running

    async def _run(self, job: _Job, prediction_id: str | None) -> None:
        try:
            await self._execute(job, prediction_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            reference = secrets.token_hex(3)
            log.exception("job %s failed unexpectedly (reference %s)", job.id, reference)
            if not job.view.terminal:
                await self._finish(
                    job, JobState.FAILED, error=f"Something went wrong on our side (reference {reference})."
                )
        finally:
            self._running_total -= 1
            for counts, key in ((self._running, job.server_key), (self._running_members, job.member_key)):
                counts[key] -= 1
                if not counts[key]:
                    del counts[key]
            if not self._closed:
                self._dispatch()
                self._show_positions()

    async def _execute(self, job: _Job, prediction_id: str | None) -> None:
        if prediction_id is None:
            deadline = self._clock.monotonic() + self._timeout
            self._show(job, replace(job.view, state=JobState.STARTING, queue_position=None))
            prediction = await self._create(job)
            if prediction is None:
                return
        else:  # resumed: the prediction has been running since before the restart
            deadline = job.submitted_at + self._timeout
            prediction = Prediction(id=prediction_id, status="starting")
        self._polling += 1
        try:
            await self._poll_to_end(job, prediction, deadline, fetch_now=prediction_id is not None)
        finally:
            self._polling -= 1

    async def _poll_to_end(self, job: _Job, prediction: Prediction, deadline: float, *, fetch_now: bool) -> None:
        """Poll until the prediction ends (canceling it on request or at the deadline), then finish the job."""
        polls = 0
        polls_at_end = 0
        last_progress: Progress | None = None
        cancel_sent = False
        while True:
            self._show_prediction(job, prediction)
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
                await self._finish(
                    job,
                    JobState.TIMED_OUT,
                    prediction_id=prediction.id,
                    error=f"The prediction ran longer than {self._timeout:g} seconds, so it was canceled.",
                )
                return
            budget = self._client.budget.other.per_second
            progress = prediction.progress
            # An estimate is trusted once: a bar that has not moved since the last poll says nothing new.
            fresh = progress is not None and (progress != last_progress or progress.remaining == 0)
            interval = self._poll.interval(
                polls,
                self._polling,
                budget,
                remaining=progress.remaining if fresh and progress else None,
                polls_at_end=polls_at_end,
            )
            if progress is not None and progress.remaining == 0:
                polls_at_end += 1
            last_progress = progress
            delay = 0.0 if fetch_now else min(remaining, interval)
            fetch_now = False
            if not cancel_sent:
                await self._sleep_unless(job.cancel_event, delay)
            else:
                await self._clock.sleep(delay)
            if job.cancel_event.is_set() and not cancel_sent:
                continue
            polls += 1
            try:
                prediction = await self._client.get(prediction.id)
            except ApiError as exc:
                if not exc.transient:
                    await self._finish(job, JobState.FAILED, prediction_id=prediction.id, error=exc.message)
                    return
                log.warning("job %s: polling %s failed (%s); will try again", job.id, prediction.id, exc)
        await self._finish_prediction(job, prediction, deadline)

    async def _create(self, job: _Job) -> Prediction | None:
        """Create the job's prediction, journaling around it; ``None`` if it failed (and the job ended)."""
        request = job.request
        if job.cancel_event.is_set():  # canceled while waiting for the budget: nothing to pay for
            await self._finish(job, JobState.CANCELED)
            return None
        if self._journal is not None:
            try:
                await self._journal.creating(job.id)
            except Exception:
                # Without this mark a restart could create the prediction a second time.
                log.exception("job %s: could not journal the create; not creating", job.id)
                await self._finish(
                    job, JobState.FAILED, error="The bot could not record this job, so it did not start it."
                )
                return None
        job.creating = True
        try:
            prediction = await self._client.create(
                request.model,
                request.inputs,
                wait=self._prefer_wait,
                cancel_after=self._timeout,
                proceed=lambda: not job.cancel_event.is_set(),
            )
        except RequestWithdrawn:
            self._settle_create(job)
            await self._finish(job, JobState.CANCELED)
            return None
        except ApiError as exc:
            self._settle_create(job)
            await self._finish(job, JobState.FAILED, error=exc.message)
            return None
        if self._journal is not None:
            await self._journal.created(job.id, prediction.id)
        self._settle_create(job)
        log.info("job %s: prediction %s created (%s)", job.id, prediction.id, prediction.status)
        return prediction

    @staticmethod
    def _settle_create(job: _Job) -> None:
        job.creating = False
        job.created.set()

    async def _sleep_unless(self, event: asyncio.Event, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waiter.cancel()

    async def _cancel_remote(self, prediction: Prediction) -> Prediction:
        try:
            return await self._client.cancel(prediction.id)
        except ApiError as exc:
            log.warning("could not cancel prediction %s: %s", prediction.id, exc)
            return prediction

    def _show_prediction(self, job: _Job, prediction: Prediction) -> None:
        if prediction.terminal:
            return  # the terminal view comes with the outcome
        state = JobState.PROCESSING if prediction.status == "processing" else JobState.STARTING
        view = replace(
            job.view,
            state=state,
            prediction_id=prediction.id,
            progress=prediction.progress or job.view.progress,
        )
        if view != job.view:
            self._show(job, view)

    async def _finish_prediction(self, job: _Job, prediction: Prediction, deadline: float) -> None:
        common: dict[str, Any] = {
            "prediction_id": prediction.id,
            "seed": prediction.seed,
            "predict_time": prediction.predict_time,
            "prediction_ended_at": self._clock.monotonic(),
        }
        if prediction.status == "succeeded":
            await self._deliver(job, prediction, common)
        elif prediction.status == "failed":
            error = prediction.error or "The prediction failed without saying why."
            await self._finish(job, JobState.FAILED, error=error, **common)
        elif prediction.status == "aborted":
            reason = f" ({prediction.error})" if prediction.error else ""
            await self._finish(
                job, JobState.FAILED, error=f"The API aborted the prediction before it started{reason}.", **common
            )
        elif job.cancel_event.is_set():
            await self._finish(job, JobState.CANCELED, **common)
        elif self._clock.monotonic() >= deadline - 1:
            error = f"The prediction ran longer than {self._timeout:g} seconds, so it was canceled."
            await self._finish(job, JobState.TIMED_OUT, error=error, **common)
        else:
            await self._finish(job, JobState.CANCELED, error="The prediction was canceled on the API's side.", **common)

    async def _deliver(self, job: _Job, prediction: Prediction, common: dict[str, Any]) -> None:
        urls = prediction.output_urls
        if not urls:
            error = (
                "The prediction's outputs were already deleted by the API."
                if prediction.data_removed
                else "The model finished but returned no image."
            )
            await self._finish(job, JobState.FAILED, error=error, **common)
            return
        try:
            images = await self._downloader.fetch_all(urls, stem=f"imagine-{job.id}")
        except ImagineError as exc:
            await self._finish(job, JobState.FAILED, error=exc.message, **common)
            return
        notes = list(job.view.notes)
        expected = job.request.images_expected
        if len(images) < expected:
            notes.append(
                f"{len(images)} of {expected} images came back; the model's safety checker may have held some back."
            )
        await self._finish(job, JobState.SUCCEEDED, images=tuple(images), notes=tuple(notes), **common)

    async def _schema(self, model: ModelRef) -> InputSchema | None:
        fetch = asyncio.ensure_future(self._client.input_schema(model))
        try:
            document = await asyncio.wait_for(asyncio.shield(fetch), self._schema_timeout)
        except TimeoutError:
            log.info("input schema of %s is slow to come; sending options unchecked this time", model)
            return None
        except ApiError as exc:
            log.warning("could not read the input schema of %s: %s", model, exc)
            return None
        return InputSchema.from_openapi(document) if document else None
