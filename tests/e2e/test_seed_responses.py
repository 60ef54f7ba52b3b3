"""The real responses quoted in the gateway document the project started from, through the real client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.api.client import ReplicateClient
from bot.api.modelref import ModelRef
from tests.conftest import shared_file
from tests.helpers import serving


def json_objects(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object embedded in ``text``."""
    decoder = json.JSONDecoder()
    found, index = [], 0
    while (start := text.find("{", index)) != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            index = start + 1
            continue
        if isinstance(value, dict):
            found.append(value)
        index = end
    return found


@pytest.fixture
def seed_responses() -> list[dict[str, Any]]:
    text = shared_file("seed/replicate-gateway-doc.txt").read_text()
    responses = [obj for obj in json_objects(text) if "status" in obj and "id" in obj]
    assert len(responses) >= 2, "the seed document should quote a created and a finished prediction"
    return responses


@pytest.fixture
async def gateway(seed_responses: list[dict[str, Any]]) -> AsyncIterator[str]:
    """A server under /replicate answering with the quoted bodies, byte for byte."""
    by_id = {response["id"]: response for response in seed_responses}

    async def create(request: web.Request) -> web.Response:
        return web.Response(status=201, text=json.dumps(seed_responses[0]), content_type="application/json")

    async def get(request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(by_id[request.match_info["id"]]), content_type="application/json")

    app = web.Application()
    app.router.add_post("/replicate/v1/models/{owner}/{name}/predictions", create)
    app.router.add_get("/replicate/v1/predictions/{id}", get)
    async with serving(app) as port:
        yield f"http://127.0.0.1:{port}/replicate"


async def test_seed_responses_parse(gateway: str, seed_responses: list[dict[str, Any]]) -> None:
    async with aiohttp.ClientSession() as session:
        client = ReplicateClient(session, gateway, "hk-test")
        created = await client.create(ModelRef.parse("black-forest-labs/flux-schnell"), {"prompt": "x"})
        assert created.status == "starting" and not created.terminal
        assert created.output_urls == []
        for response in seed_responses:
            prediction = await client.get(response["id"])
            assert prediction.id == response["id"]
            assert prediction.status == response["status"]
        finished = next(r for r in seed_responses if r["status"] == "succeeded")
        done = await client.get(finished["id"])
        assert done.terminal
        assert done.output_urls == finished["output"]
        assert done.progress is not None and done.progress.fraction == 1.0
        assert done.seed == 62182
        assert done.predict_time == pytest.approx(finished["metrics"]["predict_time"])
