"""A journaled request comes back whole: what a V or U job needs after a restart included."""

from __future__ import annotations

from datetime import date

from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.jobs.model import Generation, JobKind, JobRequest
from bot.jobs.serialization import request_from_json, request_to_json


def test_requests_round_trip_through_the_journal() -> None:
    request = JobRequest(
        model=ModelRef.parse("acme/img2img"),
        options=ImagineOptions("a fox", aspect_ratio="16:9", count=1, seed=3, image="https://cdn.example/a.png"),
        inputs={"prompt": "a fox", "input_image": "https://cdn.example/a.png"},
        notes=("a note",),
        requester_id=1,
        guild_id=2,
        channel_id=3,
        charged_images=1,
        charged_day=date(2026, 1, 2),
        kind=JobKind.VARY,
        image_input="input_image",
    )
    assert request_from_json(request_to_json(request)) == request


def test_requests_journaled_before_images_existed_still_read() -> None:
    old = request_to_json(JobRequest(ModelRef.parse("a/b"), ImagineOptions("x"), {"prompt": "x"}))
    for key in ("kind", "image_input"):
        del old[key]
    del old["options"]["image"]
    request = request_from_json(old)
    assert request.kind is JobKind.IMAGINE and request.image_input is None and request.options.image is None


def test_an_upscales_origin_and_a_variations_strength_round_trip() -> None:
    origin = Generation(
        ModelRef.parse("acme/img2img"),
        ImagineOptions("a fox", aspect_ratio="16:9", count=2, negative_prompt="fog", strength=0.35),
        JobKind.VARY,
        "input_image",
    )
    request = JobRequest(
        model=ModelRef.parse("acme/upscaler"),
        options=ImagineOptions("a fox", image="https://cdn.example/a.png"),
        inputs={"image": "https://cdn.example/a.png"},
        kind=JobKind.UPSCALE,
        origin=origin,
    )
    read = request_from_json(request_to_json(request))
    assert read == request and read.generation == origin


def test_requests_journaled_before_origins_and_strengths_existed_still_read() -> None:
    old = request_to_json(JobRequest(ModelRef.parse("a/b"), ImagineOptions("x"), {"image": "u"}, kind=JobKind.UPSCALE))
    del old["origin"]
    del old["options"]["strength"]
    request = request_from_json(old)
    assert request.origin is None and request.options.strength is None
    assert request.generation is None  # an upscale that does not know where it came from: no Remix, no Vary
