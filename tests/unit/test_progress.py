"""The progress bar between polls: carried forward by the model's own rate, never backwards, never 100 %."""

from __future__ import annotations

from bot.api.predictions import Progress, parse_progress
from bot.jobs.progress import CEILING, ProgressEstimate
from tests.fakes.replicate import tqdm_line


def bar(step: int, total: int = 4, rate: float = 1.0) -> Progress:
    progress = parse_progress(tqdm_line(step, total, rate))
    assert progress is not None
    return progress


def test_a_fresh_reading_is_shown_as_read() -> None:
    estimate = ProgressEstimate()
    shown = estimate.observe(bar(1), at=10.0)
    assert shown == bar(1) and shown is not None and not shown.estimated


def test_between_polls_the_bar_moves_at_the_models_rate() -> None:
    estimate = ProgressEstimate()
    estimate.observe(bar(1), at=10.0)  # 25 %, 1 step a second, 3 left
    later = estimate.estimate(11.5)
    assert later is not None and later.estimated
    assert abs(later.fraction - 2.5 / 4) < 1e-9
    assert later.remaining is not None and abs(later.remaining - 1.5) < 1e-9


def test_an_unmoved_bar_keeps_its_first_time() -> None:
    estimate = ProgressEstimate()
    estimate.observe(bar(1), at=10.0)
    again = estimate.observe(bar(1), at=11.0)  # the same line a second later: the estimate carries on
    assert again is not None and abs(again.fraction - 2 / 4) < 1e-9


def test_the_estimate_stops_short_of_done() -> None:
    estimate = ProgressEstimate()
    estimate.observe(bar(3), at=0.0)
    late = estimate.estimate(100.0)
    assert late is not None and late.fraction == CEILING


def test_the_bar_never_goes_backwards() -> None:
    estimate = ProgressEstimate()
    estimate.observe(bar(1), at=0.0)
    ahead = estimate.estimate(1.9)
    assert ahead is not None
    slower = estimate.observe(bar(2, rate=0.5), at=2.0)  # the model slowed: 50 % < the 72 % shown
    assert slower is not None and slower.fraction == ahead.fraction


def test_without_a_rate_the_reading_stays() -> None:
    estimate = ProgressEstimate()
    reading = Progress(0.5, 2, 4, remaining=None)
    estimate.observe(reading, at=0.0)
    assert estimate.estimate(5.0) == reading
    assert ProgressEstimate().estimate(1.0) is None
