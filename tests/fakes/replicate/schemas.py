"""The models' cog-style OpenAPI schemas: :func:`cog_openapi_schema` to build one, and those of the models the fake
registers by default: flux-schnell, flux-dev and flux-schnell-lora, which make images (flux-dev also from an image,
with a strength); a captioner and a vision-language model, which read an image and return text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

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


_IMAGE_URI: Final[JsonDict] = {"type": "string", "format": "uri", "description": "Input image"}

CAPTIONER: Final = "methexis-inc/img2prompt"
"""Community (versioned) captioner registered by default: an image in, one string out (a prompt-like caption)."""


CAPTIONER_VERSION: Final = hashlib.sha256(b"imagine-bot fake img2prompt").hexdigest()


CAPTIONER_OPENAPI_SCHEMA: Final[JsonDict] = cog_openapi_schema(
    {"image": _IMAGE_URI}, required=("image",), output={"type": "string", "title": "Output"}
)
"""The captioner's cog ``openapi_schema``: its only input is the image; its output is a string."""


VISION_LANGUAGE: Final = "yorickvp/llava-13b"
"""Community (versioned) vision-language model registered by default: an image and a prompt in, its answer out
as a list of string pieces that grows while it runs (cog's ``Iterator[str]``, shown concatenated)."""


VISION_LANGUAGE_VERSION: Final = hashlib.sha256(b"imagine-bot fake llava-13b").hexdigest()


VISION_LANGUAGE_OPENAPI_SCHEMA: Final[JsonDict] = cog_openapi_schema(
    {
        "image": _IMAGE_URI,
        "prompt": {"type": "string", "description": "Prompt to use for text generation"},
        "top_p": {"type": "number", "default": 1, "minimum": 0, "maximum": 1},
        "temperature": {"type": "number", "default": 0.2, "minimum": 0},
        "max_tokens": {"type": "integer", "default": 1024, "minimum": 0, "description": "Maximum number of tokens"},
    },
    required=("image", "prompt"),
    output={
        "type": "array",
        "items": {"type": "string"},
        "title": "Output",
        "x-cog-array-type": "iterator",
        "x-cog-array-display": "concatenate",
    },
)
"""The vision-language model's cog ``openapi_schema``. Treat as read-only."""


_GENERIC_SCHEMA: Final[JsonDict] = cog_openapi_schema({"prompt": {"type": "string"}})
