"""Three SIGKILL-and-restart cycles of the real bot process (``python -m bot``) during a burst of 30 jobs.

The bot runs as a subprocess with production timings, configured only by environment variables, between
the fake Discord and the fake API; its SQLite database survives the kills. Each kill lands while jobs
are in several states at once: running with a journaled prediction (some showing progress), waiting in
the queue, finished on the API's side and being delivered, already delivered.

Kills are timed at moments when no create request is in flight (every prediction the fake made has been
polled, which the bot does only after journaling its id, and no slot is free for a queued job). A kill
*inside* a create is the one case where the bot cannot know whether a prediction exists; it then ends
that job with a clear message rather than risk a second prediction (``tests/e2e/test_restarts.py``
covers it). Timed this way, the contract is exact: every job ends with its final message and exactly
one prediction each.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.bot_process import BotProcess
from tests.e2e.conftest import DISCORD_TOKEN, field_of, imagine_in, is_terminal, status_of
from tests.fakes.discord import FakeDiscord, InteractionHandle, StoredMessage
from tests.fakes.replicate import FakePrediction, FakeReplicate, Scenario

# A multi-process chaos run: `pytest -m slow` runs it, right after the main suite (see README, Testing).
pytestmark = pytest.mark.slow

JOBS = 30
MEMBERS = 5
RUNNING = 10
WAIT = 30.0


def prompt_of(index: int) -> str:
    return f"burst job {index:02d}: a paper crane"


def api_error_of(index: int) -> str:
    return f"The model crashed (injected for job {index:02d})"


def fails_on_the_api(index: int) -> bool:
    return index % 7 == 3


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotProcess]:
    async with FakeReplicate(seed=23, scenario=Scenario.manual()) as api, FakeDiscord(token=DISCORD_TOKEN) as fake:
        api.max_sync_wait = 0  # answer creates at once: kills then never find a create held open
        guild = fake.add_guild("Burst")
        for member in range(MEMBERS):
            guild.add_member(f"crane-{member}")
        process = BotProcess(
            api,
            fake,
            guild,
            tmp_path,
            IMAGINE_MAX_RUNNING=str(RUNNING),
            IMAGINE_MAX_RUNNING_PER_SERVER=str(RUNNING),
            IMAGINE_MAX_QUEUED_PER_MEMBER="0",  # four of each member's jobs wait: the caps are not under test here
        )
        await process.start()
        try:
            yield process
        finally:
            await process.stop()


def index_of(prediction: FakePrediction) -> int:
    return int(str(prediction.input["prompt"])[len("burst job ") :][:2])


def polls(api: FakeReplicate, prediction_id: str) -> int:
    return sum(1 for r in api.requests if r.kind == "get" and r.prediction_id == prediction_id)


async def settled(api: FakeReplicate, count: int) -> list[FakePrediction]:
    """Wait until ``count`` predictions exist and each has been polled (so its id is journaled)."""
    await api.wait_until(
        lambda: (
            len(api.predictions) == count
            and all(r.response_status is not None for r in api.creates)
            and all(polls(api, p.id) for p in api.predictions.values())
        ),
        timeout=WAIT,
        what=f"{count} predictions, each journaled",
    )
    return list(api.predictions.values())


async def repolled(api: FakeReplicate, predictions: list[FakePrediction]) -> None:
    """Wait until the restarted bot polled each of ``predictions`` again (it resumed them)."""
    before = {p.id: polls(api, p.id) for p in predictions}
    await api.wait_until(
        lambda: all(polls(api, p.id) > before[p.id] for p in predictions),
        timeout=WAIT,
        what="the restarted bot to poll its running predictions",
    )


def finish(api: FakeReplicate, predictions: list[FakePrediction]) -> None:
    for prediction in predictions:
        index = index_of(prediction)
        if fails_on_the_api(index):
            api.finish(prediction.id, "failed", error=api_error_of(index))
        else:
            api.finish(prediction.id)


def original(handle: InteractionHandle) -> StoredMessage:
    message = handle.original_message
    assert message is not None
    return message


async def restart(bot: BotProcess) -> None:
    await bot.kill()
    await bot.start()


async def test_three_sigkills_during_a_burst_of_30_jobs(bot: BotProcess) -> None:
    api, discord, guild = bot.api, bot.discord, bot.guild
    handles: dict[int, InteractionHandle] = {}

    async def member_burst(member: int) -> None:
        for index in range(member, JOBS, MEMBERS):
            handles[index] = await imagine_in(discord, guild, {"prompt": prompt_of(index)}, f"crane-{member}")
            assert not (await handles[index].wait_callback(timeout=10)).ephemeral

    await asyncio.gather(*(member_burst(member) for member in range(MEMBERS)))
    assert len(handles) == JOBS

    # Kill 1: ten running (three of them showing progress), twenty queued.
    first = await settled(api, RUNNING)
    for prediction in first[:3]:
        api.set_progress(prediction.id, 2)
    await handles[index_of(first[0])].wait_message(lambda m: "50%" in status_of(m), timeout=WAIT)
    await restart(bot)

    # Kill 2: ten delivered, ten running, ten queued.
    await repolled(api, first)
    finish(api, first)
    for prediction in first:
        await handles[index_of(prediction)].wait_message(is_terminal, timeout=WAIT)
    second = (await settled(api, 2 * RUNNING))[RUNNING:]
    await restart(bot)

    # Kill 3: twenty delivered, the last ten running; five of those finished, mid-delivery.
    await repolled(api, second)
    finish(api, second)
    for prediction in second:
        await handles[index_of(prediction)].wait_message(is_terminal, timeout=WAIT)
    third = (await settled(api, JOBS))[2 * RUNNING :]
    downloads = len(api.file_requests)
    finish(api, third[:5])
    await api.wait_for_requests("file", downloads + 1, timeout=WAIT)
    delivering = [p for p in third[:5] if not is_terminal(original(handles[index_of(p)]))]
    await restart(bot)
    assert delivering, "the third kill was meant to interrupt a delivery"

    finish(api, third[5:])
    finals = {index: await handle.wait_message(is_terminal, timeout=WAIT) for index, handle in handles.items()}

    assert api.count("POST", "create") == JOBS
    problems = []
    for index, message in sorted(finals.items()):
        made = [p for p in api.predictions.values() if p.input.get("prompt") == prompt_of(index)]
        if len(made) != 1:
            problems.append(f"job {index}: {len(made)} predictions")
            continue
        status = status_of(message)
        if fails_on_the_api(index):
            if "Failed" not in status or field_of(message, "What happened") != api_error_of(index):
                problems.append(f"job {index}: {status!r} {field_of(message, 'What happened')!r}")
        elif "Done" not in status or [a.data for a in message.attachments] != [f.data for f in made[0].files]:
            problems.append(f"job {index}: {status!r} with {len(message.attachments)} attachments")
    assert not problems, "\n".join(problems)
    output = bot.output()
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if " ERROR " in line or " CRITICAL " in line]
    assert not errors, "\n".join(errors)
