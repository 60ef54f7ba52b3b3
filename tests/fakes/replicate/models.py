"""Models and their versions: cog-style OpenAPI schemas (:func:`cog_openapi_schema`), the three models
registered by default (flux-schnell, flux-dev and flux-schnell-lora), :class:`FakeModel`/:class:`FakeVersion` and
registering them (:meth:`~ModelsMixin.add_model`).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from tests.fakes.replicate.vocabulary import JsonDict


def cog_openapi_schema(
    properties: Mapping[str, JsonDict],
    *,
    required: Sequence[str] = ("prompt",),
    enums: Mapping[str, Sequence[str]] | None = None,
    output: JsonDict | None = None,
) -> JsonDict:
    """Build a model version's ``openapi_schema`` the way cog emits it.

    ``properties`` are the ``Input`` properties in order (``x-order`` and ``title`` are filled in when
    missing). Each name in ``enums`` becomes a ``components.schemas.<name>`` string enum, and a property of
    the same name refers to it with ``allOf: [{"$ref": "#/components/schemas/<name>"}]``.
    ``output`` defaults to an array of URI strings (what image models return).
    """
    enums = dict(enums or {})
    props: JsonDict = {}
    for order, (name, spec) in enumerate(properties.items()):
        prop = dict(spec)
        if name in enums:
            prop = {"allOf": [{"$ref": f"#/components/schemas/{name}"}], **prop}
        else:
            prop.setdefault("title", name.replace("_", " ").title())
        prop["x-order"] = order
        props[name] = prop
    schemas: JsonDict = {
        "Input": {"type": "object", "title": "Input", "required": list(required), "properties": props},
        "Output": output or {"type": "array", "title": "Output", "items": {"type": "string", "format": "uri"}},
    }
    for name, values in enums.items():
        schemas[name] = {
            "enum": list(values),
            "type": "string",
            "title": name,
            "description": "An enumeration.",
        }
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": {},
        "components": {"schemas": schemas},
    }


FLUX_SCHNELL: Final = "black-forest-labs/flux-schnell"
"""Official model, registered by default (create via the models endpoint or ``version="owner/name"``)."""


FLUX_SCHNELL_VERSION: Final = hashlib.sha256(b"imagine-bot fake flux-schnell").hexdigest()
"""64-hex id of flux-schnell's (only) version in the fake, reported as ``latest_version.id``."""


FLUX_SCHNELL_DP_VERSION: Final = "dp-" + hashlib.md5(b"imagine-bot fake flux-schnell").hexdigest()
"""``version`` field of flux-schnell predictions created through the official-model routes."""


ASPECT_RATIOS: Final[dict[str, tuple[int, int]]] = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "21:9": (1536, 640),
    "3:2": (1216, 832),
    "2:3": (832, 1216),
    "4:5": (896, 1088),
    "5:4": (1088, 896),
    "3:4": (896, 1152),
    "4:3": (1152, 896),
    "9:16": (768, 1344),
    "9:21": (640, 1536),
}
"""flux-schnell pixel sizes at ``megapixels="1"`` (``"0.25"`` halves both sides)."""


# Inputs the default models share, word for word.
_PROMPT: Final[JsonDict] = {"type": "string", "description": "Prompt for generated image"}
_SEED: Final[JsonDict] = {"type": "integer", "description": "Random seed. Set for reproducible generation"}
_OUTPUT_FORMATS: Final = ("webp", "jpg", "png")

FLUX_SCHNELL_OPENAPI_SCHEMA: Final[JsonDict] = cog_openapi_schema(
    {
        "prompt": _PROMPT,
        "aspect_ratio": {"default": "1:1", "description": "Aspect ratio for the generated image"},
        "num_outputs": {
            "type": "integer",
            "default": 1,
            "minimum": 1,
            "maximum": 4,
            "description": "Number of outputs to generate",
        },
        "num_inference_steps": {
            "type": "integer",
            "default": 4,
            "minimum": 1,
            "maximum": 4,
            "description": "Number of denoising steps. 4 is recommended, and lower number of steps "
            "produce lower quality outputs, faster.",
        },
        "seed": _SEED,
        "output_format": {"default": "webp", "description": "Format of the output images"},
        "output_quality": {
            "type": "integer",
            "default": 80,
            "minimum": 0,
            "maximum": 100,
            "description": "Quality when saving the output images, from 0 to 100. 100 is best quality, "
            "0 is lowest quality. Not relevant for .png outputs",
        },
        "disable_safety_checker": {
            "type": "boolean",
            "default": False,
            "description": "Disable safety checker for generated images.",
        },
        "go_fast": {
            "type": "boolean",
            "default": True,
            "description": "Run faster predictions with a model optimized for speed (fp8 quantized).",
        },
        "megapixels": {"default": "1", "description": "Approximate number of megapixels for generated image"},
    },
    required=("prompt",),
    enums={
        "aspect_ratio": list(ASPECT_RATIOS),
        "output_format": _OUTPUT_FORMATS,
        "megapixels": ["1", "0.25"],
    },
)
"""flux-schnell's full cog ``openapi_schema`` (reference table §8). Treat as read-only."""


