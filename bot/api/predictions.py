"""Prediction records as the bot reads them from the API's replies: status, outputs, logs, metrics, timestamps.

:class:`Prediction` keeps the parts the bot uses (and the raw reply); progress and seed are read from the
model's logs, outputs are sorted into files the bot may fetch and refusals worded for the member.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from bot.api.errors import ServerError
from bot.i18n import Text, tr

log = logging.getLogger(__name__)

TERMINAL_STATUSES: Final = frozenset({"succeeded", "failed", "canceled", "aborted"})
KNOWN_STATUSES: Final = frozenset({"starting", "processing", *TERMINAL_STATUSES})

# tqdm: " 75%|███████▌ | 3/4 [00:00<00:00, 15.38it/s]"
_TQDM = re.compile(r"^\s*(\d{1,3})%\s*\|.*?\|\s*(\d+)/(\d+)")
# The rate at the end of a tqdm line: "[00:03<00:01, 1.50it/s]" or "[00:03<00:06, 2.10s/it]".
_TQDM_RATE = re.compile(r",\s*(\d{1,9}(?:\.\d{1,9})?)\s*(it/s|s/it)\s*\]")
_SEED = re.compile(r"\bseed\b\s*[:=]?\s*(\d{1,20})", re.IGNORECASE)


@dataclass(frozen=True)
class Progress:
    """How far a prediction is, from the last progress bar in its logs."""

    fraction: float
    current: int
    total: int
    remaining: float | None = field(default=None, compare=False)
    """Seconds tqdm expects until the last step, from its rate; ``None`` where it shows none.

    Not part of equality: two looks at the same bar position are the same progress."""
    estimated: bool = field(default=False, compare=False)
    """Carried forward from the last bar by its rate (:mod:`bot.jobs.progress`), not read from the logs."""
    step_seconds: float | None = field(default=None, compare=False)
    """Seconds one step takes, by the rate tqdm printed (``None``: no rate yet)."""
    step_error: float = field(default=0.0, compare=False)
    """How far :attr:`step_seconds` may be off because tqdm rounds the rate it prints (seconds)."""


def parse_progress(logs: str | None) -> Progress | None:
    """The last tqdm progress bar in ``logs``, splitting on both ``\\n`` and ``\\r``."""
    if not logs:
        return None
    for line in reversed(re.split(r"[\r\n]", logs)):
        match = _TQDM.match(line)
        if match:
            percent, current, total = (int(g) for g in match.groups())
            step, error = _step_seconds(line)
            steps_left = total - current
            remaining = 0.0 if steps_left <= 0 else None if step is None else steps_left * step
            return Progress(min(percent, 100) / 100.0, current, total, remaining, step_seconds=step, step_error=error)
    return None


def _step_seconds(line: str) -> tuple[float | None, float]:
    """Seconds per step by the rate at the end of a tqdm line, and how far tqdm's rounding may put it off.

    tqdm prints ``1.50it/s`` (or ``2.10s/it`` below one step a second) to as many decimals as shown: half a
    unit of the last one is the rounding's reach.
    """
    rate = _TQDM_RATE.search(line)
    if rate is None:
        return None, 0.0
    text, unit = rate.group(1), rate.group(2)
    value = float(text)
    if value <= 0:
        return None, 0.0
    decimals = len(text.partition(".")[2])
    half_unit = 0.5 * 10.0**-decimals
    if unit == "s/it":
        return value, half_unit
    # d = 1/r: an error of e in r moves d by about e/r² (bounded where the rate is a rounded small number).
    return 1.0 / value, min(1.0 / value, 1.0 / max(value - half_unit, 1e-9) - 1.0 / value)


def parse_seed(logs: str | None) -> int | None:
    """The seed a model reported in its logs (``Using seed: 1234``), the last one wins."""
    if not logs:
        return None
    matches = _SEED.findall(logs)
    return int(matches[-1]) if matches else None


@dataclass(frozen=True)
class Prediction:
    """The parts of a prediction object the bot uses; ``raw`` keeps the whole reply."""

    id: str
    status: str
    output: Any = None
    error: str | None = None
    logs: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    input: Mapping[str, Any] = field(default_factory=dict)
    data_removed: bool = False
    model: str | None = None
    """``owner/name`` of the model, where the API says."""
    version: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    """When the model began running it (the API's clock)."""
    completed_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Prediction:
        """Parse a prediction object, or raise :class:`ServerError` if it is not one."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise ServerError(tr("The API sent a reply that is not a prediction (no id)"))
        status = data.get("status")
        if not isinstance(status, str):
            raise ServerError(tr("The API sent prediction {id} without a status", id=data["id"]))
        if status not in KNOWN_STATUSES:
            log.warning("prediction %s has an unknown status %r; treating it as still running", data["id"], status)
        error = data.get("error")
        logs = data.get("logs")
        metrics = data.get("metrics")
        inputs = data.get("input")
        model, version = data.get("model"), data.get("version")
        return cls(
            id=data["id"],
            status=status,
            output=data.get("output"),
            error=str(error).strip() or None if error is not None else None,
            logs=logs if isinstance(logs, str) else None,
            metrics=metrics if isinstance(metrics, dict) else {},
            input=inputs if isinstance(inputs, dict) else {},
            data_removed=bool(data.get("data_removed")),
            model=model if isinstance(model, str) else None,
            version=version if isinstance(version, str) else None,
            created_at=parse_timestamp(data.get("created_at")),
            started_at=parse_timestamp(data.get("started_at")),
            completed_at=parse_timestamp(data.get("completed_at")),
            raw=data,
        )

    @property
    def terminal(self) -> bool:
        """Whether the prediction has ended (an unknown status has not)."""
        return self.status in TERMINAL_STATUSES

    @property
    def progress(self) -> Progress | None:
        """Progress from the logs, where the model prints a progress bar."""
        return parse_progress(self.logs)

    @property
    def output_urls(self) -> list[str]:
        """Every output file the bot may fetch: http(s) and ``data:`` URLs, alone or in a list."""
        return [value for value in _collect_outputs(self.output) if isinstance(value, str) and _fetchable(value)]

    @property
    def refused_outputs(self) -> list[Text]:
        """Why each output that is not a file the bot may fetch was refused, one sentence each."""
        return [_refusal(value) for value in _collect_outputs(self.output) if not _fetchable(value)]

    @property
    def seed(self) -> int | None:
        """The seed used: the input's if given, else the one the model logged."""
        value = self.input.get("seed")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return parse_seed(self.logs)

    @property
    def predict_time(self) -> float | None:
        """Seconds the model ran, where the API reports it."""
        value = self.metrics.get("predict_time")
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        try:
            seconds = float(value)
        except OverflowError:
            return None
        return seconds if math.isfinite(seconds) and seconds >= 0 else None


_FETCHABLE_SCHEMES: Final = ("http://", "https://", "data:")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]{0,30}):")


