"""The benchmark's sections (:data:`bench.plan.SECTIONS`), in the order they run, each on fake APIs and bot
processes of its own, stopped before the next section starts (``python -m bench --only`` / ``--skip`` pick).

Every fake prediction API enforces Replicate's published rate limits (600 creates and 3000 other requests per
sliding minute; 429 beyond), and each client has its own, so that request counts and rate windows never mix.

1. *overhead*: five clients start at once, each in its own process: imagine-bot polling for results and
   imagine-bot with the API pushing them by webhook to its HTTP server (``IMAGINE_HTTP_LISTEN``,
   ``IMAGINE_WEBHOOK_URL``; that fake retries a failed ``completed`` on Replicate's schedule), both with
   ``IMAGINE_MAX_RUNNING`` = the batch size (the default of 8 would queue the rest of a batch); the official
   client bot (:mod:`bench.peerbot`, a discord.py bot on Replicate's ``async_run``, on a fake Discord of its
   own); and the two library baselines (:mod:`bench.baselines`). One untimed warm-up job per client (the bot
   reads the model's schema, every client opens its connections), as a bot up for a while would be. Then for
   each prediction time: *one at a time*, each client runs its jobs one after the other (the five side by
   side, each never more than one job in flight); then *all at once*, each client in turn starts the whole
   batch together (none for 4 s: that row is the first-seconds check, one job at a time).
2. *scale*: N ``/imagine`` interactions pushed through the fake Discord as fast as it dispatches them, each
   from a different member (the bot refuses a member's next ``/imagine`` if the previous one is still being
   set up after 0.5 s, so one member's twenty would measure that refusal, not the bot's capacity), to a bot
   with ``IMAGINE_MAX_RUNNING`` and ``IMAGINE_MAX_RUNNING_PER_SERVER`` at N; the bot's event-loop stall record
   is reset just before, and its peak resident memory read when it is stopped. ``--scale-rate`` pushes them at
   a given rate instead, to see the engine with every job running when the bot cannot answer them all at once
   within Discord's 3 s.
3. *sustained*: ``/imagine`` pushed at the deployment's full creates budget, the rate it refills at
   (:data:`bench.plan.CREATES_PER_SECOND`), for ``plan.sustained_seconds`` (full run: 5 minutes, about 2700 jobs of 30 s
   predictions, so a few hundred run at once) through one polling bot process whose running, per-server and
   queue limits are the number of jobs, with members in rotation far enough apart that no member limit refuses a
   job (:func:`sustained`). The budget starts full and is matched, not exceeded, so it never has to hold a create
   back: the phase loads the polling of a few hundred running jobs, not the creates budget's pacing (the
   scale-out bursts do that).
4. *scale-out* (:mod:`bench.scale_out`): for each of :data:`bench.plan.DEPLOYMENTS` in turn (1 process on
   SQLite, 1, 2 and 4 on PostgreSQL), a fresh fake API, a fresh database, a fake Discord of N shards and N bot
   processes, one shard each (``DISCORD_SHARD_COUNT`` = N, ``DISCORD_SHARD_IDS`` = k), with production tuning
   and budget (a minute-long window); ``plan.scale_out_guilds`` servers spread over the shards and one member
   per job spread over the servers. Once every process counts N live processes (each then takes 1/N of the API
   budget), one warm-up job per process, a pause for the budget to fill again, then the same burst of
   ``plan.scale_out_jobs`` interactions at once. More than the budget's first burst, so the deployment's
   creates budget (9 a second) is what limits its throughput.

The plans are :mod:`bench.plan`'s, the records of the figures :mod:`bench.results`', and the batches of jobs
pushed through a client :mod:`bench.workload`'s.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.clients import Client, ImagineBotClient, OfficialClientBot
from bench.measure import PhaseResult, PhaseStart
from bench.plan import SECTIONS, Plan
from bench.postgres import admin_url
from bench.processes import BaselineProcess
from bench.results import Results, ScaleResult, SustainedResult
from bench.scale_out import scale_out
from bench.workload import at_once, burst, megabytes, one_at_a_time, progress, tenths, warm_up
from tests.fakes.replicate import REPLICATE_WEBHOOK_RETRY_DELAYS, FakePrediction, FakeReplicate


async def scale(bot: ImagineBotClient, plan: Plan) -> ScaleResult:
    """``plan.scale_jobs`` interactions at once into ``bot``; figures from the fakes and the bot's report."""
    idle = bot.rss_kib()
    pushed = await burst(
        bot,
        plan.scale_jobs,
        plan.scale_duration,
        plan.image_kib,
        timeout=plan.scale_timeout,
        rate=plan.scale_push_rate,
    )
    end_rss = bot.rss_kib()
    report = await bot.stop()
    phase = pushed.phase
    return ScaleResult(
        jobs=plan.scale_jobs,
        duration=plan.scale_duration,
        members=plan.scale_members,
        max_running=plan.scale_jobs,
        push_rate=plan.scale_push_rate,
        delivered=phase.delivered,
        completion_s=round(pushed.last_delivery_s, 1)
        if pushed.complete and pushed.last_delivery_s is not None
        else None,
        push_s=round(bot.last_push_s, 2),
        idle_rss_mb=megabytes(idle),
        peak_rss_mb=megabytes(report.get("ru_maxrss_kib")),
        rss_at_end_mb=megabytes(end_rss),
        max_stall_ms=report.get("max_stall_ms"),
        p99_stall_ms=report.get("p99_stall_ms"),
        stalls_over_100ms=report.get("stalls_over_100ms"),
        max_stall_at_s=report.get("max_stall_at_s"),
        max_gc_pause_ms=report.get("max_gc_pause_ms"),
        throttled=phase.throttled,
        discord_429s=phase.discord_429s or 0,
        first_answer=phase.first_answer,
        late_answers=phase.late_answers,
        reached_api=phase.reached_api,
        overhead=phase.overhead,
        requests_per_job=phase.requests_per_job,
        max_requests_per_job=phase.max_requests_per_job,
        errors=phase.errors,
    )


