"""Prompt flags (``--ar``, ``--seed``, ``--no``) through the fake Discord, the fake API and the command line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, field_of, status_of
from tests.e2e.test_cli import SECRET_REPLICATE, api_env, cli
from tests.fakes.replicate import FakeReplicate, cog_openapi_schema

NEGATIVE_MODEL = "acme/negative-diffusion"


@pytest.fixture
async def api() -> AsyncIterator[FakeReplicate]:
    """The fake API alone, for the command line."""
    async with FakeReplicate(token=SECRET_REPLICATE, seed=3) as fake:
        yield fake


async def test_flags_become_options_and_leave_the_prompt(stack: Stack) -> None:
    handle = await stack.imagine(prompt="a castle at dusk --ar 16:9 --seed 42 --no people, cars")
    final = await stack.final_message(handle)
    assert "Done" in status_of(final)
    # flux-schnell has no negative prompt: left out, with a note.
    assert stack.api.creates[0].json == {"input": {"prompt": "a castle at dusk", "aspect_ratio": "16:9", "seed": 42}}
    assert final.embeds[0]["description"] == "a castle at dusk"
    assert "negative prompt" in (field_of(final, "Note") or "")
    assert field_of(final, "Seed") == "42"


async def test_the_negative_prompt_reaches_a_model_that_takes_one(stack: Stack) -> None:
    stack.api.add_model(
        NEGATIVE_MODEL,
        schema=cog_openapi_schema(
            {"prompt": {"type": "string"}, "negative_prompt": {"type": "string"}, "seed": {"type": "integer"}}
        ),
    )
    allowed = await stack.admin("models allow", model=NEGATIVE_MODEL)
    await allowed.wait_message(lambda m: not m.current.loading)  # the answer is deferred: wait for the change
    handle = await stack.imagine(prompt="a quiet street --no people, cars --seed 3", model=NEGATIVE_MODEL)
    final = await stack.final_message(handle)
    assert "Done" in status_of(final), final.embeds
    assert stack.api.creates[-1].json["input"] == {
        "prompt": "a quiet street",
        "negative_prompt": "people, cars",
        "seed": 3,
    }
    assert field_of(final, "Note") is None


async def test_an_explicit_option_wins_over_a_flag(stack: Stack) -> None:
    final = await stack.final_message(await stack.imagine(prompt="a fox --seed 5 --ar 16:9", seed=9))
    assert stack.api.creates[0].json["input"] == {"prompt": "a fox", "aspect_ratio": "16:9", "seed": 9}
    assert "seed option (9) was used instead of --seed 5" in (field_of(final, "Note") or "")


async def test_a_malformed_flag_is_refused_by_name_and_nothing_is_sent(stack: Stack) -> None:
    for prompt, named in (("a fox --ar banana", "--ar"), ("a fox --seed -1", "--seed"), ("a fox --v 6", "--v")):
        callback = await (await stack.imagine(prompt=prompt)).wait_callback()
        assert callback.ephemeral and named in (callback.content or ""), callback.content
    assert stack.api.count("POST", "create") == 0


async def test_the_command_line_reads_the_same_flags(api: FakeReplicate, tmp_path: Path) -> None:
    result = await cli("imagine", "a castle --ar 7:5 --seed 3", "--out", "out", env=api_env(api), cwd=tmp_path)
    assert result.code == 0, result.err
    assert api.creates[-1].json == {"input": {"prompt": "a castle", "aspect_ratio": "4:3", "seed": 3}}
    assert "note: --ar 7:5 is not a ratio /imagine offers, so the nearest, 4:3, was used." in result.out

    # Explicit options win over the prompt's flags.
    result = await cli(
        "imagine", "a castle --ar 16:9 --seed 3", "--seed", "8", "--aspect-ratio", "1:1", "--out", "out",
        env=api_env(api), cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.err
    assert api.creates[-1].json == {"input": {"prompt": "a castle", "aspect_ratio": "1:1", "seed": 8}}

    creates = api.count("POST", "create")
    result = await cli("imagine", "a castle --seed banana", env=api_env(api), cwd=tmp_path)
    assert result.code == 2
    assert "--seed" in result.err and "banana" in result.err
    assert api.count("POST", "create") == creates
