"""The benchmark's plan and its phases, in the order they run.

1. Four fake prediction APIs with Replicate's published rate limits (600 creates and 3000 other
   requests per sliding minute; 429 beyond): one per client, so that request counts and rate
   windows never mix, and a fresh one for the scale run. Two bot processes and the two baseline
   processes start at once: one bot for the overhead runs (``IMAGINE_MAX_RUNNING`` = the batch size,
   so a batch really runs at once; the default of 8 would queue the rest), one for the scale run.
2. One untimed warm-up job per client (the bot reads the model's schema, every client opens its
   connections), as a bot that has been up for a while would be.
3. For each prediction time: *one at a time*, each client runs its jobs one after the other (the
   three clients side by side, each against its own fake API and so never more than one job in
   flight per client: it keeps the full run under ten minutes); then *all at once*, each client in
   turn starts the whole batch together.
4. Scale: N ``/imagine`` interactions pushed through the fake Discord as fast as it dispatches
   them, each from a different member (the bot refuses a member's next ``/imagine`` if the previous
   one is still being set up after 0.5 s, so one member's twenty would measure that refusal, not
   the bot's capacity), to a bot with ``IMAGINE_MAX_RUNNING`` and
   ``IMAGINE_MAX_RUNNING_PER_SERVER`` at N; the bot's event-loop stall record is reset just before,
   and its peak resident memory read when it is stopped. ``--scale-rate`` pushes them at a given
   rate instead, to see the engine with every job running when the bot cannot answer them all at
   once within Discord's 3 s.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

from bench.baselines import Delivery
from bench.clients import BaselineProcess, Client, ImagineBotClient
from bench.measure import PhaseResult, Summary, analyse
from tests.fakes.replicate import FakeReplicate, Scenario

_PROMPTS = count(1)


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

    def to_json(self) -> dict[str, Any]:
        """JSON-able plan."""
        data = asdict(self)
        data["one_at_a_time"] = {str(k): v for k, v in self.one_at_a_time.items()}
        data["at_once"] = {str(k): v for k, v in self.at_once.items()}
        return data


FULL = Plan(
    mode="full",
    durations=(0.5, 5.0, 30.0),
    one_at_a_time={0.5: 15, 5.0: 5, 30.0: 3},
    at_once={0.5: 50, 5.0: 50, 30.0: 50},
    scale_jobs=1000,
    scale_duration=5.0,
    scale_members=1000,
    scale_timeout=300.0,
)

QUICK = Plan(
    mode="quick",
    durations=(0.5, 5.0),
    one_at_a_time={0.5: 4, 5.0: 2},
    at_once={0.5: 20, 5.0: 0},
    scale_jobs=200,
    scale_duration=0.5,
    scale_members=200,
    scale_timeout=40.0,
    notes=(
        "quick run: scaled down to finish in under a minute: no 30 s predictions, 4 and 2 jobs one at a "
        "time, 20 (not 50) at once and only for 0.5 s predictions, and a scale run of 200 (not 1000) "
        "jobs of 0.5 s (not 5 s) predictions; use the full run for the figures the targets speak of",
    ),
)


JITTER = 0.1
"""Prediction times are spread uniformly over +-10 % of the nominal time.

A fixed 5.000 s would be in phase with the naive loop's 1 s sleeps (and with any fixed poll
schedule), so its result would hinge on a few milliseconds of scheduling noise; real prediction
times vary anyway. The three clients get the same sequence of times (same seed)."""


def scenario(duration: float, image_kib: int) -> Scenario:
    """A prediction that succeeds ``duration`` s after its create, with one output of ``image_kib`` KiB."""
    return Scenario(start_delay=0.0, duration=duration, huge_image_mib=image_kib / 1024)


def schedule(client: Client, duration: float, jobs: int, image_kib: int, seed: int) -> None:
    """Queue the scenarios of the next ``jobs`` predictions ``client`` creates (jittered times)."""
    rng = random.Random(seed)
    client.api.clear_scenarios()
    for _ in range(jobs):
        client.api.push_scenario(scenario(duration * rng.uniform(1 - JITTER, 1 + JITTER), image_kib))


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
        data = asdict(self)
        data["overhead_ms"] = data.pop("overhead")
        data["first_answer_ms"] = data.pop("first_answer")
        return data


@dataclass
class Results:
    """Everything one run measured."""

    plan: Plan
    phases: list[PhaseResult]
    scale: ScaleResult
    overhead_bot: dict[str, Any]
    """The overhead bot process's own report (stalls, memory) over the overhead runs."""
    elapsed_s: float


def _mb(kib: int | None) -> float | None:
    return None if kib is None else round(kib * 1024 / 1e6, 1)


def _prompts(client: Client, how_many: int) -> list[str]:
    return [f"a red fox, bench job {next(_PROMPTS)} ({client.name})" for _ in range(how_many)]


async def one_at_a_time(client: Client, duration: float, jobs: int, image_kib: int) -> PhaseResult:
    """``jobs`` jobs, each started when the one before was delivered."""
    since, throttled = len(client.api.requests), client.api.throttled_count
    schedule(client, duration, jobs, image_kib, seed=jobs)
    started = time.monotonic()
    deliveries: list[Delivery] = []
    for prompt in _prompts(client, jobs):
        deliveries += await client.run([prompt], timeout=duration + 60)
    return analyse(
        client,
        deliveries,
        since,
        duration=duration,
        concurrency=1,
        wall_s=time.monotonic() - started,
        throttled=client.api.throttled_count - throttled,
    )


