"""The request budget's token buckets, driven by a fake clock whose sleep moves time on at once."""

from __future__ import annotations

import asyncio
import itertools
import random
from bisect import bisect_left
from datetime import UTC, datetime, timedelta

import pytest

from bot.api.ratelimit import REPLICATE_CREATES_PER_MINUTE, REPLICATE_OTHER_PER_MINUTE, RequestBudget, TokenBucket


class FakeClock:
    """Monotonic time that only moves when someone sleeps (or the test advances it).

    Like a real clock, time moves on by at least ``min_step`` on every sleep; with
    ``min_step=0`` it moves by exactly what was asked, and a run of sleeps that
    cannot move it at all (below float resolution) raises instead of spinning.
    """

    def __init__(self, start: float = 1000.0, *, min_step: float = 1e-9) -> None:
        self.time = start
        self.min_step = min_step
        self.sleeps: list[float] = []
        self._stuck = 0

    def monotonic(self) -> float:
        return self.time

    def now(self) -> datetime:
        return datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=self.time)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        before = self.time
        self.time += max(self.min_step, seconds)
        self._stuck = self._stuck + 1 if self.time == before else 0
        if self._stuck > 1000:
            raise RuntimeError(f"{self._stuck} sleeps of {seconds!r}s did not move the clock at {self.time}")
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.time += seconds


async def acquire_times(bucket: TokenBucket, clock: FakeClock, count: int) -> list[float]:
    times = []
    for _ in range(count):
        await bucket.acquire()
        times.append(clock.monotonic())
    return times


def max_in_window(times: list[float], window: float) -> int:
    """The most timestamps found in any half-open window ``[t, t + window)``."""
    ordered = sorted(times)
    return max(bisect_left(ordered, start + window - 1e-9) - index for index, start in enumerate(ordered))


@pytest.mark.parametrize("per_minute", [0, -1, -0.5])
def test_rate_must_be_positive(per_minute: float) -> None:
    with pytest.raises(ValueError, match="per_minute"):
        TokenBucket(per_minute, clock=FakeClock())


@pytest.mark.parametrize("per_minute", [6, 60, 600, 3000])
def test_per_second_is_ninety_percent(per_minute: int) -> None:
    assert TokenBucket(per_minute, clock=FakeClock()).per_second == pytest.approx(per_minute * 0.9 / 60)


async def test_burst_then_steady_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(600, clock=clock)  # burst 5% = 30, then 9 per second
    start = clock.monotonic()
    times = await acquire_times(bucket, clock, 30 + 900)
    assert all(t == start for t in times[:30])
    assert times[30] > start
    steady = times[30:]
    rate = (len(steady) - 1) / (steady[-1] - steady[0])
    assert rate == pytest.approx(600 * 0.9 / 60, rel=0.01)
    gaps = [b - a for a, b in itertools.pairwise(steady)]
    assert min(gaps) == pytest.approx(1 / 9, rel=0.01)


async def test_explicit_burst_and_minimum_burst_of_one() -> None:
    clock = FakeClock()
    bucket = TokenBucket(60, burst=3, clock=clock)
    times = await acquire_times(bucket, clock, 4)
    assert times[:3] == [1000.0] * 3
    assert times[3] - times[0] == pytest.approx(1 / 0.9)

    clock = FakeClock()
    tiny = TokenBucket(6, clock=clock)  # 5% of 6 is 0.3, raised to one request
    times = await acquire_times(tiny, clock, 3)
    assert times[0] == 1000.0
    assert times[1] - times[0] == pytest.approx(60 / (6 * 0.9))
    assert times[2] - times[1] == pytest.approx(60 / (6 * 0.9))


async def test_idle_time_refills_up_to_capacity_only() -> None:
    clock = FakeClock()
    bucket = TokenBucket(600, clock=clock)
    await acquire_times(bucket, clock, 30)
    clock.advance(3600)
    before = clock.monotonic()
    times = await acquire_times(bucket, clock, 31)
    assert times[:30] == [before] * 30
    assert times[30] > before


async def test_pause_delays_every_waiter() -> None:
    clock = FakeClock()
    bucket = TokenBucket(3000, clock=clock)
    start = clock.monotonic()
    bucket.pause(5.0)
    results: list[float] = []

    async def worker() -> None:
        await bucket.acquire()
        results.append(clock.monotonic())

    await asyncio.gather(*(worker() for _ in range(6)))
    assert len(results) == 6
    assert min(results) >= start + 5.0
    # The pause emptied the burst: after it, requests come at the steady rate.
    assert max(results) - min(results) == pytest.approx(5 / bucket.per_second, rel=0.01)


async def test_pause_during_wait_holds_waiters_already_queued() -> None:
    clock = FakeClock()
    bucket = TokenBucket(60, burst=1, clock=clock)
    await bucket.acquire()
    waiting = asyncio.ensure_future(bucket.acquire())
    await asyncio.sleep(0)  # the waiter is now sleeping for its next token
    bucket.pause(30.0)
    await waiting
    assert clock.monotonic() >= 1000.0 + 30.0


async def test_longest_pause_wins() -> None:
    clock = FakeClock()
    bucket = TokenBucket(3000, clock=clock)
    bucket.pause(10.0)
    bucket.pause(2.0)
    await bucket.acquire()
    assert clock.monotonic() >= 1010.0


