"""This process as one member of a deployment: alive in the database, and heir to the dead ones' jobs.

Every process (even the only one, on SQLite) registers an *incarnation*: a
fresh id for each start, under a stable *name* (host and shards). Jobs belong
to an incarnation. The database is the only thing processes share:

* **Restart**: a process takes back the unfinished jobs of earlier incarnations
  of its own name at once (it is the same member of the deployment, back).
* **Heartbeat**: every few seconds it marks itself alive, counts the live
  processes (each takes an equal share of the API budget) and checks that it
  still owns the jobs it runs; jobs taken from it (it was thought dead) are
  dropped here without another word, their new owner shows their outcome.
* **Clean-up**: with each heartbeat, webhook ids older than
  :data:`bot.jobs.webhooks.KEEP_WEBHOOKS` and payloads older than
  :data:`bot.jobs.webhooks.KEEP_PAYLOADS` (on the database's clock, which stamped
  them) are forgotten (no retry, replay or reader comes for them any more): the
  tables stay as large as a few minutes' traffic.
* **Takeover**: the unfinished jobs of processes silent for
  ``IMAGINE_TAKEOVER_AFTER`` seconds (by the database's clock, which stamps
  every sign of life: a process whose own clock runs fast or slow neither
  looks dead nor takes live processes' jobs) are claimed with one conditional
  ``UPDATE`` (two processes never both win a job) and resumed exactly like
  after a restart: polled to their end, never created a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Protocol

from bot.base.clock import Clock
from bot.jobs.journal import Journal, Unfinished
from bot.jobs.webhooks import KEEP_PAYLOADS, KEEP_WEBHOOKS
from bot.storage import Repository

log = logging.getLogger(__name__)

Resume = Callable[[list[Unfinished]], Awaitable[None]]


def new_incarnation() -> str:
    """A fresh id for this start of the process."""
    return secrets.token_hex(8)


def shards_text(shard_ids: Sequence[int] | None) -> str:
    """``all``, or the shard ids this process runs, comma-separated."""
    return "all" if shard_ids is None else ",".join(str(shard) for shard in shard_ids)


def process_name(shard_ids: Sequence[int] | None) -> str:
    """A stable name for this member of the deployment: its host and its shards."""
    return f"{socket.gethostname()}/shards:{shards_text(shard_ids)}"


class SharedBudget(Protocol):
    """A request budget a process takes its share of (the deployment's limits are for all processes together)."""

    def share(self, processes: int) -> None: ...


@dataclass(eq=False)
class Cluster:
    """Heartbeat, restart claim and takeover for one process."""

    repository: Repository
    journal: Journal
    clock: Clock
    budget: SharedBudget
    """Split between the live processes at each beat: every API account's (:class:`bot.api.accounts.Accounts`)."""
    _: KW_ONLY
    name: str
    shards: str
    takeover_after: float
    live_processes: int = field(default=1, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    @property
    def incarnation(self) -> str:
        """This start of the process: the journal's owner of its jobs."""
        return self.journal.owner

    @property
    def interval(self) -> float:
        """Seconds between heartbeats: several within the takeover time, so one late beat is no death."""
        return min(5.0, max(0.2, self.takeover_after / 6))

    async def join(self) -> list[Unfinished]:
        """Register this incarnation and take back the jobs of earlier ones of the same name."""
        await self.repository.register_process(self.incarnation, self.name, self.shards)
        jobs = await self.journal.claim_restart(self.name)
        await self._beat_count()
        return jobs

    def start(
        self, *, resume: Resume, live_jobs: Callable[[], list[str]], drop: Callable[[str], Awaitable[None]]
    ) -> None:
        """Beat in the background: share the budget, drop jobs taken from us, take over the dead's jobs."""
        self._task = asyncio.create_task(self._run(resume, live_jobs, drop), name="cluster-heartbeat")

    async def stop(self) -> None:
        """Stop beating (the process is going away; its jobs resume with its next start, or elsewhere)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(
        self, resume: Resume, live_jobs: Callable[[], list[str]], drop: Callable[[str], Awaitable[None]]
    ) -> None:
        while True:
            await self.clock.sleep(self.interval)
            try:
                await self.beat(resume, live_jobs, drop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The database may be away for a moment; the next beat tries again.
                log.warning("heartbeat failed: %s", exc)

    async def beat(
        self, resume: Resume, live_jobs: Callable[[], list[str]], drop: Callable[[str], Awaitable[None]]
    ) -> None:
        """One heartbeat: alive, budget share, jobs lost, jobs taken over, set-ups given up abandoned (see
        :meth:`bot.jobs.journal.Journal.abandon_unstarted`), old webhooks forgotten."""
        await self._beat_count()
        running = live_jobs()
        if running:
            owned = await self.repository.owned_jobs(self.incarnation, running)
            for job_id in running:
                if job_id not in owned:
                    await drop(job_id)
        taken = await self.journal.claim_dead(self.takeover_after)
        if taken:
            log.info("took over %d unfinished job(s) of processes silent for %gs", len(taken), self.takeover_after)
            await resume(taken)
        # After the takeover: a job taken but not resumed (never shown) is ours to give back now.
        await self.journal.abandon_unstarted(live_jobs)
        await self.repository.prune_webhooks(
            ids_older_than=KEEP_WEBHOOKS.total_seconds(), payloads_older_than=KEEP_PAYLOADS.total_seconds()
        )

    async def _beat_count(self) -> None:
        live = await self.repository.heartbeat(self.incarnation, alive_within=self.takeover_after)
        if live != self.live_processes:
            log.info("%d live process(es): this one takes 1/%d of the API budget", live, live)
        self.live_processes = live
        self.budget.share(live)
