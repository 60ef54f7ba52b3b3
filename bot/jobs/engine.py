"""The job engine: a fair queue under global and per-server caps, cancel, shutdown and resume.

The engine decides *when* a job runs and shows every change of it to the job's
:class:`~bot.jobs.model.Presenter`; :mod:`bot.jobs.execution` runs it (create, poll,
download). It knows nothing of Discord or SQL: the Discord cog and the CLI are
two presenters of the same views. Requests are built by :mod:`bot.jobs.preparation`,
views reach their presenters through :mod:`bot.jobs.showing`, and the handles it
hands out and takes back are :mod:`bot.jobs.handles`'.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from bot.api.accounts import Accounts
from bot.api.client import ReplicateClient
from bot.base.clock import Clock, SystemClock
from bot.base.errors import ImagineError
from bot.i18n import Text, tr
from bot.jobs import showing
from bot.jobs.execution import JobExecutor
from bot.jobs.handles import Job, ResumedJob
from bot.jobs.model import JobJournal, JobRequest, JobState, JobTakenOver, JobTimings, JobView, LiveJob, Presenter
from bot.jobs.poll_planner import Backoff, PollPolicy
from bot.jobs.preparation import RequestPreparer
from bot.jobs.recovery import PredictionFinder
from bot.jobs.scheduling import FairQueue, MemberJob, Slots, member_jobs, position_worth_showing
from bot.jobs.webhooks import PredictionEvents
from bot.media.delivery import Downloader

__all__ = [
    "Backoff",
    "Job",
    "JobEngine",
    "JobJournal",
    "JobRequest",
    "JobState",
    "JobView",
    "MemberJob",
    "PollPolicy",
    "Presenter",
    "ResumedJob",
]

log = logging.getLogger(__name__)


class JobEngine:
    """Runs jobs: a fair queue, global and per-server caps, create → poll → download."""

    def __init__(
        self,
        client: ReplicateClient,
        downloader: Downloader,
        *,
        max_running: int = 8,
        max_running_per_server: int = 4,
        job_timeout: float = JobTimings.job_timeout,
        prefer_wait: int = JobTimings.prefer_wait,
        schema_timeout: float = 1.5,
        poll: PollPolicy | None = None,
        clock: Clock | None = None,
        new_id: Callable[[], str] = lambda: secrets.token_hex(6),
        keep_ended: int = 2000,
        on_end: Callable[[JobView], Awaitable[None]] | None = None,
        on_shown: Callable[[JobView], None] | None = None,
        journal: JobJournal | None = None,
        finder: PredictionFinder | None = None,
        progress_tick: float = JobTimings.progress_tick,
        accounts: Accounts | None = None,
    ) -> None:
        """``on_end`` runs for every job's final view just before its presenter shows it (it must be idempotent);
        ``on_shown`` right after (it must not raise).

        ``finder`` looks up predictions whose create answer was lost; ``progress_tick`` is how often the
        progress bar's estimate is looked at between polls (a view goes out when its percentage changes).
        ``prefer_wait`` is how long a create may be held for its result when polling (with webhooks it is
        not held: their events show the progress at once).
        """
        self.accounts = accounts or Accounts(client)  # the client of each job's API account
        preparer = RequestPreparer(client, schema_timeout=schema_timeout, accounts=accounts)
        self.prepare = preparer.prepare
        """Build a job's request from a member's options (:meth:`RequestPreparer.prepare`)."""
        self.input_schema = preparer.input_schema
        """The model's input schema as :attr:`prepare` reads it (``None``: unknown, or slow to come)."""
        self._slots = Slots(max_running, max_running_per_server)
        self._timings = JobTimings(
            job_timeout=job_timeout, prefer_wait=prefer_wait, progress_tick=progress_tick, poll=poll or PollPolicy()
        )
        self._clock = clock or SystemClock()
        self._executor = JobExecutor(
            self,
            client,
            downloader,
            clock=self._clock,
            journal=journal,
            finder=finder or PredictionFinder(client, clock=self._clock),
            timings=self._timings,
            accounts=self.accounts,
        )
        self._new_id = new_id
        self._queue = FairQueue()
        self._jobs: dict[str, LiveJob] = {}
        self._ended: deque[str] = deque()
        self._keep_ended = keep_ended
        self._on_end = on_end
        self._on_shown = on_shown
        self._journal = journal
        self._closed = False

    # ----------------------------------------------------------------- public

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
        journaled: bool = False,
    ) -> Job:
        """Journal and queue ``request``; its presenter sees every view from the first ``queued`` one on.

        ``target`` is the front end's own note of where the job is shown, kept
        in the journal so the job can be resumed after a restart. A front end
        that journaled the job itself before showing it (with its charge: see
        :meth:`bot.moderation.policy.Policy.charge`) passes ``journaled=True``: then only
        the target is recorded (with the create mark).
        """
        if self._closed:
            raise ImagineError(tr("The bot is shutting down; try again in a moment."))
        job_id = job_id or self._new_id()
        if self._journal is not None and not journaled:  # first: a job the journal does not know is not accepted
            await self._journal.accepted(job_id, request, target)
        job = self._new_job(job_id, request, presenter)
        if journaled:
            # Written with the create mark, one write fewer per job: until then a restart finds the
            # message through the interaction's @original (see DiscordPresenter).
            job.unjournaled_target = target
        self._queue.push(job)
        self._dispatch()
        if job.task is None:
            self._show_positions()
        else:
            self.show(job, job.view)
        return Job(self, job)

    def resume(self, jobs: Sequence[ResumedJob]) -> list[Job]:
        """Take back journaled jobs after a restart (or a takeover), never creating a second prediction.

        Jobs that were running (a prediction, or a create that may have gone
        out) take their slots first, over the caps if need be, since they run
        on the API already; only then do the waiting ones queue, so nothing
        starts that the caps would not allow. A job with a prediction id is
        polled to its end; one whose create may have gone out looks its
        prediction up (:mod:`bot.jobs.recovery`) and carries on with it.
        """
        handles = []
        running = [item for item in jobs if item.prediction_id is not None or item.create_started_at is not None]
        waiting = [item for item in jobs if item.prediction_id is None and item.create_started_at is None]
        for item in running:
            job = self._new_job(item.job_id, item.request, item.presenter, age=item.age)
            job.create_started_at = item.create_started_at
            self._start(job, prediction_id=item.prediction_id)
            handles.append(Job(self, job))
        for item in waiting:
            job = self._new_job(item.job_id, item.request, item.presenter, age=item.age)
            self._queue.push(job)
            handles.append(Job(self, job))
        self._dispatch()
        self._show_positions()
        return handles

    def _new_job(self, job_id: str, request: JobRequest, presenter: Presenter, *, age: float = 0.0) -> LiveJob:
        job = LiveJob(
            id=job_id,
            request=request,
            presenter=presenter,
            submitted_at=self._clock.monotonic() - age,
            view=JobView(job_id, request, JobState.QUEUED, notes=request.notes),
        )
        self._jobs[job_id] = job
        return job

    def job(self, job_id: str) -> Job | None:
        """The job with this id, while the process knows it."""
        job = self._jobs.get(job_id)
        return Job(self, job) if job else None

    @property
    def queued(self) -> int:
        """Jobs waiting for a slot."""
        return len(self._queue)

    @property
    def running(self) -> int:
        """Jobs running now."""
        return self._slots.total

    def queued_by(self, guild_id: int | None, member_id: int | None) -> int:
        """This member's jobs waiting here for a slot."""
        return self._queue.waiting((guild_id, member_id))

    def member_jobs(self, guild_id: int, member_id: int) -> list[MemberJob]:
        """This member's jobs in this server that this process runs or queues (:func:`member_jobs`); read only."""
        return member_jobs(self._jobs.values(), self._queue, (guild_id, member_id))

    def free_slots(self, guild_id: int | None) -> int:
        """How many more of this server's jobs would start here at once, under both caps.

        Every waiting job is held back by a cap (the queue is served at each change), so a free slot
        here goes to the next job of this server, not to one already waiting.
        """
        return self._slots.free(guild_id)

    async def cancel(self, job_id: str, *, by: int | None = None, error: Text | str | None = None) -> bool:
        """Cancel a job: a waiting one ends now, a running one is canceled on the API too. With ``error`` (its
        account's key was refused) a waiting one fails with it, a running one with its next request's reason."""
        job = self._jobs.get(job_id)
        if job is None or job.view.terminal or job.cancel_event.is_set():
            return False
        job.canceled_by = by
        job.cancel_event.set()
        if self._queue.remove(job):
            await self.finish(job, JobState.FAILED if error else JobState.CANCELED, error=error)
            self._show_positions()
        elif error is None:
            self.show(job, replace(job.view, cancel_requested=True))
        return True

    def use_webhooks(self, url: str, events: PredictionEvents) -> None:
        """Create predictions with the webhook ``url``; results pushed to ``events`` wake their jobs."""
        self._executor.webhook_url = url
        self._executor.events = events

    def live_job_ids(self) -> list[str]:
        """The jobs this process is running or showing now."""
        return [job.id for job in self._jobs.values() if not job.done.is_set()]

    async def drop(self, job_id: str) -> None:
        """Another process took this job over (this one was thought dead): leave it to that process."""
        job = self._jobs.get(job_id)
        if job is not None:
            await self._let_go(job)

    async def _let_go(self, job: LiveJob) -> None:
        """Stop everything of ``job`` here and show nothing more: its new owner shows its outcome."""
        if job.done.is_set() or job.ending:
            return
        log.warning("job %s was taken over by another process; leaving it to that process", job.id)
        job.done.set()
        self._queue.remove(job)
        current = asyncio.current_task()
        tasks = [task for task in (job.task, job.pump) if task is not None and not task.done() and task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await job.presenter.close()
        except Exception:
            log.exception("presenter of job %s failed to close", job.id)
        self._jobs.pop(job.id, None)
        self._show_positions()

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
            await asyncio.wait(settling, timeout=self._timings.prefer_wait + 15)
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
        while not self._slots.full:
            job = self._queue.pop(self._slots.server_has_room, self._slots.of_member)
            if job is None:
                return
            self._start(job)

    def _start(self, job: LiveJob, *, prediction_id: str | None = None) -> None:
        self._slots.take(job)
        job.task = asyncio.create_task(self._run(job, prediction_id), name=f"job-{job.id}")

    def _show_positions(self) -> None:
        """Show waiting jobs their new places where a member learns something (:func:`position_worth_showing`)."""
        for position, job in enumerate(self._queue.in_order(), start=1):
            if position_worth_showing(job.view.queue_position, position):
                self.show(job, replace(job.view, queue_position=position))

    def show(self, job: LiveJob, view: JobView) -> None:
        """Hand a non-terminal view to the job's presenter without waiting (:func:`showing.show`)."""
        showing.show(job, view)

    async def _book(self, job: LiveJob, view: JobView) -> None:
        if self._on_end is not None:
            try:
                await self._on_end(view)
            except Exception:
                log.exception("bookkeeping after job %s failed", job.id)

    async def finish(self, job: LiveJob, state: JobState, **changes: Any) -> None:
        """End ``job`` with ``state``: bookkeeping, its final view shown, the journal written."""
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
        if self._journal is not None:
            try:
                await self._journal.finishing(job.id)
            except JobTakenOver:
                await self._let_go(job)
                return
        job.ending = True
        view = await showing.settle_and_show(job, view, self._book)
        if self._on_shown is not None:
            self._on_shown(view)
        if self._journal is not None:
            try:
                if job.unjournaled_target is not None:  # ended before its create: keep where it was shown
                    await self._journal.shown(job.id, job.unjournaled_target)
                await self._journal.ended(view)
            except JobTakenOver:
                log.warning("job %s was taken over just as it ended here", job.id)
        job.done.set()
        # Ended jobs stay known for a while (Re-roll reads them); their images' bytes only if
        # someone waits for them (the imagine command), not for the presenter that already sent them.
        if not job.keep_images:
            job.view = replace(view, images=())
        self._ended.append(job.id)
        while len(self._ended) > self._keep_ended:
            self._jobs.pop(self._ended.popleft(), None)

    # ----------------------------------------------------------------- running

    async def _run(self, job: LiveJob, prediction_id: str | None) -> None:
        try:
            await self._executor.run(job, prediction_id)
        except asyncio.CancelledError:
            raise
        except JobTakenOver:
            await self._let_go(job)
        except Exception:
            reference = secrets.token_hex(3)
            log.exception("job %s failed unexpectedly (reference %s)", job.id, reference)
            if not job.view.terminal:
                await self.finish(
                    job,
                    JobState.FAILED,
                    error=tr("Something went wrong on our side (reference {reference}).", reference=reference),
                )
        finally:
            self._slots.give_back(job)
            if not self._closed:
                self._dispatch()
                self._show_positions()
