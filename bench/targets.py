"""The targets the benchmark checks, each against the figure that speaks to it, and the comparisons between
clients they rest on.

Targets (issues 6 and 18), all about the bot:

* the fast path (0.5 s predictions): p50 delivery overhead under 100 ms, and within 1.2 times the official client
  bot's (the peer built on ``async_run`` that uploads to Discord the same way), one at a time and at once;
* polling: p50 overhead at least 5 times lower than the naive loop's; one at a time at most 150 ms for 5 s and
  30 s predictions; at most 3 API requests per job when the prediction ends inside the create call's wait
  (``Prefer: wait=1``), and for longer ones at most one per 1.5 s of prediction time plus 3 (checked on the
  largest per-job count); a 4 s job (one at a time) shows at least two different percentages; no edit of its
  Discord messages answered 429 (discord.py waits those out quietly, so they would show only as latency);
* with webhooks (the bot with ``IMAGINE_WEBHOOK_URL``, a client of its own): p50 overhead within 1.2 times the
  official client bot's, at most 1 API request per job besides the create (downloads are not API requests;
  checked on the largest per-job count, plus any request that names no job spread over the jobs), the first
  percentage shown within 1 s of the first ``logs`` webhook that carries one (p50 over the jobs that showed it
  after that webhook; a row that showed none misses; jobs a poll showed it to first are left out and named, and
  when every job was one of them there is no verdict), a 4 s job shows at least two different percentages, and no
  Discord edit answered 429;
* sustained: every job delivered, no 429 received from the API, none from Discord edits, p50 overhead within 1 s;
* scale: every job delivered, peak resident memory under 250 MB (10^6 bytes), no 429 received,
  no event-loop stall over 100 ms;
* scale-out: no 429 received by any deployment, the processes of one together (each takes 1/N of
  the API budget).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from bench.clients import PEER_NAME, WEBHOOKS_NAME
from bench.measure import PhaseResult
from bench.results import Results, ScaleResult, SustainedResult
from bot.core import Tuning

PREFER_WAIT = float(Tuning().prefer_wait)
"""Seconds the bot's create call waits when polling (the production value)."""
OURS = "imagine-bot"
OURS_WEBHOOKS = WEBHOOKS_NAME
OFFICIAL = "replicate (official)"
NAIVE = "naive 1 s loop"
PEER = PEER_NAME
CLIENT_ORDER = (OURS, OURS_WEBHOOKS, PEER, OFFICIAL, NAIVE)
"""The order of the clients in each case of the table."""


@dataclass(frozen=True)
class Target:
    """One target, the figure it was checked against, and the verdict."""

    name: str
    case: str
    measured: float | None
    limit: float
    unit: str
    comparison: str
    """``<=``, ``<`` or ``>=``: how ``measured`` must stand to ``limit``."""
    caveat: str | None = None
    """Why the figure does not speak to the target (then there is no verdict)."""
    none_means: str | None = None
    """What a missing figure means when it is a miss in itself (no percentage was shown at all), in words;
    ``None``: a missing figure was not measured (no verdict)."""
    note: str | None = None
    """What the figure leaves out, in words (printed with the verdict, which it does not change)."""

    @property
    def passed(self) -> bool | None:
        """``None`` when there was nothing to measure, or the figure is not representative."""
        if self.caveat:
            return None
        if self.measured is None:
            return False if self.none_means else None
        if self.comparison == "<":
            return self.measured < self.limit
        if self.comparison == "<=":
            return self.measured <= self.limit
        return self.measured >= self.limit

    @property
    def margin(self) -> str:
        """How far from the limit, in words."""
        if self.caveat:
            return f"no verdict: {self.caveat}"
        if self.measured is None:
            return f"missed: {self.none_means}" if self.none_means else "not measured"
        if self.passed:
            return "met"
        if self.comparison == ">=" and self.unit == "x":
            return f"missed: {self.limit / self.measured:.1f}x short" if self.measured > 0 else "missed"
        unit = f" {self.unit}" if self.unit else ""
        if self.comparison == ">=":
            return f"missed by {self.limit - self.measured:g}{unit}"
        if self.limit == 0:
            return f"missed by {self.measured:g}{unit}"
        return f"missed by {self.measured - self.limit:.1f}{unit} ({self.measured / self.limit:.1f}x the limit)"

    def to_json(self) -> dict[str, Any]:
        """JSON-able verdict."""
        return {**asdict(self), "passed": self.passed, "verdict": self.margin}


def find_phase(phases: Iterable[PhaseResult], client: str, duration: float, concurrency: int) -> PhaseResult | None:
    return next(
        (p for p in phases if p.client == client and p.duration == duration and p.concurrency == concurrency), None
    )


