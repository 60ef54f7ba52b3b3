"""``/describe image:`` through the fake Discord and the fake API: a captioner and a vision-language model,
the suggestions' buttons (after a restart too), failures, time and size bounds, the cooldown and the budgets."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.api.descriptions import DESCRIBE_INSTRUCTION
from bot.api.inputs import PROMPT_MAX
from bot.api.modelref import ModelRef
from bot.moderation.costs import parse_prices
from tests.e2e.conftest import LORA_REF, TEST_TUNING, Stack, StackFactory, status_of
from tests.e2e.test_moderation import answer
from tests.e2e.test_roles import add_vip
from tests.fakes import images
from tests.fakes.discord import CallbackType, InteractionHandle, StoredMessage, Upload
from tests.fakes.replicate import (
    CAPTION,
    CAPTIONER,
    CAPTIONER_VERSION,
    FLUX_SCHNELL,
    VISION_LANGUAGE,
    VISION_LANGUAGE_VERSION,
    Scenario,
)

CAPTIONER_REF = f"{CAPTIONER}:{CAPTIONER_VERSION}"
VISION_REF = f"{VISION_LANGUAGE}:{VISION_LANGUAGE_VERSION}"
FOUR = [
    "A red fox curled up asleep in fresh snow at dawn, soft pink light, wildlife photograph",
    "Watercolour painting of a sleeping fox in a snowy forest, muted pastel colours",
    "Close-up of a fox's face dusted with snowflakes, shallow depth of field, golden hour",
    "Minimalist illustration of an orange fox on white snow, flat colours, Scandinavian poster style",
]
"""The vision-language model's four prompts, as the bot reads them out of its chatty answer."""
PER_SECOND = parse_prices(f"{CAPTIONER_REF}=1/s")
"""A dollar a second: a run's ``predict_time`` shows in micro-dollars."""


async def describe_stack(make_stack: StackFactory, model: str = CAPTIONER_REF, **settings: Any) -> Stack:
    stack: Stack = await make_stack(describe_model=ModelRef.parse(model), **settings)
    return stack


def photo() -> Upload:
    return Upload("photo.png", images.image_bytes("png", (64, 64)), "image/png")


async def describe(stack: Stack, user: str = "member", image: Upload | None = None) -> InteractionHandle:
    """``/describe`` as ``user`` in #general."""
    guild = stack.guild
    options = {"image": image or photo()}
    return await stack.discord.slash(
        "describe", options, user=guild.member(user), guild=guild, channel=guild.channel("general")
    )


async def suggestions_of(handle: InteractionHandle) -> tuple[StoredMessage, list[str]]:
    """The public answer once it shows its suggestions, and the suggestions as numbered there."""
    message = await handle.wait_message(lambda m: not m.current.loading and bool(m.embeds), timeout=10)
    assert not message.ephemeral
    lines = str(message.embeds[0]["description"]).splitlines()
    assert all(line.startswith(f"**{n}.** ") for n, line in enumerate(lines, 1)), lines
    assert message.current.custom_ids == [f"describe:{n}" for n in range(1, len(lines) + 1)]
    return message, [line.split(" ", 1)[1] for line in lines]


async def private_answer(stack: Stack, handle: InteractionHandle) -> str:
    """The member's private answer: the callback itself or, once the answer was deferred, its followup (the
    public "thinking…" taken away)."""
    callback = await handle.wait_callback()
    if callback.type == CallbackType.CHANNEL_MESSAGE:
        assert callback.ephemeral, callback.data
        return callback.content or ""
    message = await stack.discord.wait_for(lambda: next(iter(handle.followups), None), 10, what="a private answer")
    assert message.ephemeral
    assert handle.original_message is None or handle.original_message.deleted
    return message.content


async def test_without_a_describe_model_it_says_so_privately(stack: Stack) -> None:
    text = await private_answer(stack, await describe(stack))
    assert "isn't enabled" in text and "IMAGINE_DESCRIBE_MODEL" in text
    assert stack.api.count("POST", "create") == 0


