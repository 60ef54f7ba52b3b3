"""A flooded queue: one member or a crowd asking for far more jobs than the queue caps allow, all at once.

The contract: every interaction gets an answer (a placeholder, or a refusal only its member sees);
no more jobs wait than ``IMAGINE_MAX_QUEUED`` and ``IMAGINE_MAX_QUEUED_PER_MEMBER`` allow, even when
the requests' set-ups overlap; a refused job is charged nothing and sends nothing to the API; nothing
escapes as an unhandled error.
"""

from __future__ import annotations

import asyncio

from tests.e2e.conftest import Stack, StackFactory, status_of
from tests.e2e.test_buttons import button
from tests.fakes.discord import InteractionHandle
from tests.fakes.replicate import Scenario
from tests.faults.conftest import UnhandledWatch

JOB = "a job"


async def outcomes(stack: Stack, handles: list[InteractionHandle]) -> list[str]:
    """What each interaction ended in: :data:`JOB` (its placeholder is up), or the text of a refusal only
    its member sees (the answer itself, or a followup after the bot deferred under the load)."""

    def outcome(handle: InteractionHandle) -> str | None:
        reply = handle.response
        if reply is None:
            return None
        if reply.ephemeral:
            return reply.content or ""
        message = handle.original_message
        if message is not None and not message.deleted and not message.ephemeral and message.embeds:
            return JOB
        followup = next((m for m in handle.followups if m.ephemeral), None)
        return followup.content if followup is not None else None

    return [await stack.discord.wait_for(lambda h=h: outcome(h), 15, what="an answer") for h in handles]


async def images_charged(stack: Stack, users: list[str]) -> int:
    assert stack.bot is not None
    core = stack.bot.core
    now = core.clock.now()
    usages = [await core.repository.usage(stack.guild.id, stack.guild.member(user).id, now=now) for user in users]
    return sum(usage.images_today for usage in usages)


async def test_one_members_burst_gets_at_most_the_members_share(
    make_stack: StackFactory, unhandled: UnhandledWatch
) -> None:
    stack = await make_stack(max_running=1)
    await (await stack.admin("limits", daily=100)).wait_callback()
    stack.api.set_default_scenario(Scenario.manual())
    burst = await asyncio.gather(*(stack.imagine(prompt=f"fox {n}") for n in range(12)))
    ended = await outcomes(stack, burst)
    refused = [text for text in ended if text != JOB]
    assert 1 <= len(ended) - len(refused) <= 4  # one running, three waiting
    for text in refused:  # the member's previous request still being set up, or their share of the queue
        assert "still being set up" in text or text.startswith("❌ You already have 3 jobs waiting"), text

    # Asking again one at a time fills the member's share exactly, then the cap says so.
    while (text := (await outcomes(stack, [await stack.imagine(prompt="one more")]))[0]) == JOB:
        pass
    assert "You already have 3 jobs waiting in the queue" in text
    await stack.api.wait_for_prediction()
    assert await images_charged(stack, ["member"]) == 4
    assert stack.api.count("POST", "create") == 1
    unhandled.check()


async def test_a_crowd_at_once_never_overfills_the_queue(make_stack: StackFactory, unhandled: UnhandledWatch) -> None:
    stack = await make_stack(max_running=1, max_queued=10)
    await (await stack.admin("limits", daily=100)).wait_callback()
    stack.api.set_default_scenario(Scenario.manual())
    crowd = [f"crowd-{n}" for n in range(40)]
    for user in crowd:
        stack.guild.add_member(user)
    handles = await asyncio.gather(*(stack.imagine(user) for user in crowd))
    ended = await outcomes(stack, handles)
    assert ended.count(JOB) == 11  # one running and ten waiting: set-ups under way hold their places
    assert set(ended) == {JOB, "❌ The queue is full (10 jobs waiting); try again in a few minutes."}
    assert await images_charged(stack, crowd) == 11
    await stack.api.wait_for_prediction()
    assert stack.api.count("POST", "create") == 1
    assert stack.bot is not None
    assert stack.bot.core.engine.queued == 10
    unhandled.check()


async def test_canceled_waiting_jobs_give_their_places_back(
    make_stack: StackFactory, unhandled: UnhandledWatch
) -> None:
    stack = await make_stack(max_running=1)
    stack.api.set_default_scenario(Scenario.manual())
    waiting = []
    for number in range(4):
        handle = await stack.imagine(prompt=f"fox {number}")
        waiting.append(await handle.wait_message())
    assert (await outcomes(stack, [await stack.imagine(prompt="too many")]))[0] != JOB
    last = waiting[-1]
    cancel = await stack.discord.click(last, button(last, "cancel"))
    await cancel.wait_callback()
    await stack.discord.wait_for(lambda: "Canceled" in status_of(last), 10, what="the cancel")
    again = await stack.imagine(prompt="in its place")
    assert "Queued" in status_of(await again.wait_message())
    unhandled.check()
