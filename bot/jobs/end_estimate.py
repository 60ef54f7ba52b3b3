"""When will a running prediction end? A window on this process's clock, narrowed by everything seen.

Polls cost requests and a finished image waits until one sees it, so polls are aimed where the end is
likely (:mod:`bot.jobs.poll_planner`). The end is bounded by:

- **the model's learned run time**: how long its recent predictions ran (``metrics.predict_time``),
  counted from when this one began running (``started_at``);
- **its own progress bar**: tqdm prints the seconds a step takes (or steps a second), so the bar's end is
  the start plus ``steps × step``, and the prediction ends a learned *tail* after that (set-up before the
  bar, decoding and upload after it);
- **the readings themselves**: a bar read at ``t`` at step ``k`` of ``n`` ends by ``t + (n - k) × step``.

API timestamps are mapped onto the monotonic clock through the create: its ``created_at`` is the moment
the request went out, so the offset between the API's clock and ours drops out (a resumed job, created
before a restart, falls back to the wall clock).
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from bot.api.predictions import Prediction, Progress

RECENT = 8
"""Runs of a model remembered: enough for its spread, recent enough to follow a change (of hardware, or of
the inputs members send: a model runs longer for more steps or pixels)."""
SAMPLES_FOR_RANGE = 3
"""Below this many runs seen here, the spread is a guess around the usual run time."""
GUESSED_SPREAD = 0.25
"""The share of the usual run time either side of it while the spread is not known."""
MARGIN = 0.02
"""Widening of a learned range (its share of the run time): the next run may fall just outside the last ones."""
DEFAULT_TAIL = (0.0, 1.0)
"""Seconds between the bar's last step and the end, until a run of the model has shown it."""
TAIL_SLACK = 0.05
"""Seconds either side of the learned tails (a poll's answer is a few milliseconds old)."""


@dataclass
class _ModelRuns:
    run_times: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT))
    tails: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT))


class RunTimes:
    """What this process learned of each model: how long its runs take, and how long after its bar they end."""

    def __init__(self) -> None:
        self._models: dict[str, _ModelRuns] = {}

    def learn(self, model: str, run_time: float, bar_seconds: float | None = None) -> None:
        """A prediction of ``model`` ran ``run_time`` seconds; its bar said ``bar_seconds`` (steps × step)."""
        if run_time < 0:
            return
        runs = self._models.setdefault(model, _ModelRuns())
        runs.run_times.append(run_time)
        if bar_seconds is not None:
            runs.tails.append(run_time - bar_seconds)

    def run_time(self, model: str, usual: float | None = None) -> tuple[float, float] | None:
        """The range this model's next run should fall in: learned here, else around ``usual`` (the journal's)."""
        runs = self._models.get(model)
        seen = list(runs.run_times) if runs else []
        if len(seen) >= SAMPLES_FOR_RANGE:
            low, high = min(seen), max(seen)
            return low * (1 - MARGIN), high * (1 + MARGIN)
        centre = statistics.median(seen) if seen else usual
        if centre is None:
            return None
        return centre * (1 - GUESSED_SPREAD), centre * (1 + GUESSED_SPREAD)

    def tail(self, model: str) -> tuple[float, float]:
        """Seconds from the bar's last step to the prediction's end, as a range."""
        runs = self._models.get(model)
        if runs is None or not runs.tails:
            return DEFAULT_TAIL
        return min(runs.tails) - TAIL_SLACK, max(runs.tails) + TAIL_SLACK


@dataclass(frozen=True)
class ClockAnchor:
    """One moment on both clocks: an API timestamp and this process's monotonic time."""

    api: datetime
    monotonic: float

    def to_monotonic(self, moment: datetime) -> float:
        """``moment`` (the API's clock) on this process's monotonic clock."""
        return self.monotonic + (moment - self.api).total_seconds()


class EndWindow(NamedTuple):
    """When a prediction should end (monotonic), and how far to trust it."""

    low: float
    high: float
    confirmed: bool
    """Two sources agree on it (the learned run times and the bar, or two readings of the bar): polls may
    aim straight at it. An unconfirmed window (one source alone) may be wrong: a member asked for fewer
    steps than the runs learned, or the bar's first rate was slow."""
    started: float
    """When the prediction began running (the latest it can have)."""


