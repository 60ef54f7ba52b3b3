"""Scheduling: who runs next (a fair queue under caps, the slots they fill), and which queue places are worth showing.

When a running prediction is polled is :mod:`bot.jobs.poll_planner`'s."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass

from bot.jobs.model import JobState, LiveJob

# --------------------------------------------------------------------------- the queue

EXACT_POSITIONS = 5
"""Places at the head of the queue whose every move is shown.

The next few jobs start within a run or two of the model, and their requesters watch them: each
move there is news. Farther back a member learns little from "position 87" turning into "86", and
editing every waiting message on every start costs one Discord edit per waiting job (a hundred
waiting, a hundred edits each time one starts, on the bot's global rate limit once the interaction
tokens have expired). Five exact places plus the halvings below keep it to about a dozen edits per
start, however long the queue.
"""


def position_worth_showing(shown: int | None, position: int) -> bool:
    """Whether a waiting job's message, showing place ``shown`` (``None``: none yet), is edited to ``position``.

    Always its first place, and every change within :data:`EXACT_POSITIONS`; farther back only a
    change by half or more (87 → 43, or back to 174 as other members' jobs take turns ahead), so each
    job's message is edited about log2(place / 5) times on its way to the head.
    """
    if position == shown:
        return False
    if shown is None or position <= EXACT_POSITIONS:
        return True
    return 2 * position <= shown or position >= 2 * shown


class FairQueue:
    """Waiting jobs, served round-robin between members, under per-server caps.

    One member's ten jobs take turns with everyone else's: after a member is
    served they go to the back of the line.
    """

    def __init__(self) -> None:
        self._lines: OrderedDict[Hashable, deque[LiveJob]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(line) for line in self._lines.values())

    def waiting(self, member_key: Hashable) -> int:
        """How many of this member's jobs wait (``member_key`` as :attr:`LiveJob.member_key`)."""
        line = self._lines.get(member_key)
        return len(line) if line else 0

    def push(self, job: LiveJob) -> None:
        """Add ``job`` behind its member's earlier jobs."""
        self._lines.setdefault(job.member_key, deque()).append(job)

    def remove(self, job: LiveJob) -> bool:
        """Take ``job`` out of the queue; ``False`` if it was not waiting."""
        line = self._lines.get(job.member_key)
        if line is None or job not in line:
            return False
        line.remove(job)
        if not line:
            del self._lines[job.member_key]
        return True

    def pop(
        self, may_start: Callable[[LiveJob], bool], running: Callable[[Hashable], int] = lambda _: 0
    ) -> LiveJob | None:
        """The next job that ``may_start``: from the member with the fewest jobs running, members in turn."""
        chosen: Hashable | None = None
        fewest = 0
        for key, line in self._lines.items():
            if may_start(line[0]):
                load = running(key)
                if chosen is None or load < fewest:
                    chosen, fewest = key, load
                    if load == 0:
                        break
        if chosen is None:
            return None
        line = self._lines.pop(chosen)
        job = line.popleft()
        if line:
            self._lines[chosen] = line  # back of the line
        return job

    def in_order(self) -> Iterator[LiveJob]:
        """Waiting jobs in the order they would start if every cap were free."""
        lines = [list(line) for line in self._lines.values()]
        depth = max((len(line) for line in lines), default=0)
        for round_ in range(depth):
            for line in lines:
                if round_ < len(line):
                    yield line[round_]


# --------------------------------------------------------------------------- one member's jobs


@dataclass(frozen=True)
class MemberJob:
    """One of a member's jobs that this process runs or queues, as the member may see it."""

    job_id: str
    prompt: str
    model: str
    state: JobState
    """``queued`` while it waits; ``starting`` or ``processing`` once it runs."""
    position: int | None = None
    """Its place in this process's queue (1: the next to start), as its own message shows it; ``None`` once it runs."""
    progress: float | None = None
    """How far a running job is (0 to 1), where its model's logs show it."""


def member_jobs(live: Iterable[LiveJob], queue: FairQueue, member_key: Hashable) -> list[MemberJob]:
    """The member's jobs among ``live`` that have not ended: the running ones first, then the waiting ones by place.

    Places are counted as :meth:`FairQueue.in_order` counts them for every waiting message.
    """
    places = {job.id: place for place, job in enumerate(queue.in_order(), start=1)}
    running, waiting = [], []
    for job in live:
        if job.member_key != member_key or job.done.is_set() or job.view.terminal:
            continue
        request = job.request
        place = places.get(job.id)
        if place is None:  # out of the queue: running (a job just taken from it has not shown "starting" yet)
            state = JobState.STARTING if job.view.state is JobState.QUEUED else job.view.state
            progress = job.view.progress.fraction if job.view.progress is not None else None
            running.append(MemberJob(job.id, request.prompt, str(request.model), state, progress=progress))
        else:
            waiting.append(MemberJob(job.id, request.prompt, str(request.model), JobState.QUEUED, place))
    return running + sorted(waiting, key=lambda job: job.position or 0)


# --------------------------------------------------------------------------- the slots


class Slots:
    """The jobs running here, in all, per server and per member, under the global and per-server caps."""

    def __init__(self, max_running: int, max_per_server: int) -> None:
        self._max_running = max_running
        self._max_per_server = max_per_server
        self._servers: dict[Hashable, int] = {}
        self._members: dict[Hashable, int] = {}
        self.total = 0

    @property
    def full(self) -> bool:
        """Whether the global cap is reached."""
        return self.total >= self._max_running

    def server_has_room(self, job: LiveJob) -> bool:
        """Whether ``job``'s server is under its cap."""
        return self._servers.get(job.server_key, 0) < self._max_per_server

    def of_member(self, member_key: Hashable) -> int:
        """How many of this member's jobs run (``member_key`` as :attr:`LiveJob.member_key`)."""
        return self._members.get(member_key, 0)

    def free(self, guild_id: int | None) -> int:
        """How many more of this server's jobs would start at once, under both caps."""
        server = self._max_per_server - self._servers.get(guild_id, 0)
        return max(0, min(self._max_running - self.total, server))

    def take(self, job: LiveJob) -> None:
        """``job`` starts (over the caps, for a job resumed with its prediction running)."""
        self.total += 1
        self._servers[job.server_key] = self._servers.get(job.server_key, 0) + 1
        self._members[job.member_key] = self._members.get(job.member_key, 0) + 1

    def give_back(self, job: LiveJob) -> None:
        """``job`` stopped running."""
        self.total -= 1
        for counts, key in ((self._servers, job.server_key), (self._members, job.member_key)):
            counts[key] -= 1
            if not counts[key]:
                del counts[key]
