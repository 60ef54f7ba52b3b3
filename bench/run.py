"""The benchmark's plan and its sections (:data:`SECTIONS`), in the order they run, each on fake APIs and bot
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
   (:data:`CREATES_PER_SECOND`), for ``plan.sustained_seconds`` (full run: 5 minutes, about 2700 jobs of 30 s
   predictions, so a few hundred run at once) through one polling bot process whose running, per-server and
   queue limits are the number of jobs, with members in rotation far enough apart that no member limit refuses a
   job (:func:`sustained`). The budget starts full and is matched, not exceeded, so it never has to hold a create
   back: the phase loads the polling of a few hundred running jobs, not the creates budget's pacing (the
   scale-out bursts do that).
4. *scale-out*: for each of :data:`DEPLOYMENTS` in turn (1 process on SQLite, 1, 2 and 4 on PostgreSQL), a
   fresh fake API, a fresh database, a fake Discord of N shards and N bot processes, one shard each
   (``DISCORD_SHARD_COUNT`` = N, ``DISCORD_SHARD_IDS`` = k), with production tuning and budget (a minute-long
   window); ``plan.scale_out_guilds`` servers spread over the shards and one member per job spread over the
   servers. Once every process counts N live processes (each then takes 1/N of the API budget), one warm-up
   job per process, a pause for the budget to fill again, then the same burst of ``plan.scale_out_jobs``
   interactions at once. More than the budget's first burst, so the deployment's creates budget (9 a second)
   is what limits its throughput.
"""

from __future__ import annotations

import asyncio
import math
import random
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

from bench.baselines import Delivery
from bench.clients import BaselineProcess, Client, ImagineBotClient, OfficialClientBot
from bench.measure import PhaseResult, PhaseStart, Summary, analyse
from bench.postgres import URL_VARIABLE, PostgresUnavailable, admin_url, disposable_database
from bot.api.ratelimit import _BURST_SHARE, _HEADROOM, REPLICATE_CREATES_PER_MINUTE
from tests.fakes.replicate import REPLICATE_WEBHOOK_RETRY_DELAYS, FakePrediction, FakeReplicate, Scenario

_PROMPTS = count(1)

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
        data = asdict(self)
        data["overhead_ms"] = data.pop("overhead")
        data["first_answer_ms"] = data.pop("first_answer")
        return data


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
        data = asdict(self)
        data["overhead_ms"] = data.pop("overhead")
        data["first_percentage_ms"] = data.pop("first_percentage")
        data["first_answer_ms"] = data.pop("first_answer")
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


def _mb(kib: int | None) -> float | None:
    return None if kib is None else round(kib * 1024 / 1e6, 1)


def _prompts(client: Client, how_many: int) -> list[str]:
    return [f"a red fox, bench job {next(_PROMPTS)} ({client.name})" for _ in range(how_many)]


async def one_at_a_time(client: Client, duration: float, jobs: int, image_kib: int) -> PhaseResult:
    """``jobs`` jobs, each started when the one before was delivered."""
    start = PhaseStart.of(client)
    schedule(client, duration, jobs, image_kib, seed=jobs)
    started = time.monotonic()
    deliveries: list[Delivery] = []
    for prompt in _prompts(client, jobs):
        deliveries += await client.run([prompt], timeout=duration + 60)
    return analyse(client, deliveries, start, duration=duration, concurrency=1, wall_s=time.monotonic() - started)


async def at_once(client: Client, duration: float, jobs: int, image_kib: int) -> PhaseResult:
    """``jobs`` jobs started together."""
    start = PhaseStart.of(client)
    schedule(client, duration, jobs, image_kib, seed=jobs)
    started = time.monotonic()
    deliveries = await client.run(_prompts(client, jobs), timeout=duration + 120)
    return analyse(client, deliveries, start, duration=duration, concurrency=jobs, wall_s=time.monotonic() - started)


