"""The end window of a running prediction: learned run times, the bar's step time and the readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.api.predictions import Prediction, parse_progress
from bot.jobs.end_estimate import DEFAULT_TAIL, ClockAnchor, EndEstimate, EndWindow, RunTimes
from tests.fakes.replicate import tqdm_line

CREATED = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
ANCHOR = ClockAnchor(CREATED, 100.0)
"""The create went out at monotonic 100.0, stamped ``CREATED`` by the API."""


def running(step: int, total: int = 4, rate: float | None = None, *, started_after: float = 0.0) -> Prediction:
    """A processing prediction at ``step`` of ``total``, begun ``started_after`` seconds after its create."""
    logs = tqdm_line(step, total, rate) if rate is not None else tqdm_line(0, total, 1.0)
    return Prediction(
        id="p1",
        status="processing",
        logs=logs,
        created_at=CREATED,
        started_at=CREATED + timedelta(seconds=started_after),
    )


def test_step_seconds_are_read_from_both_tqdm_units() -> None:
    fast = parse_progress(tqdm_line(1, 4, 2.5))
    slow = parse_progress(tqdm_line(1, 4, 0.125))
    assert fast is not None and slow is not None
    assert fast.step_seconds == pytest.approx(0.4)
    assert slow.step_seconds == pytest.approx(8.0)  # "8.00s/it": tqdm inverts rates below one a second
    assert slow.step_error == pytest.approx(0.005)
    assert 0 < fast.step_error < 0.001
    assert parse_progress(tqdm_line(0, 4, 1.0)).step_seconds is None  # type: ignore[union-attr]


def span(estimate: EndEstimate) -> tuple[float, float]:
    window = estimate.window()
    assert window is not None
    return window.low, window.high


def test_anchor_maps_api_time_through_the_create() -> None:
    assert ANCHOR.to_monotonic(CREATED + timedelta(seconds=2.5)) == pytest.approx(102.5)


def test_nothing_to_go_by_until_the_prediction_runs() -> None:
    estimate = EndEstimate(None, DEFAULT_TAIL)
    estimate.saw(Prediction(id="p1", status="starting", created_at=CREATED), 100.0, ANCHOR)
    assert estimate.window() is None
    estimate.saw(Prediction(id="p1", status="processing", created_at=CREATED), 101.0, ANCHOR)
    assert estimate.window() is None  # running, but neither a run time nor a rate is known


def test_learned_run_time_counts_from_the_start() -> None:
    estimate = EndEstimate((9.0, 11.0), DEFAULT_TAIL)
    estimate.saw(running(0, started_after=0.5), 101.0, ANCHOR)
    assert span(estimate) == pytest.approx((109.5, 111.5))
    assert not estimate.window().confirmed  # type: ignore[union-attr]  # the learned runs alone


def test_without_started_at_the_start_lies_between_two_looks() -> None:
    estimate = EndEstimate((10.0, 10.0), DEFAULT_TAIL)
    estimate.saw(Prediction(id="p1", status="starting"), 100.0, ANCHOR)
    estimate.saw(Prediction(id="p1", status="processing"), 102.0, ANCHOR)
    assert span(estimate) == pytest.approx((110.0, 112.0))


def test_the_bar_narrows_the_window_to_its_steps() -> None:
    estimate = EndEstimate((20.0, 40.0), (0.0, 0.0))
    estimate.saw(running(1, rate=0.125), 108.5, ANCHOR)  # 8.00 s a step: the bar ends 32 s after the start
    low, high = span(estimate)
    assert low == pytest.approx(132.0 - 4 * 0.005)
    assert high == pytest.approx(132.0 + 4 * 0.005)


def test_the_learned_tail_follows_the_bar() -> None:
    runs = RunTimes()
    runs.learn("m", 10.6, bar_seconds=10.0)
    runs.learn("m", 10.4, bar_seconds=10.0)
    tail = runs.tail("m")
    assert tail == pytest.approx((0.35, 0.65))
    estimate = EndEstimate(None, tail)
    estimate.saw(running(2, rate=0.4), 105.0, ANCHOR)  # 2.50 s a step
    low, high = span(estimate)
    assert low == pytest.approx(100.0 + 4 * 2.495 + 0.35)
    assert high == pytest.approx(min(100.0 + 4 * 2.505 + 0.65, 105.0 + 2 * 2.505 + 0.65))


def test_a_bar_that_disagrees_with_the_learned_runs_wins() -> None:
    estimate = EndEstimate((1.0, 2.0), (0.0, 0.0))  # the model used to be fast
    estimate.saw(running(1, rate=0.25), 104.0, ANCHOR)  # now 4 s a step
    low, high = span(estimate)
    assert 115.9 < low <= high < 116.1


def test_a_reading_bounds_the_end_from_above() -> None:
    """Without a start time (a resumed job), step k read at t ends by t + (n - k) steps."""
    estimate = EndEstimate(None, (0.0, 0.0))
    estimate.saw(Prediction(id="p1", status="processing", logs=tqdm_line(3, 4, 1.0)), 50.0, None)
    low, high = span(estimate)
    assert high == pytest.approx(51.005)
    assert low <= high


def test_run_time_ranges() -> None:
    runs = RunTimes()
    assert runs.run_time("m") is None
    assert runs.run_time("m", usual=10.0) == pytest.approx((7.5, 12.5))  # a guess around the journal's figure
    runs.learn("m", 9.0)
    assert runs.run_time("m", usual=100.0) == pytest.approx((6.75, 11.25))  # what ran here beats the journal
    runs.learn("m", 11.0)
    runs.learn("m", 10.0)
    assert runs.run_time("m") == pytest.approx((9.0 * 0.98, 11.0 * 1.02))
    for _ in range(10):
        runs.learn("m", 30.0)  # the model changed: the old runs are forgotten
    assert runs.run_time("m") == pytest.approx((29.4, 30.6))
    runs.learn("m", -1.0)
    assert runs.run_time("m") == pytest.approx((29.4, 30.6))


def test_the_set_up_before_the_bar_is_not_counted_twice() -> None:
    """3 s of set-up, 10 steps of 0.5 s, 0.5 s after the bar: the learned tail (3.5 s) holds both ends."""
    runs = RunTimes()
    runs.learn("m", 8.5, bar_seconds=5.0)
    estimate = EndEstimate(runs.run_time("m"), runs.tail("m"))
    for step, at in ((2, 104.1), (5, 105.6), (8, 107.1)):
        estimate.saw(running(step, total=10, rate=2.0), at, ANCHOR)
        low, high = span(estimate)
        assert low <= 108.5 <= high, (step, low, high)


def test_a_window_is_confirmed_when_two_sources_agree() -> None:
    learned = EndEstimate((31.0, 33.0), (0.0, 0.0))
    learned.saw(running(1, rate=0.125), 108.5, ANCHOR)  # 8 s a step: 32 s, as the runs said
    assert learned.window().confirmed  # type: ignore[union-attr]

    alone = EndEstimate(None, (0.0, 0.0))
    alone.saw(running(1, rate=0.125), 108.5, ANCHOR)
    assert not alone.window().confirmed  # type: ignore[union-attr]  # one reading of a first run
    alone.saw(running(2, rate=0.125), 116.5, ANCHOR)
    assert alone.window().confirmed  # type: ignore[union-attr]  # a second reading agrees

    slow_start = EndEstimate((2.8, 3.0), (0.0, 0.0))  # a slow first step makes the bar promise 20 s
    slow_start.saw(running(1, total=20, rate=1.0), 101.0, ANCHOR)
    window = slow_start.window()
    assert window is not None and not window.confirmed and window.high > 115


def test_end_window_is_a_plain_pair_with_its_trust() -> None:
    window = EndWindow(1.0, 2.0, confirmed=True, started=0.5)
    assert window[:2] == (1.0, 2.0)
