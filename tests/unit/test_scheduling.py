"""The fair queue (round-robin between members, per-server skipping) and which queue places are shown."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.jobs.model import JobRequest, JobState, JobView
from bot.jobs.model import LiveJob as _Job
from bot.jobs.scheduling import EXACT_POSITIONS, FairQueue, position_worth_showing

MODEL = ModelRef("black-forest-labs", "flux-schnell")


class NullPresenter:
    """A presenter that shows nothing."""

    async def show(self, view: JobView) -> None:
        return None

    async def close(self) -> None:
        return None


def make_job(job_id: str, member: int, guild: int | None = 1) -> _Job:
    request = JobRequest(
        model=MODEL,
        options=ImagineOptions(f"prompt {job_id}"),
        inputs={"prompt": f"prompt {job_id}"},
        requester_id=member,
        guild_id=guild,
    )
    return _Job(
        id=job_id,
        request=request,
        presenter=NullPresenter(),
        submitted_at=0.0,
        view=JobView(job_id, request, JobState.QUEUED),
    )


def anything(job: _Job) -> bool:
    return True


def drain(queue: FairQueue, may_start: Callable[[_Job], bool] = anything) -> list[str]:
    order = []
    while (job := queue.pop(may_start)) is not None:
        order.append(job.id)
    return order


def test_empty_queue() -> None:
    queue = FairQueue()
    assert len(queue) == 0
    assert queue.pop(anything) is None
    assert list(queue.in_order()) == []


def test_round_robin_between_members() -> None:
    queue = FairQueue()
    for n in range(1, 9):
        queue.push(make_job(f"A{n}", member=100))
    queue.push(make_job("B1", member=200))
    assert len(queue) == 9
    expected = ["A1", "B1", "A2", "A3", "A4", "A5", "A6", "A7", "A8"]
    assert [job.id for job in queue.in_order()] == expected
    assert drain(queue) == expected
    assert len(queue) == 0


def test_three_members_take_turns() -> None:
    queue = FairQueue()
    for job_id, member in [("A1", 1), ("A2", 1), ("A3", 1), ("B1", 2), ("B2", 2), ("C1", 3)]:
        queue.push(make_job(job_id, member))
    assert drain(queue) == ["A1", "B1", "C1", "A2", "B2", "A3"]


def test_late_member_joins_the_rotation() -> None:
    queue = FairQueue()
    for n in range(1, 5):
        queue.push(make_job(f"A{n}", member=1))
    popped = queue.pop(anything)
    assert popped is not None and popped.id == "A1"
    queue.push(make_job("B1", member=2))
    assert drain(queue) == ["A2", "B1", "A3", "A4"]


def test_same_member_in_two_servers_has_two_lines() -> None:
    queue = FairQueue()
    queue.push(make_job("g1-a", member=1, guild=1))
    queue.push(make_job("g1-b", member=1, guild=1))
    queue.push(make_job("g2-a", member=1, guild=2))
    assert drain(queue) == ["g1-a", "g2-a", "g1-b"]


def test_direct_messages_have_no_guild() -> None:
    queue = FairQueue()
    queue.push(make_job("dm", member=1, guild=None))
    queue.push(make_job("srv", member=1, guild=5))
    assert drain(queue, lambda job: job.server_key is None) == ["dm"]
    assert len(queue) == 1


def test_may_start_skips_a_full_server() -> None:
    queue = FairQueue()
    queue.push(make_job("full-1", member=1, guild=10))
    queue.push(make_job("full-2", member=2, guild=10))
    queue.push(make_job("free-1", member=3, guild=20))
    queue.push(make_job("free-2", member=3, guild=20))

    def guild_10_is_full(job: _Job) -> bool:
        return job.server_key != 10

    assert drain(queue, guild_10_is_full) == ["free-1", "free-2"]
    assert len(queue) == 2
    # The skipped members kept their place at the front.
    assert drain(queue) == ["full-1", "full-2"]


def test_may_start_sees_only_each_line_head() -> None:
    queue = FairQueue()
    queue.push(make_job("A1", member=1))
    queue.push(make_job("A2", member=1))
    seen: list[str] = []

    def refuse(job: _Job) -> bool:
        seen.append(job.id)
        return False

    assert queue.pop(refuse) is None
    assert seen == ["A1"]
    assert len(queue) == 2


def test_remove() -> None:
    queue = FairQueue()
    jobs = {job_id: make_job(job_id, member) for job_id, member in [("A1", 1), ("A2", 1), ("B1", 2), ("C1", 3)]}
    for job in jobs.values():
        queue.push(job)
    assert queue.remove(jobs["A2"])
    assert not queue.remove(jobs["A2"])
    assert queue.remove(jobs["B1"])  # B's line is now empty and gone
    assert len(queue) == 2
    assert [job.id for job in queue.in_order()] == ["A1", "C1"]
    assert drain(queue) == ["A1", "C1"]
    assert not queue.remove(jobs["A1"])
    assert not queue.remove(make_job("never", member=9))


def test_remove_is_by_identity() -> None:
    queue = FairQueue()
    first = make_job("same", member=1)
    twin = make_job("same", member=1)
    queue.push(first)
    assert not queue.remove(twin)
    assert queue.remove(first)


def test_in_order_does_not_consume() -> None:
    queue = FairQueue()
    for job_id, member in [("A1", 1), ("B1", 2), ("A2", 1)]:
        queue.push(make_job(job_id, member))
    assert [job.id for job in queue.in_order()] == ["A1", "B1", "A2"]
    assert [job.id for job in queue.in_order()] == ["A1", "B1", "A2"]
    assert len(queue) == 3


operations = st.lists(
    st.one_of(st.tuples(st.just("push"), st.integers(0, 4)), st.tuples(st.just("pop"), st.just(0))),
    max_size=40,
)


@settings(max_examples=60, deadline=None, database=None)
@given(operations)
def test_in_order_always_matches_pop_order(ops: list[tuple[str, int]]) -> None:
    queue = FairQueue()
    for index, (op, member) in enumerate(ops):
        if op == "push":
            queue.push(make_job(f"{member}-{index}", member))
        else:
            queue.pop(anything)
    predicted = [job.id for job in queue.in_order()]
    assert len(predicted) == len(queue)
    assert drain(queue) == predicted


# --------------------------------------------------------------------------- queue positions


@pytest.mark.parametrize(
    ("shown", "position", "edited"),
    [
        (None, 1, True),  # a job's first place is always shown
        (None, 150, True),
        (3, 3, False),
        (3, 2, True),  # every move at the head
        (6, 5, True),  # into the head
        (2, 5, True),
        (40, 39, False),  # farther back, small moves are not worth an edit
        (40, 21, False),
        (40, 20, True),  # halved
        (11, 6, False),
        (12, 6, True),
        (20, 39, False),
        (20, 40, True),  # doubled (other members' jobs took turns ahead)
        (3, 6, True),
    ],
)
def test_which_queue_moves_are_shown(shown: int | None, position: int, edited: bool) -> None:
    assert position_worth_showing(shown, position) is edited


def edits_while_draining(waiting: int, worth_showing: Callable[[int | None, int], bool]) -> int:
    """Position edits while ``waiting`` jobs leave the head one at a time (each shows its first place too)."""
    shown: list[int | None] = [None] * waiting
    edits = 0
    for started in range(waiting):
        for job in range(started, waiting):
            position = job - started + 1
            if worth_showing(shown[job], position):
                shown[job] = position
                edits += 1
    return edits


def test_a_draining_queue_costs_a_dozen_edits_per_start_not_one_per_waiting_job() -> None:
    every_change = edits_while_draining(100, lambda shown, position: shown != position)
    bounded = edits_while_draining(100, position_worth_showing)
    assert every_change == 100 * 101 // 2  # each job is edited at every place it passes
    assert bounded <= 100 * (EXACT_POSITIONS + 6)  # 5 exact places, its first place and about log2(100 / 5) halvings
    print(f"\nposition edits, 100 jobs draining: {every_change} every change, {bounded} bounded")


@settings(max_examples=100, deadline=None, database=None)
@given(st.integers(1, 2000))
def test_each_job_is_edited_a_logarithmic_number_of_times(start: int) -> None:
    shown: int | None = None
    edits = 0
    for position in range(start, 0, -1):
        if position_worth_showing(shown, position):
            shown, edits = position, edits + 1
    assert shown == 1  # it always reaches the head exactly
    assert edits <= 1 + EXACT_POSITIONS + max(0, start // EXACT_POSITIONS).bit_length()
