"""What the engine hands out and takes back: a submitted job's handle, and a journaled job to resume."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.jobs.journal import Unfinished
from bot.jobs.model import JobRequest, JobView, LiveJob, Presenter


class Canceller(Protocol):
    """What a handle needs of its engine."""

    async def cancel(self, job_id: str, *, by: int | None = None) -> bool:
        """Ask the job to stop; ``False`` if it had already ended."""
        ...


@dataclass(frozen=True)
class ResumedJob:
    """A journaled job to take back after a restart (or from a process that died)."""

    job_id: str
    request: JobRequest
    presenter: Presenter
    prediction_id: str | None
    create_started_at: datetime | None
    """When its create may have gone out; with no ``prediction_id`` the prediction is looked up, not re-created."""
    age: float = 0.0
    """Seconds since the job started (its create went out), or since it was accepted."""

    @classmethod
    def of(cls, job: Unfinished, presenter: Presenter) -> ResumedJob:
        """The journal's unfinished ``job``, shown from now on by ``presenter``."""
        return cls(
            job.job_id,
            job.request,
            presenter,
            prediction_id=job.prediction_id,
            create_started_at=job.create_started_at,
            age=job.age,
        )


class Job:
    """A handle on a submitted job."""

    def __init__(self, engine: Canceller, job: LiveJob) -> None:
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

    @property
    def presenter(self) -> Presenter:
        """What shows the job to its member (in the bot, its Discord message's presenter)."""
        return self._job.presenter

    async def cancel(self, by: int | None = None) -> bool:
        """Ask the job to stop; ``False`` if it had already ended."""
        return await self._engine.cancel(self.id, by=by)

    async def wait(self) -> JobView:
        """Wait for the job to end and return its final view (images included)."""
        self._job.keep_images = True
        await self._job.done.wait()
        return self._job.view
