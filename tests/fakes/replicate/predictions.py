"""Prediction state and scenarios: :class:`Scenario` (how one prediction behaves),
:class:`FakePrediction` (its server-side state) and creating, completing and cancelling predictions.
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from tests.fakes import images
from tests.fakes.replicate.http import _RECORD
from tests.fakes.replicate.validation import _input_defaults
from tests.fakes.replicate.vocabulary import _ID_ALPHABET, DEFAULT_WEBHOOK_EVENTS, TERMINAL_STATUSES

if TYPE_CHECKING:
    from tests.fakes.replicate.models import FakeModel, FakeVersion
    from tests.fakes.replicate.outputs import FakeFile
    from tests.fakes.replicate.vocabulary import FinalStatus, JsonDict, OutputShape, ProgressStyle, Status, WebhookEvent


@dataclass(frozen=True)
class Scenario:
    """How one prediction behaves. Immutable; derive variants with ``dataclasses.replace``.

    Timeline: ``starting`` for ``start_delay`` s → ``processing`` (tqdm logs grow step by step over
    ``duration`` s) → ``final_status``. ``start_delay=None`` keeps the prediction ``starting`` until a test
    drives it (:meth:`FakeReplicate.start_processing`, :meth:`~FakeReplicate.set_progress`,
    :meth:`~FakeReplicate.finish`); ``duration=None`` keeps it ``processing`` until
    :meth:`FakeReplicate.finish`. ``Scenario.manual()`` sets both to ``None``.
    """

    start_delay: float | None = 0.02
    """Seconds in ``starting``; ``None`` = manual."""
    duration: float | None = 0.05
    """Seconds in ``processing``; ``None`` = manual (wait for :meth:`FakeReplicate.finish`)."""
    final_status: FinalStatus = "succeeded"
    """Where the timeline ends. ``aborted`` goes straight from ``starting`` (no ``started_at``, no output);
    ``canceled`` here means "canceled by Replicate" (e.g. deadline) after processing."""
    error: str | None = None
    """``error`` for ``final_status="failed"`` (default :data:`DEFAULT_FAILURE_ERROR`)."""
    output_shape: OutputShape = "list"
    nsfw_dropped: int = 0
    """How many of the requested images the safety checker drops (the first ones). If that is all of
    them the prediction fails with :data:`NSFW_ERROR`."""
    progress_style: ProgressStyle = "newline"
    setup: float = 0.0
    """Seconds in ``processing`` before the progress bar starts (a real model loads weights, encodes the
    prompt): no tqdm line until then. ``duration`` is the bar's own time, which follows."""
    wrap_up: float = 0.0
    """Seconds after the bar's last step before the prediction ends (decoding, the safety checker, upload)."""
    output_lead: float = 0.0
    """Seconds for which ``output`` is already set while status is still ``processing`` before the
    terminal status (recorded sync-mode reality). ``Prefer: wait`` returns as soon as output exists."""
    image_format: images.ImageFormat | None = None
    """Force the file format; ``None`` follows ``input.output_format`` (or its schema default, else png)."""
    image_size: tuple[int, int] | None = (64, 64)
    """Pixel size of output images; ``None`` = real size from ``aspect_ratio``/``megapixels`` or
    ``width``/``height``."""
    huge_image_mib: float | None = None
    """Serve PNGs of random noise larger than this many MiB (format forced to png)."""
    file_status: int = 200
    """HTTP status of the output-file route (e.g. 404, 403, 500)."""
    file_stall: bool = False
    """The file route sends status and headers (with the full Content-Length), then
    ``file_stall_after_bytes`` bytes, then stalls until the fake closes."""
    file_stall_after_bytes: int = 0
    file_not_image: bool = False
    """The file route serves an HTML page while claiming the image Content-Type."""
    data_removed_after: float | None = None
    """Seconds after the terminal status at which ``output`` becomes ``null``, ``data_removed`` true and
    files 404 (``0`` = immediately). ``None`` = never."""
    null_logs_on_cancel: bool = True
    """A user cancel sets ``logs`` to ``null`` as recorded Replicate traffic shows (the OpenAPI schema says
    string, so set ``False`` to keep logs)."""
    extra_outputs: int = 0
    """A hostile model: this many more output files than ``num_outputs`` asked for."""
    file_bytes: bytes | None = None
    """Serve exactly these bytes as every output file (e.g. a decompression bomb), whatever the format."""
    output_override: Any = None
    """When not ``None``, a succeeded prediction's ``output`` is exactly this value instead of the URLs of
    its files (e.g. ``"ftp://host/x.png"``, a metadata address, :meth:`FakeReplicate.redirect_url`)."""

    @classmethod
    def manual(cls, **changes: Any) -> Scenario:
        """A scenario whose timeline only moves when the test drives it."""
        return cls(**{"start_delay": None, "duration": None, **changes})


