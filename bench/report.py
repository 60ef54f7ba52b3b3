"""The results as a fixed-width table and as JSON (the same figures), with the targets checked.

Targets (issue 6), all about the bot:

* p50 delivery overhead under 100 ms for 0.5 s predictions;
* delivery overhead (p50) no more than 1.2 times the official client's success-to-file-in-hand time;
* delivery overhead (p50) at least 5 times lower than the naive loop's;
* at most 3 API requests per job when the prediction ends inside the create call's wait
  (``Prefer: wait=3``), and for longer ones at most one per 1.5 s of prediction time plus 3
  (checked on the largest per-job count);
* with webhooks (the bot with ``IMAGINE_WEBHOOK_URL``, a client of its own): delivery overhead (p50) no more
  than 1.2 times the official client's, and at most 1 API request per job besides the create (downloads are
  not API requests; checked on the largest per-job count, plus any request that names no job spread over
  the jobs);
* scale: every job delivered, peak resident memory under 250 MB (10^6 bytes), no 429 received,
  no event-loop stall over 100 ms;
* scale-out: no 429 received by any deployment, the processes of one together (each takes 1/N of
  the API budget).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

from bench.clients import WEBHOOKS_NAME
from bench.measure import PhaseResult
from bench.run import BASELINE_DEPLOYMENT, JITTER, Results, ScaleOutResult

PREFER_WAIT = 3.0
"""Seconds the bot's create call waits (``Tuning.prefer_wait``, production value)."""
OURS = "imagine-bot"
OURS_WEBHOOKS = WEBHOOKS_NAME
OFFICIAL = "replicate (official)"
NAIVE = "naive 1 s loop"


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

    @property
    def passed(self) -> bool | None:
        """``None`` when there was nothing to measure, or the figure is not representative."""
        if self.measured is None or self.caveat:
            return None
        if self.comparison == "<":
            return self.measured < self.limit
        if self.comparison == "<=":
            return self.measured <= self.limit
        return self.measured >= self.limit

    @property
    def margin(self) -> str:
        """How far from the limit, in words."""
        if self.measured is None:
            return "not measured"
        if self.caveat:
            return f"no verdict: {self.caveat}"
        if self.passed:
            return "met"
        if self.comparison == ">=" and self.unit == "x":
            return f"missed: {self.limit / self.measured:.1f}x short" if self.measured > 0 else "missed"
        if self.comparison == ">=":
            return f"missed by {self.limit - self.measured:g} {self.unit}"
        if self.limit == 0:
            return f"missed by {self.measured:g} {self.unit}"
        return f"missed by {self.measured - self.limit:.1f} {self.unit} ({self.measured / self.limit:.1f}x the limit)"

    def to_json(self) -> dict[str, Any]:
        """JSON-able verdict."""
        return {**asdict(self), "passed": self.passed, "verdict": self.margin}


# --------------------------------------------------------------------------- machine


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
    """``client`` (default: the bot without webhooks) over the baselines, per case: p50 overhead and mean
    requests per job."""
    rows = []
    for duration, concurrency in _cases(phases):
        ours = _find(phases, client, duration, concurrency)
        official = _find(phases, OFFICIAL, duration, concurrency)
        naive = _find(phases, NAIVE, duration, concurrency)
        if ours is None:
            continue
        row: dict[str, Any] = {"duration": duration, "concurrency": concurrency}
        for name, other in (("official", official), ("naive", naive)):
            row[f"overhead_p50_vs_{name}"] = _ratio(ours.overhead.p50, other.overhead.p50 if other else None)
            row[f"requests_vs_{name}"] = _ratio(
                ours.requests_per_job["total"], other.requests_per_job["total"] if other else None
            )
        rows.append(row)
    return rows


