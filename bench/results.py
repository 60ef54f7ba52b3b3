"""The figures of each section, as records that turn into the run's JSON (:mod:`bench.report` adds the comparisons)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.measure import PhaseResult, Summary
from bench.plan import CREATES_BURST, CREATES_PER_SECOND, Plan, creates_ceiling


def figures_json(record: Any, *summaries: str) -> dict[str, Any]:
    """``record``'s fields as JSON, each of ``summaries`` renamed ``<name>_ms`` (its figures are milliseconds)."""
    data: dict[str, Any] = asdict(record)
    for name in summaries:
        data[f"{name}_ms"] = data.pop(name)
    return data


@dataclass
class ScaleResult:
    """The scale run: many jobs at once through one bot process."""

    jobs: int
    duration: float
    members: int
    max_running: int
    push_rate: float | None
    delivered: int
    completion_s: float | None
    """From the first interaction pushed to the last image delivered (all delivered), else ``None``."""
    push_s: float
    """How long the fake Discord took to dispatch every interaction."""
    idle_rss_mb: float | None
    peak_rss_mb: float | None
    rss_at_end_mb: float | None
    max_stall_ms: float | None
    p99_stall_ms: float | None
    stalls_over_100ms: int | None
    max_stall_at_s: float | None
    max_gc_pause_ms: float | None
    throttled: int
    discord_429s: int
    """Edits the fake Discord answered 429 for their message's edit limit during the run."""
    first_answer: Summary
    """From each interaction's dispatch to the bot's first answer (Discord allows 3 s)."""
    late_answers: int
    """Interactions answered after Discord's 3 s (they fail for the member with "This interaction failed")."""
    reached_api: int
    overhead: Summary
    requests_per_job: dict[str, float]
    max_requests_per_job: int
    errors: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-able figures."""
        return figures_json(self, "overhead", "first_answer")


@dataclass
class SustainedResult:
    """The sustained phase: ``/imagine`` pushed at the creates budget's rate for minutes through one polling bot
    process."""

    seconds: float
    """How long the interactions were pushed."""
    rate: float
    """Interactions a second."""
    duration: float
    jobs: int
    members: int
    delivered: int
    throttled: int
    """429s the fake API sent (from the first push on)."""
    discord_429s: int
    """Edits the fake Discord answered 429 for their message's edit limit (from the first push on)."""
    most_running: int
    """The most predictions running (created, not yet ended) at once at the fake API."""
    last_delivery_s: float | None
    """From the first push to the last image delivered."""
    overhead: Summary
    first_percentage: Summary
    """From the prediction's processing to the first percentage its message showed (``n``: jobs that showed one)."""
    first_answer: Summary
    late_answers: int
    requests_per_job: dict[str, float]
    api_requests_per_job: float | None
    """Requests to the fake API (downloads of output files left out) per job that reached it."""
    peak_rss_mb: float | None
    max_stall_ms: float | None
    errors: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-able figures."""
        return figures_json(self, "overhead", "first_percentage", "first_answer")


@dataclass
class DeploymentResult:
    """The same burst of jobs through one deployment."""

    label: str
    processes: int
    database: str
    jobs: int
    delivered: int
    throttled: int
    """429s the fake API sent (warm-up included: a fresh fake API per deployment)."""
    last_delivery_s: float | None
    """From the first interaction pushed to the last image delivered."""
    jobs_per_minute: float | None
    """Jobs delivered over :attr:`last_delivery_s`, a minute."""
    paced_creates_per_minute: float | None
    live_processes: list[int]
    """The number of live processes each process counted (and took 1/N of the API budget for) at the end."""
    overhead: Summary
    first_answer: Summary
    late_answers: int
    requests_per_job: dict[str, float]
    peak_rss_mb: list[float | None]
    """Each process's peak resident memory (``VmHWM``, read just before it is stopped)."""
    max_stall_ms: list[float | None]
    """Each process's largest event-loop stall during the burst."""
    errors: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-able figures."""
        return figures_json(self, "overhead", "first_answer")


@dataclass
class ScaleOutResult:
    """The scale-out section: one burst per deployment, side by side (``skipped``: why there are none)."""

    jobs: int
    duration: float
    guilds: int
    deployments: list[DeploymentResult]
    skipped: str | None = None
    creates_per_minute_budget: float = CREATES_PER_SECOND * 60
    creates_burst: float = CREATES_BURST

    @property
    def ceiling_jobs_per_minute(self) -> float:
        """The most jobs a minute the deployment's creates budget allows for this burst."""
        return creates_ceiling(self.jobs, self.duration)

    def to_json(self) -> dict[str, Any]:
        """JSON-able figures (the comparisons are added by :mod:`bench.report`)."""
        data = asdict(self)
        data["deployments"] = [d.to_json() for d in self.deployments]
        data["ceiling_jobs_per_minute"] = round(self.ceiling_jobs_per_minute, 1)
        return data


@dataclass
class Results:
    """Everything one run measured (a section not run is empty or ``None``)."""

    plan: Plan
    sections: tuple[str, ...]
    elapsed_s: float
    phases: list[PhaseResult] = field(default_factory=list)
    overhead_bot: dict[str, Any] | None = None
    """The overhead bot process's own report (stalls, memory) over the overhead runs."""
    overhead_bot_webhooks: dict[str, Any] | None = None
    """The webhook bot process's own report over the overhead runs."""
    scale: ScaleResult | None = None
    sustained: SustainedResult | None = None
    scale_out: ScaleOutResult | None = None
