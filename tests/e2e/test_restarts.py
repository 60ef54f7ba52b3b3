"""Nothing lost to a crash: SIGKILL the bot mid-job, start it again on the same database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.bot_process import BotProcess
from tests.e2e.conftest import DISCORD_TOKEN, imagine_in, status_of
from tests.fakes.discord import FakeDiscord, InteractionHandle, Routes, StoredMessage
from tests.fakes.replicate import FakeReplicate, Scenario


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotProcess]:
    async with FakeReplicate(seed=11, scenario=Scenario.manual()) as api, FakeDiscord(token=DISCORD_TOKEN) as fake:
        guild = fake.add_guild("Restarts")
        process = BotProcess(api, fake, guild, tmp_path)
        await process.start()
        try:
            yield process
        finally:
            await process.stop()
        assert "Traceback" not in process.output(), process.output()


async def imagine(bot: BotProcess, prompt: str = "a red fox", **options: object) -> InteractionHandle:
    return await imagine_in(bot.discord, bot.guild, {"prompt": prompt, **options})


def finished(message: StoredMessage) -> bool:
    return any(word in status_of(message) for word in ("Done", "Failed", "Canceled", "Timed out"))


async def test_killed_while_processing_finishes_after_restart(bot: BotProcess) -> None:
    handle = await imagine(bot)
    prediction = await bot.api.wait_for_prediction()
    await bot.api.wait_for_requests("get", 1, timeout=15)  # the bot has the id (journaled before polling)
    bot.api.set_progress(prediction.id, 2)
    await handle.wait_message(lambda m: "50%" in status_of(m), timeout=15)
    await bot.kill()
    await bot.start()
    bot.api.finish(prediction.id)
    final = await handle.wait_message(finished, timeout=20)
    assert "Done" in status_of(final), final.embeds
    assert [a.data for a in final.attachments] == [f.data for f in bot.api.last_prediction.files]
    assert bot.api.count("POST", "create") == 1


@pytest.mark.slow  # a killed process and a restart: `pytest -m slow` (the suite's time budget)
async def test_killed_while_queued_runs_once_after_restart(bot: BotProcess, tmp_path: Path) -> None:
    await bot.stop()
    bot.env["IMAGINE_MAX_RUNNING"] = "1"
    await bot.start()
    first = await imagine(bot, "first")
    second = await imagine(bot, "second")
    running = await bot.api.wait_for_prediction()
    await bot.api.wait_for_requests("get", 1, timeout=15)
    await second.wait_message(lambda m: "Queued" in status_of(m), timeout=10)
    await bot.kill()
    await bot.start()
    bot.api.finish(running.id)
    await first.wait_message(finished, timeout=20)
    queued = await bot.api.wait_for_prediction(2, timeout=20)
    assert queued.input["prompt"] == "second"
    bot.api.finish(queued.id)
    final = await second.wait_message(finished, timeout=20)
    assert "Done" in status_of(final)
    assert bot.api.count("POST", "create") == 2


async def test_killed_while_the_create_call_waits_ends_with_that_predictions_image(bot: BotProcess) -> None:
    # The manual scenario keeps the create call waiting (Prefer: wait=3): the prediction exists on the
    # API's side, but the bot has not read its id when it dies. After the restart it finds the prediction
    # in the list of predictions and finishes the same message with its image.
    handle = await imagine(bot)
    prediction = await bot.api.wait_for_prediction()
    await bot.kill()
    await bot.start()
    await bot.api.wait_for_requests("list", 1, timeout=20)
    await bot.api.wait_for_requests("get", 1, timeout=20)
    bot.api.finish(prediction.id)
    final = await handle.wait_message(finished, timeout=20)
    assert "Done" in status_of(final), final.embeds
    assert [a.data for a in final.attachments] == [f.data for f in prediction.files]
    assert bot.api.count("POST", "create") == 1


async def test_without_a_list_route_a_create_cut_by_a_restart_is_not_sent_again(bot: BotProcess) -> None:
    bot.api.serve_list = False  # a gateway that serves only the prediction routes
    limited = await bot.discord.slash(
        "imagine-admin limits",
        {"daily": 1},
        user=bot.guild.member("moderator"),
        guild=bot.guild,
        channel=bot.guild.channel("general"),
    )
    await limited.wait_callback()
    handle = await imagine(bot)
    await bot.api.wait_for_prediction()
    await bot.kill()
    await bot.start()
    final = await handle.wait_message(finished, timeout=20)
    assert "Failed" in status_of(final)
    assert "run /imagine again" in str(final.embeds) and "cannot list predictions" in str(final.embeds)
    assert bot.api.count("POST", "create") == 1
    again = await imagine(bot)  # the daily image was refunded
    await bot.api.wait_for_prediction(2, timeout=20)
    assert bot.api.count("POST", "create") == 2
    assert not (await again.wait_callback()).ephemeral


@pytest.mark.slow  # a killed process and a restart: `pytest -m slow` (the suite's time budget)
async def test_resumed_running_jobs_hold_their_slots_before_queued_ones_start(bot: BotProcess) -> None:
    await bot.stop()
    bot.env["IMAGINE_MAX_RUNNING"] = "1"
    await bot.start()
    first = await imagine(bot, "first")
    running = await bot.api.wait_for_prediction()  # its create call is still waiting (Prefer: wait)
    second = await imagine(bot, "second")
    await second.wait_message(lambda m: "Queued" in status_of(m), timeout=10)
    await bot.kill()
    await bot.start()
    await bot.api.wait_for_requests("get", 2, timeout=20)  # the first job polls its prediction again
    assert bot.api.count("POST", "create") == 1, "the queued job started while the resumed one ran"
    bot.api.finish(running.id)
    assert "Done" in status_of(await first.wait_message(finished, timeout=20))
    queued = await bot.api.wait_for_prediction(2, timeout=20)
    assert queued.input["prompt"] == "second"
    bot.api.finish(queued.id)
    assert "Done" in status_of(await second.wait_message(finished, timeout=20))
    assert bot.api.count("POST", "create") == 2


async def test_killed_between_journal_and_placeholder_the_job_still_ends_in_a_message(bot: BotProcess) -> None:
    """The job is journaled before its placeholder goes out: a crash in between leaves no orphan."""
    bot.api.set_default_scenario(Scenario(duration=0.3))
    hold = bot.discord.hold_next(Routes.CALLBACK)  # the placeholder never reaches Discord
    handle = await imagine(bot)
    await asyncio.wait_for(hold.arrived.wait(), 15)
    await bot.kill()
    hold.release()
    await bot.start()
    channel = bot.guild.channel("general")

    def posted() -> StoredMessage | None:
        return next((m for m in bot.discord.messages.values() if m.channel_id == channel.id and finished(m)), None)

    final = await bot.discord.wait_for(posted, 30, what="the job's message, posted anew")
    assert "Done" in status_of(final), final.embeds
    assert f"<@{bot.guild.member('member').id}>" in final.content
    assert bot.api.count("POST", "create") == 1
    assert handle.original_message_id is None  # the interaction itself was never answered


def job_messages(bot: BotProcess) -> list[StoredMessage]:
    """The job messages in #general (not the member's private answers), oldest first."""
    return [m for m in bot.discord.messages_in(bot.guild.channel("general")) if m.embeds and not m.ephemeral]


