"""The results as the Markdown of README's Performance section and as JSON (the same figures), with the targets
checked (:mod:`bench.targets` says what they are; :mod:`bench.details` prints the detailed fixed-width tables).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bench.measure import PhaseResult, Summary
from bench.plan import BASELINE_DEPLOYMENT, JITTER, SECTIONS
from bench.results import Results, ScaleOutResult, ScaleResult, SustainedResult
from bench.targets import (
    CLIENT_ORDER,
    NAIVE,
    OURS_WEBHOOKS,
    PEER,
    find_phase,
    ratio_of,
    ratios,
    targets,
)

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
            "jobs_per_minute_vs_1_process_postgresql": ratio_of(d.jobs_per_minute, baseline),
            "jobs_per_minute_vs_ceiling": ratio_of(d.jobs_per_minute, spread.ceiling_jobs_per_minute),
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
        naive = find_phase(phases, NAIVE, phase.duration, phase.concurrency)
        peer = find_phase(phases, PEER, phase.duration, phase.concurrency)
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
            _md_ratio(ratio_of(phase.overhead.p50, naive.overhead.p50 if naive else None)),
            _md_ratio(ratio_of(phase.overhead.p50, peer.overhead.p50 if peer else None)),
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
