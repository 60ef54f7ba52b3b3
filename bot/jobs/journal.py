"""The jobs journal: every accepted job, written down before its prediction is created.

The engine reports each step here (accepted → creating → created → ended);
after a restart :meth:`Journal.unfinished` says what to resume and how. The
journal stores the front end's ``target`` (where the job's message lives) as
opaque data and clears it once the job has ended, so an interaction token
never outlives its job in the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.base.clock import Clock
from bot.jobs.model import JobRequest, JobState, JobTakenOver, JobView
from bot.jobs.serialization import request_from_json, request_to_json
from bot.storage import DatabaseUnavailable, JobRecord, Repository

log = logging.getLogger(__name__)

RUN_TIME_CACHE_SECONDS = 60.0

RETRY_DELAYS = (0.5, 1.0, 2.0)
"""Seconds before each new try of a journal write the database did not answer (then the error stands)."""

UNSTARTED_AFTER = 60.0
"""Seconds after which a job this process journaled but neither runs nor shows is abandoned (its charge
given back): set-up takes seconds, so older ones were given up, or their charge's commit landed unseen."""

NOT_STARTED = "never started: its set-up did not finish"
"""The error a job given up during its set-up, or cut there by a crash, ends with (the member's history)."""


def _where_shown(target: Mapping[str, Any]) -> dict[str, Any]:
    """Journal changes for a front end's target: the target, and the message it names kept on its own
    (a Discord target names one once shown; unlike the target, the id outlives the job, for history)."""
    value = target.get("message_id")
    changes: dict[str, Any] = {"target": dict(target)}
    if isinstance(value, int) and not isinstance(value, bool):
        changes["message_id"] = value
    return changes


@dataclass(frozen=True)
class Unfinished:
    """A job to resume after a restart."""

    job_id: str
    request: JobRequest
    target: Mapping[str, Any] | None
    prediction_id: str | None
    create_started_at: datetime | None
    """When the create request may have gone out; without a ``prediction_id`` the prediction is looked up."""
    age: float
    """Seconds since the job started (its create went out), or since it was accepted if it had not."""