@pytest.mark.parametrize(("per_minute", "requests"), [(600, 3000), (3000, 9000), (6, 40), (60, 500)])
async def test_never_more_than_per_minute_in_any_sliding_window(per_minute: int, requests: int) -> None:
    clock = FakeClock()
    bucket = TokenBucket(per_minute, clock=clock)
    rng = random.Random(per_minute)
    times: list[float] = []
    for index in range(requests):
        if rng.random() < 0.02:
            clock.advance(rng.uniform(0, 90))  # idle spells let the burst refill
        if rng.random() < 0.005:
            bucket.pause(rng.uniform(0, 20))  # the occasional 429
        await bucket.acquire()
        times.append(clock.monotonic())
        assert index == 0 or times[-1] >= times[-2]
    assert max_in_window(times, 60.0) <= per_minute


async def test_concurrent_callers_share_the_budget() -> None:
    clock = FakeClock()
    bucket = TokenBucket(600, clock=clock)
    times: list[float] = []

    async def caller(n: int) -> None:
        for _ in range(n):
            await bucket.acquire()
            times.append(clock.monotonic())

    await asyncio.gather(*(caller(200) for _ in range(10)))
    assert len(times) == 2000
    assert max_in_window(times, 60.0) <= 600


async def test_exact_fake_clock_does_not_livelock() -> None:
    clock = FakeClock(1000.0, min_step=0.0)
    bucket = TokenBucket(600, clock=clock)
    times = await acquire_times(bucket, clock, 32)
    assert times[31] - times[29] == pytest.approx(2 / 9)


def test_request_budget_uses_replicate_limits() -> None:
    budget = RequestBudget(clock=FakeClock())
    assert budget.creates.per_second == pytest.approx(REPLICATE_CREATES_PER_MINUTE * 0.9 / 60)
    assert budget.other.per_second == pytest.approx(REPLICATE_OTHER_PER_MINUTE * 0.9 / 60)
    assert (REPLICATE_CREATES_PER_MINUTE, REPLICATE_OTHER_PER_MINUTE) == (600, 3000)
    custom = RequestBudget(6, 60, clock=FakeClock())
    assert custom.creates.per_second == pytest.approx(0.09)
    assert custom.other.per_second == pytest.approx(0.9)


@pytest.mark.parametrize("processes", [1, 2, 4])
async def test_a_deployment_of_n_processes_stays_under_the_limit_together(processes: int) -> None:
    """Each live process takes 1/N of the budget: N processes together send no more than one would."""
    clocks = [FakeClock() for _ in range(processes)]
    budgets = [RequestBudget(clock=clock) for clock in clocks]
    for budget in budgets:
        budget.share(processes)
    times: list[float] = []
    for budget, clock in zip(budgets, clocks, strict=True):  # each on its own clock, all starting together
        times += await acquire_times(budget.creates, clock, 700 // processes)
    assert max_in_window(times, 60.0) <= REPLICATE_CREATES_PER_MINUTE
    assert budgets[0].creates.per_second == pytest.approx(REPLICATE_CREATES_PER_MINUTE * 0.9 / 60 / processes)


def test_the_share_grows_back_when_processes_leave() -> None:
    budget = RequestBudget(clock=FakeClock())
    budget.share(3)
    budget.share(1)
    assert budget.other.per_second == pytest.approx(REPLICATE_OTHER_PER_MINUTE * 0.9 / 60)


# --------------------------------------------------------------------------- bursts, the window, urgency


async def test_a_large_burst_never_adds_up_to_more_than_the_window_allows() -> None:
    """A fifth of a minute at once, then the steady rate: the sliding-window cap keeps any minute under 95 %."""
    clock = FakeClock()
    bucket = TokenBucket(3000, burst=600, clock=clock)
    times = await acquire_times(bucket, clock, 6000)
    assert times[:600] == [1000.0] * 600
    assert max_in_window(times, 60.0) <= 3000 * 0.95


async def test_spare_is_the_burst_left_within_the_window() -> None:
    clock = FakeClock()
    bucket = TokenBucket(3000, burst=600, clock=clock)
    assert bucket.spare() == pytest.approx(600)
    await acquire_times(bucket, clock, 100)
    assert bucket.spare() == pytest.approx(500)
    bucket.pause(1.0)
    assert bucket.spare() == 0.0


async def test_urgent_callers_go_before_patient_ones() -> None:
    clock = FakeClock()
    bucket = TokenBucket(60, burst=1, clock=clock)  # one request, then one every 1.1 s
    await bucket.acquire()
    order: list[str] = []

    async def caller(name: str, urgent: bool) -> None:
        await bucket.acquire(urgent=urgent)
        order.append(name)

    urgent = [asyncio.ensure_future(caller(f"urgent-{n}", True)) for n in range(3)]
    await asyncio.sleep(0)  # they wait for tokens
    patient = asyncio.ensure_future(caller("patient", False))
    await asyncio.gather(patient, *urgent)
    assert order == ["urgent-0", "urgent-1", "urgent-2", "patient"]


def test_the_polls_burst_is_earned_after_a_start() -> None:
    """A restarted process does not add a fifth of a minute on top of what its previous life spent."""
    clock = FakeClock()
    budget = RequestBudget(clock=clock)
    assert budget.other.spare() == 0.0
    assert budget.creates.spare() == pytest.approx(30)
    clock.advance(60)
    assert budget.other.spare() == pytest.approx(600)