async def test_a_captioner_gives_one_suggestion(make_stack: StackFactory) -> None:
    stack = await describe_stack(make_stack)
    handle = await describe(stack)
    assert (await handle.wait_callback()).type == CallbackType.DEFERRED_CHANNEL_MESSAGE  # "thinking…" at once
    _, suggestions = await suggestions_of(handle)
    assert suggestions == [CAPTION]
    prediction = stack.api.last_prediction
    assert set(prediction.input) == {"image"}  # its only input: nothing else would pass its schema
    assert prediction.input["image"].startswith(stack.discord.http_base + "/attachments/")
    assert prediction.cancel_after is not None


async def test_the_create_waits_no_longer_than_a_jobs(make_stack: StackFactory) -> None:
    # A long Prefer: wait held one of the HTTP session's connections per describe: the jobs' short one is used.
    stack = await describe_stack(make_stack, VISION_REF, tuning=replace(TEST_TUNING, prefer_wait=1))
    await suggestions_of(await describe(stack))
    assert stack.api.last_prediction.prefer == "wait=1"


async def test_describes_at_once_are_capped_and_the_next_refused_at_once(make_stack: StackFactory) -> None:
    stack = await describe_stack(make_stack, max_running=1)
    stack.api.set_default_scenario(Scenario.manual())
    first = await describe(stack)
    prediction = await stack.api.wait_for_prediction()
    stack.guild.add_member("other")
    assert "being described right now" in await private_answer(stack, await describe(stack, "other"))
    assert stack.api.count("POST", "create") == 1
    stack.api.finish(prediction.id)
    await suggestions_of(first)
    stack.api.set_default_scenario(Scenario())
    await suggestions_of(await describe(stack, "other"))  # the slot is free again


async def test_a_vision_language_model_is_asked_and_its_pieces_joined(make_stack: StackFactory) -> None:
    stack = await describe_stack(make_stack, VISION_REF)
    _, suggestions = await suggestions_of(await describe(stack))
    assert suggestions == FOUR
    prediction = stack.api.last_prediction
    assert prediction.input["prompt"] == DESCRIBE_INSTRUCTION
    assert isinstance(prediction.output, list) and len(prediction.output) > 20  # streamed as pieces
    # The create came back with the first pieces only (the model streams): the bot polled on to the end.
    assert stack.api.count("GET", "get") >= 1


async def test_pressing_a_number_imagines_that_suggestion(make_stack: StackFactory) -> None:
    stack = await describe_stack(make_stack, VISION_REF)
    message, suggestions = await suggestions_of(await describe(stack))
    other = stack.guild.add_member("other")  # anyone may take a suggestion, under their own limits
    pressed = await stack.discord.click(message, "describe:2", user=other)
    final = await stack.final_message(pressed)
    assert "Done" in status_of(final) and final.id != message.id
    job = stack.api.last_prediction
    assert job.model == FLUX_SCHNELL and job.input["prompt"] == suggestions[1]

    # Every check of /imagine applies: a word blocked since, a model the presser may not use.
    await answer(stack, "words add", word="snowflakes")
    refused = await stack.discord.click(message, "describe:3", user=other)
    assert "blocked" in await private_answer(stack, refused)
    vip = await add_vip(stack)
    await answer(stack, "models allow", model=LORA_REF, role=vip)
    refused = await stack.discord.click(message, "describe:1", user=other)
    assert "only for members with some roles" in await private_answer(stack, refused)
    assert stack.api.count("POST", "create") == 2


async def test_the_buttons_work_after_a_restart(make_stack: StackFactory) -> None:
    stack = await describe_stack(make_stack, VISION_REF)
    message, suggestions = await suggestions_of(await describe(stack))
    await stack.restart()
    pressed = await stack.discord.click(message, "describe:4", user=stack.guild.member("member"))
    assert "Done" in status_of(await stack.final_message(pressed))
    assert stack.api.last_prediction.input["prompt"] == suggestions[3]


