"""Queue caps: how many jobs may wait for a slot, in the whole deployment and per member.

``IMAGINE_MAX_QUEUED`` and ``IMAGINE_MAX_QUEUED_PER_MEMBER`` bound the queue, so neither one member
nor a crowd can pile up work that the bot would hold, show and edit for hours. A job that would wait
past either is refused before anything is charged or sent to the API. A job that starts at once waits
in no queue and is never refused here, and jobs resumed after a restart (accepted already) never
pass this gate.

Waiting jobs are counted in the database (the journal's ``queued`` jobs), so the cap holds for the
whole deployment, every process together. Set-ups this process let through and has not queued yet
count too, so a burst of requests cannot slip past the cap between the count and the journal; other
processes' set-ups under way at that moment are not seen, so the deployment's cap may be passed by
those few.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.errors import Refusal
from bot.storage import QueuedJobs


class QueueFull(Refusal):
    """A job refused because the queue (the deployment's, or the member's share of it) is full."""


def _jobs(count: int) -> str:
    return f"{count} job{'s' if count != 1 else ''}"


def member_refusal(waiting: int, jobs: int, cap: int) -> str:
    """Why a member may not queue ``jobs`` more while ``waiting`` of theirs wait, and what to do."""
    if waiting >= cap:
        return (
            f"You already have {_jobs(waiting)} waiting in the queue, the most one member may have ({cap}). "
            "Wait for one of them to start, then try again."
        )
    return (
        f"That would make {_jobs(waiting + jobs)} of yours waiting in the queue; one member may have {cap}. "
        "Ask for fewer at once, or wait for one of yours to start."
    )


def full_refusal(room: int, jobs: int, cap: int) -> str:
    """Why the deployment's queue takes no ``jobs`` more while it has ``room`` left, and what to do."""
    if room > 0:
        return f"The queue has room for only {_jobs(room)} more; ask for fewer at once, or try again in a few minutes."
    return f"The queue is full ({cap} jobs waiting); try again in a few minutes."


class QueueGate:
    """Lets a job through unless it would wait past the deployment's or its member's cap (0: no cap)."""

    def __init__(
        self,
        *,
        total: int,
        per_member: int,
        count: Callable[[int, int], Awaitable[QueuedJobs]],
        free_slots: Callable[[int], int],
    ) -> None:
        """``count(guild, member)``: the waiting jobs on every process; ``free_slots(guild)``: how many of
        this server's jobs would start here at once (see :meth:`bot.jobs.JobEngine.free_slots`)."""
        self.total = total
        self.per_member = per_member
        self._count = count
        self._free_slots = free_slots
        self._in_flight = 0

    def admission(self) -> Admission:
        """A set-up's place in the gate: ``with gate.admission() as admission: ... await admission.check(...)``."""
        return Admission(self)

    async def hold(self, guild_id: int, member_id: int, jobs: int) -> int:
        """Let ``jobs`` through or raise :class:`QueueFull`; the number of places now held (:meth:`release` them).

        Use :meth:`admission`, which releases them when the set-up ends.
        """
        if not (self.total or self.per_member):
            return 0
        self._in_flight += jobs  # held while counting: set-ups checked meanwhile see these jobs
        try:
            if self._free_slots(guild_id) >= self._in_flight:
                return jobs  # they start at once: no queue to cap
            queued = await self._count(guild_id, member_id)
            if self.per_member and queued.member + jobs > self.per_member:
                raise QueueFull(member_refusal(queued.member, jobs, self.per_member))
            if self.total and queued.total + self._in_flight > self.total:
                room = self.total - (queued.total + self._in_flight - jobs)
                raise QueueFull(full_refusal(room, jobs, self.total))
        except BaseException:
            self._in_flight -= jobs
            raise
        return jobs

    def release(self, places: int) -> None:
        """Give back places :meth:`hold` took: their jobs are queued (journaled, so counted there) or given up."""
        self._in_flight -= places


class Admission:
    """One set-up's places in the gate: checked once, held until the set-up ends (its jobs queued, or given up)."""

    def __init__(self, gate: QueueGate) -> None:
        self._gate = gate
        self._held = 0

    async def check(self, guild_id: int, member_id: int, jobs: int = 1) -> None:
        """Hold places for ``jobs`` of this member's, or raise :class:`QueueFull` saying which cap and what to do."""
        self._held += await self._gate.hold(guild_id, member_id, jobs)

    def __enter__(self) -> Admission:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._gate.release(self._held)
        self._held = 0
