"""Models whose safety checker is turned by a number (``safety_tolerance``), as Black Forest Labs' pro models on
Replicate have it: 1 (most strict) to 6 (most permissive), 2 by default (flux-schnell and flux-dev have the switch
``disable_safety_checker`` instead)."""

from __future__ import annotations

import hashlib
from typing import Final

from tests.fakes.replicate.schemas import ASPECT_RATIOS, cog_openapi_schema
from tests.fakes.replicate.vocabulary import JsonDict

FLUX_PRO: Final = "black-forest-labs/flux-1.1-pro"
"""Official model registered by default whose safety input is ``safety_tolerance`` (integer 1-6, default 2)."""

FLUX_PRO_VERSION: Final = hashlib.sha256(b"imagine-bot fake flux-1.1-pro").hexdigest()

FLUX_PRO_OPENAPI_SCHEMA: Final[JsonDict] = cog_openapi_schema(
    {
        "prompt": {"type": "string", "description": "Text prompt for image generation"},
        "aspect_ratio": {"default": "1:1", "description": "Aspect ratio for the generated image"},
        "seed": {"type": "integer", "description": "Random seed. Set for reproducible generation"},
        "output_format": {"default": "webp", "description": "Format of the output images."},
        "output_quality": {"type": "integer", "default": 80, "minimum": 0, "maximum": 100},
        "safety_tolerance": {
            "type": "integer",
            "default": 2,
            "minimum": 1,
            "maximum": 6,
            "description": "Safety tolerance, 1 is most strict and 6 is most permissive",
        },
        "prompt_upsampling": {"type": "boolean", "default": False},
    },
    required=("prompt",),
    enums={"aspect_ratio": list(ASPECT_RATIOS), "output_format": ["webp", "jpg", "png"]},
)
"""flux-1.1-pro's cog ``openapi_schema``. Treat as read-only."""
