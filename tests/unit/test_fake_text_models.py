"""The fake API's text models: a captioner (an image in, a string out) and a vision-language model (an image and a
prompt in, string pieces out, growing while it runs as a language model streams), checked against Replicate's
OpenAPI document like the image models."""

from __future__ import annotations

import aiohttp

from tests.fakes.replicate import (
    CAPTION,
    CAPTIONER,
    CAPTIONER_VERSION,
    VISION_ANSWER,
    VISION_LANGUAGE,
    VISION_LANGUAGE_VERSION,
    FakeReplicate,
    Scenario,
)
from tests.unit.test_fake_replicate import JsonDict, assert_valid, call, get, openapi_validator

IMAGE = "https://cdn.example/photo.png"


async def create_version(http: aiohttp.ClientSession, fake: FakeReplicate, version: str, inp: JsonDict) -> JsonDict:
    status, data, _ = await call(
        http, "POST", f"{fake.base_url}/v1/predictions", body={"version": version, "input": inp}
    )
    assert status == 201, data
    assert isinstance(data, dict)
    return data


async def test_the_captioner_returns_one_string(fake_api: FakeReplicate, http: aiohttp.ClientSession) -> None:
    fake_api.set_default_scenario(Scenario.manual())
    pid = (await create_version(http, fake_api, CAPTIONER_VERSION, {"image": IMAGE}))["id"]
    fake_api.set_progress(pid, 2)
    running = await get(fake_api, http, pid)
    assert running["status"] == "processing" and running["output"] is None and "%|" not in running["logs"]
    fake_api.finish(pid)
    done = await get(fake_api, http, pid)
    assert done["output"] == CAPTION and "image_count" not in done["metrics"]
    assert_valid(openapi_validator("schemas_prediction_response"), done)


async def test_the_vision_language_model_streams_pieces(fake_api: FakeReplicate, http: aiohttp.ClientSession) -> None:
    validator = openapi_validator("schemas_prediction_response")
    fake_api.set_default_scenario(Scenario.manual())
    pid = (await create_version(http, fake_api, VISION_LANGUAGE_VERSION, {"image": IMAGE, "prompt": "Describe it"}))[
        "id"
    ]
    fake_api.start_processing(pid)
    assert (await get(fake_api, http, pid))["output"] is None
    fake_api.set_progress(pid, 1)
    first = await get(fake_api, http, pid)
    assert first["status"] == "processing" and isinstance(first["output"], list)
    assert len(first["output"]) > 0 and VISION_ANSWER.startswith("".join(first["output"]))
    assert_valid(validator, first)
    fake_api.finish(pid)
    done = await get(fake_api, http, pid)
    assert "".join(done["output"]) == VISION_ANSWER and done["output"][: len(first["output"])] == first["output"]
    assert_valid(validator, done)


async def test_the_vision_language_model_needs_its_prompt(fake_api: FakeReplicate, http: aiohttp.ClientSession) -> None:
    body = {"version": f"{VISION_LANGUAGE}:{VISION_LANGUAGE_VERSION}", "input": {"image": IMAGE}}
    status, data, _ = await call(http, "POST", f"{fake_api.base_url}/v1/predictions", body=body)
    assert status == 422 and "prompt is required" in data["detail"]
    body = {"version": f"{CAPTIONER}:{CAPTIONER_VERSION}", "input": {"image": IMAGE, "prompt": "x"}}
    status, data, _ = await call(http, "POST", f"{fake_api.base_url}/v1/predictions", body=body)
    assert status == 422 and "Additional property prompt" in data["detail"]


async def test_text_models_validate_against_openapi(fake_api: FakeReplicate, http: aiohttp.ClientSession) -> None:
    model_validator = openapi_validator("schemas_model_response")
    for ref in (CAPTIONER, VISION_LANGUAGE):
        status, model, _ = await call(http, "GET", f"{fake_api.base_url}/v1/models/{ref}")
        assert status == 200
        assert_valid(model_validator, model)