@dataclass
class FakePrediction:
    """Server-side state of one prediction. :meth:`to_json` is exactly what the API returns."""

    id: str
    model: str
    version: str
    input: JsonDict
    scenario: Scenario
    urls: dict[str, str]
    created_at: datetime
    created_mono: float
    status: Status = "starting"
    logs: str | None = ""
    output: Any = None
    error: str | None = None
    data_removed: bool = False
    started_at: datetime | None = None
    completed_at: datetime | None = None
    metrics: JsonDict | None = None
    deadline: datetime | None = None
    cancel_after: str | None = None
    """Raw ``Cancel-After`` header of the create request."""
    prefer: str | None = None
    """Raw ``Prefer`` header of the create request."""
    body: JsonDict = field(default_factory=dict)
    """The whole create body (including ``webhook`` and ``webhook_events_filter``)."""
    webhook: str | None = None
    """The create's ``webhook`` URL (loopback only in the fake), or ``None``: no webhooks are sent."""
    webhook_events: frozenset[WebhookEvent] = frozenset()
    """The events sent to :attr:`webhook` (``webhook_events_filter``, default output and completed)."""
    files: list[FakeFile] = field(default_factory=list)
    effective_input: JsonDict = field(default_factory=dict)
    """``input`` merged over the schema defaults."""
    seed: int = 0
    step: int = 0
    total_steps: int = 4
    _header: str = ""
    _footer: str = ""
    _progress: list[str] = field(default_factory=list)
    _rate: float = 14.0
    _hook_wake: asyncio.Event | None = field(default=None, repr=False)
    account: str | None = None
    """The token (account) that created it: only that account sees, cancels and lists it."""

    @property
    def terminal(self) -> bool:
        """Whether the status is terminal (succeeded, failed, canceled, aborted)."""
        return self.status in TERMINAL_STATUSES

    def monotonic_of(self, moment: datetime) -> float:
        """``moment``, one of this prediction's wall-clock stamps (``started_at``, ``completed_at``), on
        ``time.monotonic()``.

        The create is stamped on both clocks (``created_at``, ``created_mono``), later moments on the wall clock
        only: the wall-clock span from the create to ``moment`` is added to ``created_mono``, so a step of the wall
        clock (NTP) moves the result only if it falls inside the prediction's own seconds.
        """
        return self.created_mono + (moment - self.created_at).total_seconds()

    def to_json(self) -> JsonDict:
        """Return the prediction object as Replicate serialises it (a fresh deep copy)."""
        out: JsonDict = {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "input": copy.deepcopy(self.input),
            "logs": self.logs,
            "output": copy.deepcopy(self.output),
            "data_removed": self.data_removed,
            "error": self.error,
            "status": self.status,
            "created_at": _iso(self.created_at, 3),
            "urls": dict(self.urls),
        }
        if self.started_at is not None:
            out["started_at"] = _iso(self.started_at, 6)
        if self.completed_at is not None:
            out["completed_at"] = _iso(self.completed_at, 6)
        if self.metrics is not None:
            out["metrics"] = dict(self.metrics)
        if self.deadline is not None:
            out["deadline"] = _iso(self.deadline, 3)
        return out


def _iso(dt: datetime, digits: int) -> str:
    """ISO 8601 UTC with ``Z`` and ``digits`` fractional digits (Replicate's precision varies)."""
    text = dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[: len(text) - (6 - digits)] + "Z"


_CANCEL_AFTER_RE: Final = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def _parse_cancel_after(value: str) -> float | None:
    match = _CANCEL_AFTER_RE.fullmatch(value.strip())
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