async def warm_up(client: Client, image_kib: int, jobs: int = 1) -> None:
    """``jobs`` untimed jobs at once (one per bot process); raises if one does not deliver (nothing else would
    work either)."""
    client.api.set_default_scenario(scenario(0.5, image_kib))
    for delivery in await client.run(_prompts(client, jobs), timeout=60):
        if delivery.delivered_at is None:
            raise RuntimeError(f"{client.name}: the warm-up job failed: {delivery.error}")


@dataclass
class Burst:
    """Many ``/imagine`` pushed through the fake Discord together, and what became of them."""

    phase: PhaseResult
    started: float
    """``time.time()`` just before the first interaction was pushed."""
    last_delivery_s: float | None
    """From :attr:`started` to the last image delivered (``None``: none was)."""
    complete: bool
    """Every job delivered."""


async def burst(
    bot: ImagineBotClient, jobs: int, duration: float, image_kib: int, *, timeout: float, rate: float | None = None
) -> Burst:
    """``jobs`` interactions into ``bot`` at once (or at ``rate`` a second), their stall record reset just before."""
    start = PhaseStart.of(bot)
    schedule(bot, duration, jobs, image_kib, seed=jobs)
    bot.reset_monitor()
    await asyncio.sleep(0.2)  # let the signal land before the load starts
    started = time.time()
    deliveries = await bot.run(_prompts(bot, jobs), timeout=timeout, rate=rate)
    phase = analyse(bot, deliveries, start, duration=duration, concurrency=jobs, wall_s=0.0)
    delivered_at = [d.delivered_at for d in deliveries if d.delivered_at is not None]
    last = max(delivered_at) - started if delivered_at else None
    return Burst(phase, started, last, complete=len(delivered_at) == len(deliveries))


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
        idle_rss_mb=_mb(idle),
        peak_rss_mb=_mb(report.get("ru_maxrss_kib")),
        rss_at_end_mb=_mb(end_rss),
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


# --------------------------------------------------------------------------- scale-out


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


def paced_creates_per_minute(api: FakeReplicate, since: int) -> float | None:
    """Creates a minute over the second half of the creates the fake API accepted from request ``since`` on.

    The first creates of a burst go out together (the budget's capacity); by the second half the
    budget paces them, so this is the sustained create rate of the deployment.
    """
    times = sorted(r.time for r in api.requests[since:] if r.kind == "create" and r.response_status == 201)
    middle = len(times) // 2
    if len(times) < 4 or times[-1] <= times[middle]:
        return None
    return (len(times) - 1 - middle) / (times[-1] - times[middle]) * 60


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
        data = asdict(self)
        data["overhead_ms"] = data.pop("overhead")
        data["first_answer_ms"] = data.pop("first_answer")
        return data


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


