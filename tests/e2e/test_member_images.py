"""Members' creative loop: start from an image (``/imagine image:``), then U1…Un and V1…Vn on a result."""

from __future__ import annotations

import aiohttp

from bot.api.modelref import ModelRef
from tests.e2e.conftest import Stack, StackFactory, field_of, is_terminal, status_of
from tests.fakes import images
from tests.fakes.discord import CallbackType, InteractionHandle, Routes, StoredMessage, Upload
from tests.fakes.replicate import Scenario, cog_openapi_schema

IMG2IMG = "acme/img2img"
"""A model that starts from an image (``input_image``, with a strength) and makes several images."""
UPSCALER = "acme/upscaler"
"""An upscaler: an image in (required), no prompt."""
TEXT_ONLY = "acme/text-only"
"""Used as an upscaler by mistake: it takes no image."""


CREATIVE_MODELS = {
    IMG2IMG: cog_openapi_schema(
        {
            "prompt": {"type": "string"},
            "input_image": {"type": "string", "format": "uri", "description": "Image to start from"},
            "prompt_strength": {"type": "number", "default": 0.8, "minimum": 0, "maximum": 1},
            "num_outputs": {"type": "integer", "default": 1, "minimum": 1, "maximum": 4},
            "seed": {"type": "integer"},
        }
    ),
    UPSCALER: cog_openapi_schema(
        {
            "image": {"type": "string", "format": "uri"},
            "scale": {"type": "integer", "default": 4, "minimum": 1, "maximum": 10},
        },
        required=("image",),
    ),
    TEXT_ONLY: cog_openapi_schema({"prompt": {"type": "string"}}),
}
"""The fake API's schemas of the three models above (``make_stack(api_models=...)``)."""


async def creative_stack(make_stack: StackFactory, upscaler: str | None = UPSCALER) -> Stack:
    stack: Stack = await make_stack(
        models=(IMG2IMG,),
        api_models=CREATIVE_MODELS,
        upscale_model=ModelRef.parse(upscaler) if upscaler else None,
    )
    return stack


def png(size: tuple[int, int] = (64, 64)) -> Upload:
    return Upload("start.png", images.image_bytes("png", size), "image/png")


def buttons(message: StoredMessage, action: str) -> list[str]:
    return [c for c in message.current.custom_ids if c.startswith(f"imagine:{action}:")]


async def reply_to(stack: Stack, original: StoredMessage, *, final: bool = True) -> StoredMessage:
    """The bot's message replying to ``original`` (once it shows a final state)."""

    def found() -> StoredMessage | None:
        for message in stack.discord.messages_in(original.channel_id):
            reference = message.message_reference or {}
            if str(reference.get("message_id")) == str(original.id) and (not final or is_terminal(message)):
                return message
        return None

    return await stack.discord.wait_for(found, 10, what=f"a reply to {original.id}")


async def test_an_attached_image_goes_to_the_models_own_image_input(make_stack: StackFactory) -> None:
    stack = await creative_stack(make_stack)
    final = await stack.final_message(await stack.imagine(model=IMG2IMG, image=png()))
    assert "Done" in status_of(final), final.embeds
    sent = stack.api.last_prediction.input
    assert set(sent) == {"prompt", "input_image"}  # the strength keeps the model's default
    url = sent["input_image"]
    assert url.startswith(stack.discord.http_base + "/attachments/")
    assert not stack.discord.requests_for(Routes.CDN)  # the bot itself never fetched it
    # The API gets a URL it can fetch as it is: no token of the bot's is needed (or sent).
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200 and await response.read() == png().data


async def test_images_that_cannot_be_used_are_refused_before_anything_is_sent(make_stack: StackFactory) -> None:
    stack = await creative_stack(make_stack)
    cases = [
        ({"image": png()}, "takes no image"),  # flux-schnell, the default model, has no image input
        ({"model": IMG2IMG, "image": Upload("notes.txt", b"hello", "text/plain")}, "not an image"),
        ({"model": IMG2IMG, "image": Upload("drawing.svg", b"<svg/>", "image/svg+xml")}, "cannot read"),
        ({"model": IMG2IMG, "image": Upload("huge.png", b"\x89PNG" + bytes(11 * 1024 * 1024), "image/png")}, "MiB"),
    ]
    for options, reason in cases:
        answer = await (await stack.imagine(**options)).wait_callback()
        assert answer.ephemeral and reason in (answer.content or ""), (options, answer.content)
    assert stack.api.count("POST", "create") == 0


