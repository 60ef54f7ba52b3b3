"""Reading what a lookup needs from the API: timestamps, pages, refused outputs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.api.modelref import ModelRef
from bot.api.predictions import Prediction, parse_timestamp
from bot.jobs.recovery import _canonical, _same_job


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-16T11:46:16.064900134Z", datetime(2023, 11, 16, 11, 46, 16, 64900, tzinfo=UTC)),
        ("2024-04-22T11:15:15.329Z", datetime(2024, 4, 22, 11, 15, 15, 329000, tzinfo=UTC)),
        ("2024-04-22T11:15:15Z", datetime(2024, 4, 22, 11, 15, 15, tzinfo=UTC)),
        ("2024-04-22T13:15:15.5+02:00", datetime(2024, 4, 22, 11, 15, 15, 500000, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
        (12, None),
    ],
)
def test_timestamps_are_read_leniently(text: object, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


FLUX = ModelRef.parse("black-forest-labs/flux-schnell")
INPUTS = {"prompt": "a fox", "num_outputs": 1}


def prediction(**changes: object) -> Prediction:
    data = {"id": "p1", "status": "processing", "model": "black-forest-labs/flux-schnell", "input": INPUTS}
    return Prediction.from_json({**data, **changes})


def test_a_lost_create_is_matched_on_model_and_exact_input() -> None:
    wanted = _canonical(INPUTS)
    assert _same_job(prediction(), FLUX, wanted)
    assert _same_job(prediction(input={"num_outputs": 1, "prompt": "a fox"}), FLUX, wanted)  # key order
    assert not _same_job(prediction(input={**INPUTS, "seed": 1}), FLUX, wanted)
    assert not _same_job(prediction(model="someone/else"), FLUX, wanted)
    versioned = ModelRef.parse("someone/lora:" + "a" * 64)
    assert not _same_job(prediction(model="someone/lora", version="b" * 64), versioned, wanted)
    assert _same_job(prediction(model="someone/lora", version="a" * 64), versioned, wanted)


@pytest.mark.parametrize(
    ("output", "urls", "refused"),
    [
        (["https://x/a.png", "ftp://x/b.png"], ["https://x/a.png"], 1),
        ("data:image/png;base64,AAAA", ["data:image/png;base64,AAAA"], 0),
        ("hello", [], 1),
        (None, [], 0),
        ([[{"url": "https://x"}]], [], 1),
        ("HTTPS://X/A.PNG", ["HTTPS://X/A.PNG"], 0),
    ],
)
def test_outputs_are_fetched_or_refused_with_a_reason(output: object, urls: list[str], refused: int) -> None:
    parsed = prediction(status="succeeded", output=output)
    assert parsed.output_urls == urls
    assert len(parsed.refused_outputs) == refused
