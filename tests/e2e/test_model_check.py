"""Whether the API has a model, as ``/imagine-admin models allow`` asks it: ``None`` where the API cannot tell."""

from __future__ import annotations

from collections.abc import Callable

from bot.api.modelref import ModelRef
from tests.conftest import Pipeline
from tests.fakes.replicate import FLUX_SCHNELL, FLUX_SCHNELL_LORA, FakeReplicate

FLUX = ModelRef.parse(FLUX_SCHNELL)
LORA = ModelRef.parse(FLUX_SCHNELL_LORA)
MISSING = ModelRef.parse("nobody/no-such-model")

Build = Callable[..., Pipeline]


async def test_a_model_the_api_serves_is_known(make_pipeline: Build) -> None:
    assert await make_pipeline().client.model_known(LORA, known=FLUX) is True


async def test_a_model_the_api_lacks_is_unknown_when_it_finds_the_known_one(make_pipeline: Build) -> None:
    assert await make_pipeline().client.model_known(MISSING, known=FLUX) is False


async def test_without_model_routes_nothing_is_known_either_way(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    for model in fake_api.models.values():
        model.serve_schema = False
    assert await make_pipeline().client.model_known(MISSING, known=FLUX) is None


async def test_an_api_error_means_it_cannot_tell(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    fake_api.fail_next("model", 401)
    assert await make_pipeline().client.model_known(LORA, known=FLUX) is None