class PredictionsMixin:
    """Part of :class:`FakeReplicate`: creating predictions and moving them to a terminal status."""

    def _live(self, prediction_id: str) -> FakePrediction:
        pred = self.predictions[prediction_id]
        if pred.terminal:
            raise RuntimeError(f"prediction {prediction_id} is already {pred.status}")
        return pred

    def _new_id(self) -> str:
        while True:
            pid = "".join(self._rng.choice(_ID_ALPHABET) for _ in range(26))
            if pid not in self.predictions:
                return pid

    def _create_prediction(
        self, request: web.Request, model: FakeModel, version: FakeVersion, version_field: str, body: JsonDict
    ) -> FakePrediction:
        pid = self._new_id()
        inp: JsonDict = body.get("input") or {}
        chosen = self.scenario_chooser(inp) if self.scenario_chooser is not None else None
        if chosen is not None:
            scenario = chosen
        else:
            scenario = self._scenario_queue.popleft() if self._scenario_queue else self.default_scenario
        effective = {**_input_defaults(version.openapi_schema), **inp}
        now = datetime.now(UTC)
        stream_token = "".join(self._rng.choice(_ID_ALPHABET) for _ in range(52))
        pred = FakePrediction(
            id=pid,
            model=model.ref,
            version=version_field,
            input=copy.deepcopy(inp),
            scenario=scenario,
            urls={
                "cancel": f"{self.urls_base}/v1/predictions/{pid}/cancel",
                "get": f"{self.urls_base}/v1/predictions/{pid}",
                "stream": f"{self.stream_base}/v1/files/bcwr-{stream_token}",
                "web": f"{self.web_base}/p/{pid}",
            },
            created_at=now,
            created_mono=time.monotonic(),
            account=request[_RECORD].token if _RECORD in request else None,
            cancel_after=request.headers.get("Cancel-After"),
            prefer=request.headers.get("Prefer"),
            body=copy.deepcopy(body),
            effective_input=effective,
            seed=int(seed) if isinstance(seed := inp.get("seed"), int | float) else self._rng.randint(0, 65535),
            total_steps=(steps := max(1, int(effective.get("num_inference_steps", 4)))),
            # Real tqdm reports the rate it measures: a timed scenario's bar says how long is left.
            _rate=(
                round(steps / scenario.duration, 4) if scenario.duration else round(self._rng.uniform(12.0, 16.0), 2)
            ),
        )
        self.predictions[pid] = pred
        model.run_count += 1
        if pred.cancel_after is not None:
            seconds = _parse_cancel_after(pred.cancel_after)
            if seconds is not None:
                seconds = max(seconds, self.min_cancel_after)
                pred.deadline = now + timedelta(seconds=seconds)
                self._spawn(self._deadline_watch(pred, seconds))
        if isinstance(body.get("webhook"), str) and body["webhook"]:
            pred.webhook = body["webhook"]
            chosen_events = body.get("webhook_events_filter")
            pred.webhook_events = (
                DEFAULT_WEBHOOK_EVENTS if chosen_events is None else frozenset(chosen_events)  # validated already
            )
            pred._hook_wake = asyncio.Event()
            self._spawn(self._webhook_worker(pred, pred.to_json()))
        self._spawn(self._timeline(pred))
        self._notify()
        return pred

    def _complete(self, pred: FakePrediction, status: FinalStatus, *, error: str | None = None) -> None:
        now = datetime.now(UTC)
        if status != "aborted" and pred.started_at is None:
            pred.started_at = now
        if status != "succeeded":
            pred.output = None
        pred.status = status
        pred.error = error
        pred.completed_at = now
        total = (now - pred.created_at).total_seconds()
        metrics: JsonDict = {}
        if pred.started_at is not None:
            metrics["predict_time"] = round((now - pred.started_at).total_seconds(), 6)
        if status == "succeeded" and pred.files:
            metrics["image_count"] = len(pred.files)
        metrics["total_time"] = round(total, 6)
        pred.metrics = metrics
        if status != "aborted":
            self._render_logs(pred)
        if pred.scenario.data_removed_after is not None:
            self._spawn(self._remove_later(pred, pred.scenario.data_removed_after))
        self._touch(pred)
        self._notify()

    def _cancel(self, pred: FakePrediction) -> None:
        if pred.terminal:
            return
        self._complete(pred, "canceled")
        if pred.scenario.null_logs_on_cancel:
            pred.logs = None

    async def _remove_later(self, pred: FakePrediction, delay: float) -> None:
        await asyncio.sleep(delay)
        self.remove_data(pred.id)

    async def _deadline_watch(self, pred: FakePrediction, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if pred.status == "starting":
            self._complete(pred, "aborted")
        elif not pred.terminal:
            self._complete(pred, "canceled")

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
