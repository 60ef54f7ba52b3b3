"""The edit pacer (bot/discord_app/pacing.py) on a clock the test moves: Discord's 5 edits per 5 s per message."""

from __future__ import annotations

import itertools
import random

import pytest

from bot.discord_app.pacing import EditPacer

WINDOW, LIMIT = 5.0, 5


def in_window(times: list[float], at: float, window: float = WINDOW) -> int:
    """How many of ``times`` Discord counts in the window that ends at ``at`` (one exactly a window ago has left)."""
    return sum(1 for sent in times if at - window < sent <= at)


class Message:
    """One message's edits as the presenter makes them, on a simulated clock: changes come, edits go."""

    def __init__(self, pacer: EditPacer) -> None:
        self.pacer = pacer
        self.sent: list[float] = []
        self.progress: list[float] = []

    def send(self, at: float, *, final: bool = False) -> None:
        self.pacer.sent(at)
        self.sent.append(at)
        if not final:
            self.progress.append(at)

    def run(self, changes: list[float]) -> list[tuple[float, float]]:
        """Feed changes (times, ascending); each edit takes the newest. ``(first seen, sent)`` per edit."""
        edits = []
        pending: float | None = None  # when the oldest change not yet sent came
        queue = list(changes)
        now = 0.0
        while queue or pending is not None:
            if pending is None:
                now = max(now, queue.pop(0))
                pending = now
            due = self.pacer.progress_due(pending, now)
            while queue and queue[0] <= due:  # these come while the edit waits: coalesced into it
                queue.pop(0)
            now = due
            self.pacer.decide(pending, due, final=False)
            self.send(now)
            edits.append((pending, now))
            pending = None
        return edits


def test_the_first_edit_after_the_placeholder_goes_after_the_settle_delay_only() -> None:
    pacer = EditPacer(WINDOW, LIMIT)
    assert pacer.gap == 1.25 and pacer.settle == pytest.approx(0.1)
    assert pacer.progress_due(seen_at=10.0, now=10.0) == pytest.approx(10.1)
    assert pacer.final_due(10.0) == 10.0


def test_a_burst_of_views_settles_into_one_edit_counted_from_its_first_view() -> None:
    pacer = EditPacer(WINDOW, LIMIT)
    pacer.sent(0.0)
    # Views at 3.00, 3.03, 3.06: the edit goes 0.1 s after the first, carrying the newest.
    assert pacer.progress_due(seen_at=3.0, now=3.06) == pytest.approx(3.1)


def test_a_change_after_a_quiet_second_is_shown_within_250_ms() -> None:
    pacer = EditPacer(WINDOW, LIMIT)
    pacer.sent(0.0)
    assert pacer.progress_due(seen_at=0.3, now=0.3) == pytest.approx(1.25)  # the gap holds a change that soon
    assert pacer.progress_due(seen_at=1.0, now=1.0) == pytest.approx(1.25)
    assert pacer.progress_due(seen_at=2.0, now=2.0) == pytest.approx(2.1)
    decision = pacer.decide(1.0, pacer.progress_due(1.0, 1.0), final=False)
    assert decision.quiet == 1.0 and decision.waited == pytest.approx(0.25)


@pytest.mark.parametrize("seed", range(20))
def test_any_stream_of_changes_keeps_four_progress_edits_per_window_and_the_rule_of_the_quiet_second(seed: int) -> None:
    rng = random.Random(seed)
    changes, at = [], 0.0
    while at < 60:
        at += rng.choice([0.01, 0.05, 0.1, 0.3, 1.0, 1.1, 2.5])
        changes.append(at)
    message = Message(EditPacer(WINDOW, LIMIT))
    edits = message.run(changes)
    assert all(in_window(message.progress, sent) <= LIMIT - 1 for sent in message.progress)
    assert all(later - earlier >= 1.25 - 1e-9 for earlier, later in itertools.pairwise(message.progress))
    for decision in message.pacer.decisions:
        if decision.quiet >= 1.0:
            assert decision.waited <= 0.25 + 1e-9, decision
    assert len(edits) < len(changes)  # coalesced


@pytest.mark.parametrize("seed", range(20))
def test_the_final_edit_never_waits_behind_progress(seed: int) -> None:
    rng = random.Random(seed)
    changes = sorted(rng.uniform(0, 20) for _ in range(200))
    message = Message(EditPacer(WINDOW, LIMIT))
    message.run(changes)
    end = message.sent[-1] + rng.choice([0.0, 0.001, 0.5, 1.2])
    assert message.pacer.final_due(end) == end
    message.send(end, final=True)
    assert in_window(message.sent, end) <= LIMIT


def test_retries_that_filled_the_window_hold_even_the_final_until_the_oldest_leaves_it() -> None:
    pacer = EditPacer(WINDOW, LIMIT)
    for at in (0.0, 0.5, 1.0, 1.5):  # a progress edit and its three retries
        pacer.sent(at)
    # Four in the window: a progress edit waits until only three remain (the final keeps its place) ...
    assert pacer.progress_ready(2.0) == pytest.approx(5.0)
    # ... and the final goes at once, as the fifth.
    assert pacer.final_due(2.0) == 2.0
    pacer.sent(2.0)
    assert pacer.final_due(2.1) == pytest.approx(5.0)  # a sixth waits for the first to leave


def test_a_window_of_zero_paces_nothing() -> None:
    pacer = EditPacer(0.0, LIMIT)
    for at in (1.0, 1.0, 1.0, 1.0, 1.0, 1.0):
        pacer.sent(at)
    assert pacer.progress_due(seen_at=1.0, now=1.0) == 1.0
    assert pacer.final_due(1.0) == 1.0


def test_compressed_time_keeps_the_proportions() -> None:
    """Tests compress Discord's 5 s: a 0.8 s window paces every 0.2 s and settles for 16 ms."""
    pacer = EditPacer(0.8, LIMIT)
    assert pacer.gap == pytest.approx(0.2) and pacer.settle == pytest.approx(0.016)


def test_a_limit_without_room_for_the_final_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        EditPacer(WINDOW, 1)
    with pytest.raises(ValueError, match="duration"):
        EditPacer(-1.0, LIMIT)
