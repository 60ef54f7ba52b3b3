"""The scale-out section: the same burst through each of :data:`bench.plan.DEPLOYMENTS`, side by side."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.clients import ImagineBotClient
from bench.plan import CREATES_BURST, CREATES_PER_SECOND, DEPLOYMENTS, Deployment, Plan
from bench.postgres import URL_VARIABLE, PostgresUnavailable, disposable_database
from bench.results import DeploymentResult, ScaleOutResult
from bench.workload import burst, megabytes, progress, tenths, warm_up
from tests.fakes.replicate import FakeReplicate


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


async def deploy(deployment: Deployment, plan: Plan, workdir: Path, database_url: str | None) -> DeploymentResult:
    """Start ``deployment`` against a fresh rate-limited fake API, warm it up, push the burst, stop it."""
    jobs = plan.scale_out_jobs
    async with (
        FakeReplicate(rate_limits=True, seed=10 + deployment.processes) as api,
        ImagineBotClient(
            api,
            workdir / f"scale-out-{deployment.processes}-{deployment.database}",
            max_running=jobs,
            max_running_per_server=jobs,
            members=jobs,
            shards=deployment.processes,
            guilds=plan.scale_out_guilds,
            database_url=database_url,
            name=deployment.label,
        ) as bot,
    ):
        await warm_up(bot, plan.image_kib, jobs=deployment.processes)
        # The warm-up took tokens from every process's share: wait until the budget is full again.
        await asyncio.sleep(CREATES_BURST / CREATES_PER_SECOND + 0.2)
        since = len(api.requests)
        pushed = await burst(bot, jobs, plan.scale_out_duration, plan.image_kib, timeout=plan.scale_out_timeout)
        live = [process.live_processes() for process in bot.processes]
        peaks = [process.peak_rss_kib() for process in bot.processes]
        reports = [await process.stop() for process in bot.processes]
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
        paced_creates_per_minute=tenths(paced_creates_per_minute(api, since)),
        live_processes=live,
        overhead=phase.overhead,
        first_answer=phase.first_answer,
        late_answers=phase.late_answers,
        requests_per_job=phase.requests_per_job,
        peak_rss_mb=[megabytes(peak) for peak in peaks],
        max_stall_ms=[report.get("max_stall_ms") for report in reports],
        errors=phase.errors,
    )


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