FLUX_SCHNELL_INPUT_SCHEMA: Final[JsonDict] = FLUX_SCHNELL_OPENAPI_SCHEMA["components"]["schemas"]["Input"]
"""``openapi_schema.components.schemas.Input`` of flux-schnell. Treat as read-only."""


FLUX_SCHNELL_LORA: Final = "lucataco/flux-schnell-lora"
"""Community (versioned) model registered by default: ``width``/``height`` instead of ``aspect_ratio``, and
no ``num_outputs`` (one image per prediction)."""


FLUX_SCHNELL_LORA_VERSION: Final = hashlib.sha256(b"imagine-bot fake flux-schnell-lora").hexdigest()


FLUX_SCHNELL_LORA_OPENAPI_SCHEMA: Final[JsonDict] = cog_openapi_schema(
    {
        "prompt": _PROMPT,
        "hf_lora": {"type": "string", "description": "Hugging Face path or URL to the LoRA weights"},
        "lora_scale": {
            "type": "number",
            "default": 0.8,
            "minimum": 0,
            "maximum": 1,
            "description": "Scale for the LoRA weights",
        },
        "width": {"type": "integer", "default": 1024, "minimum": 256, "maximum": 1440},
        "height": {"type": "integer", "default": 1024, "minimum": 256, "maximum": 1440},
        "num_inference_steps": {"type": "integer", "default": 4, "minimum": 1, "maximum": 4},
        "seed": _SEED,
        "output_format": {"default": "webp", "description": "Format of the output image"},
        "output_quality": {"type": "integer", "default": 80, "minimum": 0, "maximum": 100},
        "disable_safety_checker": {"type": "boolean", "default": False},
    },
    required=("prompt",),
    enums={"output_format": _OUTPUT_FORMATS},
)
"""flux-schnell-lora's cog ``openapi_schema``. Treat as read-only."""


FLUX_SCHNELL_LORA_INPUT_SCHEMA: Final[JsonDict] = FLUX_SCHNELL_LORA_OPENAPI_SCHEMA["components"]["schemas"]["Input"]


FLUX_DEV: Final = "black-forest-labs/flux-dev"
"""Official model registered by default that also starts from an image: ``image`` with ``prompt_strength`` (how far
the result strays from it, 0-1), besides flux-schnell's ``aspect_ratio``, ``num_outputs`` and ``seed``."""


FLUX_DEV_OPENAPI_SCHEMA: Final[JsonDict] = cog_openapi_schema(
    {
        "prompt": _PROMPT,
        "aspect_ratio": {"default": "1:1", "description": "Aspect ratio for the generated image"},
        "image": {
            "type": "string",
            "format": "uri",
            "description": "Input image for image to image mode. The aspect ratio of your output will match this image",
        },
        "prompt_strength": {
            "type": "number",
            "default": 0.8,
            "minimum": 0,
            "maximum": 1,
            "description": "Prompt strength when using img2img. 1.0 corresponds to full destruction of information "
            "in image",
        },
        "num_outputs": {"type": "integer", "default": 1, "minimum": 1, "maximum": 4},
        "num_inference_steps": {"type": "integer", "default": 28, "minimum": 1, "maximum": 50},
        "guidance": {"type": "number", "default": 3, "minimum": 0, "maximum": 10},
        "seed": _SEED,
        "output_format": {"default": "webp", "description": "Format of the output images"},
        "output_quality": {"type": "integer", "default": 80, "minimum": 0, "maximum": 100},
        "disable_safety_checker": {"type": "boolean", "default": False},
    },
    required=("prompt",),
    enums={"aspect_ratio": list(ASPECT_RATIOS), "output_format": _OUTPUT_FORMATS},
)
"""flux-dev's cog ``openapi_schema``. Treat as read-only."""


_GENERIC_SCHEMA: Final[JsonDict] = cog_openapi_schema({"prompt": {"type": "string"}})


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
    ) -> FakeModel:
        """Register (or replace) model ``owner/name``.

        ``schema`` is the cog ``openapi_schema`` shared by all ``versions`` (default: just a required
        ``prompt`` string); build one with :func:`cog_openapi_schema`. ``versions`` are 64-hex ids, oldest
        first; an official model with none gets one derived from its name. ``official`` defaults to
        ``True`` when no versions are given: only official models accept the models-endpoint create and
        ``version="owner/name"``; their predictions report ``prediction_version`` (default ``"hidden"``).
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
            FLUX_SCHNELL_LORA,
            schema=FLUX_SCHNELL_LORA_OPENAPI_SCHEMA,
            versions=[FLUX_SCHNELL_LORA_VERSION],
            official=False,
            description="FLUX.1-Schnell with LoRA support",
        )
