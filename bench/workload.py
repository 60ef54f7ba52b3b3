"""What the clients are given and how a batch of jobs is pushed through them: scenarios with jittered prediction
times, prompts, one at a time, at once, a warm-up, and a burst of ``/imagine`` into a bot."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import dataclass
from itertools import count

from bench.baselines import Delivery
from bench.clients import Client, ImagineBotClient
from bench.measure import PhaseResult, PhaseStart, analyse
from bench.plan import JITTER
from tests.fakes.replicate import Scenario

_PROMPTS = count(1)


def scenario(duration: float, image_kib: int) -> Scenario:
    """A prediction that succeeds ``duration`` s after its create, with one output of ``image_kib`` KiB."""
    return Scenario(start_delay=0.0, duration=duration, huge_image_mib=image_kib / 1024)


def schedule(client: Client, duration: float, jobs: int, image_kib: int, seed: int) -> None:
    """Queue the scenarios of the next ``jobs`` predictions ``client`` creates (jittered times)."""
    rng = random.Random(seed)
    client.api.clear_scenarios()
    for _ in range(jobs):
        client.api.push_scenario(scenario(duration * rng.uniform(1 - JITTER, 1 + JITTER), image_kib))


def prompts(client: Client, how_many: int) -> list[str]:
    return [f"a red fox, bench job {next(_PROMPTS)} ({client.name})" for _ in range(how_many)]


async def one_at_a_time(client: Client, duration: float, jobs: int, image_kib: int) -> PhaseResult:
    """``jobs`` jobs, each started when the one before was delivered."""
    start = PhaseStart.of(client)
    schedule(client, duration, jobs, image_kib, seed=jobs)
    started = time.monotonic()
    deliveries: list[Delivery] = []
    for prompt in prompts(client, jobs):
        deliveries += await client.run([prompt], timeout=duration + 60)
    return analyse(client, deliveries, start, duration=duration, concurrency=1, wall_s=time.monotonic() - started)


async def at_once(client: Client, duration: float, jobs: int, image_kib: int) -> PhaseResult:
    """``jobs`` jobs started together."""
    start = PhaseStart.of(client)
    schedule(client, duration, jobs, image_kib, seed=jobs)
    started = time.monotonic()
    deliveries = await client.run(prompts(client, jobs), timeout=duration + 120)
    return analyse(client, deliveries, start, duration=duration, concurrency=jobs, wall_s=time.monotonic() - started)


async def warm_up(client: Client, image_kib: int, jobs: int = 1) -> None:
    """``jobs`` untimed jobs at once (one per bot process); raises if one does not deliver (nothing else would
    work either)."""
    client.api.set_default_scenario(scenario(0.5, image_kib))
    for delivery in await client.run(prompts(client, jobs), timeout=60):
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
    deliveries = await bot.run(prompts(bot, jobs), timeout=timeout, rate=rate)
    phase = analyse(bot, deliveries, start, duration=duration, concurrency=jobs, wall_s=0.0)
    delivered_at = [d.delivered_at for d in deliveries if d.delivered_at is not None]
    last = max(delivered_at) - started if delivered_at else None
    return Burst(phase, started, last, complete=len(delivered_at) == len(deliveries))


def progress(message: str) -> None:
    """A line on stderr so a long run shows it is alive."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def megabytes(kib: int | None) -> float | None:
    return None if kib is None else round(kib * 1024 / 1e6, 1)


def tenths(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
