"""Permutations and ``--repeat`` through the fake Discord: one ``/imagine`` makes a set of jobs, checked whole,
run all or nothing, each an ordinary job in its own message, each charged (and given back) on its own."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from bot.discord_app.job_launch import DATABASE_DOWN
from bot.moderation.costs import parse_prices
from bot.storage import DatabaseUnavailable, JobRecord
from tests.e2e.conftest import Stack, StackFactory, is_terminal, job_id_of, status_of
from tests.e2e.test_buttons import button
from tests.e2e.test_moderation import answer
from tests.fakes.discord import CallbackType, InteractionHandle, Perm, Routes, StoredMessage
from tests.fakes.replicate import FLUX_SCHNELL, Scenario

COLOURS = "a {red, green, blue} bird"


def job_messages(stack: Stack) -> list[StoredMessage]:
    """The job messages in #general, oldest first."""
    channel = stack.guild.channel("general")
    return [m for m in stack.discord.messages_in(channel) if m.embeds and not m.ephemeral]


async def wait_jobs(
    stack: Stack, count: int, done: Callable[[StoredMessage], bool] = is_terminal
) -> list[StoredMessage]:
    """The first ``count`` job messages, once each satisfies ``done``."""

    def ready() -> list[StoredMessage] | None:
        messages = job_messages(stack)
        return messages if len(messages) >= count and all(done(m) for m in messages[:count]) else None

    return (await stack.discord.wait_for(ready, 15, what=f"{count} job messages"))[:count]


async def private_answer(handle: InteractionHandle) -> str:
    """The interaction's answer, which must be one only the member sees."""
    callback = await handle.wait_callback(timeout=10)
    assert callback.type == CallbackType.CHANNEL_MESSAGE
    assert callback.ephemeral, f"not private: {callback.data}"
    return callback.content or ""


async def images_today(stack: Stack, user: str = "member") -> int:
    assert stack.bot is not None
    core = stack.bot.core
    usage = await core.repository.usage(stack.guild.id, stack.guild.member(user).id, now=core.clock.now())
    return usage.images_today


async def test_a_set_of_three_makes_three_messages_and_three_predictions(stack: Stack) -> None:
    text = await private_answer(await stack.imagine(prompt=COLOURS))
    finals = await wait_jobs(stack, 3)
    assert [m.embeds[0]["description"] for m in finals] == ["a red bird", "a green bird", "a blue bird"]
    assert all("Done" in status_of(m) and m.attachments for m in finals)
    assert sorted(p.input["prompt"] for p in stack.api.predictions.values()) == sorted(
        ["a red bird", "a green bird", "a blue bird"]
    )
    assert stack.api.count("POST", "create") == 3
    assert "Your prompt makes 3 jobs" in text
    for number, message in enumerate(finals, 1):  # listed in order, each with a link to its message
        assert f"{number}. a {['red', 'green', 'blue'][number - 1]} bird" in text
        assert f"/{message.channel_id}/{message.id})" in text
    assert len({job_id_of(m) for m in finals}) == 3
    assert await images_today(stack) == 3


async def test_repeat_runs_the_same_prompt_and_flags_take_permutations(stack: Stack) -> None:
    await private_answer(await stack.imagine(prompt="a fox --repeat 2"))
    await wait_jobs(stack, 2)
    assert [p.input["prompt"] for p in stack.api.predictions.values()] == ["a fox", "a fox"]

    await private_answer(await stack.imagine(prompt="a cat --ar {1:1, 16:9}"))
    await wait_jobs(stack, 4)
    ratios = sorted(p.input.get("aspect_ratio") for p in list(stack.api.predictions.values())[2:])
    assert ratios == ["16:9", "1:1"]


async def test_a_set_past_the_limit_is_refused_with_its_count_and_sends_nothing(stack: Stack) -> None:
    text = await private_answer(await stack.imagine(prompt="a {red, green, blue} {bird, cat}"))
    assert "6 combinations" in text and "at most 4" in text
    text = await private_answer(await stack.imagine(prompt="a {red, green} bird --repeat 3"))
    assert "6 jobs" in text and "at most 4" in text
    assert stack.api.count("POST", "create") == 0
    assert job_messages(stack) == []
    assert await images_today(stack) == 0


async def test_a_blocked_word_in_one_combination_refuses_the_whole_set(stack: Stack) -> None:
    await answer(stack, "words add", word="green")
    text = await private_answer(await stack.imagine(prompt=COLOURS))
    assert "blocked" in text
    assert stack.api.count("POST", "create") == 0 and job_messages(stack) == []
    assert await images_today(stack) == 0