async def test_a_failed_prediction_says_why_in_the_apis_words(make_stack: StackFactory) -> None:
    stack = await describe_stack(make_stack, prices=parse_prices(f"{CAPTIONER_REF}=0.02/image"))
    stack.api.set_default_scenario(final_status="failed", error="CUDA out of memory.")
    text = await private_answer(stack, await describe(stack))
    assert "The describe model failed: CUDA out of memory." in text
    core = stack.bot.core  # type: ignore[union-attr]
    spend = await core.repository.spend(stack.guild.id, stack.guild.member("member").id, now=core.clock.now())
    assert spend.member_today == 0  # nothing came: the estimate is given back

    stack.api.set_default_scenario(Scenario())
    await suggestions_of(await describe(stack))
    spend = await core.repository.spend(stack.guild.id, stack.guild.member("member").id, now=core.clock.now())
    assert spend.member_today == 20_000  # one run at its price


async def test_a_model_that_returns_no_text_is_refused_clearly(make_stack: StackFactory) -> None:
    stack = await describe_stack(make_stack)
    stack.api.set_default_scenario(output_override={"caption": "a fox"})
    assert "returned a JSON object instead of text" in await private_answer(stack, await describe(stack))


async def test_a_model_cannot_make_the_bot_post_a_link_and_markdown_shows_as_typed(make_stack: StackFactory) -> None:
    stack = await describe_stack(make_stack)
    said = "a fox holding a sign that says [Free Nitro](https://evil.example/claim) at https://evil.example/b"
    stack.api.set_default_scenario(output_override=said + ", **bold** colours, <@1>")
    message, _ = await suggestions_of(await describe(stack))
    shown = str(message.embeds[0]["description"])
    assert "http" not in shown and "](" not in shown and "\\*\\*bold\\*\\*" in shown and "\\<\\@1\\>" in shown
    stack.api.set_default_scenario(Scenario())
    pressed = await stack.discord.click(message, "describe:1", user=stack.guild.member("member"))
    assert "Done" in status_of(await stack.final_message(pressed))
    prompt = "a fox holding a sign that says Free Nitro at **bold** colours, <@1>"
    assert stack.api.last_prediction.input["prompt"] == prompt  # read back exactly as suggested


async def test_a_huge_text_output_is_bounded(make_stack: StackFactory) -> None:
    stack = await describe_stack(make_stack)
    stack.api.set_default_scenario(output_override="a fox in the snow " * 50_000)  # 900 KB on one line
    _, suggestions = await suggestions_of(await describe(stack))
    assert len(suggestions) == 1 and 0 < len(suggestions[0]) <= PROMPT_MAX


async def test_a_model_that_takes_too_long_is_canceled(make_stack: StackFactory) -> None:
    stack = await describe_stack(make_stack, job_timeout=1.0)
    stack.api.set_default_scenario(Scenario.manual())
    text = await private_answer(stack, await describe(stack))
    assert "took longer than 1 second" in text and "stopped" in text
    assert stack.api.last_prediction.status == "canceled" and stack.api.count("POST", "cancel") == 1


async def used(stack: Stack) -> tuple[int, int]:
    """The member's images and spend (micro-dollars) today."""
    core = stack.bot.core  # type: ignore[union-attr]
    member, now = stack.guild.member("member").id, core.clock.now()
    usage = await core.repository.usage(stack.guild.id, member, now=now)
    return usage.images_today, (await core.repository.spend(stack.guild.id, member, now=now)).member_today


def billed(stack: Stack) -> int:
    """What the API bills for the last prediction at :data:`PER_SECOND`: its ``predict_time``."""
    seconds = (stack.api.last_prediction.metrics or {})["predict_time"]
    return PER_SECOND.cost(ModelRef.parse(CAPTIONER_REF), images=1, seconds=seconds)


