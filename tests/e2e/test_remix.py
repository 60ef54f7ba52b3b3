"""Remix: the form with a result's prompt (flags included), and a reply job with the edited prompt under every
rule of ``/imagine``; the form still answered after a restart; V and Vary open it first with Remix on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.api.modelref import ModelRef
from bot.storage import DatabaseUnavailable, PreferenceChanges, Preferences
from tests.e2e.conftest import Stack, StackFactory, field_of, job_id_of, status_of
from tests.e2e.test_member_images import CREATIVE_MODELS, UPSCALER, buttons, refusal_of, reply_to
from tests.fakes.discord import CallbackType, InteractionHandle, StoredMessage
from tests.fakes.discord.components import modal_text_inputs
from tests.fakes.replicate import FLUX_DEV, FLUX_SCHNELL


def form_of(click: InteractionHandle) -> tuple[str, str]:
    """The title of the form a click opened, and the text it is filled in with."""
    modal = click.modal
    assert modal is not None, click.callbacks
    [(_, text_input)] = list(modal_text_inputs(modal))
    return str(modal["title"]), str(text_input.get("value") or "")


async def open_form(stack: Stack, message: StoredMessage, custom_id: str, user: str = "member") -> InteractionHandle:
    """Press ``custom_id`` on ``message``; returns the click once its form is open."""
    click = await stack.discord.click(message, custom_id, user=stack.guild.member(user))
    assert (await click.wait_callback()).type == CallbackType.MODAL
    return click


async def remix_on(stack: Stack, user: str = "member") -> None:
    """The member's Remix preference on, as ``/imagine-settings set remix:True`` stores it."""
    assert stack.bot is not None
    await stack.bot.core.repository.set_preferences(stack.guild.member(user).id, PreferenceChanges(remix=True))


async def remix_stack(make_stack: StackFactory, **settings: Any) -> Stack:
    """The bot with flux-dev (an image input, a strength) on the list and an upscaler set."""
    stack: Stack = await make_stack(
        models=(FLUX_DEV,), api_models=CREATIVE_MODELS, upscale_model=ModelRef.parse(UPSCALER), **settings
    )
    return stack


async def test_remix_opens_the_prompt_with_its_flags_and_starts_a_reply_with_the_edit(stack: Stack) -> None:
    handle = await stack.imagine(prompt="a red fox --ar 16:9 --no people", count=2, seed=7)
    placeholder = await handle.wait_message()
    assert not buttons(placeholder, "remix")  # not while it runs
    final = await stack.final_message(handle)
    [remix] = buttons(final, "remix")
    assert remix == f"imagine:remix:{job_id_of(final)}"

    click = await open_form(stack, final, remix)
    assert form_of(click) == ("Remix", "a red fox --ar 16:9 --no people")  # the seed is new: left out
    submit = await stack.discord.submit_modal(click, {"prompt": "a blue fox in snow --ar 9:16\n"})
    assert (await submit.wait_callback()).type == CallbackType.DEFERRED_UPDATE_MESSAGE
    remixed = await reply_to(stack, final)
    assert "Done" in status_of(remixed) and len(remixed.attachments) == 2
    first, second = (prediction.input for prediction in stack.api.predictions.values())
    assert second["prompt"] == "a blue fox in snow" and second["aspect_ratio"] == "9:16"
    assert second["num_outputs"] == 2 and second["seed"] != first["seed"] == 7
    assert stack.api.last_prediction.model == FLUX_SCHNELL
    assert "negative prompt" not in (field_of(remixed, "Note") or "")  # --no deleted in the edit: gone
    assert buttons(remixed, "remix") and buttons(remixed, "reroll")


async def test_a_seed_typed_in_the_form_is_used(stack: Stack) -> None:
    final = await stack.final_message(await stack.imagine(prompt="a red fox"))
    click = await open_form(stack, final, buttons(final, "remix")[0])
    await stack.discord.submit_modal(click, {"prompt": "a red fox --seed 42"})
    remixed = await reply_to(stack, final)
    assert stack.api.last_prediction.input["seed"] == 42 and not field_of(remixed, "Note")


async def test_the_edit_meets_every_check_of_imagine(stack: Stack) -> None:
    await (await stack.admin("words add", word="wolf")).wait_callback()
    final = await stack.final_message(await stack.imagine(prompt="a red fox"))
    await (await stack.admin("limits", cooldown=3600)).wait_callback()
    remix = buttons(final, "remix")[0]

    async def submitted(text: str, user: str = "member") -> str:
        """The private answer to a Remix form submitted with ``text``."""
        form = await open_form(stack, final, remix, user)
        return await refusal_of(stack, await stack.discord.submit_modal(form, {"prompt": text}))

    assert "blocked" in await submitted("a wolf")
    assert "again in" in await submitted("a fox")  # the member's cooldown since their /imagine
    assert "--ar needs width:height" in await submitted("a fox --ar wide", user="moderator")
    assert stack.api.count("POST", "create") == 1