async def test_daily_images_for_two_of_three_refuse_all(stack: Stack) -> None:
    await answer(stack, "limits", daily=2)
    text = await private_answer(await stack.imagine(prompt=COLOURS))
    assert "3 images today" in text and "the limit is 2" in text
    assert stack.api.count("POST", "create") == 0 and job_messages(stack) == []
    assert await images_today(stack) == 0


async def test_a_budget_for_two_of_three_refuses_all(make_stack: StackFactory) -> None:
    stack: Stack = await make_stack(prices=parse_prices(f"{FLUX_SCHNELL}=0.004/image"))
    await answer(stack, "budget", member_daily=0.008)
    text = await private_answer(await stack.imagine(prompt=COLOURS))
    assert "Your budget for today is $0.008" in text and "about $0.012" in text
    assert stack.api.count("POST", "create") == 0 and job_messages(stack) == []


async def test_a_set_past_the_members_jobs_at_once_is_refused_saying_so(stack: Stack) -> None:
    await answer(stack, "limits", concurrent=2)
    text = await private_answer(await stack.imagine(prompt=COLOURS))
    assert "makes 3 /imagine jobs" in text and "2 at once" in text
    assert stack.api.count("POST", "create") == 0 and job_messages(stack) == []


async def test_each_jobs_charge_is_given_back_alone_when_it_fails(make_stack: StackFactory) -> None:
    stack: Stack = await make_stack(prices=parse_prices(f"{FLUX_SCHNELL}=0.004/image"))
    stack.api.set_default_scenario(Scenario.manual())
    await private_answer(await stack.imagine(prompt=COLOURS))
    predictions = [await stack.api.wait_for_prediction(n) for n in (1, 2, 3)]
    assert await images_today(stack) == 3
    failed = next(p for p in predictions if p.input["prompt"] == "a green bird")
    for prediction in predictions:
        stack.api.finish(prediction.id, "failed" if prediction is failed else None, error="boom")
    finals = await wait_jobs(stack, 3)
    assert ["Failed" in status_of(m) for m in finals] == [False, True, False]
    assert await images_today(stack) == 2  # the failed job's image alone came back
    assert stack.bot is not None
    core = stack.bot.core
    spend = await core.repository.spend(stack.guild.id, stack.guild.member("member").id, now=core.clock.now())
    assert spend.member_today == 8_000  # two images delivered at $0.004; the failed one's share released


async def test_a_job_whose_message_cannot_be_posted_calls_off_the_whole_set(stack: Stack) -> None:
    """All or nothing after Discord's errors too: every message is posted before any job is queued."""
    stack.api.set_default_scenario(Scenario.manual())
    # The first message goes out; Discord refuses the second (a 400 is not tried again).
    posts = itertools.count(1)
    stack.discord.fail_next(
        lambda method, path, route: route == Routes.CREATE_MESSAGE and next(posts) == 2,
        status=400,
        code=50035,
        message="Invalid Form Body",
    )
    text = await private_answer(await stack.imagine(prompt=COLOURS))
    assert "None of your 3 jobs started" in text and "job 2" in text and "given back" in text
    assert "cooldown may still apply" in text  # true: the request was charged against it
    (first,) = await wait_jobs(stack, 1, lambda m: "Failed" in status_of(m))
    assert first.embeds[0]["description"] == "a red bird"
    assert "The set did not start" in str(first.embeds[0])  # its message says why it will not run
    assert len(job_messages(stack)) == 1  # the third was never posted
    assert stack.api.count("POST", "create") == 0
    assert await images_today(stack) == 0


async def test_a_channel_the_bot_cannot_post_in_starts_none_and_charges_nothing(stack: Stack) -> None:
    stack.discord.fail_next(Routes.CREATE_MESSAGE, status=403, code=50013, message="Missing Permissions")
    text = await private_answer(await stack.imagine(prompt=COLOURS))
    assert "None of your 3 jobs started" in text and "not allowed to post" in text
    assert len(stack.discord.requests_for(Routes.CREATE_MESSAGE)) == 1  # not tried again for the others
    assert stack.api.count("POST", "create") == 0
    assert await images_today(stack) == 0


async def test_re_roll_of_a_sets_job_is_one_job_with_its_prompt_as_expanded(stack: Stack) -> None:
    await private_answer(await stack.imagine(prompt="a \\{tiny\\} {red, green} bird"))
    green = (await wait_jobs(stack, 2))[1]
    assert green.embeds[0]["description"] == "a {tiny} green bird"
    reroll = await stack.discord.click(green, button(green, "reroll"), user=stack.guild.member("member"))
    rerolled = await stack.final_message(reroll)  # the interaction's own answer, as any single job
    assert "Done" in status_of(rerolled)
    assert stack.api.last_prediction.input["prompt"] == "a {tiny} green bird"  # its braces are text now
    assert stack.api.count("POST", "create") == 3