@dataclass
class OverheadResult:
    """The overhead runs: every client's phases, and the bot processes' own reports over them."""

    phases: list[PhaseResult]
    bot_report: dict[str, Any]
    webhook_bot_report: dict[str, Any]


async def overhead(plan: Plan, workdir: Path) -> OverheadResult:
    """Every prediction time of ``plan``, one at a time (the five clients side by side) and all at once (each in
    turn): the bot polling, the bot with webhooks, the bot built on the official client, the official client and
    the naive loop, each against its own rate-limited fake API."""
    apis = [FakeReplicate(rate_limits=True, seed=seed) for seed in (0, 1, 2, 5)]
    apis.append(FakeReplicate(rate_limits=True, seed=4, webhook_retry_delays=REPLICATE_WEBHOOK_RETRY_DELAYS))
    for api in apis:
        await api.start()
    batch = max([*plan.at_once.values(), 1])
    ours = ImagineBotClient(apis[0], workdir / "bot", max_running=batch, max_running_per_server=batch, members=batch)
    hooked = ImagineBotClient(
        apis[4], workdir / "webhook-bot", max_running=batch, max_running_per_server=batch, members=batch, webhooks=True
    )
    peer = OfficialClientBot(apis[3], workdir / "peer-bot", members=batch)
    official, naive = BaselineProcess(apis[1], "official"), BaselineProcess(apis[2], "naive")
    clients: Sequence[Client] = (ours, hooked, peer, official, naive)
    try:
        progress("overhead: starting three bot processes (imagine-bot polling, with webhooks, the official client bot)")
        progress("overhead: and two baseline processes (the official client, the naive loop)")
        await asyncio.gather(*(client.start() for client in (ours, hooked, peer, official, naive)))
        await asyncio.gather(*(warm_up(client, plan.image_kib) for client in clients))
        phases: list[PhaseResult] = []
        for duration in plan.durations:
            jobs = plan.one_at_a_time[duration]
            progress(f"{duration:g} s predictions, {jobs} one at a time (the five clients side by side)")
            phases += await asyncio.gather(
                *(one_at_a_time(client, duration, jobs, plan.image_kib) for client in clients)
            )
            jobs = plan.at_once.get(duration, 0)
            for client in clients if jobs else ():
                progress(f"{duration:g} s predictions, {jobs} at once: {client.name}")
                phases.append(await at_once(client, duration, jobs, plan.image_kib))
        return OverheadResult(phases, await ours.stop(), await hooked.stop())
    finally:
        for client in clients:
            await client.close()
        for api in apis:
            await api.close()


async def scale_phase(plan: Plan, workdir: Path) -> ScaleResult:
    """The scale run on a bot process and a rate-limited fake API of its own (:func:`scale`)."""
    progress("scale: starting its bot process")
    async with (
        FakeReplicate(rate_limits=True, seed=3) as api,
        ImagineBotClient(
            api,
            workdir / "scale-bot",
            max_running=plan.scale_jobs,
            max_running_per_server=plan.scale_jobs,
            members=plan.scale_members,
        ) as big,
    ):
        await warm_up(big, plan.image_kib)
        progress(f"scale: {plan.scale_jobs} jobs at once, {plan.scale_duration:g} s predictions")
        return await scale(big, plan)


