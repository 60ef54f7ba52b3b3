"""Cancel, Re-roll and Delete: persistent buttons that keep working after a restart."""

from __future__ import annotations

import asyncio

from tests.e2e.conftest import Stack, StackFactory, status_of
from tests.fakes.discord import CallbackType, StoredMessage
from tests.fakes.replicate import Scenario


def button(message: StoredMessage, action: str) -> str:
    return next(c for c in message.current.custom_ids if c.startswith(f"imagine:{action}:"))


async def test_buttons_work_after_a_restart(stack: Stack) -> None:
    stack.api.set_default_scenario(Scenario.manual())
    handle = await stack.imagine()
    placeholder = await handle.wait_message()
    await stack.api.wait_for_prediction()
    await stack.api.wait_for_requests("get", 1)
    await stack.restart()

    stranger = stack.guild.add_member("stranger")
    refused = await stack.discord.click(placeholder, button(placeholder, "cancel"), user=stranger)
    assert (await refused.wait_callback()).ephemeral
    pressed = await stack.discord.click(placeholder, button(placeholder, "cancel"), user=stack.guild.member("member"))
    assert (await pressed.wait_callback()).type == CallbackType.DEFERRED_UPDATE_MESSAGE
    final = await stack.final_message(handle)
    assert "Canceled" in status_of(final)
    assert stack.api.last_prediction.status == "canceled"

    await stack.restart()
    stack.api.set_default_scenario(Scenario())
    reroll = await stack.discord.click(final, button(final, "reroll"), user=stack.guild.member("member"))
    rerolled = await stack.final_message(reroll)
    assert "Done" in status_of(rerolled)
    assert rerolled.id != final.id
    first_input, second_input = (p.input for p in stack.api.predictions.values())
    assert second_input["prompt"] == first_input["prompt"]
    assert "seed" in second_input


async def test_moderator_may_cancel_and_delete_strangers_may_not(stack: Stack) -> None:
    stack.api.set_default_scenario(Scenario.manual())
    handle = await stack.imagine()
    placeholder = await handle.wait_message()
    await stack.api.wait_for_prediction()
    pressed = await stack.discord.click(
        placeholder, button(placeholder, "cancel"), user=stack.guild.member("moderator")
    )
    await pressed.wait_callback()
    final = await stack.final_message(handle)
    assert "Canceled" in status_of(final)
    assert str(stack.guild.member("moderator").id) in status_of(final)

    stranger = stack.guild.add_member("stranger")
    refused = await stack.discord.click(final, button(final, "delete"), user=stranger)
    answer = await refused.wait_callback()
    assert answer.ephemeral and "Only the member" in (answer.content or "")
    assert not final.deleted
    deleted = await stack.discord.click(final, button(final, "delete"), user=stack.guild.member("member"))
    await deleted.wait_callback()
    await stack.discord.wait_for(lambda: final.deleted, 5, what="deletion")


async def test_a_button_of_a_forgotten_job_answers_clearly(stack: Stack) -> None:
    final = await stack.final_message(await stack.imagine())
    await stack.restart()
    cancel_like = f"imagine:cancel:{'ab' * 6}"
    # A message with a button for a job this bot never knew (or long forgot).
    final.history.append(
        final.current.__class__(
            **{
                **final.current.__dict__,
                "components": (
                    {"type": 1, "components": [{"type": 2, "style": 2, "label": "Cancel", "custom_id": cancel_like}]},
                ),
            }
        )
    )
    pressed = await stack.discord.click(final, cancel_like, user=stack.guild.member("member"))
    answer = await pressed.wait_callback()
    assert answer.ephemeral and "already ended" in (answer.content or "")


async def test_a_prediction_that_finished_while_the_bot_was_down_is_delivered(make_stack: StackFactory) -> None:
    stack = await make_stack(job_timeout=1.0)
    stack.api.set_default_scenario(Scenario.manual())
    handle = await stack.imagine()
    prediction = await stack.api.wait_for_prediction()
    await stack.api.wait_for_requests("get", 1)
    await stack.stop_bot()
    stack.api.finish(prediction.id)
    await asyncio.sleep(1.2)  # down for longer than the job timeout
    await stack.start_bot()
    final = await stack.final_message(handle)
    assert "Done" in status_of(final) and final.attachments
    assert stack.api.count("POST", "cancel") == 0


async def test_two_quick_requests_from_one_member_both_get_an_answer_in_time(stack: Stack) -> None:
    first, second = await asyncio.gather(stack.imagine(), stack.imagine(prompt="another fox"))
    for handle in (first, second):
        callback = await handle.wait_callback(accepted_only=True)
        assert callback.type == CallbackType.CHANNEL_MESSAGE