def targets(results: Results) -> list[Target]:
    """Every target of the issue, checked on this run's figures."""
    phases = results.phases
    checks: list[Target] = []
    for duration, concurrency in _cases(phases):
        ours = _find(phases, OURS, duration, concurrency)
        if ours is None:
            continue
        case = _case(duration, concurrency)
        if duration == 0.5:
            checks.append(Target("p50 delivery overhead", case, ours.overhead.p50, 100.0, "ms", "<"))
        official = _find(phases, OFFICIAL, duration, concurrency)
        if official is not None:
            ratio = _ratio(ours.overhead.p50, official.overhead.p50)
            checks.append(Target("p50 overhead / official client's", case, ratio, 1.2, "x", "<="))
        naive = _find(phases, NAIVE, duration, concurrency)
        if naive is not None:
            ratio = _ratio(naive.overhead.p50, ours.overhead.p50)
            checks.append(Target("naive loop's p50 overhead / ours", case, ratio, 5.0, "x", ">="))
        limit = 3.0 if duration < PREFER_WAIT else round(duration / 1.5 + 3, 2)
        checks.append(
            Target("API requests per job (largest)", case, float(ours.max_requests_per_job), limit, "requests", "<=")
        )
    checks += webhook_targets(phases)
    scale = results.scale
    how = "at once" if scale.push_rate is None else f"at {scale.push_rate:g}/s"
    case = f"{scale.jobs} jobs {how}, {scale.duration:g} s predictions"
    caveat = (
        f"only {scale.reached_api} of the {scale.jobs} jobs ran, so this says nothing of {scale.jobs} running jobs"
        if scale.reached_api < scale.jobs
        else None
    )
    checks += [
        Target("jobs delivered", case, float(scale.delivered), float(scale.jobs), "jobs", ">="),
        Target("peak resident memory of the bot", case, scale.peak_rss_mb, 250.0, "MB", "<", caveat),
        Target("429s received", case, float(scale.throttled), 0.0, "", "<=", caveat),
        Target("largest event-loop stall", case, scale.max_stall_ms, 100.0, "ms", "<=", caveat),
    ]
    spread = results.scale_out
    for deployment in spread.deployments if spread is not None else ():
        case = f"{deployment.label}: {deployment.jobs} at once"
        checks.append(Target("429s received (scale-out)", case, float(deployment.throttled), 0.0, "", "<="))
    return checks


def requests_besides_create(phase: PhaseResult) -> float | None:
    """API requests of the job that sent the most, its create left out, plus the phase's requests that name no
    job (429-refused creates, model reads) spread over its jobs; ``None``: no job reached the API."""
    if not phase.reached_api:
        return None
    return round(phase.max_api_requests_per_job - 1 + phase.unnamed_api_requests / phase.reached_api, 2)


def webhook_targets(phases: list[PhaseResult]) -> list[Target]:
    """The bot with webhooks: p50 overhead within 1.2x the official client's, at most 1 API request per job
    besides the create; every case it ran."""
    checks: list[Target] = []
    for duration, concurrency in _cases(phases):
        hooked = _find(phases, OURS_WEBHOOKS, duration, concurrency)
        if hooked is None:
            continue
        case = _case(duration, concurrency)
        official = _find(phases, OFFICIAL, duration, concurrency)
        if official is not None:
            ratio = _ratio(hooked.overhead.p50, official.overhead.p50)
            checks.append(Target("webhooks: p50 overhead / official", case, ratio, 1.2, "x", "<="))
        besides = requests_besides_create(hooked)
        checks.append(Target("webhooks: API req. besides create", case, besides, 1.0, "requests", "<="))
    return checks


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


