"""Discord's 3 s to answer, when the checks before ``/imagine``'s answer are slow.

The fake Discord enforces the deadline (a callback later than 3 s after dispatch gets 404/10062). The
policy's check is slowed on purpose; everything else is the real bot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.e2e.conftest import Stack, status_of
from tests.fakes.discord import CallbackType, Routes
from tests.fakes.replicate import Scenario

SLOW_CHECK = 3.3  # seconds: past the deadline itself (3 s), so only a defer saves the answer


def slow_down_checks(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    assert stack.bot is not None
    policy = stack.bot.core.policy
    check: Callable[..., Awaitable[Any]] = policy.check_request

    async def slow_check(**kwargs: Any) -> Any:
        await asyncio.sleep(SLOW_CHECK)
        return await check(**kwargs)

    monkeypatch.setattr(policy, "check_request", slow_check)


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
