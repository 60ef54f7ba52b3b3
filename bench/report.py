"""The results as the Markdown of README's Performance section and as JSON (the same figures), with the targets
checked (:mod:`bench.details` prints the detailed fixed-width tables).

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

import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

from bench.clients import PEER_NAME, REPO, WEBHOOKS_NAME
from bench.measure import PhaseResult, Summary
from bench.run import (
    BASELINE_DEPLOYMENT,
    JITTER,
    SECTIONS,
    Results,
    ScaleOutResult,
    ScaleResult,
    SustainedResult,
)
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


# --------------------------------------------------------------------------- machine


def _commit() -> str | None:
    """The repository's commit (``-dirty`` with uncommitted changes), or ``None`` outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if changes else "") if head else None


def machine() -> dict[str, Any]:
    """Where the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    memory_gb = None
    try:
        with open("/proc/meminfo") as info:
            kib = next(int(line.split()[1]) for line in info if line.startswith("MemTotal:"))
            memory_gb = round(kib * 1024 / 1e9, 1)
    except (OSError, StopIteration):
        pass
    versions: dict[str, str | None] = {}
    for package in ("discord.py", "aiohttp", "replicate", "httpx"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "commit": _commit(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "memory_gb": memory_gb,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": versions,
    }


# --------------------------------------------------------------------------- comparisons


def _find(phases: Iterable[PhaseResult], client: str, duration: float, concurrency: int) -> PhaseResult | None:
    return next(
        (p for p in phases if p.client == client and p.duration == duration and p.concurrency == concurrency), None
    )


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs <= 0:
        return None
    return round(ours / theirs, 2)


def _cases(phases: Iterable[PhaseResult]) -> list[tuple[float, int]]:
    seen: list[tuple[float, int]] = []
    for phase in phases:
        case = (phase.duration, phase.concurrency)
        if case not in seen:
            seen.append(case)
    return seen


def _case(duration: float, concurrency: int) -> str:
    how = "one at a time" if concurrency == 1 else f"{concurrency} at once"
    return f"{duration:g} s predictions, {how}"


def ratios(phases: list[PhaseResult], client: str = OURS) -> list[dict[str, Any]]:
    """``client`` (default: the bot without webhooks) over the others, per case: p50 overhead over the official
    client bot's, the official client's and the naive loop's, and mean requests per job over the last two."""
    rows = []
    for duration, concurrency in _cases(phases):
        ours = _find(phases, client, duration, concurrency)
        if ours is None:
            continue
        row: dict[str, Any] = {"duration": duration, "concurrency": concurrency}
        peer = _find(phases, PEER, duration, concurrency)
        row["overhead_p50_vs_official_client_bot"] = _ratio(ours.overhead.p50, peer.overhead.p50 if peer else None)
        for name, reference in (("official", OFFICIAL), ("naive", NAIVE)):
            other = _find(phases, reference, duration, concurrency)
            row[f"overhead_p50_vs_{name}"] = _ratio(ours.overhead.p50, other.overhead.p50 if other else None)
            row[f"requests_vs_{name}"] = _ratio(
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
    for duration, concurrency in _cases(phases):
        ours = _find(phases, OURS, duration, concurrency)
        if ours is None:
            continue
        case = _case(duration, concurrency)
        peer = _find(phases, PEER, duration, concurrency)
        if duration == FAST_PATH:
            checks.append(Target("p50 delivery overhead", case, ours.overhead.p50, 100.0, "ms", "<"))
            if peer is not None:
                ratio = _ratio(ours.overhead.p50, peer.overhead.p50)
                checks.append(Target("p50 overhead / official client bot's", case, ratio, 1.2, "x", "<="))
        naive = _find(phases, NAIVE, duration, concurrency)
        if naive is not None:
            ratio = _ratio(naive.overhead.p50, ours.overhead.p50)
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
    for duration, concurrency in _cases(phases):
        hooked = _find(phases, OURS_WEBHOOKS, duration, concurrency)
        if hooked is None:
            continue
        case = _case(duration, concurrency)
        peer = _find(phases, PEER, duration, concurrency)
        if peer is not None:
            ratio = _ratio(hooked.overhead.p50, peer.overhead.p50)
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


# --------------------------------------------------------------------------- scale-out

LIMITED_BY_BUDGET = 0.8
"""A deployment at this fraction of the creates ceiling or more is limited by the API budget."""


def scale_out_rows(spread: ScaleOutResult) -> list[dict[str, Any]]:
    """Each deployment's jobs a minute against the 1-process PostgreSQL one and against the creates ceiling."""
    baseline = next(
        (
            d.jobs_per_minute
            for d in spread.deployments
            if (d.processes, d.database) == (BASELINE_DEPLOYMENT.processes, BASELINE_DEPLOYMENT.database)
        ),
        None,
    )
    return [
        {
            "label": d.label,
            "jobs_per_minute_vs_1_process_postgresql": _ratio(d.jobs_per_minute, baseline),
            "jobs_per_minute_vs_ceiling": _ratio(d.jobs_per_minute, spread.ceiling_jobs_per_minute),
        }
        for d in spread.deployments
    ]


def scale_out_limit(spread: ScaleOutResult) -> str:
    """What limits the deployments' throughput, in words, from this run's figures."""
    rows = scale_out_rows(spread)
    ceiling = [row["jobs_per_minute_vs_ceiling"] for row in rows]
    if not rows or None in ceiling:
        return "not measured: some deployment delivered nothing"
    below = [row for row in rows if row["jobs_per_minute_vs_ceiling"] < LIMITED_BY_BUDGET]
    if below:
        return "; ".join(
            f"{row['label']} reached only {row['jobs_per_minute_vs_ceiling']:.2f}x of the creates ceiling: something "
            "other than the API budget limits it there (see its first answers, stalls and failures)"
            for row in below
        )
    versus = [row["jobs_per_minute_vs_1_process_postgresql"] for row in rows]
    paced = [d.paced_creates_per_minute for d in spread.deployments if d.paced_creates_per_minute is not None]
    return (
        f"the API creates budget: every deployment ran at {min(ceiling):.2f}-{max(ceiling):.2f}x of the ceiling it "
        f"sets, creating {min(paced):.0f}-{max(paced):.0f} a minute once paced (budget: "
        f"{spread.creates_per_minute_budget:.0f}), and at {_num(min(versus))}-{_num(max(versus))}x the jobs a minute "
        "of one process on PostgreSQL. More processes split the same budget (each took 1/N of it); they buy "
        "Discord capacity (a gateway connection and an event loop per shard) and failover, not API throughput"
    )


def _largest(values: Iterable[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return max(known) if known else None


# --------------------------------------------------------------------------- output


def command(results: Results) -> str:
    """The command line that makes a run like ``results``."""
    plan = results.plan
    line = "python -m bench" + (" --quick" if plan.mode == "quick" else "")
    if plan.scale_push_rate:
        line += f" --scale-rate {plan.scale_push_rate:g}"
    if results.sections != SECTIONS:
        line += "".join(f" --only {section}" for section in results.sections)
    return line


def to_json(results: Results, info: dict[str, Any], started_at: str) -> dict[str, Any]:
    """The whole run as JSON."""
    return {
        "benchmark": "imagine-bot delivery",
        "mode": results.plan.mode,
        "sections": list(results.sections),
        "started_at": started_at,
        "elapsed_s": results.elapsed_s,
        "command": command(results),
        "machine": info,
        "plan": results.plan.to_json(),
        "setup": setup_notes(results),
        "phases": [phase.to_json() for phase in results.phases],
        "ratios": ratios(results.phases),
        "ratios_webhooks": ratios(results.phases, OURS_WEBHOOKS),
        "scale": None if results.scale is None else results.scale.to_json(),
        "sustained": None if results.sustained is None else results.sustained.to_json(),
        "overhead_bot_process": results.overhead_bot,
        "overhead_webhook_bot_process": results.overhead_bot_webhooks,
        "scale_out": None if results.scale_out is None else scale_out_json(results.scale_out),
        "targets": [target.to_json() for target in targets(results)],
    }


def scale_out_json(spread: ScaleOutResult) -> dict[str, Any]:
    """The scale-out section as JSON: figures, comparisons and what limits throughput."""
    data = spread.to_json()
    for deployment, row in zip(data["deployments"], scale_out_rows(spread), strict=True):
        deployment.update({key: value for key, value in row.items() if key != "label"})
    data["limited_by"] = None if spread.skipped else scale_out_limit(spread)
    return data


def setup_notes(results: Results) -> list[str]:
    """How the figures were made, in words (printed and in the JSON)."""
    plan = results.plan
    batch = max([*plan.at_once.values(), 1])
    return [
        "everything on 127.0.0.1: fake prediction API (Replicate's rate limits enforced: 600 creates and "
        "3000 other requests per sliding minute) and fake Discord in the benchmark process; every bot and "
        "each library client in a process of its own, each client against its own fake API",
        f"each prediction succeeds the given time (+-{JITTER:.0%}, same draws for every client) after its "
        f"create; one output file of {plan.image_kib} KiB",
        "imagine-bot: production tuning (the bot's own defaults), "
        f"IMAGINE_MAX_RUNNING and IMAGINE_MAX_RUNNING_PER_SERVER = {batch} for the overhead runs, "
        f"= {plan.scale_jobs} for the scale run; one server, each /imagine of a batch from a different member",
        f"{OURS_WEBHOOKS}: the same bot, its HTTP server on 127.0.0.1 (IMAGINE_HTTP_LISTEN) and IMAGINE_WEBHOOK_URL "
        "pointing at it: its fake API pushes signed start, logs and completed webhooks; polls are a safety net",
        f"{PEER}: a discord.py bot on Replicate's official client (python -m bench.peerbot): on /imagine it "
        "defers, awaits replicate.Client(...).async_run(model, input) with every default, reads the files "
        "(FileOutput.aread()) and edits its response to carry them; it shows no progress",
        "official client: async_run with its defaults (it holds the create call open with 'Prefer: wait', up to "
        "60 s, and polls every 0.5 s after that), then FileOutput.aread(), the file in hand; naive loop: create "
        "without Prefer, then sleep 1 s and get until done, then download",
        "overhead = succeeded (fake API) -> image delivered (the fake Discord stored the message version carrying "
        "the image; for the two libraries: last file read); detection lag = succeeded -> first output-file request",
        "first % = the prediction began processing (fake API) -> the first version of the job's message whose "
        "Status shows a percentage; with webhooks also the first logs webhook carrying a tqdm percentage -> that "
        "version (both on the monotonic clock; a job shown its percentage before it, by a poll, is left out and "
        "counted, not clamped to 0); distinct % = different percentages one job's message showed before the image",
        "429s: API = answers the fake prediction API refused with 429; Discord = edits the client's fake Discord "
        "answered 429 for the message's edit limit (5 per 5 s), which discord.py waits out quietly",
        "one warm-up job per client before measuring; 'one at a time' series of the five clients run side by "
        "side, each on its own fake API; 'at once' batches run one client after the other",
        f"sustained: /imagine pushed at the full creates budget ({plan.sustained_push_rate:g} a second, the rate it "
        "refills at: matched, not exceeded, so it never has to hold a create back) for "
        f"{plan.sustained_seconds:g} s with {plan.sustained_duration:g} s predictions through one polling bot "
        "process, its running, per-server and queue limits at the number of jobs and members in rotation, so "
        "that no limit of the bot refuses a job",
        *plan.notes,
    ]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# --------------------------------------------------------------------------- the Markdown of README's Performance

NOT_APPLICABLE = "—"
"""A figure the client cannot have (a library shows nothing in Discord; the peer bot shows no progress)."""
NONE_SHOWN = "none shown"
NONE_AFTER = "none after it"
"""Every job that showed a percentage showed it before the column's starting point (a poll before the webhook)."""


def _md_ms(value: float | None) -> str:
    return NOT_APPLICABLE if value is None else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _md_ratio(value: float | None) -> str:
    return NOT_APPLICABLE if value is None else f"{value:.2f}"


def first_percentage_cell(phase: PhaseResult, summary: Summary, before: int = 0) -> str:
    """The p50 of a first-percentage figure, with how many jobs it is over when not all, and the ``before`` jobs
    shown their percentage before the figure's starting point (left out of it, not clamped to 0)."""
    if not phase.shows_progress:
        return NOT_APPLICABLE
    early = f"{before} shown before it" if before else ""
    if summary.p50 is None:
        return f"{NONE_AFTER} ({early})" if before else NONE_SHOWN
    cell = _md_ms(summary.p50)
    if summary.n >= phase.delivered:
        return cell
    return f"{cell} ({summary.n} of {phase.delivered} jobs" + (f"; {early}, left out)" if before else ")")


def distinct_cell(phase: PhaseResult) -> str:
    """``min / p50`` of the different percentages one job showed."""
    if not phase.shows_progress or phase.distinct_percentages_min is None:
        return NOT_APPLICABLE
    return f"{phase.distinct_percentages_min} / {phase.distinct_percentages_p50:g}"


def _ordered(phases: Iterable[PhaseResult]) -> list[PhaseResult]:
    """By prediction time, one at a time before at once, clients in :data:`CLIENT_ORDER`."""

    def key(phase: PhaseResult) -> tuple[float, int, int]:
        order = CLIENT_ORDER.index(phase.client) if phase.client in CLIENT_ORDER else len(CLIENT_ORDER)
        return phase.duration, phase.concurrency, order

    return sorted(phases, key=key)


def markdown_table(phases: list[PhaseResult]) -> list[str]:
    """One row per case and client: the table of README's Performance section."""
    lines = [
        "| prediction | jobs | client | overhead p50, ms | / naive loop | / official client bot "
        "| detection lag p50, ms | first % after processing began, p50 ms | first % after its logs webhook, p50 ms "
        "| distinct % min / p50 | requests per job | 429s API / Discord |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for phase in _ordered(phases):
        naive = _find(phases, NAIVE, phase.duration, phase.concurrency)
        peer = _find(phases, PEER, phase.duration, phase.concurrency)
        jobs = f"{phase.jobs}, one at a time" if phase.concurrency == 1 else f"{phase.jobs} at once"
        failed = phase.jobs - phase.delivered
        client = phase.client + (f" ({failed} failed)" if failed else "")
        after_logs = (
            first_percentage_cell(phase, phase.first_percentage_after_logs, phase.first_percentage_before_logs)
            if phase.webhooks_per_job
            else NOT_APPLICABLE
        )
        discord = NOT_APPLICABLE if phase.discord_429s is None else str(phase.discord_429s)
        cells = [
            f"{phase.duration:g} s",
            jobs,
            client,
            _md_ms(phase.overhead.p50),
            _md_ratio(_ratio(phase.overhead.p50, naive.overhead.p50 if naive else None)),
            _md_ratio(_ratio(phase.overhead.p50, peer.overhead.p50 if peer else None)),
            _md_ms(phase.detection.p50),
            first_percentage_cell(phase, phase.first_percentage, phase.first_percentage_before_processing),
            after_logs,
            distinct_cell(phase),
            f"{phase.requests_per_job['total']:g}",
            f"{phase.throttled} / {discord}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def sustained_line(sustained: SustainedResult) -> str:
    """The sustained phase in one paragraph."""
    overhead, first = sustained.overhead, sustained.first_percentage
    shown = NONE_SHOWN if first.p50 is None else f"{_md_ms(first.p50)} ms"
    return (
        f"*Sustained*: {sustained.jobs} `/imagine` over {sustained.seconds:g} s ({sustained.rate:g} a second: the "
        f"creates budget's rate, matched, not exceeded), {sustained.duration:g} s predictions, one polling bot "
        f"process, at most {sustained.most_running} running at once: {sustained.delivered} / {sustained.jobs} "
        f"delivered, {sustained.throttled} × 429 from the API, {sustained.discord_429s} × 429 from Discord edits, "
        f"overhead p50 / p95 {_md_ms(overhead.p50)} / {_md_ms(overhead.p95)} ms, first "
        f"% shown after processing began p50 {shown}, {_num(sustained.api_requests_per_job)} API requests per job "
        f"(downloads left out), peak RSS {_num(sustained.peak_rss_mb, 0)} MB, largest event-loop stall "
        f"{_md_ms(sustained.max_stall_ms)} ms."
    )


def scale_line(scale: ScaleResult) -> str:
    """The scale run in one paragraph."""
    how = "at once" if scale.push_rate is None else f"pushed at {scale.push_rate:g} a second"
    return (
        f"*Scale*: {scale.jobs} `/imagine` {how} ({scale.duration:g} s predictions, one member each): "
        f"{scale.delivered} / {scale.jobs} delivered"
        + (f", the last {scale.completion_s:.0f} s after the first push" if scale.completion_s is not None else "")
        + f", first answer p95 {_md_ms(scale.first_answer.p95)} ms ({scale.late_answers} after Discord's 3 s), "
        f"peak RSS {_num(scale.peak_rss_mb, 0)} MB, largest event-loop stall {_md_ms(scale.max_stall_ms)} ms, "
        f"{scale.throttled} × 429 from the API, {scale.discord_429s} × 429 from Discord edits, "
        f"{scale.requests_per_job['total']:g} requests per job."
    )


def markdown_scale_out(spread: ScaleOutResult) -> list[str]:
    """The scale-out comparison, compact."""
    head = (
        f"*Scale-out*: the same {spread.jobs} `/imagine` at once ({spread.duration:g} s predictions) through N bot "
        "processes on one database, one shard each"
    )
    if spread.skipped:
        return [f"{head}: skipped, {spread.skipped}."]
    lines = [
        f"{head}; the creates budget allows at most {spread.ceiling_jobs_per_minute:.0f} jobs a minute for this "
        "burst (the ceiling).",
        "",
        "| deployment | delivered | 429s | jobs/min | vs 1 process PostgreSQL | vs ceiling | overhead p50 / p95, ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for deployment, row in zip(spread.deployments, scale_out_rows(spread), strict=True):
        lines.append(
            f"| {deployment.label} | {deployment.delivered}/{deployment.jobs} | {deployment.throttled} "
            f"| {_num(deployment.jobs_per_minute, 0)} | {_num(row['jobs_per_minute_vs_1_process_postgresql'])} "
            f"| {_num(row['jobs_per_minute_vs_ceiling'])} "
            f"| {_md_ms(deployment.overhead.p50)} / {_md_ms(deployment.overhead.p95)} |"
        )
    return lines


def markdown_targets(results: Results) -> list[str]:
    """Every target checked, one line each."""
    lines = []
    for target in targets(results):
        mark = {True: "met", False: "**missed**", None: "no verdict"}[target.passed]
        measured = "—" if target.measured is None else f"{target.measured:g}"
        unit = f" {target.unit}" if target.unit else ""
        detail = "" if target.passed else f" ({target.margin})"
        detail += f"; {target.note}" if target.note else ""
        lines.append(
            f"- {mark}: {target.name}, {target.case}: {measured} {target.comparison} {target.limit:g}{unit}{detail}"
        )
    return lines


def markdown(results: Results, info: dict[str, Any]) -> str:
    """The Markdown for README's Performance section: how it was run, the one table, the sustained, scale and
    scale-out lines, and the targets."""
    plan = results.plan
    packages = info.get("packages", {})
    commit = info.get("commit")
    lines = [
        f"{'Quick' if plan.mode == 'quick' else 'Full'} run (`{command(results)}`, {results.elapsed_s:.0f} s)"
        + (f" at commit `{commit}`" if commit else "")
        + f", on {info['cpu']}, {info['cpu_count']} CPUs, {info.get('memory_gb')} GB, Python {info['python']}, "
        f"discord.py {packages.get('discord.py')}, replicate {packages.get('replicate')}.",
    ]
    if plan.mode == "quick":
        lines.append("Quick run: scaled down, indicative only.")
    if results.phases:
        lines += ["", *markdown_table(results.phases)]
    if results.sustained is not None:
        lines += ["", sustained_line(results.sustained)]
    if results.scale is not None:
        lines += ["", scale_line(results.scale)]
    if results.scale_out is not None:
        lines += ["", *markdown_scale_out(results.scale_out)]
    checked = markdown_targets(results)
    if checked:
        lines += ["", "Targets:", "", *checked]
    return "\n".join(lines)
