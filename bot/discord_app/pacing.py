"""When the next edit of one Discord message may go: Discord's budget of edits, spent so the final never waits.

Discord lets a bot edit one message ``limit`` times (5) in any ``window`` seconds (5 s); one more is
answered 429. :class:`EditPacer` spends that budget so that:

- a progress edit keeps ``gap`` = ``window / (limit - 1)`` (1.25 s) from the request before it, so no
  window ever holds more than ``limit - 1`` of them, and the final edit always fits at once;
- a change is sent a tiny ``settle`` delay after it was first seen (a burst of states from one poll or
  one webhook becomes one edit), or as soon as the gap allows if that is later: a change after a quiet
  second is shown within 250 ms, where a fixed grid would hold it up to a whole period;
- every request counts, retries included: should retries have filled the window, the next request
  (even the final) waits for the oldest to leave it.

The pacer is pure: callers pass the time (``monotonic`` seconds) and sleep themselves.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

EDIT_LIMIT = 5
"""Edits Discord allows one message in :data:`EDIT_WINDOW`."""
EDIT_WINDOW = 5.0
"""Seconds of Discord's sliding window of edits per message."""
SETTLE_SHARE = 0.02
"""The settle delay as a share of the window: 0.1 s of Discord's 5 s (tests that compress time keep the ratio)."""
KEPT_DECISIONS = 32
"""Decisions each pacer keeps (a job's last ones: enough to see how its latest edits were paced)."""
_SLACK = 1e-6
"""Seconds of caution at the window's edge: sums of gaps in floating point must not land a request just inside
the window it meant to wait out."""


@dataclass(frozen=True)
class PacedEdit:
    """One decision of the pacer: a view first seen at ``seen_at`` was let go at ``due_at``."""

    seen_at: float
    due_at: float
    final: bool
    quiet: float
    """Seconds from the request before to ``seen_at`` (infinite for the message's first)."""

    @property
    def waited(self) -> float:
        """Seconds the view waited for its edit."""
        return self.due_at - self.seen_at


class EditPacer:
    """The edit budget of one message: which requests went when, and when the next one may go."""

    def __init__(self, window: float = EDIT_WINDOW, limit: int = EDIT_LIMIT, *, settle: float | None = None) -> None:
        """``window`` 0 paces nothing (a platform without the limit); ``settle`` defaults to its share of it."""
        if limit < 2:
            raise ValueError(f"an edit limit leaves room for progress and the final: at least 2, not {limit}")
        if window < 0:
            raise ValueError(f"the edit window is a duration, not {window}")
        self.window = window
        self.limit = limit
        self.gap = window / (limit - 1)
        """Least time between a progress edit and the request before it."""
        self.settle = window * SETTLE_SHARE if settle is None else settle
        """Time a change waits for the rest of its burst before it is sent, if the gap allows it sooner."""
        self._sent: deque[float] = deque()
        self.decisions: deque[PacedEdit] = deque(maxlen=KEPT_DECISIONS)
        """The latest decisions, oldest first (for tests and logs)."""

    def sent(self, at: float) -> None:
        """Count a request that went to Discord (every try, whatever its answer) at ``at``.

        ``at`` is best taken once its answer came: Discord counted it on arrival, no later.
        """
        self._sent.append(at)
        while len(self._sent) > self.limit:
            self._sent.popleft()

    def progress_due(self, seen_at: float, now: float) -> float:
        """When a progress edit of a change first seen at ``seen_at`` may go (``now`` or later).

        The settle delay after the change, or :meth:`progress_ready`, whichever comes last.
        """
        return self.progress_ready(max(now, seen_at + self.settle))

    def progress_ready(self, now: float) -> float:
        """When a progress request may go (``now`` or later): the gap after the last request, and room in
        the window for it and the final after it."""
        due = now
        if self._sent:
            due = max(due, self._sent[-1] + self.gap)
        return self._room_at(due, self.limit - 2)

    def final_due(self, now: float) -> float:
        """When the final edit may go: now, unless retries already filled the window."""
        return self._room_at(now, self.limit - 1)

    def _room_at(self, at: float, most: int) -> float:
        """The first time from ``at`` on when at most ``most`` counted requests are in the window."""
        if self.window <= 0:
            return at
        recent = [sent for sent in self._sent if sent > at - self.window - _SLACK]
        if len(recent) <= most:
            return at
        return recent[len(recent) - most - 1] + self.window + _SLACK

    def decide(self, seen_at: float, due_at: float, *, final: bool) -> PacedEdit:
        """Note (and return) that a view first seen at ``seen_at`` goes at ``due_at``."""
        quiet = seen_at - self._sent[-1] if self._sent else float("inf")
        decision = PacedEdit(seen_at, due_at, final, quiet)
        self.decisions.append(decision)
        return decision
