"""Vary's strength: an option from 0 (keep the image) to 1 (ignore it), sent as the model's strength input."""

from __future__ import annotations

from typing import Any

import pytest

from bot.api.inputs import ImagineOptions, InputSchema, plan_inputs
from bot.base.errors import InputRejected
from tests.unit.test_inputs import CDN, URI, minimal_document, schema_from


def img2img(strength_name: str, **bounds: Any) -> InputSchema:
    """A model with a prompt, an image and a strength input called ``strength_name``."""
    strength = {"type": "number", "default": 0.8, **bounds}
    return schema_from(minimal_document({"prompt": {"type": "string"}, "image": URI, strength_name: strength}))


def varied(strength: float) -> ImagineOptions:
    return ImagineOptions("a fox", image=CDN, strength=strength)


@pytest.mark.parametrize("name", ["prompt_strength", "strength"])
def test_the_strength_goes_to_the_models_strength_input(name: str) -> None:
    planned = plan_inputs(varied(0.35), img2img(name, minimum=0, maximum=1))
    assert planned.inputs == {"prompt": "a fox", "image": CDN, name: 0.35} and not planned.notes


@pytest.mark.parametrize("name", ["image_strength", "image_prompt_strength"])
def test_an_input_that_counts_how_much_the_image_keeps_gets_the_complement(name: str) -> None:
    """``image_strength`` 1 is the image itself: a subtle variation keeps much of it."""
    assert plan_inputs(varied(0.35), img2img(name)).inputs[name] == 0.65
    assert plan_inputs(varied(0.75), img2img(name)).inputs[name] == 0.25


def test_the_strength_is_checked_against_the_models_bounds() -> None:
    with pytest.raises(InputRejected, match=r"prompt_strength up to 0\.5, not 0\.75"):
        plan_inputs(varied(0.75), img2img("prompt_strength", minimum=0, maximum=0.5))
    with pytest.raises(InputRejected, match=r"at least 0\.4"):
        plan_inputs(varied(0.35), img2img("prompt_strength", minimum=0.4, maximum=1))


def test_a_model_without_a_strength_input_gets_none_with_a_note() -> None:
    schema = schema_from(minimal_document({"prompt": {"type": "string"}, "image": URI}))
    planned = plan_inputs(varied(0.35), schema)
    assert planned.inputs == {"prompt": "a fox", "image": CDN}
    assert tuple(map(str, planned.notes)) == ("This model has no strength setting, so the strength 0.35 was ignored.",)


def test_without_a_schema_the_strength_is_left_to_the_model_with_a_note() -> None:
    """No name to send it under: a wrong guess would fail the job; the model's own default only varies less
    precisely."""
    planned = plan_inputs(varied(0.35), None)
    assert set(planned.inputs) == {"prompt", "image"}
    assert any("keeps the model's strength" in str(note) for note in planned.notes)


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan")])
def test_a_strength_outside_zero_to_one_is_refused(strength: float) -> None:
    with pytest.raises(InputRejected, match="from 0 to 1"):
        varied(strength).check()
