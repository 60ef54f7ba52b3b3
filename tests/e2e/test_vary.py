"""Vary (Subtle) and Vary (Strong): on a single-image result of a model that takes an image, a variation of
that image with the deployment's strength as the model's strength input; an upscale's on the generation it
came from; each charged as one image."""

from __future__ import annotations

import time
from dataclasses import replace

from bot.api.modelref import ModelRef
from tests.e2e.conftest import Stack, StackFactory, field_of, is_terminal, status_of
from tests.e2e.test_member_images import CREATIVE_MODELS, IMG2IMG, UPSCALER, buttons, refusal_of, reply_to
from tests.e2e.test_remix import open_form
from tests.fakes.discord import CallbackType, StoredMessage
from tests.fakes.replicate import FLUX_DEV, cog_openapi_schema

NO_STRENGTH = "acme/no-strength"
"""Starts from an image but has no strength input."""


async def vary_stack(make_stack: StackFactory, **settings: object) -> Stack:
    """The bot with flux-dev (``image``, ``prompt_strength``) and two image models on the list, and an upscaler."""
    models = {
        **CREATIVE_MODELS,
        NO_STRENGTH: cog_openapi_schema({"prompt": {"type": "string"}, "image": {"type": "string", "format": "uri"}}),
    }
    stack: Stack = await make_stack(
        models=(FLUX_DEV, IMG2IMG, NO_STRENGTH),
        api_models=models,
        upscale_model=ModelRef.parse(UPSCALER),
        **settings,
    )
    return stack


def labels(message: StoredMessage) -> list[str]:
    """The labels of the message's buttons, row by row."""
    return [str(button.get("label")) for row in message.components for button in row.get("components", [])]


def replies(stack: Stack, original: StoredMessage) -> list[StoredMessage]:
    """The bot's messages replying to ``original`` that show an ended job, oldest first."""
    return [
        message
        for message in stack.discord.messages_in(original.channel_id)
        if str((message.message_reference or {}).get("message_id")) == str(original.id) and is_terminal(message)
    ]


async def vary(stack: Stack, message: StoredMessage, strength: str) -> StoredMessage:
    """Press ``Vary (<strength>)`` on ``message``; returns the finished variation replying to it."""
    before = len(replies(stack, message))
    click = await stack.discord.click(message, buttons(message, f"vary-{strength}")[0])
    assert (await click.wait_callback()).type == CallbackType.DEFERRED_UPDATE_MESSAGE
    await stack.discord.wait_for(lambda: len(replies(stack, message)) > before, 10, what="the variation")
    return replies(stack, message)[-1]


async def test_vary_sends_the_settings_strength_with_image_one(make_stack: StackFactory) -> None:
    stack = await vary_stack(make_stack, vary_strong=0.6)
    final = await stack.final_message(await stack.imagine(model=FLUX_DEV, prompt="a red fox --ar 3:2", seed=9))
    assert labels(final) == ["Re-roll", "Remix", "Delete", "U1", "V1", "Vary (Subtle)", "Vary (Strong)"]
    assert [len(row["components"]) for row in final.components] == [3, 1, 1, 2]

    subtle = await vary(stack, final, "subtle")
    strong = await vary(stack, final, "strong")
    assert "Done" in status_of(subtle) and "Done" in status_of(strong)
    _original, *variations = (prediction for prediction in stack.api.predictions.values())
    for prediction, strength in zip(variations, (0.35, 0.6), strict=True):
        assert prediction.model == FLUX_DEV
        assert prediction.input["image"] == final.attachments[0].url
        assert prediction.input["prompt_strength"] == strength
        assert prediction.input["prompt"] == "a red fox" and prediction.input["aspect_ratio"] == "3:2"
        assert prediction.input["num_outputs"] == 1 and prediction.input["seed"] != 9
    assert buttons(subtle, "vary-strong")  # a variation can be varied again


async def test_no_vary_on_several_images_or_a_model_without_an_image_input(make_stack: StackFactory) -> None:
    stack = await vary_stack(make_stack)
    several = await stack.final_message(await stack.imagine(model=FLUX_DEV, count=2))
    assert buttons(several, "vary") and not buttons(several, "vary-subtle")
    text_only = await stack.final_message(await stack.imagine(count=1))  # flux-schnell takes no image
    assert not buttons(text_only, "vary-subtle") and not buttons(text_only, "vary-strong")
    assert buttons(text_only, "remix") and buttons(text_only, "upscale")


