"""Chaos on a deployment: three ``python -m bot`` processes on one PostgreSQL, one shard each, 100 jobs,
and every few seconds a random process is SIGKILLed and started again.

What must hold, read from the database (the jobs journal) and the fakes:

* every accepted job (a row in the journal) ends, and shows its end in exactly one Discord message
  (the interaction's own, or one posted anew in its channel when the placeholder never went out);
* no job makes a second prediction (each prompt names its job: at most one prediction per prompt);
* a job ends with its image unless its prediction failed on the API's side (none do here) or the
  interaction never reached a live process (then there is no job: nothing accepted, nothing paid).
* no IDENTIFY is refused for Discord's identify limit: a restarted process takes its turn like the others.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.e2e.bot_process import one_process_per_shard
from tests.e2e.conftest import DISCORD_TOKEN, imagine_in, is_terminal, status_of
from tests.fakes.discord import FakeDiscord, InteractionHandle, StoredMessage
from tests.fakes.replicate import FakeReplicate, Scenario

# A multi-process chaos run: `pytest -m slow` runs it, right after the main suite (see README, Testing).
pytestmark = pytest.mark.slow

PROCESSES = 3
JOBS = 100
MEMBERS_PER_GUILD = 8
SEED = 20261130
TAKEOVER_AFTER = "2"


def prompt_of(index: int) -> str:
    return f"chaos {index:03d}: a lighthouse in a storm"


async def test_three_processes_killed_at_random_lose_no_job_and_pay_nothing_twice(
    postgres_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)

    def choose(inputs: dict[str, object]) -> Scenario:
        index = int(str(inputs["prompt"])[6:9])
        return Scenario(start_delay=0.1, duration=0.5 + (index % 5) * 0.4)

    async with (
        FakeReplicate(seed=SEED, rate_limits=True) as api,
        FakeDiscord(token=DISCORD_TOKEN, shard_count=PROCESSES) as fake,
    ):
        api.scenario_chooser = choose
        guilds = [fake.add_guild(f"Shard {shard}", shard=shard) for shard in range(PROCESSES)]
        for guild in guilds:
            for number in range(MEMBERS_PER_GUILD):
                guild.add_member(f"artist-{number}")
        processes = one_process_per_shard(
            api, fake, guilds, postgres_url, tmp_path, IMAGINE_TAKEOVER_AFTER=TAKEOVER_AFTER, LOG_LEVEL="INFO"
        )
        await asyncio.gather(*(process.start() for process in processes))
        kills = 0
        submitting = True

        async def chaos_monkey() -> None:
            nonlocal kills
            while submitting:
                await asyncio.sleep(rng.uniform(2.0, 4.0))
                victim = rng.choice(processes)
                await victim.kill()
                kills += 1
                await asyncio.sleep(rng.uniform(0.0, 3.5))  # sometimes back in time, sometimes taken over
                await victim.start()

        handles: list[InteractionHandle] = []

        async def members() -> None:
            for index in range(JOBS):
                guild = guilds[index % PROCESSES]
                member = f"artist-{(index // PROCESSES) % MEMBERS_PER_GUILD}"
                handles.append(await imagine_in(fake, guild, {"prompt": prompt_of(index)}, member))
                await asyncio.sleep(0.2)

        started = time.monotonic()
        monkey = asyncio.create_task(chaos_monkey())
        try:
            await members()
        finally:
            submitting = False
            await monkey
        deadline = time.monotonic() + 120
        while not all(job.ended for job in await _all_jobs(postgres_url)):
            assert time.monotonic() < deadline, "jobs still unfinished after two minutes"
            await asyncio.sleep(0.5)
        jobs = await _all_jobs(postgres_url)
        elapsed = time.monotonic() - started
        await asyncio.gather(*(process.stop() for process in processes))

        problems: list[str] = []
        outcomes: dict[str, int] = {}
        finals = _final_messages(fake)
        for job in jobs:
            shown = finals.get(job.job_id, [])
            if len(shown) != 1:
                problems.append(f"job {job.job_id} ({job.prompt[:9]}): {len(shown)} final messages")
                continue
            status = status_of(shown[0])
            outcomes[job.state] = outcomes.get(job.state, 0) + 1
            if job.state != "succeeded":
                problems.append(f"job {job.job_id} ({job.prompt[:9]}) ended {job.state}: {job.error} [{status}]")
        by_prompt: dict[str, int] = {}
        for prediction in api.predictions.values():
            prompt = str(prediction.input.get("prompt"))
            by_prompt[prompt] = by_prompt.get(prompt, 0) + 1
        duplicates = {prompt: count for prompt, count in by_prompt.items() if count > 1}
        accepted = len(jobs)
        not_delivered = JOBS - accepted
        print(
            f"\n{JOBS} /imagine over {PROCESSES} processes, {kills} SIGKILLs in {elapsed:.1f}s: {accepted} accepted "
            f"({not_delivered} reached a dead process and were never jobs), outcomes {outcomes}, "
            f"{len(duplicates)} duplicate predictions, {api.throttled_count} x 429"
        )
        assert kills >= 3, "the chaos happened"
        assert not duplicates, duplicates
        assert not problems, "\n".join(problems)
        assert api.throttled_count == 0
        assert fake.identify_violations == [], "the processes took turns to identify, restarts included"
        assert accepted >= JOBS * 0.6, f"only {accepted} of {JOBS} interactions reached a live process"
        for process in processes:
            assert "Traceback" not in process.output(), process.output()


@dataclass(frozen=True)
class JournaledJob:
    job_id: str
    prompt: str
    state: str
    error: str | None
    ended: bool


async def _all_jobs(url: str) -> list[JournaledJob]:
    """Every job in the journal, finished or not (the test reads the database itself)."""
    conn: Any = await asyncpg.connect(url, timeout=5)
    try:
        rows = await conn.fetch("SELECT job_id, prompt, state, error, ended_at FROM jobs ORDER BY created_at")
    finally:
        await conn.close()
    return [
        JournaledJob(row["job_id"], row["prompt"], row["state"], row["error"], row["ended_at"] is not None)
        for row in rows
    ]


_FOOTER = re.compile(r"job ([0-9a-f]+)")


def _final_messages(fake: FakeDiscord) -> dict[str, list[StoredMessage]]:
    """Job id → the messages that show its end."""
    finals: dict[str, list[StoredMessage]] = {}
    for message in fake.messages.values():
        if message.deleted or not message.embeds or not is_terminal(message):
            continue
        footer = (message.embeds[0].get("footer") or {}).get("text", "")
        match = _FOOTER.search(footer)
        if match:
            finals.setdefault(match.group(1), []).append(message)
    return finals
