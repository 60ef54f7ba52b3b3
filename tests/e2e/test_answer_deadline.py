"""Discord's 3 s to answer, when the checks before ``/imagine``'s answer are slow.

The fake Discord enforces the deadline (a callback later than 3 s after dispatch gets 404/10062). The
policy's check is slowed on purpose; everything else is the real bot.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.discord_app.answers import AnswerDeadline
from tests.e2e.conftest import Stack, status_of
from tests.fakes.discord import CallbackType, Routes
from tests.fakes.replicate import Scenario

SLOW_CHECK = 3.3  # seconds: past the deadline itself (3 s), so only a defer saves the answer


def slow_down_checks(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, until: Callable[[], Awaitable[Any]] | None = None
) -> None:
    """The policy's check takes :data:`SLOW_CHECK` seconds, or as long as ``until`` takes."""
    assert stack.bot is not None
    policy = stack.bot.core.policy
    check: Callable[..., Awaitable[Any]] = policy.admit

    async def slow_check(*args: Any) -> Any:
        await (until() if until is not None else asyncio.sleep(SLOW_CHECK))
        return await check(*args)

    monkeypatch.setattr(policy, "admit", slow_check)


async def test_slow_checks_defer_then_the_placeholder_takes_the_deferred_answers_place(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_down_checks(stack, monkeypatch)
    stack.api.set_default_scenario(Scenario.manual())
    handle = await stack.imagine()
    callback = await handle.wait_callback(timeout=5)
    assert callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE and callback.accepted
    prediction = await stack.api.wait_for_prediction(timeout=10)
    stack.api.set_progress(prediction.id, 2)
    await handle.wait_message(lambda m: "50%" in status_of(m))
    stack.api.finish(prediction.id)
    final = await stack.final_message(handle)
    assert "Done" in status_of(final) and final.attachments
    assert stack.api.count("POST", "create") == 1
    # The placeholder was an edit of "thinking…": the bot counted it, the first progress edit kept its gap.
    assert final.routes[:2] == [Routes.CALLBACK, Routes.EDIT_ORIGINAL]
    stack.assert_paced(final)


async def test_a_defer_still_on_its_way_when_the_answer_is_ready_counts_the_placeholder_as_an_edit(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks end while the defer is out: the answer waits for it, and then can only edit "thinking…"
    into the placeholder. That edit counts under the message's budget though the defer came back only then."""
    defer = stack.discord.hold_next(Routes.CALLBACK, drop=False)
    slow_down_checks(stack, monkeypatch, until=defer.arrived.wait)  # the checks end once the defer is out
    stop_watching = AnswerDeadline.stop

    async def stop_once_the_answer_waits(deadline: AnswerDeadline) -> None:
        defer.release()  # the defer comes back only now: whoever asked before heard "not deferred"
        await stop_watching(deadline)

    monkeypatch.setattr(AnswerDeadline, "stop", stop_once_the_answer_waits)
    stack.api.set_default_scenario(Scenario.manual())
    handle = await stack.imagine()
    prediction = await stack.api.wait_for_prediction(timeout=10)
    stack.api.start_processing(prediction.id)
    stack.api.set_progress(prediction.id, 2)
    message = await handle.wait_message(lambda m: "50%" in status_of(m))

    assert message.routes[:2] == [Routes.CALLBACK, Routes.EDIT_ORIGINAL]
    assert (await handle.wait_callback()).type == CallbackType.DEFERRED_CHANNEL_MESSAGE
    first_progress = stack.presenter_of(message).pacer.decisions[0]
    assert first_progress.quiet < math.inf, first_progress  # paced from the placeholder's edit, counted
    stack.api.finish(prediction.id)
    stack.assert_paced(await stack.final_message(handle))


async def test_a_slow_refusal_replaces_the_deferred_answer_privately(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_down_checks(stack, monkeypatch)
    handle = await stack.imagine(model="someone/not-allowed")
    await handle.wait_callback(timeout=5)

    def refused() -> Any:
        followups = handle.followups
        return followups[0] if followups else None

    refusal = await stack.discord.wait_for(refused, 5, what="the refusal")
    assert refusal.ephemeral and "not allowed" in refusal.content
    assert handle.original_message is None or handle.original_message.deleted
    assert stack.api.count("POST", "create") == 0
