"""A job's request as JSON, the way the journal keeps it: everything needed to run it again after a restart.

Rows written by older versions lack the newer keys (``kind``, ``image_input``, ``origin``, an option's
``image``, ``strength``…): each reads as its default.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.api.safety import Checker
from bot.jobs.model import Generation, JobKind, JobRequest


def request_to_json(request: JobRequest) -> dict[str, Any]:
    """Everything needed to run ``request`` again, as JSON-able data."""
    return {
        "model": str(request.model),
        "options": _options_to_json(request.options),
        "inputs": dict(request.inputs),
        "notes": [str(note) for note in request.notes],  # kept in English
        "images_expected": request.images_expected,
        "requester_id": request.requester_id,
        "guild_id": request.guild_id,
        "channel_id": request.channel_id,
        "charged_images": request.charged_images,
        "charged_day": request.charged_day.isoformat() if request.charged_day else None,
        "reserved_cost": request.reserved_cost,
        "kind": str(request.kind),
        "image_input": request.image_input,
        "origin": _generation_to_json(request.origin) if request.origin is not None else None,
        "account": request.account,
        "checker": str(request.checker),
        "spoiler": request.spoiler,
    }


def request_from_json(data: Mapping[str, Any]) -> JobRequest:
    """The inverse of :func:`request_to_json`."""
    day = data.get("charged_day")
    origin = data.get("origin")
    return JobRequest(
        model=ModelRef.parse(data["model"]),
        options=_options_from_json(data["options"]),
        inputs=data.get("inputs") or {},
        notes=tuple(data.get("notes") or ()),
        images_expected=int(data.get("images_expected") or 1),
        requester_id=data.get("requester_id"),
        guild_id=data.get("guild_id"),
        channel_id=data.get("channel_id"),
        charged_images=int(data.get("charged_images") or 0),
        charged_day=date.fromisoformat(day) if day else None,
        reserved_cost=int(data.get("reserved_cost") or 0),
        kind=JobKind(data.get("kind") or JobKind.IMAGINE),
        image_input=data.get("image_input"),
        origin=_generation_from_json(origin) if origin else None,
        account=data.get("account"),
        checker=_checker(data.get("checker")),
        spoiler=data.get("spoiler") is True,
    )


def _checker(value: Any) -> Checker:
    """The journaled checker; anything else (older rows, an unknown word) keeps the checker on."""
    return Checker(value) if value in {str(item) for item in Checker} else Checker.ON


def _options_to_json(options: ImagineOptions) -> dict[str, Any]:
    return {
        "prompt": options.prompt,
        "aspect_ratio": options.aspect_ratio,
        "count": options.count,
        "seed": options.seed,
        "extra": dict(options.extra),
        "image": options.image,
        "negative_prompt": options.negative_prompt,
        "strength": options.strength,
    }


def _options_from_json(options: Mapping[str, Any]) -> ImagineOptions:
    strength = options.get("strength")
    return ImagineOptions(
        prompt=options["prompt"],
        aspect_ratio=options.get("aspect_ratio"),
        count=options.get("count"),
        seed=options.get("seed"),
        extra=options.get("extra") or {},
        image=options.get("image"),
        negative_prompt=options.get("negative_prompt"),
        strength=float(strength) if strength is not None else None,
    )


def _generation_to_json(generation: Generation) -> dict[str, Any]:
    return {
        "model": str(generation.model),
        "options": _options_to_json(generation.options),
        "kind": str(generation.kind),
        "image_input": generation.image_input,
    }


def _generation_from_json(data: Mapping[str, Any]) -> Generation:
    return Generation(
        model=ModelRef.parse(data["model"]),
        options=_options_from_json(data["options"]),
        kind=JobKind(data.get("kind") or JobKind.IMAGINE),
        image_input=data.get("image_input"),
    )
