"""Edits paced by Discord's budget (5 per 5 s per message), through the real bot and the fakes.

The fake Discord enforces the limit as Discord does (a 429 past it, kept in ``rate_limited``); these
tests run at Discord's own 5 s window, so what they show is what a member sees.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import re
import time
from dataclasses import replace

import pytest

from tests.e2e.conftest import TEST_TUNING, Stack, StackFactory, job_id_of, status_of
from tests.fakes.discord import InteractionHandle, Routes, StoredMessage
from tests.fakes.replicate import Scenario, cog_openapi_schema

MANY_STEPS = "acme/many-steps"
"""A model whose bar has 50 steps: over 5 s it moves every 0.1 s, far more often than a message may be edited."""
MANY_STEPS_SCHEMA = cog_openapi_schema(
    {
        "prompt": {"type": "string"},
        "num_inference_steps": {"type": "integer", "default": 50, "minimum": 1, "maximum": 50},
    }
)


def percents(message: StoredMessage) -> list[int]:
    """Every percentage the message showed, in order."""
    return [int(match.group(1)) for v in message.history if (match := re.search(r"(\d+)%", status_of(v)))]


def assert_no_repeats(message: StoredMessage) -> None:
    """No edit left the message as it was (an unchanged render is not sent)."""
    for before, after in itertools.pairwise(message.history):
        looks = (before.embeds, before.components, before.attachments)
        assert looks != (after.embeds, after.components, after.attachments), f"version {after.index} repeats"


async def test_a_bar_moving_every_tenth_of_a_second_draws_no_429_and_the_image_does_not_wait(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(models=(MANY_STEPS,), api_models={MANY_STEPS: MANY_STEPS_SCHEMA})
    stack.api.set_default_scenario(Scenario(start_delay=0.1, duration=5.0))
    handle = await stack.imagine(model=MANY_STEPS)
    final = await stack.final_message(handle, timeout=20)

    assert "Done" in status_of(final) and final.attachments
    stack.assert_paced(final)
    assert stack.discord.rate_limited == []
    shown = percents(final)
    print(f"\nshown: {shown}; edits at {[round(t - final.history[0].at, 2) for t in final.edit_times()]}")
    assert len(set(shown)) >= 3 and shown == sorted(shown), shown
    assert_no_repeats(final)
    pacer = stack.presenter_of(final).pacer
    *progress, last = pacer.decisions
    assert last.final and last.waited < pacer.gap, last  # never paced behind the progress edits
    assert all(not decision.final for decision in progress)


async def test_a_change_after_a_quiet_second_is_shown_within_250_ms(stack: Stack) -> None:
    stack.api.set_default_scenario(Scenario.manual())
    handle = await stack.imagine()
    prediction = await stack.api.wait_for_prediction()
    stack.api.start_processing(prediction.id)  # at 0 % the bar has no rate yet: nothing moves it meanwhile
    await handle.wait_message(lambda m: " 0%" in status_of(m))
    await asyncio.sleep(1.3)  # a quiet second (and some: the edit's answer reaches the bot after the fake saw it)
    changed_at = time.monotonic()
    stack.api.set_progress(prediction.id, 1)
    message = await handle.wait_message(lambda m: "25%" in status_of(m))

    decision = next(d for d in stack.presenter_of(message).pacer.decisions if d.seen_at >= changed_at)
    assert not decision.final and decision.quiet >= 1.0, decision
    assert decision.waited <= 0.25 + 1e-6, decision  # the grid of old held such a change up to 0.5 s more
    shown_at = next(version.at for version in message.history if "25%" in status_of(version))
    assert shown_at - changed_at < 1.25  # the poll that saw it, then the edit: less than a gap in all
    stack.api.finish(prediction.id)
    stack.assert_paced(await stack.final_message(handle))


async def test_the_placeholder_says_starting_when_a_slot_is_free_and_queued_when_not(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(max_running=1)
    stack.api.set_default_scenario(Scenario.manual())
    first = await stack.imagine()
    starting = await first.wait_message()
    assert status_of(starting.history[0]) == "🚀 Starting…"
    prediction = await stack.api.wait_for_prediction()

    waiting = await (await stack.imagine("moderator", prompt="a grey wolf")).wait_message()
    assert status_of(waiting.history[0]) == "⏳ Queued"
    await stack.discord.wait_for(lambda: status_of(waiting) == "⏳ Queued (position 1)", 10, what="its place")

    # The engine's own "starting" views (the prediction's id came since) change nothing shown: not sent.
    polls = stack.api.count("GET", "get")
    await stack.api.wait_until(lambda: stack.api.count("GET", "get") >= polls + 3, what="three more polls")
    await asyncio.sleep(0.3)  # past the settle delay of any view those polls brought
    assert starting.edit_count == 0, [status_of(version) for version in starting.history]

    stack.api.finish(prediction.id)
    assert "Done" in status_of(await stack.final_message(first))
    stack.api.finish((await stack.api.wait_for_prediction(2)).id)
    await stack.discord.wait_for(lambda: "Done" in status_of(waiting), 10, what="the second job done")
    # Its start came within a gap of its place, and the end soon after: the final took the start's turn.
    assert [status_of(version) for version in waiting.history[:2]] == ["⏳ Queued", "⏳ Queued (position 1)"]
    for message in (starting, waiting):
        assert_no_repeats(message)
        stack.assert_paced(message)


async def test_a_compressed_budget_paces_at_its_own_gap(make_stack: StackFactory) -> None:
    """Tests that compress Discord's 5 s compress the bot's budget and the fake's limit alike (0.8 s: 0.2 s)."""
    tuning = replace(TEST_TUNING, edit_window=0.8)
    stack = await make_stack(models=(MANY_STEPS,), api_models={MANY_STEPS: MANY_STEPS_SCHEMA}, tuning=tuning)
    stack.api.set_default_scenario(Scenario(start_delay=0.05, duration=2.0))
    final = await stack.final_message(await stack.imagine(model=MANY_STEPS), timeout=20)
    assert "Done" in status_of(final)
    stack.assert_paced(final)
    assert stack.presenter_of(final).pacer.gap == 0.2


