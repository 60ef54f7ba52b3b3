"""What a benchmark run measures: its sections, the full and quick plans, the scale-out deployments, and the
creates budget the whole deployment aims at (:mod:`bench.run` says how each section runs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from bot.api.ratelimit import _BURST_SHARE, _HEADROOM, REPLICATE_CREATES_PER_MINUTE

SECTIONS = ("overhead", "scale", "sustained", "scale-out")
"""The parts of a run, in the order they run (``python -m bench --only`` / ``--skip`` pick among them)."""

CREATES_PER_SECOND = REPLICATE_CREATES_PER_MINUTE * _HEADROOM / 60
"""The creates budget of the whole deployment the bot aims at: 90 % of Replicate's 600 a minute, 9 a second."""
CREATES_BURST = REPLICATE_CREATES_PER_MINUTE * _BURST_SHARE
"""Creates the budget lets through at once when it has been idle (the bucket's capacity), over all processes."""


@dataclass(frozen=True)
class Plan:
    """What one run measures."""

    mode: str
    durations: tuple[float, ...]
    one_at_a_time: Mapping[float, int]
    """Jobs run one after the other, per prediction time."""
    at_once: Mapping[float, int]
    """Jobs started together, per prediction time (0: skipped)."""
    scale_jobs: int
    scale_duration: float
    scale_members: int
    scale_timeout: float
    scale_push_rate: float | None = None
    """Interactions per second for the scale run; ``None``: all at once (the issue's case)."""
    image_kib: int = 100
    """Size of each output file: about what flux-schnell's 1024x1024 WEBP weighs."""
    notes: tuple[str, ...] = ()
    scale_out_jobs: int = 0
    """Jobs of the burst each scale-out deployment gets (0: no scale-out section)."""
    scale_out_duration: float = 0.5
    scale_out_guilds: int = 8
    """Servers, spread over the shards in turn (the members are spread over the servers)."""
    scale_out_timeout: float = 120.0
    sustained_seconds: float = 0.0
    """Seconds of ``/imagine`` pushed at :attr:`sustained_rate` in the sustained phase (0: no sustained phase)."""
    sustained_duration: float = 30.0
    """Prediction time of the sustained phase's jobs."""
    sustained_rate: float = 0.0
    """``/imagine`` a second in the sustained phase (0: the rate the deployment's creates budget refills at,
    :data:`CREATES_PER_SECOND`: matched, not exceeded)."""
    sustained_drain: float = 180.0
    """Seconds allowed after the last push for the sustained phase's jobs to end."""

    @property
    def sustained_push_rate(self) -> float:
        """``/imagine`` a second in the sustained phase."""
        return self.sustained_rate or CREATES_PER_SECOND

    @property
    def sustained_jobs(self) -> int:
        """Jobs of the sustained phase."""
        return round(self.sustained_seconds * self.sustained_push_rate)

    def to_json(self) -> dict[str, Any]:
        """JSON-able plan."""
        data = asdict(self)
        data["one_at_a_time"] = {str(k): v for k, v in self.one_at_a_time.items()}
        data["at_once"] = {str(k): v for k, v in self.at_once.items()}
        return data


FULL = Plan(
    mode="full",
    durations=(0.5, 4.0, 5.0, 30.0),
    one_at_a_time={0.5: 15, 4.0: 5, 5.0: 5, 30.0: 3},
    at_once={0.5: 50, 5.0: 50, 30.0: 50},
    scale_jobs=1000,
    scale_duration=5.0,
    scale_members=1000,
    scale_timeout=300.0,
    scale_out_jobs=600,
    scale_out_timeout=240.0,
    sustained_seconds=300.0,
    sustained_duration=30.0,
)

QUICK = Plan(
    mode="quick",
    durations=(0.5, 4.0, 5.0),
    one_at_a_time={0.5: 4, 4.0: 2, 5.0: 2},
    at_once={0.5: 20, 5.0: 0},
    scale_jobs=200,
    scale_duration=0.5,
    scale_members=200,
    scale_timeout=40.0,
    scale_out_jobs=120,
    scale_out_timeout=60.0,
    sustained_seconds=45.0,
    sustained_duration=5.0,
    sustained_drain=90.0,
    notes=(
        "quick run: scaled down to about three minutes: no 30 s predictions, 4, 2 and 2 jobs one at a "
        "time, 20 (not 50) at once and only for 0.5 s predictions, and a scale run of 200 (not 1000) "
        "jobs of 0.5 s (not 5 s) predictions; use the full run for the figures the targets speak of",
        "quick run: the sustained phase pushes for 45 s (not 5 minutes) and its predictions take 5 s (not 30 s), "
        "so about 45 (not 270) run at once",
        "quick run: the scale-out bursts are 120 (not 600) jobs, a quarter of them inside the creates "
        "budget's initial burst, so jobs a minute are indicative only (the scale-out section adds about 75 s)",
    ),
)


JITTER = 0.1
"""Prediction times are spread uniformly over +-10 % of the nominal time.

A fixed 5.000 s would be in phase with the naive loop's 1 s sleeps (and with any fixed poll
schedule), so its result would hinge on a few milliseconds of scheduling noise; real prediction
times vary anyway. Every client gets the same sequence of times (same seed)."""


@dataclass(frozen=True)
class Deployment:
    """One scale-out configuration: ``processes`` bot processes, one shard each, on one database."""

    processes: int
    database: str
    """``sqlite`` (one process only) or ``postgresql``."""

    @property
    def label(self) -> str:
        """``2 processes, PostgreSQL``."""
        name = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[self.database]
        return f"{self.processes} process{'es' if self.processes > 1 else ''}, {name}"


DEPLOYMENTS = (
    Deployment(1, "sqlite"),
    Deployment(1, "postgresql"),
    Deployment(2, "postgresql"),
    Deployment(4, "postgresql"),
)
BASELINE_DEPLOYMENT = Deployment(1, "postgresql")
"""What every configuration's jobs a minute is compared with."""


def creates_ceiling(jobs: int, duration: float) -> float:
    """Most jobs a minute the creates budget allows for a burst of ``jobs``, first push to last image.

    The budget lets :data:`CREATES_BURST` creates through at once, then :data:`CREATES_PER_SECOND`; the
    last prediction then takes ``duration``.
    """
    return jobs / (max(0.0, jobs - CREATES_BURST) / CREATES_PER_SECOND + duration) * 60
