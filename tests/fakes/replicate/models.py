"""Models and their versions: :class:`FakeModel`/:class:`FakeVersion`, registering them
(:meth:`~ModelsMixin.add_model`) and the models registered by default, whose schemas are in :mod:`.schemas`.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.fakes.replicate.safety_schemas import FLUX_PRO, FLUX_PRO_OPENAPI_SCHEMA, FLUX_PRO_VERSION
from tests.fakes.replicate.schemas import (
    _GENERIC_SCHEMA,
    CAPTIONER,
    CAPTIONER_OPENAPI_SCHEMA,
    CAPTIONER_VERSION,
    FLUX_DEV,
    FLUX_DEV_OPENAPI_SCHEMA,
    FLUX_SCHNELL,
    FLUX_SCHNELL_DP_VERSION,
    FLUX_SCHNELL_LORA,
    FLUX_SCHNELL_LORA_OPENAPI_SCHEMA,
    FLUX_SCHNELL_LORA_VERSION,
    FLUX_SCHNELL_OPENAPI_SCHEMA,
    FLUX_SCHNELL_VERSION,
    VISION_LANGUAGE,
    VISION_LANGUAGE_OPENAPI_SCHEMA,
    VISION_LANGUAGE_VERSION,
)

if TYPE_CHECKING:
    from tests.fakes.replicate.vocabulary import JsonDict, ModelOutput


@dataclass
class FakeVersion:
    """A model version: ``id`` (64 hex), cog ``openapi_schema`` and metadata."""

    id: str
    openapi_schema: JsonDict
    created_at: str = "2024-08-01T12:00:00.000000Z"
    cog_version: str = "0.9.19"

    def to_json(self) -> JsonDict:
        """The version object of ``GET /v1/models/{o}/{n}/versions/{id}``."""
        return {
            "id": self.id,
            "created_at": self.created_at,
            "cog_version": self.cog_version,
            "openapi_schema": copy.deepcopy(self.openapi_schema),
        }


@dataclass
class FakeModel:
    """A registered model. ``versions`` are oldest first; the last one is ``latest_version``."""

    owner: str
    name: str
    versions: list[FakeVersion]
    official: bool
    serve_schema: bool = True
    """``False``: the model and version routes answer 404 (gateways often serve only predictions)."""
    prediction_version: str = "hidden"
    """``version`` field of predictions created via the official routes (``"hidden"`` or ``dp-<32hex>``)."""
    description: str = ""
    run_count: int = 0
    output: ModelOutput = "files"
    """What its predictions return: image files, one string, or string pieces streamed while it runs."""

    @property
    def ref(self) -> str:
        """``owner/name``."""
        return f"{self.owner}/{self.name}"

    @property
    def latest_version(self) -> FakeVersion:
        """The newest version."""
        return self.versions[-1]

    def version(self, version_id: str) -> FakeVersion | None:
        """The version with this id, if registered."""
        return next((v for v in self.versions if v.id == version_id), None)

    def to_json(self) -> JsonDict:
        """The model object of ``GET /v1/models/{owner}/{name}``."""
        return {
            "url": f"https://replicate.com/{self.ref}",
            "owner": self.owner,
            "name": self.name,
            "description": self.description,
            "visibility": "public",
            "github_url": None,
            "paper_url": None,
            "license_url": None,
            "run_count": self.run_count,
            "cover_image_url": None,
            "default_example": None,
            "is_official": self.official,
            "latest_version": self.latest_version.to_json(),
        }


class ModelsMixin:
    """Part of :class:`FakeReplicate`: registering models and looking them up."""

    def add_model(
        self,
        ref: str,
        *,
        schema: Mapping[str, Any] | None = None,
        versions: Sequence[str] = (),
        official: bool | None = None,
        serve_schema: bool = True,
        prediction_version: str | None = None,
        description: str = "",
        output: ModelOutput = "files",
    ) -> FakeModel:
        """Register (or replace) model ``owner/name``.

        ``schema`` is the cog ``openapi_schema`` shared by all ``versions`` (default: just a required
        ``prompt`` string); build one with :func:`cog_openapi_schema`. ``versions`` are 64-hex ids, oldest
        first; an official model with none gets one derived from its name. ``official`` defaults to
        ``True`` when no versions are given: only official models accept the models-endpoint create and
        ``version="owner/name"``; their predictions report ``prediction_version`` (default ``"hidden"``).
        ``output``: what its predictions return (image files by default; ``"text"``, ``"text_stream"``).
        """
        owner, _, name = ref.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"model ref must be 'owner/name': {ref!r}")
        is_official = official if official is not None else not versions
        ids = list(versions) or [hashlib.sha256(f"fake-version:{ref}".encode()).hexdigest()]
        doc = copy.deepcopy(dict(schema if schema is not None else _GENERIC_SCHEMA))
        model = FakeModel(
            owner=owner,
            name=name,
            versions=[FakeVersion(id=v, openapi_schema=doc) for v in ids],
            official=is_official,
            serve_schema=serve_schema,
            prediction_version=prediction_version or ("hidden" if is_official else ids[-1]),
            description=description,
            output=output,
        )
        self.models[ref] = model
        return model

    def model(self, ref: str) -> FakeModel:
        """The registered model ``owner/name`` (KeyError if absent)."""
        return self.models[ref]

    def _add_default_models(self) -> None:
        self.add_model(
            FLUX_SCHNELL,
            schema=FLUX_SCHNELL_OPENAPI_SCHEMA,
            versions=[FLUX_SCHNELL_VERSION],
            official=True,
            prediction_version=FLUX_SCHNELL_DP_VERSION,
            description="The fastest image generation model tailored for local development and personal use",
        )
        self.add_model(
            FLUX_DEV,
            schema=FLUX_DEV_OPENAPI_SCHEMA,
            official=True,
            description="A 12 billion parameter rectified flow transformer that also starts from an image",
        )
        self.add_model(
            FLUX_PRO,
            schema=FLUX_PRO_OPENAPI_SCHEMA,
            versions=[FLUX_PRO_VERSION],
            official=True,
            description="Faster, better FLUX Pro. Text-to-image model with excellent image quality",
        )
        self.add_model(
            FLUX_SCHNELL_LORA,
            schema=FLUX_SCHNELL_LORA_OPENAPI_SCHEMA,
            versions=[FLUX_SCHNELL_LORA_VERSION],
            official=False,
            description="FLUX.1-Schnell with LoRA support",
        )
        self.add_model(
            CAPTIONER,
            schema=CAPTIONER_OPENAPI_SCHEMA,
            versions=[CAPTIONER_VERSION],
            official=False,
            description="Get an approximate text prompt, with style, matching an image",
            output="text",
        )
        self.add_model(
            VISION_LANGUAGE,
            schema=VISION_LANGUAGE_OPENAPI_SCHEMA,
            versions=[VISION_LANGUAGE_VERSION],
            official=False,
            description="Visual instruction tuning towards large language and vision models",
            output="text_stream",
        )
