"""The detailed fixed-width tables, ``python -m bench --details``: every percentile, request kind and webhook
count the run measured (the same figures as the JSON; :func:`bench.report.markdown` is the summary)."""

from __future__ import annotations

from typing import Any

from bench.measure import PhaseResult
from bench.report import _largest, _ms, _num, scale_out_limit, scale_out_rows, setup_notes
from bench.results import Results, ScaleOutResult, ScaleResult, SustainedResult
from bench.targets import (
    NAIVE,
    OFFICIAL,
    OURS,
    OURS_WEBHOOKS,
    PEER,
    case_name,
    ratios,
    requests_besides_create,
    targets,
)


def render(results: Results, info: dict[str, Any]) -> str:
    """The fixed-width tables of every section that ran, then the targets."""
    plan = results.plan
    lines = [
        f"imagine-bot benchmark, {plan.mode} run ({results.elapsed_s:.0f} s): {info['cpu']}, "
        f"{info['cpu_count']} CPUs, Python {info['python']}, {info['platform']}",
        *(f"  - {note}" for note in setup_notes(results)),
    ]
    if results.phases:
        lines += ["", *render_phases(results.phases)]
    if results.scale is not None:
        lines += ["", *render_scale(results.scale)]
    if results.sustained is not None:
        lines += ["", *render_sustained(results.sustained)]
    if results.scale_out is not None:
        lines += ["", *render_scale_out(results.scale_out)]
    lines += ["", "Targets" + (" (quick run: scaled down, indicative only)" if plan.mode == "quick" else "")]
    checked = targets(results)
    name_width = max([len("target"), *(len(target.name) for target in checked)]) + 2
    case_width = max([len("case"), *(len(target.case) for target in checked)]) + 2
    header = f"{'':5}{'target':<{name_width}}{'case':<{case_width}}{'measured':>10}{'limit':>12}  verdict"
    lines += [header, "-" * len(header)]
    for target in checked:
        mark = {True: "ok", False: "MISS", None: "-"}[target.passed]
        measured = "-" if target.measured is None else f"{target.measured:g}"
        limit = f"{target.comparison} {target.limit:g}"
        lines.append(
            f"{mark:<5}{target.name:<{name_width}}{target.case:<{case_width}}{measured:>10}{limit:>12}  "
            f"{target.unit:<8} {target.margin}" + (f"; {target.note}" if target.note else "")
        )
    return "\n".join(lines)


def render_phases(phases: list[PhaseResult]) -> list[str]:
    """Every overhead phase: percentiles, request kinds, and the ratios of the bot's rows to the others."""
    lines: list[str] = []
    lines.append("Delivery overhead (prediction succeeded -> image delivered), ms, and API requests per job")
    header = (
        f"{'pred':>6} {'jobs':>6}  {'client':<23}{'p50':>7}{'p95':>7}{'max':>7} {'detect':>7}"
        f"  {'create':>6}{'poll':>6}{'dl':>5}{'other':>6}{'total':>6}{'max':>5} {'429':>4}{'d429':>5} {'failed':>6}"
    )
    lines.append(header)
    lines.append("-" * len(header))
    previous: tuple[float, int] | None = None
    for phase in phases:
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
            f" {phase.throttled:>4}{'-' if phase.discord_429s is None else phase.discord_429s:>5}"
            f" {phase.jobs - phase.delivered:>6}"
        )
    lines.append("  (jobs: 1xN = N jobs one at a time; N = N jobs at once. detect = succeeded -> file requested, p50;")
    lines.append("  429 = answered 429 by the fake API; d429 = edits answered 429 by the client's fake Discord)")
    gaps = [
        f"{case_name(p.duration, p.concurrency)} {_ms(p.previous_edit_gap.p50)}"
        for p in phases
        if p.client == OURS and p.previous_edit_gap.n
    ]
    if gaps:
        lines.append("  imagine-bot: the message version with the image came after the previous edit of the same")
        lines.append("  message by (p50, ms): " + "; ".join(gaps))
    lines += render_webhooks(phases)
    for name in (OURS, OURS_WEBHOOKS, PEER, OFFICIAL, NAIVE):
        mine = [p for p in phases if p.client == name]
        headers = sorted({header for p in mine for header in p.prefer_headers})
        in_create = sum(p.finished_in_create for p in mine)
        lines.append(
            f"  {name}: create calls sent Prefer: {', '.join(headers) or '-'}; "
            f"{in_create} of {sum(p.reached_api for p in mine)} predictions came back finished from the create call"
        )
    for client in (OURS, OURS_WEBHOOKS):
        rows = ratios(phases, client)
        if not rows:
            continue
        lines += ["", f"Ratios, {client} / other (p50 overhead; mean API requests per job)"]
        header = (
            f"{'pred':>6} {'jobs':>6}  {'overhead/peer':>14}{'overhead/official':>18}{'requests/official':>19}"
            f"{'overhead/naive':>16}{'requests/naive':>16}"
        )
        lines += [header, "-" * len(header)]
        for row in rows:
            jobs = "1" if row["concurrency"] == 1 else str(row["concurrency"])
            lines.append(
                f"{row['duration']:>5g}s {jobs:>6}  {_num(row['overhead_p50_vs_official_client_bot']):>14}"
                f"{_num(row['overhead_p50_vs_official']):>18}{_num(row['requests_vs_official']):>19}"
                f"{_num(row['overhead_p50_vs_naive']):>16}{_num(row['requests_vs_naive']):>16}"
            )
    lines.append(f"  (peer: {PEER})")
    for phase in phases:
        for error, times in phase.errors.items():
            lines.append(f"  {phase.client}, {case_name(phase.duration, phase.concurrency)}: failed x{times}: {error}")
    return lines


