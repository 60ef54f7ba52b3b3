"""The safety checker's rule (bot.api.safety): what a request may send, on, off and on the command line."""

from __future__ import annotations

from typing import Any

import pytest

from bot.api.inputs import ImagineOptions, InputSchema
from bot.api.modelref import ModelRef
from bot.api.safety import Checker, apply_checker, is_safety_input, safe_switch, safety_properties
from bot.jobs.model import JobRequest
from bot.jobs.serialization import request_from_json, request_to_json
from tests.fakes.replicate import FLUX_PRO_OPENAPI_SCHEMA, FLUX_SCHNELL_OPENAPI_SCHEMA, cog_openapi_schema

FLUX = InputSchema.from_openapi(FLUX_SCHNELL_OPENAPI_SCHEMA)
PRO = InputSchema.from_openapi(FLUX_PRO_OPENAPI_SCHEMA)
IMAGEN = InputSchema.from_openapi(
    cog_openapi_schema(
        {
            "prompt": {"type": "string"},
            "safety_filter_level": {"default": "block_only_high"},
        },
        enums={"safety_filter_level": ["block_low_and_above", "block_medium_and_above", "block_only_high"]},
    )
)
GPT_IMAGE = InputSchema.from_openapi(
    cog_openapi_schema(
        {"prompt": {"type": "string"}, "moderation": {"default": "auto"}}, enums={"moderation": ["auto", "low"]}
    )
)
UNSAFE_DEFAULT = InputSchema.from_openapi(
    cog_openapi_schema({"prompt": {"type": "string"}, "enable_safety_checker": {"type": "boolean", "default": False}})
)


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("disable_safety_checker", False),
        ("enable_safety_checker", True),
        ("safety_checker", True),
        ("nsfw_filter", True),
        ("disable_nsfw_filter", False),
        ("allow_nsfw", False),
        ("nsfw", False),
        ("block_nsfw", True),
        ("hide_nsfw", True),
        ("nsfw_detection", True),
        ("uncensored", False),
        ("safety_checker_off", False),
        ("skip_safety_check", False),
    ],
)
def test_the_safe_position_of_a_switch(name: str, safe: bool) -> None:
    assert is_safety_input(name)
    assert safe_switch(name) is safe


@pytest.mark.parametrize("name", ["disable_nsfw", "nsfw_ok", "nsfw_level"])
def test_a_switch_whose_name_could_be_read_either_way_is_never_sent_where_the_checker_is_on(name: str) -> None:
    assert is_safety_input(name)
    assert safe_switch(name) is None
    schema = InputSchema.from_openapi(
        cog_openapi_schema({"prompt": {"type": "string"}, name: {"type": "boolean", "default": True}})
    )
    for asked in (True, False):
        assert apply_checker({"prompt": "a", name: asked}, Checker.ON, schema) == {"prompt": "a"}
    assert apply_checker({"prompt": "a"}, Checker.OFF, schema) == {"prompt": "a"}  # nor guessed where it is off


def test_guards_named_the_other_way_round_are_kept_on() -> None:
    """``block_nsfw`` and ``hide_nsfw`` default to on: the checker never turns them off by itself."""
    for name in ("block_nsfw", "hide_nsfw", "nsfw_detection"):
        schema = InputSchema.from_openapi(
            cog_openapi_schema({"prompt": {"type": "string"}, name: {"type": "boolean", "default": True}})
        )
        assert apply_checker({"prompt": "a"}, Checker.ON, schema) == {"prompt": "a"}
        assert apply_checker({"prompt": "a", name: False}, Checker.ON, schema) == {"prompt": "a"}
    uncensored = InputSchema.from_openapi(
        cog_openapi_schema({"prompt": {"type": "string"}, "uncensored": {"type": "boolean", "default": False}})
    )
    assert apply_checker({"prompt": "a", "uncensored": True}, Checker.ON, uncensored) == {"prompt": "a"}


def test_other_inputs_are_no_safety_inputs() -> None:
    assert not any(is_safety_input(name) for name in ("prompt", "seed", "guidance", "go_fast", "output_format"))
    assert [prop.name for prop in safety_properties(PRO)] == ["safety_tolerance"]  # type: ignore[arg-type]


@pytest.mark.parametrize("schema", [FLUX, None])
def test_on_never_sends_the_checker_off(schema: InputSchema | None) -> None:
    asked: dict[str, Any] = {
        "prompt": "a fox",
        "disable_safety_checker": True,
        "safety_tolerance": 6,
        "safety_filter_level": "block_only_high",
        "enable_safety_checker": False,
    }
    assert apply_checker(asked, Checker.ON, schema) == {"prompt": "a fox"}
    assert apply_checker({"prompt": "a", "disable_safety_checker": False}, Checker.ON, schema) == {
        "prompt": "a",
        "disable_safety_checker": False,
    }


def test_on_says_no_where_the_models_default_is_unsafe() -> None:
    assert apply_checker({"prompt": "a"}, Checker.ON, UNSAFE_DEFAULT) == {"prompt": "a", "enable_safety_checker": True}


def test_off_sends_the_permissive_values() -> None:
    assert apply_checker({"prompt": "a"}, Checker.OFF, FLUX)["disable_safety_checker"] is True
    assert apply_checker({"prompt": "a", "safety_tolerance": 1}, Checker.OFF, PRO)["safety_tolerance"] == 6
    assert apply_checker({"prompt": "a"}, Checker.OFF, IMAGEN)["safety_filter_level"] == "block_only_high"
    assert apply_checker({"prompt": "a"}, Checker.OFF, GPT_IMAGE)["moderation"] == "low"
    assert apply_checker({"prompt": "a"}, Checker.OFF, UNSAFE_DEFAULT)["enable_safety_checker"] is False
    assert apply_checker({"prompt": "a"}, Checker.OFF, None) == {"prompt": "a"}  # nothing known to set


def test_the_owner_keeps_only_what_they_gave() -> None:
    asked = {"prompt": "a", "safety_tolerance": 5, "disable_safety_checker": True}
    kept = apply_checker(asked, Checker.OWNER, PRO, explicit=["safety_tolerance"])
    assert kept == {"prompt": "a", "safety_tolerance": 5}


def test_the_input_is_left_as_it_was() -> None:
    asked = {"prompt": "a", "disable_safety_checker": True}
    apply_checker(asked, Checker.ON, FLUX)
    assert asked == {"prompt": "a", "disable_safety_checker": True}


def _request(checker: Checker, **extra: Any) -> JobRequest:
    inputs = {"prompt": "a fox", "disable_safety_checker": True, "safety_tolerance": 6}
    return JobRequest(ModelRef.parse("o/m"), ImagineOptions("a fox", extra=extra), inputs, checker=checker)


def test_every_request_keeps_to_its_checker() -> None:
    assert _request(Checker.ON).inputs == {"prompt": "a fox"}
    assert _request(Checker.OFF).inputs == {"prompt": "a fox", "disable_safety_checker": True, "safety_tolerance": 6}
    assert _request(Checker.OWNER, safety_tolerance="6").inputs == {"prompt": "a fox", "safety_tolerance": 6}


def test_a_journaled_request_is_made_safe_again() -> None:
    data = request_to_json(_request(Checker.OFF))
    assert request_from_json(data).inputs["disable_safety_checker"] is True
    for checker in (None, "sideways"):
        data["checker"] = checker
        replayed = request_from_json(data)
        assert replayed.checker is Checker.ON
        assert replayed.inputs == {"prompt": "a fox"}
    assert request_from_json({**data, "spoiler": True}).spoiler is True
