"""Queue caps: how many jobs may wait for a slot, in the whole deployment and per member.

``IMAGINE_MAX_QUEUED`` and ``IMAGINE_MAX_QUEUED_PER_MEMBER`` bound the queue, so neither one member
nor a crowd can pile up work that the bot would hold, show and edit for hours. A job that would wait
past either is refused before anything is charged or sent to the API. A job that starts at once waits
in no queue and is never refused here, nor counted: of a set, only the jobs past the free slots are
weighed against the caps; and jobs resumed after a restart (accepted already) never
pass this gate.

The cap holds for the whole deployment, every process together: the other processes' waiting jobs
are read from the database (the journal's ``queued`` jobs), this process's own from its queue in
memory (exact: a job it has just started is not still ``queued`` there), with the set-ups it let
through and has not queued yet, so a burst of requests cannot slip past the cap between the count
and the queue. Other processes' set-ups under way at the very moment are not seen: the
deployment's cap may be passed by those few.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.base.errors import Refusal
from bot.i18n import Text, tr, tr_n
from bot.storage import QueuedJobs


class QueueFull(Refusal):
    """A job refused because the queue (the deployment's, or the member's share of it) is full."""


def _jobs(count: int) -> Text:
    return tr_n("{n} job", "{n} jobs", count)


def member_refusal(waiting: int, jobs: int, cap: int) -> Text:
    """Why a member may not queue ``jobs`` more while ``waiting`` of theirs wait, and what to do."""
    if waiting >= cap:
        return tr(
            "You already have {jobs} waiting in the queue, the most one member may have ({cap}). "
            "Wait for one of them to start, then try again.",
            jobs=_jobs(waiting),
            cap=cap,
        )
    return tr(
        "That would make {jobs} of yours waiting in the queue; one member may have {cap}. "
        "Ask for fewer at once, or wait for one of yours to start.",
        jobs=_jobs(waiting + jobs),
        cap=cap,
    )


def full_refusal(room: int, jobs: int, cap: int) -> Text:
    """Why the deployment's queue takes no ``jobs`` more while it has ``room`` left, and what to do."""
    if room > 0:
        return tr(
            "The queue has room for only {jobs} more; ask for fewer at once, or try again in a few minutes.",
            jobs=_jobs(room),
        )
    return tr_n(
        "The queue is full ({n} job waiting); try again in a few minutes.",
        "The queue is full ({n} jobs waiting); try again in a few minutes.",
        cap,
    )


class QueueGate:
    """Lets a job through unless it would wait past the deployment's or its member's cap (0: no cap)."""

    def __init__(
        self,
        *,
        total: int,
        per_member: int,
        elsewhere: Callable[[int, int], Awaitable[QueuedJobs]],
        here: Callable[[int, int], QueuedJobs],
        free_slots: Callable[[int], int],
    ) -> None:
        """Each called with ``(guild, member)``: ``elsewhere``, the jobs waiting on the other processes (the
        database); ``here``, on this one (its queue); ``free_slots(guild)``, how many of this server's jobs
        would start here at once (see :meth:`bot.jobs.engine.JobEngine.free_slots`)."""
        self.total = total
        self.per_member = per_member
        self._elsewhere = elsewhere
        self._here = here
        self._free_slots = free_slots
        self._starting = 0
        self._waiting = 0

    def ticket(self) -> QueueTicket:
        """A set-up's places in the gate: ``with gate.ticket() as ticket: ... await ticket.check(...)``."""
        return QueueTicket(self)

    async def hold(self, guild_id: int, member_id: int, jobs: int) -> Places:
        """Let ``jobs`` through or raise :class:`QueueFull`; the places now held, to :meth:`release` once the
        jobs are queued (or given up). Use :meth:`ticket`, which does.
        """
        if not (self.total or self.per_member):
            return Places()
        # Those that start at once (free slots not yet promised to another set-up) never wait: only the rest
        # of a set is weighed against the caps.
        starting = max(0, min(jobs, self._free_slots(guild_id) - self._starting))
        queued = jobs - starting
        self._starting += starting  # slots promised: the next set-up does not count on them
        if queued:
            self._waiting += queued  # held while counting: set-ups checked meanwhile see these jobs
            try:
                elsewhere = await self._elsewhere(guild_id, member_id)
                here = self._here(guild_id, member_id)
                mine = elsewhere.member + here.member
                if self.per_member and mine + queued > self.per_member:
                    raise QueueFull(member_refusal(mine, queued, self.per_member))
                waiting = elsewhere.total + here.total + self._waiting - queued
                if self.total and waiting + queued > self.total:
                    raise QueueFull(full_refusal(self.total - waiting, queued, self.total))
            except BaseException:
                self._waiting -= queued
                self._starting -= starting
                raise
        return Places(starting=starting, waiting=queued)

    def release(self, places: Places) -> None:
        """Give back places :meth:`hold` took: their jobs are queued (so counted there) or given up."""
        self._starting -= places.starting
        self._waiting -= places.waiting


@dataclass(frozen=True)
class Places:
    """What a set-up holds in the gate: slots free for jobs that start at once, or places in the queue."""

    starting: int = 0
    waiting: int = 0

    def __add__(self, other: Places) -> Places:
        return Places(self.starting + other.starting, self.waiting + other.waiting)


class QueueTicket:
    """One set-up's places in the gate: checked, then held until the set-up ends (its jobs queued, or given up)."""

    def __init__(self, gate: QueueGate) -> None:
        self._gate = gate
        self._held = Places()

    async def check(self, guild_id: int, member_id: int, jobs: int = 1) -> None:
        """Hold places for ``jobs`` of this member's, or raise :class:`QueueFull` saying which cap and what to do."""
        self._held += await self._gate.hold(guild_id, member_id, jobs)

    def __enter__(self) -> QueueTicket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._gate.release(self._held)
        self._held = Places()
