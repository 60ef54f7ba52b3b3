"""A progress bar that moves between polls: the model's own tqdm rate carries it forward.

Polls are seconds apart and cost API requests; the member's message can be edited
more often than that (its front end paces the edits). Between two polls the bar is advanced at the rate the model's
last tqdm line reported, never past the last step (only the API says "done")
and never backwards (a poll that shows less than the estimate does not pull
the bar back).
"""

from __future__ import annotations

from dataclasses import replace

from bot.api.predictions import Progress

CEILING = 0.99
"""Highest fraction an estimate shows: 100 % is the API's to announce."""


def shown_percent(progress: Progress) -> int:
    """The whole percentage a member reads for ``progress``."""
    return round(progress.fraction * 100)


class ProgressEstimate:
    """The latest observed bar, and where it is now by its own rate."""

    def __init__(self) -> None:
        self._seen: Progress | None = None
        self._seen_at = 0.0
        self._shown = 0.0

    def observe(self, progress: Progress | None, at: float) -> Progress | None:
        """Take a poll's bar at monotonic time ``at``; the bar to show now.

        A bar that moved is shown as read (unless an estimate already showed more); one that has not
        moved keeps its earlier time, and the estimate carries on from there.
        """
        if progress is not None and (self._seen is None or progress != self._seen):
            self._seen, self._seen_at = progress, at
            if progress.fraction >= self._shown:
                self._shown = progress.fraction
                return progress
        return self.estimate(at)

    def estimate(self, now: float) -> Progress | None:
        """The bar at ``now``: observed position plus rate × time since, at least what was shown before."""
        seen = self._seen
        if seen is None:
            return None
        estimated = seen
        rate = _steps_per_second(seen)
        if rate is not None and seen.total > 0:
            elapsed = max(0.0, now - self._seen_at)
            steps = min(seen.current + rate * elapsed, seen.total * CEILING)
            fraction = max(seen.fraction, min(CEILING, steps / seen.total))
            remaining = max(0.0, (seen.remaining or 0.0) - elapsed)
            if fraction > seen.fraction:
                estimated = Progress(fraction, max(seen.current, int(steps)), seen.total, remaining, estimated=True)
        if estimated.fraction < self._shown:
            estimated = replace(estimated, fraction=self._shown, estimated=True)
        self._shown = estimated.fraction
        return estimated


def _steps_per_second(progress: Progress) -> float | None:
    step = progress.step_seconds
    if step is None or step <= 0 or progress.current >= progress.total:
        return None
    return 1.0 / step
