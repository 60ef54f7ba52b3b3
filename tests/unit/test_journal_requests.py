"""A journaled request comes back whole: what a V or U job needs after a restart included."""

from __future__ import annotations

from datetime import date

from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.jobs.model import JobKind, JobRequest
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