async def test_a_set_past_the_members_share_of_the_queue_is_refused_whole(make_stack: StackFactory) -> None:
    stack: Stack = await make_stack(max_running=1, max_queued_per_member=2)
    text = await private_answer(await stack.imagine(prompt="a {red, green, blue, white} bird"))
    assert "waiting in the queue" in text and "one member may have 2" in text
    assert stack.api.count("POST", "create") == 0 and job_messages(stack) == []
    assert await images_today(stack) == 0


async def test_a_set_that_mostly_starts_at_once_is_not_refused_by_the_queue_caps(make_stack: StackFactory) -> None:
    """Three free slots and a share of the queue of 2: of a set of 4, one job waits, so it is let through."""
    stack: Stack = await make_stack(max_running=3, max_queued_per_member=2)
    text = await private_answer(await stack.imagine(prompt="a {red, green, blue, white} bird"))
    assert "Your prompt makes 4 jobs" in text
    await wait_jobs(stack, 4)
    assert stack.api.count("POST", "create") == 4


async def test_a_set_whose_charge_lands_with_its_answer_lost_never_runs_after_a_restart(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The member reads that nothing started: the jobs, journaled without their messages, are not resumed,
    though the give-back had not landed before the restart."""
    assert stack.bot is not None
    repository = stack.bot.core.repository
    charge = repository.charge

    async def committed_but_lost(*args: Any, **kwargs: Any) -> Any:
        await charge(*args, **kwargs)
        raise DatabaseUnavailable("connection reset by peer")

    async def not_answering(*args: Any, **kwargs: Any) -> bool:
        raise DatabaseUnavailable("connection reset by peer")

    monkeypatch.setattr(repository, "charge", committed_but_lost)
    monkeypatch.setattr(repository, "abandon_job", not_answering)  # the give-back does not land before the restart
    text = await private_answer(await stack.imagine(prompt=COLOURS))
    assert text == str(DATABASE_DOWN)
    await stack.restart()
    assert stack.bot is not None
    core = stack.bot.core
    member = stack.guild.member("member").id

    async def ended() -> list[JobRecord] | None:
        jobs = await core.journal.member_history(stack.guild.id, member)
        return jobs if len(jobs) == 3 and all(job.ended_at is not None for job in jobs) else None

    jobs = None
    for _ in range(300):  # the restart's resume abandons them (no timing asserted: a bound against a hang)
        jobs = await ended()
        if jobs is not None:
            break
        await asyncio.sleep(0.05)
    assert jobs is not None, "the set's jobs were not given back after the restart"
    assert {job.state for job in jobs} == {"failed"}
    assert stack.api.count("POST", "create") == 0 and job_messages(stack) == []
    assert await images_today(stack) == 0


async def test_a_set_in_a_channel_the_bot_may_not_post_in_is_refused_before_any_charge(stack: Stack) -> None:
    """Discord says what the bot may do there (``app_permissions``): the set is refused naming what is
    missing, and the member's cooldown is not spent."""
    stack.guild.channel("general").overwrite(stack.guild.bot_member, deny=Perm.SEND_MESSAGES | Perm.ATTACH_FILES)
    text = await private_answer(await stack.imagine(prompt=COLOURS))
    assert "missing these permissions in this channel: Send Messages, Attach Files" in text
    assert "Nothing was started or charged" in text
    assert stack.discord.requests_for(Routes.CREATE_MESSAGE) == [] and job_messages(stack) == []
    assert stack.bot is not None
    core = stack.bot.core
    usage = await core.repository.usage(stack.guild.id, stack.guild.member("member").id, now=core.clock.now())
    assert usage.last_request_at is None and usage.images_today == 0  # no cooldown spent


# Slow: a restart; and about one run in three, the bot's close at the end waits out the fixture's 90 s bound
# (a hang not yet explained: the test's own assertions pass either way).
@pytest.mark.slow
async def test_a_restart_between_a_post_and_its_journal_write_posts_no_second_message(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restart posts the job's message again with the same nonce: Discord answers with the one posted
    before, which the job then shows; no orphan placeholder is left."""
    assert stack.bot is not None
    core = stack.bot.core

    async def cut(*args: Any, **kwargs: Any) -> None:
        return None  # the process died here: neither the message's id journaled, nor the job queued

    monkeypatch.setattr(core.journal, "shown", cut)
    monkeypatch.setattr(core.engine, "submit", cut)
    await private_answer(await stack.imagine(prompt="a fox --repeat 2"))
    assert len(job_messages(stack)) == 2
    await stack.restart()
    finals = await wait_jobs(stack, 2)
    assert all("Done" in status_of(m) and m.attachments for m in finals)
    assert len(job_messages(stack)) == 2  # the same two messages, no second post of either
    assert stack.api.count("POST", "create") == 2
