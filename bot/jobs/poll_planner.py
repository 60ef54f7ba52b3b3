"""When to poll a running prediction: aimed at its likely end, with the budget spent where ends are.

Each job knows a window in which its prediction should end (:mod:`bot.jobs.end_estimate`). Far from that
window a job costs almost nothing: a look halfway there now and then (to read the bar that narrows the
window, and to notice a failure). Inside it, every job polls at a gap the :class:`PollPlanner` sets for all
jobs in their windows together, from what the request budget can spend right now: its burst as well as
its rate, since the API's limit is a minute's worth of requests with short bursts allowed. Jobs whose
windows are wide poll at wider gaps (the detection lag of a job is about half its gap, its cost its
window over its gap: the gaps that spend a budget for the least total lag grow with the square root of
the window). Past the window, the gaps double up to :attr:`PollPolicy.late_ceiling`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.api.ratelimit import TokenBucket
from bot.jobs.end_estimate import EndWindow

MAX_DOUBLINGS = 20
"""Gaps stop growing long before this; it keeps ``2 ** n`` finite however long a job runs."""


@dataclass(frozen=True)
class Backoff:
    """Gaps between polls that start at ``first`` and grow ``growth`` times a poll, up to ``ceiling``."""

    first: float
    growth: float
    ceiling: float

    def gap(self, polls: int) -> float:
        """Seconds to the next poll after ``polls`` polls."""
        return min(self.ceiling, self.first * self.growth ** min(polls, MAX_DOUBLINGS))


@dataclass(frozen=True)
class FarLooks:
    """The looks on the way to a window still far off (to read the bar that narrows it, and to notice a failure)."""

    gap: float
    """Least gap between two looks."""
    ceiling: float
    """Largest gap between two looks (a failure is noticed within it)."""
    growth: float
    """While one source alone sets the window (it may be wrong), looks come at most this many times the
    prediction's age apart: an end much earlier than expected is noticed within about twice its time."""


@dataclass(frozen=True)
class NearPolls:
    """The polls of the jobs inside their windows, which share what the budget can spend."""

    floor: float
    """Least gap between two polls of one job."""
    ceiling: float
    polls_per_window: int
    """The most polls one job spends inside its window, however much budget is spare."""
    burst_horizon: float
    """Seconds over which the burst left in the budget may be spent."""
    budget_share: float
    """Share of the steady rate these polls may take (creates have their own budget; the rest is for
    cancels, looks far from the end and reads of schemas)."""


@dataclass(frozen=True)
class PollPolicy:
    """The timings of polling; production values by default, shorter in tests."""

    blind: Backoff = Backoff(first=1.0, growth=1.25, ceiling=2.0)
    """While nothing says when the prediction ends (it is starting, or a new model)."""
    far: FarLooks = FarLooks(gap=1.0, ceiling=30.0, growth=2.0)
    near: NearPolls = NearPolls(floor=0.05, ceiling=1.0, polls_per_window=20, burst_horizon=1.0, budget_share=0.9)
    late_ceiling: float = 2.0
    """Largest gap once the window has passed (the model is finishing up, later than its runs so far)."""
    webhook_grace: float = 3.0
    """With webhooks, how long after the window a lost ``completed`` is looked for by a poll."""
    safety: Backoff = Backoff(first=10.0, growth=2.0, ceiling=30.0)
    """With webhooks, the polls only in case the webhook with the result was lost (see :meth:`safety_gap`)."""

    def safety_gap(self, polls: int, window: EndWindow | None, now: float) -> float:
        """With webhooks: seconds to the next poll, only in case the webhook with the result was lost.

        Past the window's end by ``webhook_grace``; without one slow and slower; never more than
        ``safety.ceiling`` apart (a lost ``failed`` is noticed too).
        """
        if window is not None:
            return min(self.safety.ceiling, max(0.0, window.high - now) + self.webhook_grace)
        return self.safety.gap(polls)


@dataclass(frozen=True)
class NextPoll:
    """When one job polls next, and whether that poll goes before others when the budget is short."""

    delay: float
    urgent: bool


class PollPlanner:
    """Shares the request budget between the jobs whose predictions should end about now."""

    def __init__(self, bucket: TokenBucket, policy: PollPolicy) -> None:
        self._bucket = bucket
        self._policy = policy
        self._windows: dict[str, float] = {}  # job → its window's width, while inside it
        self._weight = 0.0  # Σ 1/√width over those jobs

    @property
    def policy(self) -> PollPolicy:
        """The timings the planner was made with."""
        return self._policy

    def gap(self, key: str, width: float) -> float:
        """The gap between this job's polls while inside its window (``width`` seconds wide); joins the set."""
        width = max(width, self._policy.near.floor)
        old = self._windows.get(key)
        if old is not None:
            self._weight -= 1 / math.sqrt(old)
        self._windows[key] = width
        self._weight += 1 / math.sqrt(width)
        return self._gap(width)

    def leave(self, key: str) -> None:
        """The job left its window (its prediction ended, or the window passed)."""
        width = self._windows.pop(key, None)
        if width is not None:
            self._weight -= 1 / math.sqrt(width)
        if not self._windows:
            self._weight = 0.0  # no float dust left behind

    def _gap(self, width: float) -> float:
        near = self._policy.near
        affordable = self._bucket.spare() / near.burst_horizon + self._bucket.per_second * near.budget_share
        shared = math.sqrt(width) * max(self._weight, 1 / math.sqrt(width)) / max(affordable, 1e-6)
        # However much budget is spare, one job's window costs at most so many polls (up to the ceiling);
        # however wide the window, the jobs in theirs together stay within what the budget can spend.
        own = min(near.ceiling, width / near.polls_per_window)
        return max(near.floor, own, shared)

    def next_poll(
        self, key: str, window: EndWindow | None, now: float, *, blind_polls: int, late_polls: int
    ) -> NextPoll:
        """When job ``key`` polls next, with its prediction's end ``window`` (``None``: unknown) at ``now``.

        ``blind_polls`` counts its polls without a window, ``late_polls`` those after its window.
        """
        policy = self._policy
        if window is None:
            self.leave(key)
            return NextPoll(policy.blind.gap(blind_polls), urgent=False)
        width = window.high - window.low
        if now > window.high:
            self.leave(key)
            late = max(policy.near.floor, 0.1) * 2.0 ** min(late_polls, MAX_DOUBLINGS)
            return NextPoll(min(policy.late_ceiling, late), urgent=late_polls < 3)
        if now >= window.low:
            return NextPoll(self.gap(key, width), urgent=True)
        self.leave(key)
        aim = window.low + min(self._gap(width), width) - now  # the first look inside, not at its very edge
        if window.confirmed and self._precise(window, now):
            return NextPoll(aim, urgent=True)
        # Far, vague or one source's word only: look on the way (the bar read then narrows or confirms it).
        look = max(policy.far.gap, (window.low - now) / 2)
        if not window.confirmed:
            look = min(look, max(policy.far.gap, policy.far.growth * (now - window.started)))
        return NextPoll(min(aim, policy.far.ceiling, look), urgent=False)

    def _precise(self, window: EndWindow, now: float) -> bool:
        """Narrow for how far off it is: no look on the way would narrow it much, so the next poll aims at it."""
        policy = self._policy
        width, distance = window.high - window.low, window.low - now
        return width <= max(policy.near.ceiling, 0.1 * distance) and distance <= policy.far.ceiling