async def test_a_describe_counts_one_daily_image_and_leaves_the_cooldown_alone(make_stack: StackFactory) -> None:
    stack = await describe_stack(make_stack)
    await answer(stack, "limits", cooldown=3600, daily=2)
    message, _ = await suggestions_of(await describe(stack))
    pressed = await stack.discord.click(message, "describe:1", user=stack.guild.member("member"))
    assert "Done" in status_of(await stack.final_message(pressed))  # no cooldown started by the describe
    assert (await used(stack))[0] == 2
    text = await private_answer(stack, await describe(stack))
    assert "used all 2 of your images" in text  # the daily images bound it; the /imagine's cooldown does not
    assert stack.api.count("POST", "create") == 2


async def test_the_real_cost_is_booked_even_above_the_estimate(make_stack: StackFactory) -> None:
    stack = await describe_stack(make_stack, prices=PER_SECOND)
    core = stack.bot.core  # type: ignore[union-attr]
    await core.repository.record_run_time(CAPTIONER_REF, 0.000001, now=core.clock.now())  # an estimate of 1 µ$
    await suggestions_of(await describe(stack))
    assert await used(stack) == (1, billed(stack)) and billed(stack) > 1


async def test_failed_runs_are_billed_their_time_and_runs_that_never_started_nothing(make_stack: StackFactory) -> None:
    stack = await describe_stack(make_stack, prices=PER_SECOND, job_timeout=1.0)
    stack.api.set_default_scenario(final_status="failed", error="CUDA out of memory.")
    await private_answer(stack, await describe(stack))
    expected = (1, billed(stack))  # it ran: the API bills its seconds, and the daily image is kept
    assert await used(stack) == expected
    stack.api.set_default_scenario(Scenario(duration=None))  # runs past the bot's limit: canceled
    assert "took longer" in await private_answer(stack, await describe(stack))
    expected = (2, expected[1] + billed(stack))
    assert await used(stack) == expected

    # Never started (the API aborted it, or refused the create): everything given back.
    stack.api.set_default_scenario(Scenario(final_status="aborted"))
    assert "before it started" in await private_answer(stack, await describe(stack))
    stack.api.fail_next("create", 422, detail="Invalid input.")
    assert "could not be started" in await private_answer(stack, await describe(stack))
    assert await used(stack) == expected

    # A create whose answer was lost may have run at any cost: its reservation stands.
    stack.api.set_default_scenario(Scenario())
    stack.api.reset_next("create", processed=True)
    assert "could not be started" in await private_answer(stack, await describe(stack))
    core = stack.bot.core  # type: ignore[union-attr]
    estimate = await core.pricing.estimate(ModelRef.parse(CAPTIONER_REF), 1)
    assert await used(stack) == (3, expected[1] + estimate)


async def test_one_describe_at_a_time_and_only_images(make_stack: StackFactory) -> None:
    stack = await describe_stack(make_stack)
    stack.api.set_default_scenario(Scenario.manual())
    first = await describe(stack)
    prediction = await stack.api.wait_for_prediction()
    assert "still running" in await private_answer(stack, await describe(stack))
    stack.api.finish(prediction.id)
    await suggestions_of(first)
    notes = Upload("notes.txt", b"hello", "text/plain")
    assert "not an image" in await private_answer(stack, await describe(stack, image=notes))
    assert stack.api.count("POST", "create") == 1


async def test_the_channel_rules_apply(make_stack: StackFactory) -> None:
    stack = await describe_stack(make_stack)
    art = stack.guild.add_channel("art")
    await stack.discord.dispatch_guild_create(stack.guild)
    await answer(stack, "channels allow", channel=art)
    text = await private_answer(stack, await describe(stack))
    assert text.startswith("❌ /describe can't be used in this channel") and f"<#{art.id}>" in text
    assert stack.api.count("POST", "create") == 0