async def at_once(client: Client, duration: float, jobs: int, image_kib: int) -> PhaseResult:
    """``jobs`` jobs started together."""
    since, throttled = len(client.api.requests), client.api.throttled_count
    schedule(client, duration, jobs, image_kib, seed=jobs)
    started = time.monotonic()
    deliveries = await client.run(_prompts(client, jobs), timeout=duration + 120)
    return analyse(
        client,
        deliveries,
        since,
        duration=duration,
        concurrency=jobs,
        wall_s=time.monotonic() - started,
        throttled=client.api.throttled_count - throttled,
    )


async def warm_up(client: Client, image_kib: int) -> None:
    """One untimed job; raises if it does not deliver (nothing else would work either)."""
    client.api.set_default_scenario(scenario(0.5, image_kib))
    [delivery] = await client.run(_prompts(client, 1), timeout=60)
    if delivery.delivered_at is None:
        raise RuntimeError(f"{client.name}: the warm-up job failed: {delivery.error}")


async def scale(bot: ImagineBotClient, plan: Plan) -> ScaleResult:
    """``plan.scale_jobs`` interactions at once into ``bot``; figures from the fakes and the bot's report."""
    api = bot.api
    idle = bot.rss_kib()
    since, throttled = len(api.requests), api.throttled_count
    schedule(bot, plan.scale_duration, plan.scale_jobs, plan.image_kib, seed=plan.scale_jobs)
    bot.reset_monitor()
    await asyncio.sleep(0.2)  # let the signal land before the load starts
    started = time.time()
    prompts = _prompts(bot, plan.scale_jobs)
    deliveries = await bot.run(prompts, timeout=plan.scale_timeout, rate=plan.scale_push_rate)
    end_rss = bot.rss_kib()
    report = await bot.stop()
    phase = analyse(
        bot,
        deliveries,
        since,
        duration=plan.scale_duration,
        concurrency=plan.scale_jobs,
        wall_s=0.0,
        throttled=api.throttled_count - throttled,
    )
    delivered_at = [d.delivered_at for d in deliveries if d.delivered_at is not None]
    complete = len(delivered_at) == len(deliveries)
    return ScaleResult(
        jobs=plan.scale_jobs,
        duration=plan.scale_duration,
        members=plan.scale_members,
        max_running=plan.scale_jobs,
        push_rate=plan.scale_push_rate,
        delivered=phase.delivered,
        completion_s=round(max(delivered_at) - started, 1) if complete else None,
        push_s=round(bot.last_push_s, 2),
        idle_rss_mb=_mb(idle),
        peak_rss_mb=_mb(report.get("ru_maxrss_kib")),
        rss_at_end_mb=_mb(end_rss),
        max_stall_ms=report.get("max_stall_ms"),
        p99_stall_ms=report.get("p99_stall_ms"),
        stalls_over_100ms=report.get("stalls_over_100ms"),
        max_stall_at_s=report.get("max_stall_at_s"),
        max_gc_pause_ms=report.get("max_gc_pause_ms"),
        throttled=phase.throttled,
        first_answer=phase.first_answer,
        late_answers=phase.late_answers,
        reached_api=phase.reached_api,
        overhead=phase.overhead,
        requests_per_job=phase.requests_per_job,
        max_requests_per_job=phase.max_requests_per_job,
        errors=phase.errors,
    )


def progress(message: str) -> None:
    """A line on stderr so a long run shows it is alive."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


async def run(plan: Plan, workdir: Path) -> Results:
    """Run every phase of ``plan``; bot logs and databases go under ``workdir``."""
    began = time.monotonic()
    apis = [FakeReplicate(rate_limits=True, seed=seed) for seed in range(4)]
    for api in apis:
        await api.start()
    batch = max([*plan.at_once.values(), 1])
    ours = ImagineBotClient(apis[0], workdir / "bot", max_running=batch, max_running_per_server=batch, members=batch)
    big = ImagineBotClient(
        apis[3],
        workdir / "scale-bot",
        max_running=plan.scale_jobs,
        max_running_per_server=plan.scale_jobs,
        members=plan.scale_members,
    )
    official, naive = BaselineProcess(apis[1], "official"), BaselineProcess(apis[2], "naive")
    clients: Sequence[Client] = (ours, official, naive)
    try:
        progress("starting two bot processes and two baseline processes")
        await asyncio.gather(ours.start(), big.start(), official.start(), naive.start())
        await asyncio.gather(*(warm_up(client, plan.image_kib) for client in (*clients, big)))
        phases: list[PhaseResult] = []
        for duration in plan.durations:
            jobs = plan.one_at_a_time[duration]
            progress(f"{duration:g} s predictions, {jobs} one at a time (the three clients side by side)")
            phases += await asyncio.gather(
                *(one_at_a_time(client, duration, jobs, plan.image_kib) for client in clients)
            )
            jobs = plan.at_once.get(duration, 0)
            for client in clients if jobs else ():
                progress(f"{duration:g} s predictions, {jobs} at once: {client.name}")
                phases.append(await at_once(client, duration, jobs, plan.image_kib))
        overhead_bot = await ours.stop()
        progress(f"scale: {plan.scale_jobs} jobs at once, {plan.scale_duration:g} s predictions")
        scaled = await scale(big, plan)
    finally:
        for client in (*clients, big):
            await client.close()
        for api in apis:
            await api.close()
    return Results(plan, phases, scaled, overhead_bot, round(time.monotonic() - began, 1))
