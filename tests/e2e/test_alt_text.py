"""Every image the bot posts carries its prompt as alt text (the attachment's description)."""

from __future__ import annotations

from tests.e2e.conftest import Stack, status_of
from tests.fakes.discord import StoredMessage
from tests.fakes.replicate import Scenario


def descriptions(message: StoredMessage) -> list[str | None]:
    return [attachment.description for attachment in message.attachments]


async def test_each_image_is_described_by_the_prompt(stack: Stack) -> None:
    final = await stack.final_message(await stack.imagine(prompt="a red fox in the snow --seed 4", count=3))
    assert "Done" in status_of(final)
    assert descriptions(final) == ["a red fox in the snow"] * 3  # the prompt the model got: no flags


async def test_a_long_prompt_is_clipped_to_discords_limit(stack: Stack) -> None:
    prompt = "a very detailed fox, " * 70  # 1470 characters
    final = await stack.final_message(await stack.imagine(prompt=prompt.strip()))
    [description] = descriptions(final)
    assert description is not None and len(description) == 1024
    assert description == prompt[:1023] + "…"


async def test_a_result_posted_anew_is_described_too(stack: Stack) -> None:
    stack.api.set_default_scenario(Scenario.manual())
    handle = await stack.imagine(prompt="a lighthouse")
    placeholder = await handle.wait_message()
    prediction = await stack.api.wait_for_prediction()
    await stack.discord.delete_message(placeholder)
    stack.api.finish(prediction.id)
    channel = stack.guild.channel("general")
    repost = await stack.discord.wait_for(
        lambda: next((m for m in stack.discord.messages_in(channel) if m.attachments), None), 10, what="repost"
    )
    assert descriptions(repost) == ["a lighthouse"]