async def test_vary_on_an_upscale_uses_the_generation_it_came_from(make_stack: StackFactory) -> None:
    stack = await vary_stack(make_stack)
    final = await stack.final_message(await stack.imagine(model=FLUX_DEV, prompt="a red fox --ar 16:9", count=2))
    await (await stack.discord.click(final, buttons(final, "upscale")[1])).wait_callback()
    upscaled = await reply_to(stack, final)
    assert labels(upscaled) == ["Remix", "Delete", "Vary (Subtle)", "Vary (Strong)"]
    await stack.restart()  # what it came from is journaled with the upscale

    varied = await vary(stack, upscaled, "strong")
    assert "Done" in status_of(varied)
    prediction = stack.api.last_prediction
    assert prediction.model == FLUX_DEV  # not the upscaler: it is no generator
    assert prediction.input["image"] == upscaled.attachments[0].url
    assert prediction.input["prompt_strength"] == 0.75 and prediction.input["aspect_ratio"] == "16:9"
    assert prediction.input["num_outputs"] == 1


async def test_each_vary_is_charged_as_one_image(make_stack: StackFactory) -> None:
    stack = await vary_stack(make_stack)
    await (await stack.admin("limits", daily=2)).wait_callback()
    final = await stack.final_message(await stack.imagine(model=IMG2IMG))
    await vary(stack, final, "subtle")
    refused = await stack.discord.click(final, buttons(final, "vary-strong")[0])
    assert "all 2 of your images" in await refusal_of(stack, refused)
    assert stack.api.count("POST", "create") == 2
    assert stack.api.last_prediction.input["prompt_strength"] == 0.35  # IMG2IMG names its image input_image


async def test_a_model_without_a_strength_input_varies_with_a_note(make_stack: StackFactory) -> None:
    stack = await vary_stack(make_stack)
    final = await stack.final_message(await stack.imagine(model=NO_STRENGTH))
    varied = await vary(stack, final, "strong")
    assert "Done" in status_of(varied)
    assert stack.api.last_prediction.input == {"prompt": "a red fox", "image": final.attachments[0].url}
    assert "no strength setting" in (field_of(varied, "Note") or "")


async def test_v_on_a_vary_result_sends_the_models_strength_and_remix_keeps_the_varys(
    make_stack: StackFactory,
) -> None:
    stack = await vary_stack(make_stack)
    final = await stack.final_message(await stack.imagine(model=FLUX_DEV, prompt="a red fox"))
    strong = await vary(stack, final, "strong")
    assert stack.api.last_prediction.input["prompt_strength"] == 0.75

    await (await stack.discord.click(strong, buttons(strong, "vary")[0])).wait_callback()  # V1
    await stack.discord.wait_for(lambda: replies(stack, strong), 10, what="V1's variation")
    assert "prompt_strength" not in stack.api.last_prediction.input  # V: the model's own, not Strong's

    # Remix of a Vary (Strong) result re-runs that variation with the edited prompt: Strong's strength kept.
    click = await open_form(stack, strong, buttons(strong, "remix")[0])
    await stack.discord.submit_modal(click, {"prompt": "a red fox at dawn"})
    await stack.discord.wait_for(lambda: len(replies(stack, strong)) > 1, 10, what="the remix")
    sent = stack.api.last_prediction.input
    assert sent["prompt"] == "a red fox at dawn" and sent["prompt_strength"] == 0.75


def signed_anew(message: StoredMessage, expiry: int) -> str:
    """Discord signing ``message``'s image URL again (``ex``: its new expiry, hex unix time); returns the new URL."""
    [attachment] = message.attachments
    url = f"{attachment.url.split('?')[0]}?ex={expiry:x}&is={expiry - 86400:x}&hm=ab12"
    version = message.current
    message.history.append(replace(version, index=version.index + 1, attachments=(replace(attachment, url=url),)))
    return url


async def test_reroll_and_remix_of_a_variation_take_its_image_anew_from_the_message_it_came_from(
    make_stack: StackFactory,
) -> None:
    stack = await vary_stack(make_stack)
    final = await stack.final_message(await stack.imagine(model=FLUX_DEV, prompt="a red fox"))
    strong = await vary(stack, final, "strong")
    fresh = signed_anew(final, int(time.time()) + 86400)  # the URL the variation was sent has expired since

    await (await stack.discord.click(strong, buttons(strong, "reroll")[0])).wait_callback()
    await stack.discord.wait_for(lambda: stack.api.count("POST", "create") == 3, 10, what="the re-roll")
    sent = stack.api.last_prediction.input
    assert sent["image"] == fresh and sent["prompt_strength"] == 0.75

    await stack.discord.delete_message(final)
    answer = await (await stack.discord.click(strong, buttons(strong, "reroll")[0])).wait_callback()
    assert answer.ephemeral and "no longer there" in (answer.content or "")
    click = await open_form(stack, strong, buttons(strong, "remix")[0])
    refused = await stack.discord.submit_modal(click, {"prompt": "a red fox at dawn"})
    assert "no longer there" in await refusal_of(stack, refused)
    assert stack.api.count("POST", "create") == 3
