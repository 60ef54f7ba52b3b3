"""Every image the bot posts carries its prompt as alt text (the attachment's description)."""

from __future__ import annotations

from tests.e2e.conftest import Stack, status_of
from tests.fakes.discord import StoredMessage


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
    _, repost = await stack.repost_after_deletion("a lighthouse")
    assert descriptions(repost) == ["a lighthouse"]