def most_running(predictions: Iterable[FakePrediction]) -> int:
    """The most of ``predictions`` that were running (created, not yet ended) at one moment."""
    edges: list[tuple[float, int]] = []
    for prediction in predictions:
        edges.append((prediction.created_at.timestamp(), 1))
        if prediction.completed_at is not None:
            edges.append((prediction.completed_at.timestamp(), -1))
    running = most = 0
    for _, change in sorted(edges):  # an end sorts before a create at the same instant
        running += change
        most = max(most, running)
    return most


def sustained_members(plan: Plan) -> int:
    """Members in rotation: each one's next ``/imagine`` comes long after the previous job ended, so no member
    limit can refuse a job (twice the prediction time plus a minute of pushes apart)."""
    return max(8, math.ceil(plan.sustained_push_rate * (2 * plan.sustained_duration + 60)))


async def sustained(plan: Plan, workdir: Path) -> SustainedResult:
    """``plan.sustained_seconds`` of ``/imagine`` at the rate the creates budget refills at (matched, not exceeded)
    into one polling bot process, on a rate-limited fake API of its own; the bot's limits (running, per server,
    queued, queued per member) are set to the number of jobs so that none refuses one, and its stall record is reset
    just before the first push. The 429s (the API's, and Discord's for edits) count from the first push to the stop."""
    jobs, rate, duration = plan.sustained_jobs, plan.sustained_push_rate, plan.sustained_duration
    members = sustained_members(plan)
    limits = {"IMAGINE_MAX_QUEUED": str(jobs), "IMAGINE_MAX_QUEUED_PER_MEMBER": str(jobs)}
    progress("sustained: starting its bot process")
    async with (
        FakeReplicate(rate_limits=True, seed=6) as api,
        ImagineBotClient(
            api,
            workdir / "sustained-bot",
            max_running=jobs,
            max_running_per_server=jobs,
            members=members,
            extra_env=limits,
            name="imagine-bot (sustained)",
        ) as bot,
    ):
        await warm_up(bot, plan.image_kib)
        start = PhaseStart.of(bot)
        progress(
            f"sustained: {jobs} /imagine over {plan.sustained_seconds:g} s ({rate:g} a second, the creates budget's "
            "rate: matched, not exceeded), "
            f"{duration:g} s predictions, {members} members in turn"
        )
        pushed = await burst(
            bot,
            jobs,
            duration,
            plan.image_kib,
            timeout=plan.sustained_seconds + duration + plan.sustained_drain,
            rate=rate,
        )
        peak = bot.processes[0].peak_rss_kib()
        report = await bot.stop()
        running = most_running(api.predictions.values())
    phase = pushed.phase
    per_job = phase.requests_per_job
    return SustainedResult(
        seconds=plan.sustained_seconds,
        rate=round(rate, 2),
        duration=duration,
        jobs=jobs,
        members=members,
        delivered=phase.delivered,
        throttled=start.throttled_since(bot),
        discord_429s=start.discord_429s_since(bot) or 0,
        most_running=running,
        last_delivery_s=tenths(pushed.last_delivery_s),
        overhead=phase.overhead,
        first_percentage=phase.first_percentage,
        first_answer=phase.first_answer,
        late_answers=phase.late_answers,
        requests_per_job=per_job,
        api_requests_per_job=round(per_job["total"] - per_job["download"], 2) if phase.reached_api else None,
        peak_rss_mb=megabytes(peak or report.get("ru_maxrss_kib")),
        max_stall_ms=report.get("max_stall_ms"),
        errors=phase.errors,
    )


async def run(
    plan: Plan, workdir: Path, postgres_server: str | None = None, sections: Iterable[str] = SECTIONS
) -> Results:
    """Run ``sections`` of ``plan`` (default: every one, in :data:`SECTIONS`' order, each on fakes and bot
    processes of its own, stopped before the next starts); bot logs and databases go under ``workdir``, the
    scale-out's PostgreSQL databases on ``postgres_server`` (default: the tests' server,
    :func:`bench.postgres.admin_url`)."""
    wanted = tuple(section for section in SECTIONS if section in set(sections))
    began = time.monotonic()
    results = Results(plan, wanted, 0.0)
    if "overhead" in wanted:
        measured = await overhead(plan, workdir)
        results.phases = measured.phases
        results.overhead_bot, results.overhead_bot_webhooks = measured.bot_report, measured.webhook_bot_report
    if "scale" in wanted:
        results.scale = await scale_phase(plan, workdir)
    if "sustained" in wanted and plan.sustained_seconds:
        results.sustained = await sustained(plan, workdir)
    if "scale-out" in wanted and plan.scale_out_jobs:
        results.scale_out = await scale_out(plan, workdir, postgres_server or admin_url())
    results.elapsed_s = round(time.monotonic() - began, 1)
    return results