def _collect_outputs(output: Any) -> list[Any]:
    """The output's items: a list is flattened, ``None`` (nothing yet) is no item."""
    if output is None:
        return []
    if isinstance(output, list):
        return [item for element in output for item in _collect_outputs(element)]
    return [output]


def _fetchable(value: Any) -> bool:
    return isinstance(value, str) and value.lower().startswith(_FETCHABLE_SCHEMES)


def _refusal(value: Any) -> Text:
    if not isinstance(value, str):
        kind = (
            tr("a JSON object")
            if isinstance(value, dict)
            else tr("true or false")
            if isinstance(value, bool)
            else tr("a number")
            if isinstance(value, int | float)
            else tr("a value")
        )
        return tr("the model returned {kind} instead of a link to a file", kind=kind)
    scheme = _SCHEME.match(value.strip())
    if scheme:
        return tr(
            "the model returned a {scheme}: link, and the bot only downloads http, https and data: URLs",
            scheme=scheme.group(1).lower(),
        )
    shown = " ".join(value.split())
    shown = shown if len(shown) <= 60 else shown[:59] + "…"
    return tr("the model returned text instead of a link to a file (“{text}”)", text=shown)


_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$")


def parse_timestamp(value: Any) -> datetime | None:
    """An API timestamp (ISO 8601, ``Z``, 0 to 9 fractional digits) as an aware datetime; ``None`` if unreadable."""
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.match(value.strip())
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    text = whole + (f".{(fraction or '')[:6].ljust(6, '0')}") + ("+00:00" if zone in (None, "Z") else zone)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class PredictionPage:
    """One page of ``GET /v1/predictions``: newest first, and the query of the next page, if any."""

    predictions: list[Prediction]
    next_query: str | None
