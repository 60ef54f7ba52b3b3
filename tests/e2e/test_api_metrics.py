"""The API client reports every attempt to the metrics: route template, HTTP status, or ``error``."""

from __future__ import annotations

import aiohttp
import pytest

from bot.api.client import ReplicateClient, RetryPolicy
from bot.api.errors import NotFound, ServerError
from bot.api.modelref import ModelRef
from bot.ops.metrics import Metrics
from tests.fakes.replicate import FLUX_SCHNELL, FakeReplicate
from tests.helpers import free_port


def requests_counted(metrics: Metrics) -> dict[tuple[str, str], float]:
    """``(route, status)`` → count, read back from the registry."""
    return {
        (sample.labels["route"], sample.labels["status"]): sample.value
        for family in metrics.registry.collect()
        if family.name == "imagine_api_requests"
        for sample in family.samples
        if sample.name == "imagine_api_requests_total"
    }


async def test_each_attempt_is_counted_by_route_and_status() -> None:
    metrics = Metrics()
    async with FakeReplicate(seed=3) as api, aiohttp.ClientSession() as session:
        client = ReplicateClient(session, api.base_url, api.token, on_response=metrics.api_response)
        prediction = await client.create(ModelRef.parse(FLUX_SCHNELL), {"prompt": "a fox"})
        await client.get(prediction.id)
        with pytest.raises(NotFound):
            await client.get("no-such-prediction")
    counted = requests_counted(metrics)
    assert counted[("POST /v1/models/{owner}/{name}/predictions", "201")] == 1
    assert counted[("GET /v1/predictions/{id}", "200")] == 1
    assert counted[("GET /v1/predictions/{id}", "404")] == 1


async def test_no_answer_is_counted_as_error() -> None:
    port = free_port()  # closed again: nothing listens there
    metrics = Metrics()
    async with aiohttp.ClientSession() as session:
        client = ReplicateClient(
            session,
            f"http://127.0.0.1:{port}",
            "token",
            retry=RetryPolicy(attempts=2, base_delay=0.01),
            on_response=metrics.api_response,
        )
        with pytest.raises(ServerError):
            await client.get("abc")
    assert requests_counted(metrics) == {("GET /v1/predictions/{id}", "error"): 2}