def render_scale(scale: ScaleResult) -> list[str]:
    """The scale run."""
    lines: list[str] = []
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
        f"429s received: {scale.throttled} from the API, {scale.discord_429s} from Discord edits"
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
    return lines


def render_sustained(sustained: SustainedResult) -> list[str]:
    """The sustained phase."""
    overhead, first = sustained.overhead, sustained.first_percentage
    rpj = sustained.requests_per_job
    lines = [
        f"Sustained: {sustained.jobs} /imagine over {sustained.seconds:g} s ({sustained.rate:g} a second, the "
        "creates budget's rate: matched, not exceeded), "
        f"{sustained.duration:g} s predictions, {sustained.members} members in turn, one polling bot process",
        f"  delivered {sustained.delivered}/{sustained.jobs} (the last {_num(sustained.last_delivery_s, 0)} s after "
        f"the first push); at most {sustained.most_running} predictions running at once; 429s received: "
        f"{sustained.throttled} from the API, {sustained.discord_429s} from Discord edits",
        f"  overhead p50/p95/max {_ms(overhead.p50)}/{_ms(overhead.p95)}/{_ms(overhead.max)} ms; first percentage "
        f"shown after processing began p50/p95 {_ms(first.p50)}/{_ms(first.p95)} ms ({first.n} jobs showed one)",
        f"  first answer p95 {_ms(sustained.first_answer.p95)} ms, {sustained.late_answers} after Discord's 3 s; "
        f"requests per job {rpj['create']:.2f} create, {rpj['poll']:.1f} poll, {rpj['download']:.1f} download, "
        f"{rpj['other']:.2f} other",
        f"  bot process: peak {_num(sustained.peak_rss_mb, 0)} MB, largest event-loop stall "
        f"{_ms(sustained.max_stall_ms)} ms",
    ]
    lines += [f"  failed x{times}: {error}" for error, times in sustained.errors.items()]
    return lines


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


def render_webhooks(phases: list[PhaseResult]) -> list[str]:
    """What the webhook client's jobs received and sent, per case (nothing if it did not run)."""
    lines: list[str] = []
    for phase in phases:
        if phase.client != OURS_WEBHOOKS:
            continue
        hooks = phase.webhooks_per_job
        received = ", ".join(f"{event} {n:g}" for event, n in hooks.items() if event != "refused") or "none"
        lines.append(
            f"    {case_name(phase.duration, phase.concurrency)}: webhooks per job {received}; refused "
            f"{hooks.get('refused', 0):g}; API requests besides the create, largest "
            f"{_num(requests_besides_create(phase), 1)}; {phase.polled_after_end} of {phase.reached_api} polled "
            "after their prediction ended"
        )
    if lines:
        lines.insert(0, f"  {OURS_WEBHOOKS}: webhook attempts the fake made per job (refused: non-2xx or no answer),")
        lines.insert(1, "  and jobs polled after their end (a poll, not the push, may have told the bot):")
    return lines