async def deploy(deployment: Deployment, plan: Plan, workdir: Path, database_url: str | None) -> DeploymentResult:
    """Start ``deployment`` against a fresh rate-limited fake API, warm it up, push the burst, stop it."""
    jobs = plan.scale_out_jobs
    api = FakeReplicate(rate_limits=True, seed=10 + deployment.processes)
    await api.start()
    bot = ImagineBotClient(
        api,
        workdir / f"scale-out-{deployment.processes}-{deployment.database}",
        max_running=jobs,
        max_running_per_server=jobs,
        members=jobs,
        shards=deployment.processes,
        guilds=plan.scale_out_guilds,
        database_url=database_url,
        name=deployment.label,
    )
    try:
        await bot.start()
        await warm_up(bot, plan.image_kib, jobs=deployment.processes)
        # The warm-up took tokens from every process's share: wait until the budget is full again.
        await asyncio.sleep(CREATES_BURST / CREATES_PER_SECOND + 0.2)
        since = len(api.requests)
        pushed = await burst(bot, jobs, plan.scale_out_duration, plan.image_kib, timeout=plan.scale_out_timeout)
        live = [process.live_processes() for process in bot.processes]
        peaks = [process.peak_rss_kib() for process in bot.processes]
        reports = [await process.stop() for process in bot.processes]
    finally:
        await bot.close()
        await api.close()
    phase = pushed.phase
    span = pushed.last_delivery_s
    return DeploymentResult(
        label=deployment.label,
        processes=deployment.processes,
        database=deployment.database,
        jobs=jobs,
        delivered=phase.delivered,
        throttled=api.throttled_count,
        last_delivery_s=None if span is None else round(span, 2),
        jobs_per_minute=round(phase.delivered / span * 60, 1) if span else None,
        paced_creates_per_minute=_round(paced_creates_per_minute(api, since)),
        live_processes=live,
        overhead=phase.overhead,
        first_answer=phase.first_answer,
        late_answers=phase.late_answers,
        requests_per_job=phase.requests_per_job,
        peak_rss_mb=[_mb(peak) for peak in peaks],
        max_stall_ms=[report.get("max_stall_ms") for report in reports],
        errors=phase.errors,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def scale_out(plan: Plan, workdir: Path, postgres_server: str) -> ScaleOutResult:
    """Every deployment of :data:`DEPLOYMENTS` in turn, each on a fresh database (PostgreSQL: a new one on
    ``postgres_server``, dropped after); skipped, saying why, where PostgreSQL does not answer."""
    result = ScaleOutResult(plan.scale_out_jobs, plan.scale_out_duration, plan.scale_out_guilds, [])
    try:
        async with disposable_database(postgres_server):
            pass  # the server answers and lets us make databases: the comparison can be made
        for deployment in DEPLOYMENTS:
            progress(
                f"scale-out: {plan.scale_out_jobs} jobs at once, {plan.scale_out_duration:g} s predictions, "
                f"{deployment.label}"
            )
            if deployment.database == "sqlite":
                result.deployments.append(await deploy(deployment, plan, workdir, None))
                continue
            async with disposable_database(postgres_server) as url:
                result.deployments.append(await deploy(deployment, plan, workdir, url))
    except PostgresUnavailable as exc:
        result.deployments.clear()
        result.skipped = f"no PostgreSQL server answered ({exc}); set {URL_VARIABLE} or start one"
        progress(f"scale-out skipped: {result.skipped}")
    return result


def progress(message: str) -> None:
    """A line on stderr so a long run shows it is alive."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


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
    api = FakeReplicate(rate_limits=True, seed=3)
    await api.start()
    big = ImagineBotClient(
        api,
        workdir / "scale-bot",
        max_running=plan.scale_jobs,
        max_running_per_server=plan.scale_jobs,
        members=plan.scale_members,
    )
    try:
        progress("scale: starting its bot process")
        await big.start()
        await warm_up(big, plan.image_kib)
        progress(f"scale: {plan.scale_jobs} jobs at once, {plan.scale_duration:g} s predictions")
        return await scale(big, plan)
    finally:
        await big.close()
        await api.close()


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
    api = FakeReplicate(rate_limits=True, seed=6)
    await api.start()
    limits = {"IMAGINE_MAX_QUEUED": str(jobs), "IMAGINE_MAX_QUEUED_PER_MEMBER": str(jobs)}
    bot = ImagineBotClient(
        api,
        workdir / "sustained-bot",
        max_running=jobs,
        max_running_per_server=jobs,
        members=members,
        extra_env=limits,
        name="imagine-bot (sustained)",
    )
    try:
        progress("sustained: starting its bot process")
        await bot.start()
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
    finally:
        await bot.close()
        await api.close()
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
        last_delivery_s=_round(pushed.last_delivery_s),
        overhead=phase.overhead,
        first_percentage=phase.first_percentage,
        first_answer=phase.first_answer,
        late_answers=phase.late_answers,
        requests_per_job=per_job,
        api_requests_per_job=round(per_job["total"] - per_job["download"], 2) if phase.reached_api else None,
        peak_rss_mb=_mb(peak or report.get("ru_maxrss_kib")),
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