async def all_finished(bot: BotProcess, count: int) -> list[StoredMessage]:
    def done() -> list[StoredMessage] | None:
        messages = job_messages(bot)
        return messages if len(messages) == count and all(finished(m) for m in messages) else None

    return await bot.discord.wait_for(done, 30, what=f"{count} finished job messages")


@pytest.mark.slow  # a killed process and a restart: `pytest -m slow` (the suite's time budget)
async def test_killed_in_the_middle_of_a_set_loses_no_job_and_creates_none_twice(bot: BotProcess) -> None:
    await bot.stop()
    bot.env["IMAGINE_MAX_RUNNING"] = "1"
    await bot.start()
    await imagine(bot, "a {red, green, blue} bird")
    running = await bot.api.wait_for_prediction()
    await bot.api.wait_for_requests("get", 1, timeout=15)  # the bot has the first one's id
    await bot.discord.wait_for(
        lambda: sum("Queued" in status_of(m) for m in job_messages(bot)) == 2, 10, what="two jobs queued"
    )
    await bot.kill()
    await bot.start()
    bot.api.finish(running.id)
    for number in (2, 3):
        bot.api.finish((await bot.api.wait_for_prediction(number, timeout=20)).id)
    finals = await all_finished(bot, 3)
    assert all("Done" in status_of(m) for m in finals)
    assert sorted(p.input["prompt"] for p in bot.api.predictions.values()) == [
        "a blue bird",
        "a green bird",
        "a red bird",
    ]
    assert bot.api.count("POST", "create") == 3


async def test_killed_before_a_sets_messages_went_out_every_job_is_posted_after_the_restart(
    bot: BotProcess,
) -> None:
    """The whole set is journaled, with its targets, in the charge: the restart posts each job's message."""
    bot.api.set_default_scenario(Scenario(duration=0.3))
    hold = bot.discord.hold_next(Routes.CREATE_MESSAGE)  # the set's first message never reaches Discord
    handle = await imagine(bot, "a fox --repeat 2")
    await asyncio.wait_for(hold.arrived.wait(), 15)
    await bot.kill()
    hold.release()
    await bot.start()
    finals = await all_finished(bot, 2)
    assert all("Done" in status_of(m) for m in finals), [m.embeds for m in finals]
    assert all(f"<@{bot.guild.member('member').id}>" in m.content for m in finals)
    assert bot.api.count("POST", "create") == 2
    assert handle.callbacks == []  # the member's answer never went out: the messages tell them
