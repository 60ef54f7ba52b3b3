"""The buttons under a result (which appear where, within Discord's limits) and the Remix form they open."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.api.inputs import PROMPT_MAX, ImagineOptions
from bot.api.modelref import ModelRef
from bot.discord_app.buttons import job_components
from bot.discord_app.remix import FORM_PREFIX, remix_form
from bot.discord_app.variations import Variation, VaryStrength
from bot.jobs.model import Generation, JobKind, JobRequest, JobState, JobView
from bot.media.images import ImageFile
from tests.fakes.discord.components import message_component_problems, modal_problems

JOB = "f" * 32  # the longest job id a custom id carries
IMAGE = ImageFile("imagine-1.png", b"\x89PNG\r\n", "image/png")
GENERATION = Generation(ModelRef.parse("acme/img2img"), ImagineOptions("a fox", count=1), image_input="image")
DONE = JobView(
    JOB,
    JobRequest(GENERATION.model, GENERATION.options, {"prompt": "a fox"}, requester_id=7, image_input="image"),
    JobState.SUCCEEDED,
    images=(IMAGE,),
)
UPSCALED = replace(
    DONE,
    request=JobRequest(
        ModelRef.parse("acme/upscaler"),
        ImagineOptions("a fox", image="https://cdn/x.png"),
        {},
        requester_id=7,
        kind=JobKind.UPSCALE,
        origin=GENERATION,
    ),
)


def labels(view: JobView, *, upscale: bool = True) -> list[list[str]]:
    """The buttons' labels, row by row, as Discord gets them; each row checked against Discord's rules."""
    rows = job_components(view, upscale=upscale).to_components()
    assert message_component_problems(list(rows)) == [] and len(rows) <= 5
    return [[str(button["label"]) for button in row["components"]] for row in rows]


def test_a_single_image_of_an_image_model_gets_every_button_a_row_each() -> None:
    assert labels(DONE) == [["Re-roll", "Remix", "Delete"], ["U1"], ["V1"], ["Vary (Subtle)", "Vary (Strong)"]]


def test_five_images_still_fit_and_get_no_vary() -> None:
    five = replace(DONE, images=(IMAGE,) * 5)
    assert labels(five)[1:] == [[f"U{n}" for n in range(1, 6)], [f"V{n}" for n in range(1, 6)]]


def test_a_model_without_an_image_input_gets_no_v_and_no_vary() -> None:
    text_only = replace(DONE, request=replace(DONE.request, image_input=None))
    assert labels(text_only) == [["Re-roll", "Remix", "Delete"], ["U1"]]


def test_an_upscale_stands_for_the_generation_it_came_from() -> None:
    assert labels(UPSCALED) == [["Remix", "Delete"], ["Vary (Subtle)", "Vary (Strong)"]]
    unknown = replace(UPSCALED, request=replace(UPSCALED.request, origin=None))  # journaled before origins
    assert labels(unknown) == [["Delete"]]
    failed = replace(UPSCALED, state=JobState.FAILED, images=())
    assert labels(failed) == [["Delete"]]


def test_a_running_job_has_cancel_only_and_an_ended_one_remix_even_after_a_failure() -> None:
    assert labels(replace(DONE, state=JobState.PROCESSING, images=())) == [["Cancel"]]
    assert labels(replace(DONE, state=JobState.FAILED, images=())) == [["Re-roll", "Remix", "Delete"]]


VARIATIONS = [None, Variation(1), Variation(4), Variation(1, VaryStrength.SUBTLE), Variation(1, VaryStrength.STRONG)]


@pytest.mark.parametrize("variation", VARIATIONS)
def test_the_form_is_one_discord_accepts(variation: Variation | None) -> None:
    longest = "a" * PROMPT_MAX + " --ar 16:9 --no people"
    for text in ("a fox --ar 16:9", longest):
        data = remix_form(JOB, variation, text).to_dict()
        assert modal_problems(data) == []
        assert data["custom_id"].startswith(FORM_PREFIX)
        [label] = data["components"]
        assert label["component"]["value"] == text and label["component"]["style"] == 2


def test_variations_travel_in_custom_ids() -> None:
    for variation in VARIATIONS[1:]:
        assert variation is not None and Variation.from_token(variation.token) == variation
    with pytest.raises(ValueError):
        Variation.from_token("v0")
