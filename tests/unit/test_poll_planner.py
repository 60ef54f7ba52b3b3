"""Where polls go: far from the end almost none, inside the window as the budget allows, then doubling."""

from __future__ import annotations

from typing import Any

import pytest

from bot.api.ratelimit import TokenBucket
from bot.jobs.end_estimate import EndWindow
from bot.jobs.poll_planner import PollPlanner, PollPolicy
from tests.unit.test_ratelimit import FakeClock


def planner(per_minute: float = 3000, *, burst: float | None = 600, **policy: Any) -> PollPlanner:
    bucket = TokenBucket(per_minute, burst=burst, clock=FakeClock())
    return PollPlanner(bucket, PollPolicy(**policy))


def window(low: float, high: float, *, confirmed: bool = True, started: float = 0.0) -> EndWindow:
    return EndWindow(low, high, confirmed=confirmed, started=started)


def test_without_a_window_polls_grow_to_the_ceiling() -> None:
    plan = planner()
    gaps = [plan.next_poll("a", None, 0.0, blind_polls=n, late_polls=0) for n in range(6)]
    assert [g.delay for g in gaps] == pytest.approx([1.0, 1.25, 1.5625, 1.953125, 2.0, 2.0])
    assert not any(g.urgent for g in gaps)


def test_a_precise_window_is_aimed_at_directly() -> None:
    plan = planner()
    aim = plan.next_poll("a", window(30.0, 30.1), 1.0, blind_polls=0, late_polls=0)
    assert 29.0 < aim.delay <= 29.1
    assert aim.urgent


def test_a_vague_window_far_off_gets_a_look_halfway() -> None:
    plan = planner()
    aim = plan.next_poll("a", window(27.0, 33.0), 1.0, blind_polls=0, late_polls=0)
    assert aim.delay == pytest.approx(13.0)
    assert not aim.urgent
    far = plan.next_poll("a", window(300.0, 400.0), 0.0, blind_polls=0, late_polls=0)
    assert far.delay == pytest.approx(30.0)  # a failure is still noticed within half a minute


def test_inside_the_window_one_job_polls_at_the_floor() -> None:
    plan = planner()
    assert plan.next_poll("a", window(10.0, 10.2), 10.05, blind_polls=0, late_polls=0).delay == pytest.approx(0.05)


def test_one_job_spends_at_most_so_many_polls_in_its_window() -> None:
    plan = planner()
    inside = plan.next_poll("a", window(10.0, 16.0), 11.0, blind_polls=0, late_polls=0)
    assert inside.delay == pytest.approx(6.0 / PollPolicy().near.polls_per_window)


def test_many_jobs_in_their_windows_share_what_the_budget_can_spend() -> None:
    plan = planner(burst=600)
    gaps = [plan.gap(str(job), 0.2) for job in range(200)]
    affordable = 600 / 1.0 + 45 * 0.9
    # Together they poll no faster than the burst over the horizon plus the steady rate allows.
    assert 200 / gaps[-1] <= affordable * 1.0001
    for job in range(200):
        plan.leave(str(job))
    assert plan.gap("alone", 0.2) == pytest.approx(0.05)


def test_wider_windows_poll_at_wider_gaps() -> None:
    plan = planner(burst=10)
    for job in range(10):
        plan.gap(f"narrow-{job}", 0.1)
    wide = plan.gap("wide", 0.9)
    narrow = plan.gap("narrow-0", 0.1)
    assert 0.05 < narrow < wide < 1.0
    assert wide == pytest.approx(narrow * 3, rel=1e-6)  # by the square root of the width


def test_past_the_window_gaps_double_to_the_ceiling() -> None:
    plan = planner()
    late = [plan.next_poll("a", window(10.0, 10.2), 11.0, blind_polls=0, late_polls=n) for n in range(7)]
    assert [g.delay for g in late] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0])
    assert [g.urgent for g in late] == [True, True, True, False, False, False, False]


def test_safety_polls_with_webhooks() -> None:
    policy = PollPolicy()
    assert policy.safety_gap(0, window(10.0, 12.0), 5.0) == pytest.approx(10.0)
    assert policy.safety_gap(0, window(100.0, 120.0), 5.0) == pytest.approx(30.0)  # never more than 30 s apart
    assert [policy.safety_gap(n, None, 0.0) for n in range(4)] == pytest.approx([10.0, 20.0, 30.0, 30.0])


def test_gaps_stay_finite_however_long_a_job_runs() -> None:
    plan = planner()
    policy = plan.policy
    assert policy.blind.gap(5000) == policy.blind.ceiling
    assert policy.safety_gap(5000, None, 0.0) == policy.safety.ceiling
    assert plan.next_poll("a", window(1.0, 2.0), 3.0, blind_polls=0, late_polls=5000).delay == policy.late_ceiling


def test_one_source_alone_gets_looks_that_grow_with_the_age() -> None:
    """The runs learned say 7 s, but this member asked for fewer steps: an early end is noticed soon."""
    plan = planner()
    unconfirmed = window(6.9, 7.1, confirmed=False, started=0.0)
    looks = [plan.next_poll("a", unconfirmed, now, blind_polls=0, late_polls=0) for now in (1.0, 3.0)]
    assert [look.delay for look in looks] == pytest.approx([2.0, 1.95])  # by its age, then halfway there
    assert not looks[0].urgent
    confirmed = plan.next_poll("a", window(6.9, 7.1), 1.0, blind_polls=0, late_polls=0)
    assert confirmed.delay == pytest.approx(5.95) and confirmed.urgent


def test_the_budget_wins_over_the_ceiling() -> None:
    """100 jobs in 10 s windows do not each poll once a second against a budget of 45 a second."""
    plan = planner(burst=1)
    gaps = [plan.gap(str(job), 10.0) for job in range(100)]
    assert 100 / gaps[-1] <= (1 + 45 * 0.9) * 1.0001