class EndEstimate:
    """The window in which one prediction should end, from what was seen of it so far."""

    def __init__(self, run_time: tuple[float, float] | None, tail: tuple[float, float]) -> None:
        self._run_time = run_time
        self._tail = tail
        self._started: tuple[float | None, float] | None = None  # earliest (None: unknown), latest start
        self._last_starting: float | None = None
        self._bar: Progress | None = None
        self._bar_read_at = 0.0
        self._bar_bound = 0.0  # the latest the end can be, by the newest reading
        self._bar_floor: float | None = None  # the earliest, from when the reading's step was not yet reached
        self._step_before: tuple[int, float] | None = None  # (step, when) of the previous reading
        self._previous_bar: tuple[float, float] | None = None  # the bar's window by the reading before
        self._readings_agree = False

    @property
    def bar(self) -> Progress | None:
        """The newest bar read with a rate."""
        return self._bar

    def saw(self, prediction: Prediction, at: float, anchor: ClockAnchor | None) -> None:
        """Take a look at ``prediction`` made at ``at`` (monotonic); ``anchor`` maps the API's timestamps."""
        if prediction.status == "starting":
            self._last_starting = at
            return
        if self._started is None:
            if prediction.started_at is not None and anchor is not None:
                begun = anchor.to_monotonic(prediction.started_at)
                self._started = (begun, begun)
            else:  # began between the last look that saw it waiting (if any) and this one
                self._started = (self._last_starting, at)
        progress = prediction.progress
        if progress is None:
            return
        previous = self._step_before
        if previous is None or progress.current != previous[0]:
            self._step_before = (progress.current, at)
            if progress.step_seconds is None:
                return
            low_step = progress.step_seconds - progress.step_error
            high_step = progress.step_seconds + progress.step_error
            left = progress.total - progress.current
            before = None if self._started is None else self._bar_window(*self._started)
            self._bar = progress
            self._bar_read_at = at
            # Reached step k by now: the rest is done within (n - k) steps and the tail from now.
            self._bar_bound = at + left * high_step + self._tail[1]
            # Not at step k at the previous look: the rest cannot be done before that look plus its steps
            # (and no tail: the learned one holds the set-up before the bar, already behind it).
            moved_on = previous is not None and previous[0] < progress.current
            self._bar_floor = previous[1] + left * low_step if moved_on and previous else None
            now = None if self._started is None else self._bar_window(*self._started)
            if before is not None and now is not None:
                self._readings_agree = before[0] <= now[1] and now[0] <= before[1]

    def window(self) -> EndWindow | None:
        """When the prediction should end, by what was seen; ``None``: nothing to go by yet."""
        if self._started is None:
            return None
        first, last = self._started
        bar = self._bar_window(first, last)
        learned = (
            None if first is None or self._run_time is None else (first + self._run_time[0], last + self._run_time[1])
        )
        if bar is None:
            return None if learned is None else EndWindow(*learned, confirmed=False, started=last)
        if learned is not None:
            both = (max(bar[0], learned[0]), min(bar[1], learned[1]))
            if both[0] <= both[1]:
                return EndWindow(*both, confirmed=True, started=last)
        # The bar is about this very run: where the two disagree, it wins (confirmed if its readings agree).
        return EndWindow(*bar, confirmed=self._readings_agree, started=last)

    def _bar_window(self, first: float | None, last: float) -> tuple[float, float] | None:
        bar = self._bar
        if bar is None or bar.step_seconds is None:
            return None
        # What the readings alone say: not ended when read, ended within the steps left after.
        low = self._bar_read_at if self._bar_floor is None else max(self._bar_read_at, self._bar_floor)
        high = self._bar_bound
        if first is None:
            return low, high
        # From the start: the whole bar and the tail, which the readings narrow where the steps are even.
        steps = bar.total
        start_low = max(low, first + steps * (bar.step_seconds - bar.step_error) + self._tail[0])
        start_high = min(high, last + steps * (bar.step_seconds + bar.step_error) + self._tail[1])
        return (start_low, start_high) if start_low <= start_high else (low, high)