def ratio_of(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs <= 0:
        return None
    return round(ours / theirs, 2)


def cases(phases: Iterable[PhaseResult]) -> list[tuple[float, int]]:
    seen: list[tuple[float, int]] = []
    for phase in phases:
        case = (phase.duration, phase.concurrency)
        if case not in seen:
            seen.append(case)
    return seen


def case_name(duration: float, concurrency: int) -> str:
    how = "one at a time" if concurrency == 1 else f"{concurrency} at once"
    return f"{duration:g} s predictions, {how}"


def _client_cases(phases: list[PhaseResult], client: str) -> Iterator[tuple[PhaseResult, str, PhaseResult | None]]:
    """Each case ``client`` ran, in the order they ran: its phase, the case in words, and the official client bot's
    phase of the same case, if any."""
    for duration, concurrency in cases(phases):
        phase = find_phase(phases, client, duration, concurrency)
        if phase is not None:
            yield phase, case_name(duration, concurrency), find_phase(phases, PEER, duration, concurrency)


def ratios(phases: list[PhaseResult], client: str = OURS) -> list[dict[str, Any]]:
    """``client`` (default: the bot without webhooks) over the others, per case: p50 overhead over the official
    client bot's, the official client's and the naive loop's, and mean requests per job over the last two."""
    rows = []
    for ours, _, peer in _client_cases(phases, client):
        duration, concurrency = ours.duration, ours.concurrency
        row: dict[str, Any] = {"duration": duration, "concurrency": concurrency}
        row["overhead_p50_vs_official_client_bot"] = ratio_of(ours.overhead.p50, peer.overhead.p50 if peer else None)
        for name, reference in (("official", OFFICIAL), ("naive", NAIVE)):
            other = find_phase(phases, reference, duration, concurrency)
            row[f"overhead_p50_vs_{name}"] = ratio_of(ours.overhead.p50, other.overhead.p50 if other else None)
            row[f"requests_vs_{name}"] = ratio_of(
                ours.requests_per_job["total"], other.requests_per_job["total"] if other else None
            )
        rows.append(row)
    return rows


def targets(results: Results) -> list[Target]:
    """Every target of issues 6 and 18 that this run's sections speak to, checked on its figures."""
    checks = polling_targets(results.phases) + webhook_targets(results.phases)
    if results.sustained is not None:
        checks += sustained_targets(results.sustained)
    if results.scale is not None:
        checks += scale_targets(results.scale)
    spread = results.scale_out
    for deployment in spread.deployments if spread is not None else ():
        case = f"{deployment.label}: {deployment.jobs} at once"
        checks.append(Target("429s received (scale-out)", case, float(deployment.throttled), 0.0, "", "<="))
    return checks


FAST_PATH = 0.5
"""Prediction time (s) of the fast path: the prediction ends inside the create call."""
FIRST_SECONDS = 4.0
"""Prediction time (s) of the first-seconds check: a job this long shows at least two different percentages."""
AIMED_POLLING = (5.0, 30.0)
"""Prediction times (s) at which polling is to be 5x below the naive loop and, one at a time, within 150 ms."""


def _progress_targets(phase: PhaseResult, label: str, case: str) -> list[Target]:
    """A 4 s job (one at a time) shows at least two different percentages."""
    if phase.duration != FIRST_SECONDS or phase.concurrency != 1 or not phase.shows_progress:
        return []
    shown = None if phase.distinct_percentages_min is None else float(phase.distinct_percentages_min)
    return [Target(f"{label}distinct percentages shown (fewest)", case, shown, 2.0, "", ">=")]


def polling_targets(phases: list[PhaseResult]) -> list[Target]:
    """The polling bot, per case: the fast path (under 100 ms, within 1.2x the official client bot), 5x below the
    naive loop, one at a time within 150 ms at 5 s and 30 s, requests per job, and two percentages for a 4 s job."""
    checks: list[Target] = []
    for ours, case, peer in _client_cases(phases, OURS):
        duration, concurrency = ours.duration, ours.concurrency
        if duration == FAST_PATH:
            checks.append(Target("p50 delivery overhead", case, ours.overhead.p50, 100.0, "ms", "<"))
            if peer is not None:
                ratio = ratio_of(ours.overhead.p50, peer.overhead.p50)
                checks.append(Target("p50 overhead / official client bot's", case, ratio, 1.2, "x", "<="))
        naive = find_phase(phases, NAIVE, duration, concurrency)
        if naive is not None:
            ratio = ratio_of(naive.overhead.p50, ours.overhead.p50)
            checks.append(Target("naive loop's p50 overhead / ours", case, ratio, 5.0, "x", ">="))
        if duration in AIMED_POLLING and concurrency == 1:
            checks.append(Target("p50 delivery overhead", case, ours.overhead.p50, 150.0, "ms", "<="))
        limit = 3.0 if duration < PREFER_WAIT else round(duration / 1.5 + 3, 2)
        checks.append(
            Target("API requests per job (largest)", case, float(ours.max_requests_per_job), limit, "requests", "<=")
        )
        checks += _progress_targets(ours, "", case)
        checks += discord_429s_target(ours, "", case)
    return checks


def requests_besides_create(phase: PhaseResult) -> float | None:
    """API requests of the job that sent the most, its create left out, plus the phase's requests that name no
    job (429-refused creates, model reads) spread over its jobs; ``None``: no job reached the API."""
    if not phase.reached_api:
        return None
    return round(phase.max_api_requests_per_job - 1 + phase.unnamed_api_requests / phase.reached_api, 2)


def webhook_targets(phases: list[PhaseResult]) -> list[Target]:
    """The bot with webhooks, every case it ran: p50 overhead within 1.2x the official client bot's, at most 1 API
    request per job besides the create, the first percentage shown within 1 s of the first ``logs`` webhook that
    carries one (p50), and two percentages for a 4 s job."""
    checks: list[Target] = []
    for hooked, case, peer in _client_cases(phases, OURS_WEBHOOKS):
        duration = hooked.duration
        if peer is not None:
            ratio = ratio_of(hooked.overhead.p50, peer.overhead.p50)
            checks.append(Target("webhooks: p50 overhead / official client bot's", case, ratio, 1.2, "x", "<="))
        besides = requests_besides_create(hooked)
        checks.append(Target("webhooks: API req. besides create", case, besides, 1.0, "requests", "<="))
        if duration >= FIRST_SECONDS:
            checks.append(after_logs_target(hooked, case))
        checks += _progress_targets(hooked, "webhooks: ", case)
        checks += discord_429s_target(hooked, "webhooks: ", case)
    return checks


def after_logs_target(hooked: PhaseResult, case: str) -> Target:
    """The first percentage shown within 1 s of the first ``logs`` webhook carrying one (p50).

    Jobs a poll showed the percentage to before that webhook was sent have no time after it: they are left out of
    the p50 and named in the note; when every job that showed one is among them there is no verdict (the webhook
    path was not measured), and when none showed one the target is missed.
    """
    after, before = hooked.first_percentage_after_logs, hooked.first_percentage_before_logs
    shown = after.n + before
    caveat = note = None
    if before and not after.n:
        caveat = f"every job that showed a percentage ({before}) showed it before its logs webhook (a poll came first)"
    elif before:
        note = f"{before} of {shown} jobs showed it before their logs webhook (a poll came first), left out"
    return Target(
        "webhooks: first % after its logs event",
        case,
        after.p50,
        1000.0,
        "ms",
        "<=",
        caveat=caveat,
        none_means="no percentage shown",
        note=note,
    )


def discord_429s_target(phase: PhaseResult, label: str, case: str) -> list[Target]:
    """No edit of the row's Discord messages answered 429 (none for a client without Discord)."""
    if phase.discord_429s is None:
        return []
    return [Target(f"{label}429s from Discord edits", case, float(phase.discord_429s), 0.0, "", "<=")]


def sustained_targets(sustained: SustainedResult) -> list[Target]:
    """The sustained phase: every job delivered, no 429 from the API nor from Discord edits, p50 overhead within 1 s."""
    case = f"{sustained.jobs} jobs over {sustained.seconds:g} s, {sustained.duration:g} s predictions"
    return [
        Target("sustained: jobs delivered", case, float(sustained.delivered), float(sustained.jobs), "jobs", ">="),
        Target("sustained: 429s received", case, float(sustained.throttled), 0.0, "", "<="),
        Target("sustained: 429s from Discord edits", case, float(sustained.discord_429s), 0.0, "", "<="),
        Target("sustained: p50 delivery overhead", case, sustained.overhead.p50, 1000.0, "ms", "<="),
    ]


def scale_targets(scale: ScaleResult) -> list[Target]:
    """The scale run: every job delivered, under 250 MB, no 429, no event-loop stall over 100 ms."""
    how = "at once" if scale.push_rate is None else f"at {scale.push_rate:g}/s"
    case = f"{scale.jobs} jobs {how}, {scale.duration:g} s predictions"
    caveat = (
        f"only {scale.reached_api} of the {scale.jobs} jobs ran, so this says nothing of {scale.jobs} running jobs"
        if scale.reached_api < scale.jobs
        else None
    )
    return [
        Target("jobs delivered", case, float(scale.delivered), float(scale.jobs), "jobs", ">="),
        Target("peak resident memory of the bot", case, scale.peak_rss_mb, 250.0, "MB", "<", caveat),
        Target("429s received", case, float(scale.throttled), 0.0, "", "<=", caveat),
        Target("largest event-loop stall", case, scale.max_stall_ms, 100.0, "ms", "<=", caveat),
    ]