def render_scale_out(spread: ScaleOutResult) -> list[str]:
    """The scale-out section of the table."""
    lines = [
        f"Scale-out: the same {spread.jobs} /imagine at once ({spread.duration:g} s predictions) through each "
        "deployment of N bot processes on one database, one shard each (DISCORD_SHARD_COUNT=N)",
        f"  {spread.guilds} servers spread over the shards, {spread.jobs} members over the servers; a fresh fake API "
        "with Replicate's rate limits for each deployment; one warm-up job per process first",
    ]
    if spread.skipped:
        return [*lines, f"  skipped: {spread.skipped}"]
    lines.append(
        f"  creates budget of the whole deployment: {spread.creates_per_minute_budget:.0f} a minute (90 % of 600, "
        f"{spread.creates_per_minute_budget / 60:g} a second) after a first {spread.creates_burst:.0f} at once; for "
        f"{spread.jobs} jobs of {spread.duration:g} s it allows at most {spread.ceiling_jobs_per_minute:.0f} jobs a "
        "minute from the first push to the last image (the ceiling)"
    )
    header = (
        f"{'deployment':<24}{'delivered':>10}{'429':>5}{'jobs/min':>10}{'/1xPG':>7}{'/ceiling':>10}"
        f"{'creates/min':>13}{'overhead p50':>14}{'p95':>7}{'answer p95':>12}{'live':>9}{'peak MB':>9}{'stall':>7}"
    )
    lines += [header, "-" * len(header)]
    for deployment, row in zip(spread.deployments, scale_out_rows(spread), strict=True):
        live = ",".join(str(n) for n in deployment.live_processes)
        lines.append(
            f"{deployment.label:<24}{f'{deployment.delivered}/{deployment.jobs}':>10}{deployment.throttled:>5}"
            f"{_num(deployment.jobs_per_minute, 0):>10}{_num(row['jobs_per_minute_vs_1_process_postgresql']):>7}"
            f"{_num(row['jobs_per_minute_vs_ceiling']):>10}{_num(deployment.paced_creates_per_minute, 0):>13}"
            f"{_ms(deployment.overhead.p50):>14}{_ms(deployment.overhead.p95):>7}"
            f"{_ms(deployment.first_answer.p95):>12}{live:>9}{_num(_largest(deployment.peak_rss_mb), 0):>9}"
            f"{_ms(_largest(deployment.max_stall_ms)):>7}"
        )
    lines.append(
        "  (jobs/min: delivered, first push -> last image; /1xPG, /ceiling: ratio to 1 process on PostgreSQL and to "
        "the ceiling; creates/min: over the second half of the creates; overhead and answer p95 (first answer to "
        "the interaction) in ms; live: live processes each process counted; peak MB and stall (ms): the largest of "
        "its processes)"
    )
    for deployment in spread.deployments:
        for error, times in deployment.errors.items():
            lines.append(f"  {deployment.label}: failed x{times}: {error}")
    lines.append(f"  what limits throughput: {scale_out_limit(spread)}")
    return lines


# --------------------------------------------------------------------------- output


def to_json(results: Results, info: dict[str, Any], started_at: str) -> dict[str, Any]:
    """The whole run as JSON."""
    return {
        "benchmark": "imagine-bot delivery",
        "mode": results.plan.mode,
        "started_at": started_at,
        "elapsed_s": results.elapsed_s,
        "command": "python -m bench"
        + (" --quick" if results.plan.mode == "quick" else "")
        + (f" --scale-rate {results.plan.scale_push_rate:g}" if results.plan.scale_push_rate else ""),
        "machine": info,
        "plan": results.plan.to_json(),
        "setup": setup_notes(results),
        "phases": [phase.to_json() for phase in results.phases],
        "ratios": ratios(results.phases),
        "ratios_webhooks": ratios(results.phases, OURS_WEBHOOKS),
        "scale": results.scale.to_json(),
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
        "3000 other requests per sliding minute) and fake Discord in the benchmark process; the real bot and "
        "each baseline in a process of its own",
        f"each prediction succeeds the given time (+-{JITTER:.0%}, same draws for every client) after its "
        f"create; one output file of {plan.image_kib} KiB",
        "bot: production tuning (Prefer: wait=3, edits at most every 1.5 s, default PollPolicy), "
        f"IMAGINE_MAX_RUNNING and IMAGINE_MAX_RUNNING_PER_SERVER = {batch} for the overhead runs, "
        f"= {plan.scale_jobs} for the scale run; one server, each /imagine of a batch from a different member "
        "(a member's next /imagine waits at most 0.5 s for the previous one's set-up, then is refused)",
        "official client: replicate.Client(base_url=fake).async_run(model, input) with its defaults "
        "(it sends 'Prefer: wait', i.e. up to 60 s, and polls every 0.5 s after that), then FileOutput.aread()",
        "naive loop: create without Prefer, then sleep 1 s and get until done, then download",
        f"{OURS_WEBHOOKS}: the same bot, tuning and limits, its HTTP server on 127.0.0.1 "
        "(IMAGINE_HTTP_LISTEN) and IMAGINE_WEBHOOK_URL pointing at it: predictions are created with that "
        "webhook and events start, logs, completed (signed; secret read once from the API), polls are only "
        "a safety net; its own fake API, which pushes the webhooks",
        "overhead = succeeded (fake API) -> image delivered (fake Discord got the message with the image; "
        "for the libraries: last file read); detect = succeeded -> first output-file request",
        "one warm-up job per client before measuring; 'one at a time' series of the four clients run side by "
        "side, each on its own fake API; 'at once' batches run one client after the other",
        *plan.notes,
    ]