async def test_vary_replies_with_a_new_job_from_that_image(make_stack: StackFactory) -> None:
    stack = await creative_stack(make_stack)
    final = await stack.final_message(await stack.imagine(model=IMG2IMG, count=2, seed=7))
    assert buttons(final, "vary") == [f"imagine:vary:{final.embeds[0]['footer']['text'][4:]}:{n}" for n in (1, 2)]
    assert len(buttons(final, "upscale")) == 2

    stack.api.set_default_scenario(Scenario.manual())
    click = await stack.discord.click(final, buttons(final, "vary")[1], user=stack.guild.member("member"))
    assert (await click.wait_callback()).type == CallbackType.DEFERRED_UPDATE_MESSAGE
    placeholder = await reply_to(stack, final, final=False)
    assert any(c.startswith("imagine:cancel:") for c in placeholder.current.custom_ids)
    assert status_of(placeholder.history[0]) == "🚀 Starting…"  # a slot is free: it starts as it is submitted
    prediction = await stack.api.wait_for_prediction(2)
    stack.api.finish(prediction.id)
    varied = await reply_to(stack, final)
    assert "Done" in status_of(varied) and len(varied.attachments) == 1
    first, second = (p.input for p in stack.api.predictions.values())
    assert second["input_image"] == final.attachments[1].url
    assert second["prompt"] == first["prompt"] and second["num_outputs"] == 1 and second["seed"] != first["seed"]
    assert buttons(varied, "vary") and buttons(varied, "reroll")  # a variation can be varied again


async def test_upscale_works_after_a_restart_and_needs_no_place_on_the_list(make_stack: StackFactory) -> None:
    stack = await creative_stack(make_stack)
    final = await stack.final_message(await stack.imagine(count=2))
    assert not buttons(final, "vary")  # flux-schnell takes no image
    await stack.restart()

    click = await stack.discord.click(final, buttons(final, "upscale")[0], user=stack.guild.member("member"))
    await click.wait_callback()
    upscaled = await reply_to(stack, final)
    assert "Done" in status_of(upscaled), upscaled.embeds
    assert UPSCALER in (field_of(upscaled, "Model") or "")
    prediction = stack.api.last_prediction
    assert prediction.model == UPSCALER
    assert prediction.input == {"image": final.attachments[0].url}  # no prompt: the upscaler takes none
    assert buttons(upscaled, "delete") and not buttons(upscaled, "upscale") and not buttons(upscaled, "reroll")


async def test_a_job_replying_to_its_original_survives_a_restart(make_stack: StackFactory) -> None:
    stack = await creative_stack(make_stack)
    final = await stack.final_message(await stack.imagine(model=IMG2IMG))
    stack.api.set_default_scenario(Scenario.manual())
    await (await stack.discord.click(final, buttons(final, "vary")[0])).wait_callback()
    prediction = await stack.api.wait_for_prediction(2)
    await stack.restart()
    stack.api.finish(prediction.id)
    varied = await reply_to(stack, final)
    assert "Done" in status_of(varied) and varied.attachments
    assert stack.api.count("POST", "create") == 2


async def refusal_of(stack: Stack, click: InteractionHandle) -> str:
    """The ephemeral answer to a click that was acknowledged first."""
    message = await stack.discord.wait_for(lambda: next(iter(click.followups), None), 5, what="a refusal")
    assert message.ephemeral
    return message.content


async def test_clicks_meet_the_same_limits_and_answer_ephemerally(make_stack: StackFactory) -> None:
    stack = await creative_stack(make_stack)
    final = await stack.final_message(await stack.imagine(model=IMG2IMG))
    await (await stack.admin("limits", daily=1)).wait_callback()
    for action in ("vary", "upscale"):
        click = await stack.discord.click(final, buttons(final, action)[0])
        assert "your only image for today" in await refusal_of(stack, click)
    assert stack.api.count("POST", "create") == 1


async def test_an_upscale_model_that_takes_no_image_is_refused_clearly(make_stack: StackFactory) -> None:
    stack = await creative_stack(make_stack, upscaler=TEXT_ONLY)
    final = await stack.final_message(await stack.imagine())
    click = await stack.discord.click(final, buttons(final, "upscale")[0])
    assert "takes no image" in await refusal_of(stack, click)
    assert stack.api.count("POST", "create") == 1


async def test_no_upscale_buttons_without_an_upscale_model(make_stack: StackFactory) -> None:
    stack = await creative_stack(make_stack, upscaler=None)
    final = await stack.final_message(await stack.imagine(model=IMG2IMG))
    assert not buttons(final, "upscale") and buttons(final, "vary")
