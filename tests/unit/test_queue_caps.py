"""The queue caps' gate: who may queue, what the refusal says, and the places held while set-ups run."""

from __future__ import annotations

import asyncio

import pytest

from bot.base.errors import Refusal
from bot.moderation.queue_caps import QueueFull, QueueGate, full_refusal, member_refusal
from bot.storage import QueuedJobs

GUILD, MEMBER = 1, 10


class Deployment:
    """What the gate reads: jobs waiting on other processes (the journal), on this one, and its free slots."""

    def __init__(self, total: int = 0, member: int = 0, free: int = 0, *, here: QueuedJobs | None = None) -> None:
        self.queued = QueuedJobs(total, member)
        self.queued_here = here or QueuedJobs(0, 0)
        self.free = free
        self.counts = 0
        self.counted = asyncio.Event()
        self.release_count = asyncio.Event()
        self.release_count.set()

    async def count(self, guild_id: int, member_id: int) -> QueuedJobs:
        self.counts += 1
        self.counted.set()
        await self.release_count.wait()
        return self.queued

    def here(self, guild_id: int, member_id: int) -> QueuedJobs:
        return self.queued_here

    def free_slots(self, guild_id: int) -> int:
        return self.free

    def gate(self, total: int = 200, per_member: int = 3) -> QueueGate:
        return QueueGate(
            total=total, per_member=per_member, elsewhere=self.count, here=self.here, free_slots=self.free_slots
        )


async def admitted(gate: QueueGate, jobs: int = 1) -> bool:
    with gate.ticket() as ticket:
        try:
            await ticket.check(GUILD, MEMBER, jobs)
        except QueueFull:
            return False
    return True


async def test_a_members_fourth_waiting_job_is_refused_saying_what_to_do() -> None:
    gate = Deployment(total=10, member=3).gate()
    with gate.ticket() as ticket, pytest.raises(QueueFull) as refused:
        await ticket.check(GUILD, MEMBER)
    assert isinstance(refused.value, Refusal)  # shown privately, like every refusal
    assert str(refused.value) == (
        "You already have 3 jobs waiting in the queue, the most one member may have (3). "
        "Wait for one of them to start, then try again."
    )
    assert await admitted(Deployment(total=10, member=2).gate())
    assert not await admitted(Deployment(total=10, member=1, here=QueuedJobs(2, 2)).gate())  # on every process


async def test_the_deployments_queue_refuses_past_its_cap() -> None:
    assert not await admitted(Deployment(total=200).gate())
    assert not await admitted(Deployment(total=150, here=QueuedJobs(50, 0)).gate())
    assert await admitted(Deployment(total=150, here=QueuedJobs(49, 0)).gate())
    assert str(full_refusal(0, 1, 200)) == "The queue is full (200 jobs waiting); try again in a few minutes."


async def test_zero_is_no_cap_and_costs_no_count() -> None:
    deployment = Deployment(total=10_000, member=500)
    assert await admitted(deployment.gate(total=0, per_member=0))
    assert deployment.counts == 0
    assert not await admitted(deployment.gate(total=0, per_member=3))  # each cap on its own
    assert not await admitted(deployment.gate(total=200, per_member=0))


async def test_a_job_that_starts_at_once_waits_in_no_queue() -> None:
    deployment = Deployment(total=500, member=9, free=1)
    assert await admitted(deployment.gate())
    assert deployment.counts == 0


async def test_set_ups_under_way_hold_their_places() -> None:
    """A set-up let through is counted until it ends, though the journal does not know its job yet."""
    deployment = Deployment(total=199)
    gate = deployment.gate()
    with gate.ticket() as first:
        await first.check(GUILD, MEMBER)  # the 200th place
        assert not await admitted(gate)
    assert await admitted(gate)


async def test_set_ups_counting_at_once_share_the_last_place() -> None:
    deployment = Deployment(total=199)
    deployment.release_count.clear()
    gate = deployment.gate()
    both = asyncio.gather(admitted(gate), admitted(gate))
    while deployment.counts < 2:
        deployment.counted.clear()
        await asyncio.wait_for(deployment.counted.wait(), 5)
    deployment.release_count.set()
    assert sorted(await both) == [False, True]


async def test_the_free_slot_goes_to_one_set_up() -> None:
    deployment = Deployment(total=200, free=1)
    gate = deployment.gate()
    with gate.ticket() as first:
        await first.check(GUILD, MEMBER)
        assert deployment.counts == 0
        assert not await admitted(gate)  # no slot left for it, and the queue is full
        deployment.queued = QueuedJobs(199, 0)
        assert await admitted(gate)  # a job starting at once takes no place in the queue


async def test_places_are_given_back_when_the_set_up_ends_or_is_refused() -> None:
    deployment = Deployment(total=199)
    gate = deployment.gate()
    assert await admitted(gate)
    assert await admitted(gate)  # the first set-up's place went back when it ended
    deployment.queued = QueuedJobs(200, 0)
    assert not await admitted(gate)
    deployment.queued = QueuedJobs(199, 0)
    assert await admitted(gate)  # nor does a refusal keep one


async def test_several_jobs_at_once_need_room_for_all() -> None:
    assert not await admitted(Deployment(total=198, member=0).gate(), jobs=3)
    assert not await admitted(Deployment(total=0, member=1).gate(), jobs=3)
    assert await admitted(Deployment(total=197, member=0).gate(), jobs=3)
    assert str(member_refusal(1, 3, 3)) == (
        "That would make 4 jobs of yours waiting in the queue; one member may have 3. "
        "Ask for fewer at once, or wait for one of yours to start."
    )
    assert str(full_refusal(2, 3, 200)) == (
        "The queue has room for only 2 jobs more; ask for fewer at once, or try again in a few minutes."
    )


async def test_jobs_of_a_set_that_start_at_once_are_never_counted_as_waiting() -> None:
    """Three free slots, a member's cap of 2 and a set of 4: one job would wait, so the set goes through."""
    deployment = Deployment(total=0, member=0, free=3)
    gate = deployment.gate(total=200, per_member=2)
    with gate.ticket() as first:
        await first.check(GUILD, MEMBER, jobs=4)
        # Its three slots are promised: a second set of 4 would have all four waiting, past the cap.
        with gate.ticket() as second, pytest.raises(QueueFull) as refused:
            await second.check(GUILD, MEMBER, jobs=4)
        assert "That would make 4 jobs of yours waiting" in str(refused.value)
    deployment.queued = QueuedJobs(0, 1)  # one of the member's already waits: 1 more makes 2, allowed
    assert await admitted(gate, jobs=4)
    deployment.queued = QueuedJobs(0, 2)
    with gate.ticket() as third, pytest.raises(QueueFull) as refused:
        await third.check(GUILD, MEMBER, jobs=4)
    assert "You already have 2 jobs waiting" in str(refused.value)  # the one that would wait is one too many