def render_webhooks(phases: list[PhaseResult]) -> list[str]:
    """What the webhook client's jobs received and sent, per case (nothing if it did not run)."""
    lines: list[str] = []
    for phase in phases:
        if phase.client != OURS_WEBHOOKS:
            continue
        hooks = phase.webhooks_per_job
        received = ", ".join(f"{event} {n:g}" for event, n in hooks.items() if event != "refused") or "none"
        lines.append(
            f"    {_case(phase.duration, phase.concurrency)}: webhooks per job {received}; refused "
            f"{hooks.get('refused', 0):g}; API requests besides the create, largest "
            f"{_num(requests_besides_create(phase), 1)}; {phase.polled_after_end} of {phase.reached_api} polled "
            "after their prediction ended"
        )
    if lines:
        lines.insert(0, f"  {OURS_WEBHOOKS}: webhook attempts the fake made per job (refused: non-2xx or no answer),")
        lines.insert(1, "  and jobs polled after their end (a poll, not the push, may have told the bot):")
    return lines


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(results: Results, info: dict[str, Any]) -> str:
    """The fixed-width table."""
    lines: list[str] = []
    plan = results.plan
    lines.append(
        f"imagine-bot benchmark, {plan.mode} run ({results.elapsed_s:.0f} s): {info['cpu']}, "
        f"{info['cpu_count']} CPUs, Python {info['python']}, {info['platform']}"
    )
    lines += [f"  - {note}" for note in setup_notes(results)]
    lines.append("")
    lines.append("Delivery overhead (prediction succeeded -> image delivered), ms, and API requests per job")
    header = (
        f"{'pred':>6} {'jobs':>6}  {'client':<23}{'p50':>7}{'p95':>7}{'max':>7} {'detect':>7}"
        f"  {'create':>6}{'poll':>6}{'dl':>5}{'other':>6}{'total':>6}{'max':>5} {'429':>4} {'failed':>6}"
    )
    lines.append(header)
    lines.append("-" * len(header))
    previous: tuple[float, int] | None = None
    for phase in results.phases:
        case = (phase.duration, phase.concurrency)
        first = case != previous
        previous = case
        per_job = phase.requests_per_job
        lines.append(
            (
                f"{phase.duration:>5g}s {('1x' + str(phase.jobs)) if phase.concurrency == 1 else phase.jobs:>6}  "
                if first
                else " " * 15
            )
            + f"{phase.client:<23}{_ms(phase.overhead.p50):>7}{_ms(phase.overhead.p95):>7}{_ms(phase.overhead.max):>7}"
            f" {_ms(phase.detection.p50):>7}"
            f"  {_num(per_job['create']):>6}{_num(per_job['poll'], 1):>6}{_num(per_job['download'], 1):>5}"
            f"{_num(per_job['other'], 1):>6}{_num(per_job['total'], 1):>6}{phase.max_requests_per_job:>5}"
            f" {phase.throttled:>4} {phase.jobs - phase.delivered:>6}"
        )
    lines.append("  (jobs: 1xN = N jobs one at a time; N = N jobs at once. detect = succeeded -> file requested, p50)")
    gaps = [
        f"{_case(p.duration, p.concurrency)} {_ms(p.previous_edit_gap.p50)}"
        for p in results.phases
        if p.client == OURS and p.previous_edit_gap.n
    ]
    if gaps:
        lines.append("  imagine-bot: the message version with the image came after the previous edit of the same")
        lines.append("  message by (p50, ms): " + "; ".join(gaps))
    lines += render_webhooks(results.phases)
    for name in (OURS, OURS_WEBHOOKS, OFFICIAL, NAIVE):
        mine = [p for p in results.phases if p.client == name]
        headers = sorted({header for p in mine for header in p.prefer_headers})
        in_create = sum(p.finished_in_create for p in mine)
        lines.append(
            f"  {name}: create calls sent Prefer: {', '.join(headers) or '-'}; "
            f"{in_create} of {sum(p.reached_api for p in mine)} predictions came back finished from the create call"
        )
    lines.append("")
    lines.append("Ratios, imagine-bot / other (p50 overhead; mean API requests per job)")
    header = f"{'pred':>6} {'jobs':>6}  {'overhead/official':>18}{'requests/official':>19}{'overhead/naive':>16}"
    header += f"{'requests/naive':>16}"
    lines.append(header)
    lines.append("-" * len(header))
    for row in ratios(results.phases):
        jobs = "1" if row["concurrency"] == 1 else str(row["concurrency"])
        lines.append(
            f"{row['duration']:>5g}s {jobs:>6}  {_num(row['overhead_p50_vs_official']):>18}"
            f"{_num(row['requests_vs_official']):>19}{_num(row['overhead_p50_vs_naive']):>16}"
            f"{_num(row['requests_vs_naive']):>16}"
        )
    hooked = ratios(results.phases, OURS_WEBHOOKS)
    if hooked:
        lines.append("")
        lines.append(f"Ratios, {OURS_WEBHOOKS} / other (p50 overhead; mean API requests per job)")
        lines.append(header)
        lines.append("-" * len(header))
        for row in hooked:
            jobs = "1" if row["concurrency"] == 1 else str(row["concurrency"])
            lines.append(
                f"{row['duration']:>5g}s {jobs:>6}  {_num(row['overhead_p50_vs_official']):>18}"
                f"{_num(row['requests_vs_official']):>19}{_num(row['overhead_p50_vs_naive']):>16}"
                f"{_num(row['requests_vs_naive']):>16}"
            )
    lines.append("")
    scale = results.scale
    how = "at once" if scale.push_rate is None else f"pushed at {scale.push_rate:g} per second"
    lines.append(
        f"Scale: {scale.jobs} /imagine {how}, {scale.duration:g} s predictions, {scale.members} members, "
        f"IMAGINE_MAX_RUNNING={scale.max_running}, IMAGINE_MAX_RUNNING_PER_SERVER={scale.max_running}"
    )
    completion = (
        f"the last {scale.completion_s:.0f} s after the first push"
        if scale.completion_s is not None
        else f"{scale.jobs - scale.delivered} never"
    )
    lines.append(
        f"  delivered {scale.delivered}/{scale.jobs} ({completion}; pushing them all took {scale.push_s:.2f} s); "
        f"429s received: {scale.throttled}"
    )
    answer = scale.first_answer
    lines.append(
        f"  first answer to the interaction p50/p95/max {_ms(answer.p50)}/{_ms(answer.p95)}/{_ms(answer.max)} ms; "
        f'{scale.late_answers} answered after Discord\'s 3 s (the member sees "This interaction failed")'
    )
    lines.append(
        f"  bot process memory: {_num(scale.idle_rss_mb, 0)} MB idle, peak {_num(scale.peak_rss_mb, 0)} MB, "
        f"{_num(scale.rss_at_end_mb, 0)} MB at the end"
    )
    lines.append(
        f"  event loop: largest stall {_ms(scale.max_stall_ms)} ms (at {_num(scale.max_stall_at_s, 1)} s), "
        f"p99 {_ms(scale.p99_stall_ms)} ms, {scale.stalls_over_100ms} stalls over 100 ms; "
        f"longest garbage-collector pause {_ms(scale.max_gc_pause_ms)} ms"
    )
    rpj = scale.requests_per_job
    lines.append(
        f"  overhead p50/p95/max {_ms(scale.overhead.p50)}/{_ms(scale.overhead.p95)}/{_ms(scale.overhead.max)} ms"
    )
    lines.append(
        f"  API requests per job that reached the API ({scale.reached_api}): {rpj['create']:.2f} create, "
        f"{rpj['poll']:.1f} poll, {rpj['download']:.1f} download, {rpj['other']:.2f} other "
        f"(largest {scale.max_requests_per_job})"
    )
    for error, times in scale.errors.items():
        lines.append(f"  failed x{times}: {error}")
    for phase in results.phases:
        for error, times in phase.errors.items():
            lines.append(f"  {phase.client}, {_case(phase.duration, phase.concurrency)}: failed x{times}: {error}")
    if results.scale_out is not None:
        lines.append("")
        lines += render_scale_out(results.scale_out)
    lines.append("")
    lines.append("Targets" + (" (quick run: scaled down, indicative only)" if plan.mode == "quick" else ""))
    header = f"{'':5}{'target':<35}{'case':<42}{'measured':>10}{'limit':>12}  verdict"
    lines.append(header)
    lines.append("-" * len(header))
    for target in targets(results):
        mark = {True: "ok", False: "MISS", None: "-"}[target.passed]
        measured = "-" if target.measured is None else f"{target.measured:g}"
        limit = f"{target.comparison} {target.limit:g}"
        lines.append(
            f"{mark:<5}{target.name:<35}{target.case:<42}{measured:>10}{limit:>12}  {target.unit:<8} {target.margin}"
        )
    return "\n".join(lines)
