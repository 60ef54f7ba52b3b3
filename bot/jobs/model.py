"""What a job is: its request, its state, the views a member sees, and who shows and records them.

A job goes ``queued → starting → processing → succeeded | failed | canceled |
timed_out``, and every change is shown to its :class:`Presenter` as an
immutable :class:`JobView`. Nothing here knows Discord or SQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol

from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.api.predictions import Progress
from bot.api.safety import Checker, apply_checker
from bot.i18n import Text
from bot.jobs.poll_planner import PollPolicy
from bot.media.images import ImageFile


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


class JobKind(StrEnum):
    """What a member asked for: a generation, or an upscale or variation of one image of an earlier job."""

    IMAGINE = "imagine"
    UPSCALE = "upscale"
    VARY = "vary"


@dataclass(frozen=True)
class Generation:
    """The model and options a generation ran with: what Re-roll, Remix and the variations of its images start from."""

    model: ModelRef
    options: ImagineOptions
    kind: JobKind = JobKind.IMAGINE
    """A generation from a prompt, or a variation of an image."""
    image_input: str | None = None
    """The model's image input, where its schema shows one: its images can be varied."""


@dataclass(frozen=True)
class JobRequest:
    """Everything needed to run one generation, already checked against the model."""

    model: ModelRef
    options: ImagineOptions
    inputs: Mapping[str, Any]
    notes: tuple[Text | str, ...] = ()
    images_expected: int = 1
    requester_id: int | None = None
    guild_id: int | None = None
    channel_id: int | None = None
    charged_images: int = 0
    """Images counted against the requester's daily limit; what is not delivered is refunded."""
    charged_day: date | None = None
    reserved_cost: int = 0
    """Micro-dollars reserved against the budgets on ``charged_day``; the real cost replaces it when the job ends."""
    kind: JobKind = JobKind.IMAGINE
    image_input: str | None = None
    """The model's image input, where its schema shows one: its results can be varied (V buttons)."""
    origin: Generation | None = None
    """For an upscale, the generation whose image it upscaled (the upscaler is no generator): what Remix and
    Vary on the upscaled image run. ``None`` elsewhere, and for upscales journaled before origins were."""
    account: str | None = None
    """The API account its prediction belongs to: a server's own key's fingerprint (never the key), ``None``
    for the deployment's (:mod:`bot.api.accounts`). Fixed when the job is made, so a restart polls the same."""
    checker: Checker = Checker.ON
    """The model's safety checker: on unless an age-restricted channel's server turned it off (the owner's own
    inputs pass on the command line). Every request's inputs keep to it, whichever way it was made."""
    spoiler: bool = False
    """Its images are attached as spoilers (an age-restricted model's, in an age-restricted channel)."""

    def __post_init__(self) -> None:
        # The one point every request passes (prepared, varied, replayed from the journal): no input that turns
        # the safety checker off is ever sent where the checker is on, whatever asked for it.
        explicit = self.options.extra.keys() if self.checker is Checker.OWNER else ()
        object.__setattr__(self, "inputs", apply_checker(self.inputs, self.checker, explicit=explicit))

    @property
    def prompt(self) -> str:
        """The member's prompt."""
        return self.options.prompt

    @property
    def generation(self) -> Generation | None:
        """The generation this job's images stand for: its own, or an upscale's origin (``None``: not known)."""
        if self.kind is JobKind.UPSCALE:
            return self.origin
        return Generation(self.model, self.options, self.kind, self.image_input)


@dataclass(frozen=True)
class JobView:
    """An immutable snapshot of what the requester should see now."""

    job_id: str
    request: JobRequest
    state: JobState
    queue_position: int | None = None
    progress: Progress | None = None
    prediction_id: str | None = None
    error: str | Text | None = None
    """Why the job did not succeed, as the reader's language renders it (``bot.i18n.render``)."""
    images: tuple[ImageFile, ...] = ()
    seed: int | None = None
    predict_time: float | None = None
    elapsed: float | None = None
    notes: tuple[str | Text, ...] = ()
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