async def test_a_form_opened_before_a_restart_is_still_answered(stack: Stack) -> None:
    final = await stack.final_message(await stack.imagine(prompt="a red fox --ar 4:3"))
    click = await open_form(stack, final, buttons(final, "remix")[0])
    await stack.restart()
    await stack.discord.submit_modal(click, {"prompt": "a red fox at night --ar 4:3"})
    remixed = await reply_to(stack, final)
    assert "Done" in status_of(remixed)
    assert stack.api.last_prediction.input["prompt"] == "a red fox at night"
    assert stack.api.last_prediction.input["aspect_ratio"] == "4:3"


async def test_v_and_vary_open_the_form_first_with_remix_on(make_stack: StackFactory) -> None:
    stack = await remix_stack(make_stack)
    final = await stack.final_message(await stack.imagine(model=FLUX_DEV, prompt="a red fox --ar 3:2", count=2))
    await remix_on(stack)
    click = await open_form(stack, final, buttons(final, "vary")[1])
    assert form_of(click) == ("Remix: variation of image 2", "a red fox --ar 3:2")
    await stack.discord.submit_modal(click, {"prompt": "a red fox, watercolour --ar 3:2"})
    varied = await reply_to(stack, final)
    sent = stack.api.last_prediction.input
    assert sent["image"] == final.attachments[1].url and sent["prompt"] == "a red fox, watercolour"
    assert sent["num_outputs"] == 1 and "prompt_strength" not in sent

    click = await open_form(stack, varied, buttons(varied, "vary-subtle")[0])
    assert form_of(click) == ("Remix: Vary (Subtle)", "a red fox, watercolour --ar 3:2")
    await stack.discord.submit_modal(click, {"prompt": "a red fox, oil painting"})
    await reply_to(stack, varied)
    sent = stack.api.last_prediction.input
    assert sent["image"] == varied.attachments[0].url and sent["prompt_strength"] == 0.35
    assert sent["prompt"] == "a red fox, oil painting" and "aspect_ratio" not in sent


async def test_remix_of_an_upscale_runs_the_generation_it_came_from(make_stack: StackFactory) -> None:
    stack = await remix_stack(make_stack)
    final = await stack.final_message(await stack.imagine(model=FLUX_DEV, prompt="a red fox --ar 16:9", count=2))
    await (await stack.discord.click(final, buttons(final, "upscale")[0])).wait_callback()
    upscaled = await reply_to(stack, final)
    assert buttons(upscaled, "remix") and not buttons(upscaled, "reroll")
    await stack.restart()  # what it came from is journaled

    click = await open_form(stack, upscaled, buttons(upscaled, "remix")[0])
    assert form_of(click) == ("Remix", "a red fox --ar 16:9")
    await stack.discord.submit_modal(click, {"prompt": "a grey fox --ar 16:9"})
    remixed = await reply_to(stack, upscaled)
    assert "Done" in status_of(remixed) and len(remixed.attachments) == 2
    prediction = stack.api.last_prediction
    assert prediction.model == FLUX_DEV and "image" not in prediction.input
    assert prediction.input["num_outputs"] == 2 and prediction.input["aspect_ratio"] == "16:9"


async def test_a_press_whose_remix_setting_cannot_be_read_starts_nothing(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await remix_stack(make_stack)
    final = await stack.final_message(await stack.imagine(model=FLUX_DEV))
    assert stack.bot is not None

    async def unreadable(member_id: int) -> Preferences:
        raise DatabaseUnavailable("the database is not answering")

    monkeypatch.setattr(stack.bot.core.repository, "preferences", unreadable)
    click = await stack.discord.click(final, buttons(final, "vary-subtle")[0])
    answer = await click.wait_callback()
    assert answer.ephemeral and "Remix setting couldn't be read" in (answer.content or "")
    assert stack.api.count("POST", "create") == 1


async def test_a_press_whose_settings_the_journal_is_slow_to_give_is_refused_in_time(
    make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await remix_stack(make_stack)
    final = await stack.final_message(await stack.imagine(model=FLUX_DEV))
    await stack.restart()  # the job is no longer in memory: its request comes from the journal
    assert stack.bot is not None
    stuck = asyncio.Event()

    async def slow(job_id: str) -> None:
        await stuck.wait()  # a database that does not answer

    monkeypatch.setattr(stack.bot.core.journal, "request_of", slow)
    for action in ("remix", "vary-subtle", "vary"):
        answer = await (await stack.discord.click(final, buttons(final, action)[0])).wait_callback()
        assert answer.ephemeral and "database is slow" in (answer.content or "")
    assert stack.api.count("POST", "create") == 1