class Journal:
    """Writes one process's steps of its jobs to the repository.

    Every write after acceptance is guarded by ownership: a job another
    process took over (:mod:`bot.ops.cluster`) raises :class:`JobTakenOver` at the
    next step, and this process leaves it alone. A write the database does not
    answer is tried again a few times (:data:`RETRY_DELAYS`); one that still
    fails is logged, never fatal to the job, except the create mark (without it
    a restart could create a second prediction).
    """

    def __init__(self, repository: Repository, clock: Clock, *, owner: str = "local") -> None:
        """``owner`` is this process's incarnation (see :class:`bot.ops.cluster.Cluster`)."""
        self._repository = repository
        self._clock = clock
        self.owner = owner
        self._run_times: dict[str, tuple[float | None, float]] = {}
        self._given_up: dict[str, tuple[str, float]] = {}
        """Jobs given up here, not yet abandoned: the reason, and when (monotonic)."""
        self._abandoning: set[asyncio.Task[None]] = set()

    def entry(self, job_id: str, request: JobRequest, target: Mapping[str, Any] | None) -> JobRecord:
        """A newly accepted job's journal entry, owned by this process (:meth:`accepted` writes it, or a charge)."""
        return JobRecord(
            job_id=job_id,
            model=str(request.model),
            prompt=request.prompt,
            request=request_to_json(request),
            state="queued",
            created_at=self._clock.now(),
            guild_id=request.guild_id,
            channel_id=request.channel_id,
            requester_id=request.requester_id,
            target=dict(target) if target is not None else None,
            owner=self.owner,
            message_id=_where_shown(target).get("message_id") if target is not None else None,
            charged_images=request.charged_images,
            charged_day=request.charged_day,
            reserved_cost=request.reserved_cost,
        )

    async def accepted(self, job_id: str, request: JobRequest, target: Mapping[str, Any] | None) -> None:
        """The job was accepted (and is about to be shown): it now exists, whatever happens next."""
        await self._repository.add_job(self.entry(job_id, request, target))

    async def creating(self, job_id: str, *, target: Mapping[str, Any] | None = None) -> None:
        """The create request is about to go out. Raises if it cannot be written: then nothing is created."""
        changes = _where_shown(target) if target is not None else {}
        await self._owned(job_id, state="creating", create_started_at=self._clock.now(), **changes)

    async def placing(self, job_id: str, target: Mapping[str, Any]) -> None:
        """The job is about to be shown at ``target``: one try, raising :class:`~bot.storage.StorageError`
        (the caller gives the job up and says so) or :class:`JobTakenOver`.

        Only a job with a target is resumed after a restart: one journaled without (its set-up given up
        before anything was shown, or cut by a crash) is abandoned instead, its charge given back.
        """
        if not await self._repository.update_job(job_id, owner=self.owner, **_where_shown(target)):
            raise JobTakenOver(job_id)

    async def placing_set(self, targets: Mapping[str, Mapping[str, Any]]) -> None:
        """:meth:`placing` for a set's jobs (job id → its target), all in one transaction: every one of them is
        resumed after a restart, or none. One try, raising :class:`~bot.storage.StorageError` or
        :class:`JobTakenOver` (and nothing is written)."""
        changes = {job_id: _where_shown(target) for job_id, target in targets.items()}
        if not await self._repository.update_jobs(changes, owner=self.owner):
            raise JobTakenOver(next(iter(targets), ""))

    async def shown(self, job_id: str, target: Mapping[str, Any]) -> None:
        """The job is now shown at ``target``: journaled before it was shown, or its message moved.

        A target that names its message (``message_id``) has that id kept on its own as well: unlike the
        target, it outlives the job (history links to it).
        """
        await self._safely(job_id, **_where_shown(target))

    async def created(self, job_id: str, prediction_id: str) -> None:
        """The API answered with the prediction's id."""
        await self._safely(job_id, state="running", prediction_id=prediction_id)

    async def claim(self, job_id: str, prediction_id: str) -> bool:
        """Take a prediction found by a lookup, unless another journaled job already has it."""
        holder = await self._repository.job_with_prediction(prediction_id)
        if holder is not None and holder != job_id:
            return False
        await self._owned(job_id, state="running", prediction_id=prediction_id)
        return True

    async def finishing(self, job_id: str) -> None:
        """The final view is about to be shown: raises :class:`JobTakenOver` if another process has the job."""
        try:
            # Not waiting for the disk (it is on the way to the member's image): lost in a power cut, the job
            # is only resumed and shown again; a takeover is still seen, the write still checks the owner.
            await self._owned(job_id, state="finishing", durable=False)
        except JobTakenOver:
            raise
        except Exception:
            log.exception("could not journal job %s (finishing); showing its outcome anyway", job_id)

    async def usual_run_time(self, model: str) -> float | None:
        """How long ``model`` usually runs, learned from its predictions' ``metrics.predict_time``.

        Read from the database at most once a minute per model: every job start asks.
        """
        cached = self._run_times.get(model)
        now = self._clock.monotonic()
        if cached is not None and now - cached[1] < RUN_TIME_CACHE_SECONDS:
            return cached[0]
        seconds = await self._repository.model_run_time(model)
        self._run_times[model] = (seconds, now)
        return seconds

    async def ended(self, view: JobView) -> None:
        """The job's final state; its target (and the token in it) is forgotten; the model's run time learned."""
        if view.predict_time is not None and view.state is JobState.SUCCEEDED:
            try:
                await self._repository.record_run_time(
                    str(view.request.model), view.predict_time, now=self._clock.now()
                )
            except Exception:
                log.exception("could not record the run time of %s", view.request.model)
        await self._safely(
            view.job_id,
            state=str(view.state),
            ended_at=self._clock.now(),
            error=None if view.error is None else str(view.error),  # English in the database
            images_delivered=len(view.images),
            seed=view.seed,
            predict_time=view.predict_time,
            prediction_id=view.prediction_id,
            target=None,
        )

    async def _owned(self, job_id: str, *, durable: bool = True, **changes: Any) -> None:
        update = self._repository.update_job
        if not await self._retrying(lambda: update(job_id, owner=self.owner, durable=durable, **changes)):
            raise JobTakenOver(job_id)

    async def _retrying(self, write: Callable[[], Awaitable[bool]]) -> bool:
        """``write()``, tried again after :data:`RETRY_DELAYS` while the database does not answer.

        Only for writes that may safely land twice (the second finds the first's result): the answer of
        the first may be what was lost.
        """
        for delay in RETRY_DELAYS:
            try:
                return await write()
            except DatabaseUnavailable as exc:
                log.warning("the journal could not be written (%s); trying again in %g s", exc, delay)
                await self._clock.sleep(delay)
        return await write()

    async def _safely(self, job_id: str, **changes: Any) -> None:
        try:
            await self._owned(job_id, **changes)
        except JobTakenOver:
            raise
        except Exception:
            log.exception("could not journal job %s (%s)", job_id, ", ".join(changes))

    async def abandon(self, job_id: str, reason: str) -> bool:
        """End a job that cannot be carried on, failed with ``reason``, and give back all it was charged, once.

        ``False`` if it had ended, another process took it over, or the database could not be written (then
        the job is still unfinished: the next restart or takeover resumes it, or abandons it again).
        """
        now = self._clock.now()
        try:
            return await self._retrying(
                lambda: self._repository.abandon_job(job_id, owner=self.owner, reason=reason, now=now)
            )
        except DatabaseUnavailable as exc:
            log.warning("could not journal job %s as abandoned (%s): %s", job_id, reason, exc)
            return False
        except Exception:
            log.exception("could not journal job %s as abandoned (%s)", job_id, reason)
            return False

    def give_up(self, job_id: str, reason: str = NOT_STARTED) -> None:
        """Abandon a job whose set-up failed, in the background (the caller holds the member's lock): tried
        now and with each heartbeat (:meth:`abandon_unstarted`) until it lands. The job may not exist yet:
        its charge's commit can land after its answer was lost."""
        self._given_up[job_id] = (reason, self._clock.monotonic())
        task = asyncio.get_running_loop().create_task(self._abandon_given_up(job_id), name=f"abandon-{job_id}")
        self._abandoning.add(task)
        task.add_done_callback(self._abandoning.discard)

    async def _abandon_given_up(self, job_id: str) -> None:
        given_up = self._given_up.get(job_id)
        if given_up is None:
            return
        if await self.abandon(job_id, given_up[0]):
            self._given_up.pop(job_id, None)
        elif self._clock.monotonic() - given_up[1] > UNSTARTED_AFTER:
            # Never committed, or committed and now old enough for the sweep below: forgotten here.
            self._given_up.pop(job_id, None)

    async def close(self) -> None:
        """Stop the abandons under way (the process is going away: its next start abandons those jobs)."""
        tasks = list(self._abandoning)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def abandon_unstarted(self, running: Callable[[], Collection[str]]) -> None:
        """Abandon the jobs given up here, and this process's jobs still ``queued`` for
        :data:`UNSTARTED_AFTER` that ``running()`` (the engine) does not know: set-ups given up whose charge
        landed late or whose abandon failed, and jobs journaled without a target (a single job's or a whole
        set's: charged, then cut before :meth:`placing` or :meth:`placing_set` landed, so never resumed).

        A job has a target only once its whole set-up was let through: a charge whose answer was lost (the
        member told it did not start) never journals one, so no restart runs what the member was told was
        refused."""
        for job_id in list(self._given_up):
            await self._abandon_given_up(job_id)
        before = self._clock.now() - timedelta(seconds=UNSTARTED_AFTER)
        stale = await self._repository.unstarted_jobs(self.owner, journaled_before=before)
        if not stale:
            return
        live = set(running())  # read after the query: a job submitted meanwhile is in it
        for job_id in stale:
            if job_id not in live and await self.abandon(job_id, NOT_STARTED):
                log.warning("job %s was set up %gs ago but never started; abandoned", job_id, UNSTARTED_AFTER)

    async def member_history(self, guild_id: int, member_id: int, *, limit: int = 10) -> list[JobRecord]:
        """The member's latest jobs in this server, newest first (``/imagine-history``)."""
        return await self._repository.member_history(guild_id, member_id, limit=limit)

    async def request_of(self, job_id: str) -> JobRequest | None:
        """A journaled job's request (Re-roll after a restart)."""
        record = await self._repository.get_job(job_id)
        return request_from_json(record.request) if record else None

    async def claim_restart(self, name: str) -> list[Unfinished]:
        """This process's jobs from before a restart (earlier incarnations of ``name``, and ownerless ones)."""
        return await self._readable(await self._repository.claim_jobs(self.owner, name=name))

    async def claim_dead(self, silent_for: float) -> list[Unfinished]:
        """The unfinished jobs of processes silent for ``silent_for`` seconds (the database's clock), now ours."""
        return await self._readable(await self._repository.claim_jobs(self.owner, silent_for=silent_for))

    async def _readable(self, records: list[JobRecord]) -> list[Unfinished]:
        now = self._clock.now()
        jobs = []
        for record in records:
            try:
                request = request_from_json(record.request)
            except (KeyError, ValueError, TypeError):
                log.exception(
                    "journaled job %s cannot be read; marking it failed, its charge given back", record.job_id
                )
                await self.abandon(record.job_id, "unreadable journal entry")
                continue
            jobs.append(
                Unfinished(
                    job_id=record.job_id,
                    request=request,
                    target=record.target,
                    prediction_id=record.prediction_id,
                    create_started_at=record.create_started_at,
                    # Stamped by whichever process's clock wrote it: never negative for a slow clock here.
                    age=max(0.0, (now - (record.create_started_at or record.created_at)).total_seconds()),
                )
            )
        return jobs