@dataclass(frozen=True)
class JobTimings:
    """How long an engine's jobs may run and how their calls to the API are paced; production values by default."""

    job_timeout: float = 600.0
    """Seconds a job may take from its create before its prediction is canceled (``IMAGINE_JOB_TIMEOUT``)."""
    prefer_wait: int = 1
    """Seconds a create may be held for its result when polling (with webhooks it is not held: their events
    show the progress at once)."""
    progress_tick: float = 0.25
    """How often the progress bar's estimate is looked at between polls (a view goes out when its percentage
    changes)."""
    poll: PollPolicy = field(default_factory=PollPolicy)


class JobTakenOver(Exception):
    """Another process took this job over (this one was thought dead): stop touching it, show nothing more."""


class ImagesNotShown(Exception):
    """A presenter could not show a final view's images, and showed nothing of that view.

    ``reason`` tells the member why, in plain words; ``kept`` are the images it can show
    (none: it can show no image at all). The engine books the job for what will be seen
    and shows the view again with only those images.
    """

    def __init__(self, reason: str | Text, kept: tuple[ImageFile, ...] = ()) -> None:
        super().__init__(str(reason))
        self.reason = reason
        self.kept = kept

    def amend(self, view: JobView) -> JobView:
        """``view`` as it can be shown: with the kept images and a note, or failed with the reason."""
        if self.kept:
            return replace(view, images=self.kept, notes=(*view.notes, self.reason))
        return replace(view, state=JobState.FAILED, images=(), error=self.reason)


class Presenter(Protocol):
    """Shows a job's views to someone.

    ``show`` must return quickly for non-terminal views (coalesce slow output
    yourself); for the terminal view it returns once that view was delivered
    or delivery was given up on. It raises :class:`ImagesNotShown` (having shown
    nothing) when the terminal view's images cannot all be shown.
    """

    async def show(self, view: JobView) -> None:
        """Show ``view``."""
        ...

    async def close(self) -> None:
        """The process is stopping before the job ended: stop showing it (it resumes after a restart)."""
        ...


class JobJournal(Protocol):
    """Where the engine writes each step of a job down (see :mod:`bot.jobs.journal`)."""

    async def accepted(self, job_id: str, request: JobRequest, target: Mapping[str, Any] | None) -> None:
        """Before the job is queued (and, for a front end that journals first, before it is shown)."""
        ...

    async def shown(self, job_id: str, target: Mapping[str, Any]) -> None:
        """A job journaled before it was shown is now shown at ``target``."""
        ...

    def give_up(self, job_id: str, reason: str) -> None:
        """Abandon a job that never created anything, in the background, until the database answers."""
        ...

    async def creating(self, job_id: str, *, target: Mapping[str, Any] | None = None) -> None:
        """Just before the create request goes out (with where the job is shown, if that changed)."""
        ...

    async def created(self, job_id: str, prediction_id: str) -> None:
        """As soon as the prediction's id is known."""
        ...

    async def claim(self, job_id: str, prediction_id: str) -> bool:
        """Take a prediction found by a lookup; ``False`` if another job already has it."""
        ...

    async def usual_run_time(self, model: str) -> float | None:
        """How long the model usually runs (``metrics.predict_time``, averaged), if known."""
        ...

    async def finishing(self, job_id: str) -> None:
        """Just before the final view is shown; raises :class:`JobTakenOver` if another process has the job."""
        ...

    async def ended(self, view: JobView) -> None:
        """With the final view."""
        ...


@dataclass(eq=False)
class LiveJob:
    """A job this process is running or showing: its request, presenter, latest view and signals."""

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
    unjournaled_target: Mapping[str, Any] | None = None
    """Where the job is shown, known since it was journaled: written with the create mark."""
    ending: bool = False
    """Its final view is being shown (this process owns the outcome)."""
    create_started_at: datetime | None = None
    """When a create may have gone out before a restart (wall clock): a resumed job looks for its prediction."""

    @property
    def member_key(self) -> Hashable:
        return (self.request.guild_id, self.request.requester_id)

    @property
    def server_key(self) -> Hashable:
        return self.request.guild_id
