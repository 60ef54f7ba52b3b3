"""A member's preferred aspect ratio and count: used where neither an option nor a prompt flag gives one, left
out (with a note) where the model does not take them, never the reason a request is refused."""

from __future__ import annotations

import pytest

from bot.api.inputs import ImagineOptions, InputSchema, Property
from bot.base.errors import InputRejected
from bot.jobs.preparation import PreferredOptions, plan_with_preferences

SCHEMA = InputSchema(
    {
        "prompt": Property("prompt", "string"),
        "num_outputs": Property("num_outputs", "integer", minimum=1.0, maximum=2.0),
        "aspect_ratio": Property("aspect_ratio", "string", enum=("1:1", "16:9", "3:2")),
    }
)
PREFERRED = PreferredOptions(aspect_ratio="16:9", count=2)


def test_preferences_fill_what_the_request_leaves_open() -> None:
    options, planned, notes = plan_with_preferences(ImagineOptions("a fox"), SCHEMA, PREFERRED)
    assert (options.aspect_ratio, options.count) == ("16:9", 2)
    assert planned.inputs == {"prompt": "a fox", "num_outputs": 2, "aspect_ratio": "16:9"}
    assert planned.images_expected == 2 and notes == ()


def test_what_the_request_gives_beats_the_preference() -> None:
    options, _, _ = plan_with_preferences(ImagineOptions("a fox", aspect_ratio="3:2", count=1), SCHEMA, PREFERRED)
    assert (options.aspect_ratio, options.count) == ("3:2", 1)
    options, _, _ = plan_with_preferences(ImagineOptions("a fox", count=1), SCHEMA, PREFERRED)
    assert (options.aspect_ratio, options.count) == ("16:9", 1)


@pytest.mark.parametrize(
    ("preferred", "sent", "note"),
    [
        (PreferredOptions("21:9", 2), (None, 2), "your preferred aspect ratio 21:9"),
        (PreferredOptions("16:9", 4), ("16:9", None), "your preferred count 4"),
        (PreferredOptions("21:9", 4), (None, None), "your preferred aspect ratio 21:9 and count 4"),
    ],
)
def test_a_preference_the_model_does_not_take_is_left_out_with_a_note(
    preferred: PreferredOptions, sent: tuple[str | None, int | None], note: str
) -> None:
    options, _, notes = plan_with_preferences(ImagineOptions("a fox"), SCHEMA, preferred)
    assert (options.aspect_ratio, options.count) == sent
    assert tuple(map(str, notes)) == (f"This model does not take {note}, so its own default was used.",)


def test_a_request_wrong_in_itself_is_still_refused_for_its_own_reason() -> None:
    with pytest.raises(InputRejected, match="up to 2, not 3"):
        plan_with_preferences(ImagineOptions("a fox", count=3), SCHEMA, PREFERRED)
    with pytest.raises(InputRejected, match="up to 2, not 3"):
        plan_with_preferences(ImagineOptions("a fox", count=3), SCHEMA, None)
