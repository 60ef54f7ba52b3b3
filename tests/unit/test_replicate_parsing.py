"""The API client's pure parts: progress and seed from logs, prediction objects, errors and retry delays."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from multidict import CIMultiDict

from bot.api.client import RetryPolicy
from bot.api.errors import (
    ApiError,
    InsufficientCredit,
    InvalidInput,
    NotFound,
    RateLimited,
    ServerError,
    Unauthenticated,
    error_from_reply,
    retry_after_seconds,
)
from bot.api.predictions import Prediction, Progress, parse_progress, parse_seed

FLUX_LOGS = (
    "Using seed: 62182\n"
    "running quantized prediction\n"
    "Using seed: 62182\n"
    "  0%|          | 0/4 [00:00<?, ?it/s]\n"
    " 75%|███████▌  | 3/4 [00:00<00:00, 15.38it/s]\n"
    "100%|██████████| 4/4 [00:00<00:00, 13.43it/s]\n"
    "Total safe images: 1 out of 1\n"
)

PROMPT = (
    "Japanese cartoon anime style, (1 person) (Gender: Male, Age: 30, Hair: Short black hair, Outfit: Dark blue "
    "hunting attire, includes a fitted jacket and trousers.) (A dimly lit room filled with tension, is questioning "
    "Female, 27 years old, long black hair, pink tulle dress., who stands nervously in her pink dress, the sound of "
    "rain pattering against the window.)"
)
FLUX_INPUT: dict[str, Any] = {
    "aspect_ratio": "1:1",
    "go_fast": True,
    "megapixels": "1",
    "num_inference_steps": 4,
    "num_outputs": 1,
    "output_format": "jpg",
    "output_quality": 80,
    "prompt": PROMPT,
}

# The two responses of the gateway documentation, re-typed as data.
STARTING: dict[str, Any] = {
    "id": "qpt5jq1fssrmc0cmd5hvy31mdg",
    "model": "black-forest-labs/flux-schnell",
    "version": "dp-4d0bcc010b3049749a251855f12800be",
    "input": FLUX_INPUT,
    "logs": "",
    "output": None,
    "data_removed": False,
    "error": None,
    "status": "starting",
    "created_at": "2025-01-15T09:54:55.566Z",
    "urls": {
        "cancel": "https://api.replicate.com/v1/predictions/qpt5jq1fssrmc0cmd5hvy31mdg/cancel",
        "get": "https://api.replicate.com/v1/predictions/qpt5jq1fssrmc0cmd5hvy31mdg",
        "stream": "https://stream.replicate.com/v1/files/bcwr-gvuc2rokjozhlaxh6dcvk6tvhh2ymt4egnnpxvmtqql57angyfsq",
    },
}
OUTPUT_URL = "https://replicate.delivery/xezq/RoEhEdyl8PoIGFFPg46TU4Svj24i1NDVYmzehJfqLuX9nTFUA/out-0.jpg"
SUCCEEDED: dict[str, Any] = {
    "id": "ctdwaehfz1rm80cmd5nsjd8114",
    "model": "black-forest-labs/flux-schnell",
    "version": "dp-4d0bcc010b3049749a251855f12800be",
    "input": FLUX_INPUT,
    "logs": FLUX_LOGS,
    "output": [OUTPUT_URL],
    "data_removed": False,
    "error": None,
    "status": "succeeded",
    "created_at": "2025-01-15T10:03:39.896Z",
    "started_at": "2025-01-15T10:03:40.584470194Z",
    "completed_at": "2025-01-15T10:03:41.142386377Z",
    "urls": {
        "cancel": "https://api.replicate.com/v1/predictions/ctdwaehfz1rm80cmd5nsjd8114/cancel",
        "get": "https://api.replicate.com/v1/predictions/ctdwaehfz1rm80cmd5nsjd8114",
        "stream": "https://stream.replicate.com/v1/files/bcwr-q57vie7wuzg3wxv2hvpajgmzqzmxe67kqddednevutmrpdcft6xq",
    },
    "metrics": {"image_count": 1, "predict_time": 0.557916184},
}


def prediction(**fields: Any) -> dict[str, Any]:
    return {"id": "p1", "status": "processing", **fields}


# --------------------------------------------------------------------------- parse_progress


@pytest.mark.parametrize(
    ("logs", "expected"),
    [
        (FLUX_LOGS, Progress(1.0, 4, 4)),
        (" 75%|███████▌  | 3/4 [00:00<00:00, 15.38it/s]", Progress(0.75, 3, 4)),
        ("  0%|          | 0/4 [00:00<?, ?it/s]\n", Progress(0.0, 0, 4)),
        (
            "  0%|          | 0/28 [00:00<?, ?it/s]\r 50%|█████     | 14/28 [00:01<00:01]\r"
            " 96%|█████████▋| 27/28 [00:02<00:00]",
            Progress(0.96, 27, 28),
        ),
        ("  0%|  | 0/4\r 25%|▌ | 1/4\r\n 50%|█ | 2/4\r\nloading next stage\n", Progress(0.5, 2, 4)),
        ("step one\n 10%|█         | 5/50 [00:00<00:04, 11.1it/s]\nsaving\n", Progress(0.1, 5, 50)),
        ("100%|██████████| 4/4\n  0%|          | 0/4\n", Progress(0.0, 0, 4)),
    ],
)
def test_parse_progress(logs: str, expected: Progress) -> None:
    assert parse_progress(logs) == expected


@pytest.mark.parametrize(
    "logs",
    [None, "", "\n", "Using seed: 1\nrunning\n", "50% done", "Total safe images: 1 out of 1", "|██| 3/4"],
)
def test_parse_progress_without_bar(logs: str | None) -> None:
    assert parse_progress(logs) is None


def test_parse_progress_clamps_percent() -> None:
    progress = parse_progress("250%|████| 5/2")
    assert progress is not None
    assert progress.fraction == 1.0


# --------------------------------------------------------------------------- parse_seed


@pytest.mark.parametrize(
    ("logs", "seed"),
    [
        (FLUX_LOGS, 62182),
        ("Using seed: 1234", 1234),
        ("seed=7\n", 7),
        ("Seed 0", 0),
        ("SEED: 42", 42),
        ("Using seed: 1\nUsing seed: 2\n", 2),
        ("seed:18446744073709551615", 18446744073709551615),
        (None, None),
        ("", None),
        ("no numbers here", None),
        ("seeds: 5", None),
        ("random seed chosen", None),
    ],
)
def test_parse_seed(logs: str | None, seed: int | None) -> None:
    assert parse_seed(logs) == seed


# --------------------------------------------------------------------------- Prediction.from_json


def test_gateway_starting_example() -> None:
    p = Prediction.from_json(STARTING)
    assert p.id == "qpt5jq1fssrmc0cmd5hvy31mdg"
    assert p.status == "starting"
    assert not p.terminal
    assert p.output is None
    assert p.output_urls == []
    assert p.error is None
    assert p.logs == ""
    assert p.progress is None
    assert p.seed is None
    assert p.predict_time is None
    assert p.metrics == {}
    assert p.input["prompt"] == PROMPT
    assert p.data_removed is False
    assert p.raw is STARTING


def test_gateway_succeeded_example() -> None:
    p = Prediction.from_json(SUCCEEDED)
    assert p.id == "ctdwaehfz1rm80cmd5nsjd8114"
    assert p.status == "succeeded"
    assert p.terminal
    assert p.output_urls == [OUTPUT_URL]
    assert p.error is None
    assert p.progress == Progress(1.0, 4, 4)
    assert p.seed == 62182
    assert p.predict_time == pytest.approx(0.557916184)
    assert p.metrics["image_count"] == 1


def test_from_json_survives_a_json_round_trip() -> None:
    assert Prediction.from_json(json.loads(json.dumps(SUCCEEDED))).output_urls == [OUTPUT_URL]


@pytest.mark.parametrize(
    ("output", "urls"),
    [
        ("https://replicate.delivery/a/out.webp", ["https://replicate.delivery/a/out.webp"]),
        (["https://x/1.png", "http://127.0.0.1:8000/2.png"], ["https://x/1.png", "http://127.0.0.1:8000/2.png"]),
        (
            [["https://x/1.png"], ["https://x/2.png", ["https://x/3.png"]]],
            ["https://x/1.png", "https://x/2.png", "https://x/3.png"],
        ),
        ("data:image/png;base64,iVBORw0KGgo=", ["data:image/png;base64,iVBORw0KGgo="]),
        (["data:image/png;base64,AAAA", "https://x/1.png"], ["data:image/png;base64,AAAA", "https://x/1.png"]),
        (None, []),
        ([], []),
        ("a lovely picture of a cat", []),
        (["NSFW content detected", "https://x/1.png", "ftp://x/2.png", "/tmp/out.png"], ["https://x/1.png"]),
        ([None, 3, True, {"url": "https://x/1.png"}], []),
        ({"image": "https://x/1.png"}, []),
        (42, []),
    ],
)
def test_output_shapes(output: Any, urls: list[str]) -> None:
    assert Prediction.from_json(prediction(status="succeeded", output=output)).output_urls == urls


@pytest.mark.parametrize("status", ["succeeded", "failed", "canceled", "aborted"])
def test_terminal_statuses(status: str) -> None:
    assert Prediction.from_json(prediction(status=status)).terminal


@pytest.mark.parametrize("status", ["starting", "processing", "queued", "booting", "SUCCEEDED", ""])
def test_non_terminal_and_unknown_statuses(status: str) -> None:
    p = Prediction.from_json(prediction(status=status))
    assert not p.terminal
    assert p.status == status


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "qpt5jq1fssrmc0cmd5hvy31mdg",
        {},
        {"status": "starting"},
        {"id": "", "status": "starting"},
        {"id": 123, "status": "starting"},
        {"id": None, "status": "starting"},
        {"id": "p1"},
        {"id": "p1", "status": None},
        {"id": "p1", "status": 3},
    ],
)
def test_not_a_prediction(data: Any) -> None:
    with pytest.raises(ServerError) as caught:
        Prediction.from_json(data)
    assert caught.value.transient


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, None),
        ("", None),
        (
            "All generated images contained NSFW content. Try running it again with a different prompt.",
            "All generated images contained NSFW content. Try running it again with a different prompt.",
        ),
        ({"code": "E005"}, "{'code': 'E005'}"),
    ],
)
def test_error_field(error: Any, expected: str | None) -> None:
    assert Prediction.from_json(prediction(status="failed", error=error)).error == expected


@pytest.mark.parametrize(
    ("metrics", "predict_time"),
    [
        ({"predict_time": 1.5}, 1.5),
        ({"predict_time": 2}, 2.0),
        ({"predict_time": 0}, 0.0),
        ({"predict_time": "1.5"}, None),
        ({"predict_time": True}, None),
        ({"predict_time": None}, None),
        ({"total_time": 3.0}, None),
        ({}, None),
        (None, None),
        ("fast", None),
    ],
)
def test_predict_time(metrics: Any, predict_time: float | None) -> None:
    p = Prediction.from_json(prediction(status="succeeded", metrics=metrics))
    assert p.predict_time == predict_time
    if predict_time is not None:
        assert isinstance(p.predict_time, float)


@pytest.mark.parametrize(
    ("inputs", "logs", "seed"),
    [
        ({"seed": 5}, "Using seed: 62182", 5),
        ({"seed": 0}, None, 0),
        ({}, "Using seed: 62182", 62182),
        ({"seed": True}, "Using seed: 9", 9),
        ({"seed": "5"}, None, None),
        (None, "seed=3", 3),
    ],
)
def test_seed_from_input_then_logs(inputs: Any, logs: str | None, seed: int | None) -> None:
    assert Prediction.from_json(prediction(input=inputs, logs=logs)).seed == seed


def test_loose_fields_are_tolerated() -> None:
    p = Prediction.from_json(prediction(logs=None, input="x", metrics=[1], data_removed=1, output=None))
    assert p.logs is None
    assert p.input == {}
    assert p.metrics == {}
    assert p.data_removed is True
    assert p.progress is None


def test_data_removed_output() -> None:
    p = Prediction.from_json(prediction(status="succeeded", output=None, data_removed=True))
    assert p.data_removed
    assert p.output_urls == []


# --------------------------------------------------------------------------- error_from_reply


def problem(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


UNAUTHENTICATED = problem(title="Unauthenticated", detail="You did not pass a valid authentication token", status=401)
NO_CREDIT = problem(
    title="Insufficient credit",
    detail="You have insufficient credit to run this model. Go to https://replicate.com/account/billing#billing "
    "to purchase credit.",
    status=402,
)
INVALID_FIELDS = [
    {"type": "required", "field": "input", "description": "prompt is required"},
    {"type": "number_lte", "field": "input.num_inference_steps", "description": "Must be less than or equal to 4"},
]
BAD_INPUT = problem(
    detail="- input: prompt is required\n- input.num_inference_steps: Must be less than or equal to 4\n",
    status=422,
    title="Input validation failed",
    invalid_fields=INVALID_FIELDS,
)
THROTTLED = problem(detail="Request was throttled. Your rate limit resets in ~30s.")


@pytest.mark.parametrize(
    ("status", "body", "kind", "message"),
    [
        (401, UNAUTHENTICATED, Unauthenticated, "You did not pass a valid authentication token"),
        (402, NO_CREDIT, InsufficientCredit, "You have insufficient credit to run this model."),
        (404, problem(detail="Not found.", status=404), NotFound, "Not found."),
        (422, BAD_INPUT, InvalidInput, "- input: prompt is required"),
        (429, THROTTLED, RateLimited, "Request was throttled."),
        (500, problem(detail="Internal server error"), ServerError, "Internal server error"),
        (503, b"<html>Service Unavailable</html>", ServerError, "The prediction API answered HTTP 503"),
        (418, problem(title="I'm a teapot", status=418), ApiError, "I'm a teapot"),
        (400, b"", ApiError, "The prediction API answered HTTP 400"),
        (409, b"[1, 2]", ApiError, "The prediction API answered HTTP 409"),
        (404, problem(detail="  ", title=" Missing "), NotFound, "Missing"),
    ],
)
def test_error_from(status: int, body: bytes, kind: type[ApiError], message: str) -> None:
    error = error_from_reply(status, {}, body)
    assert type(error) is kind
    assert error.status == status
    assert error.message.startswith(message)
    assert error.transient == (status == 429 or status >= 500)


def test_invalid_input_keeps_invalid_fields() -> None:
    error = error_from_reply(422, {}, BAD_INPUT)
    assert isinstance(error, InvalidInput)
    assert error.invalid_fields == INVALID_FIELDS
    assert "num_inference_steps" in error.message


@pytest.mark.parametrize("body", [problem(detail="bad", invalid_fields="oops"), b"not json", problem(detail="bad")])
def test_invalid_input_without_usable_fields(body: bytes) -> None:
    error = error_from_reply(422, {}, body)
    assert isinstance(error, InvalidInput)
    assert error.invalid_fields == []


@pytest.mark.parametrize(
    ("headers", "body", "retry_after"),
    [
        ({"Retry-After": "12"}, THROTTLED, 12.0),
        ({"Retry-After": "0.5"}, b"", 0.5),
        ({"Retry-After": "-3"}, b"", 0.0),
        ({}, THROTTLED, 30.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, THROTTLED, 30.0),
        ({}, problem(detail="Slow down, resets in ~ 2.5 s"), 2.5),
        ({}, problem(detail="Request was throttled."), None),
        ({}, b"", None),
    ],
)
def test_rate_limited_retry_after(headers: dict[str, str], body: bytes, retry_after: float | None) -> None:
    error = error_from_reply(429, headers, body)
    assert isinstance(error, RateLimited)
    assert error.retry_after == retry_after


def test_retry_after_header_is_case_insensitive_with_real_headers() -> None:
    headers = CIMultiDict({"retry-after": "7"})
    assert retry_after_seconds(headers, "") == 7.0
    error = error_from_reply(429, headers, THROTTLED)
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7.0


# --------------------------------------------------------------------------- RetryPolicy


class MidRandom(random.Random):
    """A random source whose jitter is always exactly in the middle."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


def test_retry_delays_grow_then_cap() -> None:
    policy = RetryPolicy(attempts=10, base_delay=0.25, max_delay=4.0)
    delays = [policy.delay(attempt, MidRandom()) for attempt in range(1, 10)]
    assert delays == pytest.approx([0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0])


def test_retry_jitter_stays_within_twenty_percent() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=30.0)
    rng = random.Random(1234)
    for attempt in range(1, 12):
        nominal = min(30.0, 2.0 ** (attempt - 1))
        for _ in range(50):
            assert 0.8 * nominal <= policy.delay(attempt, rng) <= 1.2 * nominal


@pytest.mark.parametrize(
    ("hint", "expected"),
    [(7.0, 7.0), (0.0, 0.0), (-2.0, 0.0), (30.0, 30.0), (119.0, 119.0), (5000.0, 120.0)],
)
def test_retry_hint_wins_and_is_bounded(hint: float, expected: float) -> None:
    policy = RetryPolicy(base_delay=0.25, max_delay=30.0)
    assert policy.delay(1, MidRandom(), hint) == expected
    assert policy.delay(6, MidRandom(), hint) == expected
