"""A member's preferences in ``/imagine``: named options and the suffix compose the prompt, the preferred model,
aspect ratio and count apply where the member gives none; an explicit option beats them, the server's rules
always apply."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.storage import PreferenceChanges
from tests.e2e.conftest import LORA_REF, Stack, field_of, status_of
from tests.e2e.test_moderation import answer
from tests.e2e.test_permutation_sets import private_answer, wait_jobs
from tests.fakes.replicate import FLUX_SCHNELL, FLUX_SCHNELL_LORA


async def prefer(
    stack: Stack, user: str = "member", *, options: Mapping[str, str] | None = None, **preferences: Any
) -> None:
    """Give ``user`` these preferences (``options``: their named options), as /imagine-settings stores them."""
    assert stack.bot is not None
    repository = stack.bot.core.repository
    member_id = stack.guild.member(user).id
    await repository.set_preferences(member_id, PreferenceChanges(**preferences))
    for name, value in (options or {}).items():
        assert await repository.set_named_option(member_id, name, value)


async def test_named_options_and_the_suffix_compose_the_prompt(stack: Stack) -> None:
    await prefer(stack, suffix="at dusk --ar 3:2", options={"grand": "wide angle --ar 16:9"})
    final = await stack.final_message(await stack.imagine(prompt="a castle --grand"))
    assert "Done" in status_of(final)
    sent = stack.api.last_prediction.input
    assert (sent["prompt"], sent["aspect_ratio"]) == ("a castle wide angle at dusk", "16:9")  # the prompt's flag wins

    final = await stack.final_message(await stack.imagine(prompt="a tower", user="moderator"))
    assert stack.api.last_prediction.input["prompt"] == "a tower"  # another member's preferences are their own


async def test_a_named_option_may_make_a_set(stack: Stack) -> None:
    await prefer(stack, options={"both": "{by day, by night}"})
    assert "makes 2 jobs" in await private_answer(await stack.imagine(prompt="a castle --both"))
    await wait_jobs(stack, 2)
    assert sorted(p.input["prompt"] for p in stack.api.predictions.values()) == [
        "a castle by day",
        "a castle by night",
    ]


async def test_the_preferred_aspect_ratio_and_count_apply_where_none_is_given(stack: Stack) -> None:
    await prefer(stack, aspect_ratio="9:16", count=2)
    final = await stack.final_message(await stack.imagine())
    assert len(final.attachments) == 2
    assert stack.api.last_prediction.input["aspect_ratio"] == "9:16"
    await stack.final_message(await stack.imagine(aspect_ratio="4:3", count=1))
    sent = stack.api.last_prediction.input
    assert (sent["aspect_ratio"], sent["num_outputs"]) == ("4:3", 1)
    await stack.final_message(await stack.imagine(prompt="a fox --ar 1:1"))
    sent = stack.api.last_prediction.input
    assert (sent["aspect_ratio"], sent["num_outputs"]) == ("1:1", 2)


async def test_the_preferred_model_where_this_server_allows_it_else_the_servers_with_a_note(stack: Stack) -> None:
    await prefer(stack, model=LORA_REF)
    await stack.final_message(await stack.imagine())
    assert stack.api.last_prediction.model == FLUX_SCHNELL_LORA  # the preferred (versioned) model ran
    await stack.final_message(await stack.imagine(model=FLUX_SCHNELL))
    assert stack.api.last_prediction.model == FLUX_SCHNELL  # a model named beats the preference

    await answer(stack, "models allow", model=FLUX_SCHNELL)  # this server's own list: the LoRA is not on it
    final = await stack.final_message(await stack.imagine())
    assert stack.api.last_prediction.model == FLUX_SCHNELL
    assert f"Your preferred model `{LORA_REF}` is not available to you here" in (field_of(final, "Note") or "")


async def test_the_blocked_words_read_the_whole_composed_prompt(stack: Stack) -> None:
    await answer(stack, "words add", word="gore")
    await prefer(stack, suffix="with gore", options={"dark": "gore everywhere"})
    assert "blocked" in await private_answer(await stack.imagine(prompt="a castle"))  # in the suffix
    await prefer(stack, suffix="")
    assert "blocked" in await private_answer(await stack.imagine(prompt="a castle --dark"))  # in a named option
    assert stack.api.count("POST", "create") == 0
    await stack.final_message(await stack.imagine(prompt="a castle"))
