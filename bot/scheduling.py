"""Scheduling: who runs next (a fair queue) and when to poll a running prediction."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass

from bot.job_model import LiveJob


@dataclass(frozen=True)
class PollPolicy:
    """How often to poll a running prediction.

    Fast first (most image models finish in seconds), slower for long jobs, and
    never so often that all running jobs together would spend more than
    ``budget_share`` of the request budget on polling.
    """

    first: float = 1.0
    growth: float = 1.25
    ceiling: float = 2.0
    budget_share: float = 0.6
    near_end: float = 0.15
    """Wait between the close looks once the expected end has passed; doubles after ``close_polls``."""
    close_polls: int = 3
    aim_past: float = 0.05
    """How far past the expected end a poll is aimed."""
    webhook_grace: float = 3.0
    """With webhooks, how long after the expected end a lost ``completed`` is looked for by a poll."""
    safety_first: float = 10.0
    safety_ceiling: float = 30.0

    def interval(
        self,
        polls: int,
        running: int,
        budget_per_second: float,
        *,
        remaining: float | None = None,
        polls_at_end: int = 0,
    ) -> float:
        """Seconds to wait before the next poll of one prediction.

        ``remaining`` is how long until the prediction is expected to end (from the model's own
        progress bar, or its usual run time; negative once that moment has passed). Far from it, the
        next poll comes halfway there (to keep the estimate honest; the bar moves in between anyway);
        close to it, just past it, so a finished image is noticed at once; after it, ``near_end``
        doubling with every miss. Without an estimate: ``first`` growing to ``ceiling``. Never more
        often than this job's fair share of ``budget_share`` of the request budget.
        """
        if remaining is None:
            own = min(self.ceiling, self.first * self.growth**polls)
        elif remaining > 2 * self.ceiling:
            own = remaining / 2
        elif remaining > 0:
            own = remaining + self.aim_past
        else:  # a few close looks around the end, then doubling waits while the model finishes up
            own = self.near_end * 2.0 ** max(0, polls_at_end - self.close_polls)
        shared = running / max(1e-6, budget_per_second * self.budget_share)
        return float(max(own, shared))

    def safety_interval(self, polls: int, *, remaining: float | None = None) -> float:
        """With webhooks: seconds to the next poll, only in case the webhook with the result was lost.

        Aimed ``webhook_grace`` past the end the model's progress bar expects; without a bar, slow and
        slower (``safety_first`` doubling up to ``safety_ceiling``).
        """
        if remaining is not None:
            return max(self.near_end, remaining) + self.webhook_grace
        return min(self.safety_ceiling, self.safety_first * 2.0**polls)


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