# --------------------------------------------------------------------------- progress is best-effort


async def processing_at_zero(stack: Stack) -> tuple[InteractionHandle, str, StoredMessage]:
    """A manual prediction running at 0 %, shown: the handle, the prediction's id and the job's message."""
    stack.api.set_default_scenario(Scenario.manual())
    handle = await stack.imagine()
    prediction = await stack.api.wait_for_prediction()
    stack.api.start_processing(prediction.id)  # at 0 % the bar has no rate yet: nothing moves it meanwhile
    message = await handle.wait_message(lambda m: " 0%" in status_of(m))
    return handle, prediction.id, message


@pytest.mark.parametrize("trouble", ["stalled", "retried by discord.py"])
async def test_a_progress_edit_stuck_on_its_way_does_not_hold_the_final_back(stack: Stack, trouble: str) -> None:
    """The final replaces a progress edit still on its way, rather than wait out its answer: one Discord never
    answers, or one that discord.py tries again by itself (every 5xx of a webhook route: five tries, 25 s)."""
    handle, prediction_id, _ = await processing_at_zero(stack)
    if trouble == "stalled":
        hold = stack.discord.hold_next(Routes.EDIT_ORIGINAL)
        on_its_way = hold.arrived.wait
    else:
        failing = stack.discord.fail_next(Routes.EDIT_ORIGINAL, status=500, times=5, no_uploads=True)
        on_its_way = functools.partial(stack.discord.wait_for, lambda: failing.hits, 10, what="the edit failing")
    stack.api.set_progress(prediction_id, 1)
    await asyncio.wait_for(on_its_way(), 10)  # the edit to 25 % is out, and stays out
    stack.api.finish(prediction_id)

    final = await stack.final_message(handle, timeout=10)  # no sooner than the hold's release, or 25 s, before
    assert "Done" in status_of(final) and final.attachments
    assert 25 not in percents(final)
    if trouble == "stalled":
        hold.release()
    else:
        assert failing.hits < 5  # discord.py's own tries were cut short
    stack.assert_paced(final)


async def test_a_failed_progress_edit_is_not_tried_again_the_newest_view_goes_next(stack: Stack) -> None:
    handle, prediction_id, message = await processing_at_zero(stack)
    job = stack.presenter_of(message)
    hold = stack.discord.hold_next(Routes.EDIT_ORIGINAL, drop=False)  # the edit to 25 % waits ...
    reset = stack.discord.reset_next(Routes.EDIT_ORIGINAL)  # ... then its connection is reset
    stack.api.set_progress(prediction_id, 1)
    await asyncio.wait_for(hold.arrived.wait(), 10)
    stack.api.set_progress(prediction_id, 2)
    assert stack.bot is not None
    engine_job = stack.bot.core.engine.job(job_id_of(message))
    assert engine_job is not None

    def at_half() -> bool:
        progress = engine_job.view.progress
        return progress is not None and progress.current >= 2

    await stack.api.wait_until(at_half, timeout=10, what="the bot seeing 50 %")  # newer than the edit held
    hold.release()
    await handle.wait_message(lambda m: bool(percents(m)) and percents(m)[-1] >= 50)

    assert reset.hits == 1
    assert 25 not in percents(message)  # never tried again: the newest view went instead
    edits = stack.discord.requests_for(Routes.EDIT_ORIGINAL)
    failed = next(i for i, request in enumerate(edits) if request.status == 0)
    # The failed request was counted: the next one kept its gap from it.
    assert edits[failed + 1].at - edits[failed].at >= job.pacer.gap
    stack.api.finish(prediction_id)
    stack.assert_paced(await stack.final_message(handle))


async def test_a_progress_edit_that_used_up_the_budget_holds_the_final_back_only_until_it_is_back(
    stack: Stack,
) -> None:
    """Discord answers a progress edit ``Remaining: 0`` (edits the bot does not know of used up the message's
    budget): discord.py sleeps that out before the call returns, holding its lock for the interaction's token.
    The final waits for it (cancelled there, the lock would never be released, and the final never sent)."""
    handle, prediction_id, message = await processing_at_zero(stack)
    limiter = stack.discord.edit_limiter
    assert limiter is not None
    remaining = int(limiter.headers(message.id, time.monotonic())["X-RateLimit-Remaining"])
    for _ in range(remaining - 1):  # the edit to 25 % is the window's last
        limiter.take(message.id, time.monotonic())
    stack.api.set_progress(prediction_id, 1)
    await handle.wait_message(lambda m: "25%" in status_of(m))  # shown; discord.py now sleeps out the reset
    stack.api.finish(prediction_id)

    final = await stack.final_message(handle, timeout=20)
    assert "Done" in status_of(final) and final.attachments
