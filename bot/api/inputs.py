"""From ``/imagine`` options to a model's own inputs, checked against its input schema.

Pure logic: no HTTP, no Discord. The schema is the model's OpenAPI document as
Cog publishes it (``components.schemas.Input``, enums behind ``allOf``/``$ref``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.api.input_values import Property
from bot.api.input_values import check_value as _check
from bot.api.input_values import coerce_value as _coerce
from bot.base.errors import InputRejected
from bot.i18n import Text, tr

ASPECT_RATIOS: tuple[str, ...] = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9", "9:21", "4:5", "5:4")
PROMPT_MAX = 1500
COUNT_MAX = 4
# Model input names that carry the number of images, in order of preference.
_COUNT_NAMES = ("num_outputs", "num_images", "batch_size")
# Model input names that carry an image to start from, in order of preference (Cog models name it freely).
_IMAGE_NAMES = ("image", "input_image", "image_prompt", "init_image", "img", "image_url", "start_image")
# Inputs that say how far the result may stray from that image, in order of preference: set by Vary, else
# left at the model's default.
_STRENGTH_NAMES = ("prompt_strength", "image_strength", "strength", "image_prompt_strength")
# Of those, the ones that count the other way: how closely the result keeps to the image (1: the image itself).
# Vary sends them 1 - strength, so "Subtle" stays subtle whichever way the model counts.
_KEEPING_NAMES = frozenset({"image_strength", "image_prompt_strength"})
STRENGTH_DIGITS = 6
"""Decimal places a strength is sent with (``1 - 0.35`` goes out as ``0.65``, not ``0.6500000000000001``)."""
# The name an image goes out under where the API serves no schema (gateways): Replicate's most common one.
UNCHECKED_IMAGE_NAME = "image"
# Model input names that carry a negative prompt, in order of preference.
_NEGATIVE_NAMES = ("negative_prompt",)


@dataclass(frozen=True)
class ImagineOptions:
    """What a member (or the CLI) asked for, before any model is consulted."""

    prompt: str
    aspect_ratio: str | None = None
    count: int | None = None
    seed: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    image: str | None = None
    """The URL of an image to start from (an attachment's CDN URL): the model's image input."""
    negative_prompt: str | None = None
    """What to keep out of the image (the ``--no`` prompt flag), for models whose schema has such an input."""
    strength: float | None = None
    """How far the result may stray from ``image``, from 0 (keep it) to 1 (ignore it): ``Vary (Subtle)``/``Vary
    (Strong)`` set it; sent as the model's strength input (``None``: the model's default)."""

    def check(self) -> None:
        """Refuse values outside ``/imagine``'s own ranges, whatever the model."""
        if not self.prompt or not self.prompt.strip():
            raise InputRejected(tr("The prompt is empty: describe the image you want."))
        if len(self.prompt) > PROMPT_MAX:
            raise InputRejected(
                tr(
                    "The prompt is {length} characters long; the limit is {limit}.",
                    length=len(self.prompt),
                    limit=PROMPT_MAX,
                )
            )
        if self.aspect_ratio is not None and self.aspect_ratio not in ASPECT_RATIOS:
            raise InputRejected(
                tr(
                    "aspect_ratio {value} is not one of {ratios}.",
                    value=repr(self.aspect_ratio),
                    ratios=", ".join(ASPECT_RATIOS),
                )
            )
        if self.count is not None and not 1 <= self.count <= COUNT_MAX:
            raise InputRejected(
                tr("count must be between 1 and {most}, not {count}.", most=COUNT_MAX, count=self.count)
            )
        if self.seed is not None and self.seed < 0:
            raise InputRejected(tr("seed must be 0 or more, not {seed}.", seed=self.seed))
        if self.image is not None and not self.image.startswith(("https://", "http://", "data:image/")):
            raise InputRejected(tr("The image to start from must be an uploaded image."))
        if self.strength is not None and not (math.isfinite(self.strength) and 0 <= self.strength <= 1):
            raise InputRejected(
                tr("A variation's strength must be from 0 to 1, not {strength}.", strength=self.strength)
            )


@dataclass(frozen=True)
class InputSchema:
    """A model's inputs, read from its OpenAPI document."""

    properties: Mapping[str, Property]
    required: frozenset[str] = frozenset()

    @classmethod
    def from_openapi(cls, document: Mapping[str, Any]) -> InputSchema | None:
        """Read ``components.schemas.Input``; ``None`` if the document has no usable one."""
        schemas = document.get("components", {}).get("schemas", {})
        raw = schemas.get("Input") if isinstance(schemas, dict) else None
        if not isinstance(raw, dict) or not isinstance(raw.get("properties"), dict):
            return None
        properties = {
            name: _property(name, spec, schemas) for name, spec in raw["properties"].items() if isinstance(spec, dict)
        }
        required = raw.get("required")
        return cls(properties, frozenset(required) if isinstance(required, list) else frozenset())

    def has(self, name: str) -> bool:
        """Whether the model takes an input called ``name``."""
        return name in self.properties

    @property
    def image_input(self) -> str | None:
        """The input that takes an image to start from, if the model has one.

        A known name first; otherwise a ``format: uri`` string input whose name
        says image (``control_image`` is not one: it has a different meaning).
        """
        for name in _IMAGE_NAMES:
            prop = self.properties.get(name)
            if prop is not None and prop.type in (None, "string"):
                return name
        for name, prop in self.properties.items():
            says_image = "image" in name and "mask" not in name and not name.startswith(("control", "output"))
            if says_image and prop.type == "string" and prop.format == "uri":
                return name
        return None

    @property
    def strength_input(self) -> str | None:
        """The input saying how far the result strays from the image (Vary's strength goes there)."""
        return next((name for name in _STRENGTH_NAMES if self.has(name)), None)

    @property
    def needs_image(self) -> bool:
        """Whether the model cannot run without an image (an upscaler, say)."""
        name = self.image_input
        return name is not None and name in self.required


def _resolve(spec: Mapping[str, Any], schemas: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a property with what its ``$ref``/``allOf`` point at (Cog puts enums there)."""
    merged: dict[str, Any] = {}
    refs = [spec.get("$ref")] + [part.get("$ref") for part in spec.get("allOf", []) if isinstance(part, dict)]
    for part in spec.get("allOf", []):
        if isinstance(part, dict):
            merged.update({k: v for k, v in part.items() if k != "$ref"})
    for ref in refs:
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            target = schemas.get(ref.rsplit("/", 1)[-1])
            if isinstance(target, dict):
                merged.update(target)
    merged.update({k: v for k, v in spec.items() if k not in ("allOf", "$ref")})
    return merged


def _property(name: str, spec: Mapping[str, Any], schemas: Mapping[str, Any]) -> Property:
    resolved = _resolve(spec, schemas)
    enum = resolved.get("enum")

    def number(key: str) -> float | None:
        value = resolved.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    kind = resolved.get("type")
    return Property(
        name=name,
        type=kind if isinstance(kind, str) else None,
        enum=tuple(enum) if isinstance(enum, list) and enum else None,
        format=resolved.get("format") if isinstance(resolved.get("format"), str) else None,
        minimum=number("minimum"),
        maximum=number("maximum"),
        default=resolved.get("default"),
    )


@dataclass(frozen=True)
class PlannedInputs:
    """The inputs to send, and notes for the member about options the model does not take."""

    inputs: dict[str, Any]
    notes: tuple[Text | str, ...] = ()
    images_expected: int = 1
    image_input: str | None = None
    """The model's image input, where its schema shows one (a result of it can be varied)."""


def plan_inputs(options: ImagineOptions, schema: InputSchema | None) -> PlannedInputs:
    """Map ``options`` onto the model's inputs and check every value, or raise :class:`InputRejected`.

    With no schema (gateways often serve only the prediction routes) the options
    go out under their usual names and the API's own 422 text tells what is wrong.
    """
    options.check()
    inputs: dict[str, Any] = {"prompt": options.prompt}
    notes: list[Text | str] = []
    image_input = schema.image_input if schema is not None else None
    if options.image is not None:
        if schema is None:
            # No schema to read the input's name from: send it under the usual name and say so; a model
            # that calls it something else answers with a 422 whose text the member sees.
            inputs[UNCHECKED_IMAGE_NAME] = options.image
            notes.append(
                tr(
                    "The API shows no input list for this model, so the image went as `{name}`.",
                    name=UNCHECKED_IMAGE_NAME,
                )
            )
        elif image_input is None:
            raise InputRejected(
                tr("This model takes no image to start from; pick one that does, or leave out the image.")
            )
        else:
            inputs[image_input] = options.image
            if not schema.has("prompt"):
                del inputs["prompt"]  # an image-only model (an upscaler): the image is the whole request
    elif schema is not None and schema.needs_image:
        raise InputRejected(tr("This model needs an image to start from: attach one with the `image` option."))

    if options.count is not None:
        name = _count_name(schema)
        if name is not None:
            inputs[name] = options.count
        elif options.count > 1:
            notes.append(
                tr("This model makes one image per request, so count {count} was ignored.", count=options.count)
            )
    if options.aspect_ratio is not None:
        if schema is None or schema.has("aspect_ratio"):
            inputs["aspect_ratio"] = options.aspect_ratio
        elif schema.has("width") and schema.has("height"):
            inputs.update(_dimensions(options.aspect_ratio, schema))
        else:
            notes.append(
                tr("This model has no aspect ratio setting, so {ratio} was ignored.", ratio=options.aspect_ratio)
            )
    if options.seed is not None:
        if schema is None or schema.has("seed"):
            inputs["seed"] = options.seed
        else:
            notes.append(tr("This model does not take a seed, so the seed was ignored."))
    if options.negative_prompt is not None:
        name = _negative_name(schema)
        if name is not None:
            inputs[name] = options.negative_prompt
        else:
            notes.append(
                tr(
                    "This model does not take a negative prompt, so --no {negative} was ignored.",
                    negative=options.negative_prompt,
                )
            )
    if options.strength is not None:
        name = schema.strength_input if schema is not None else None
        if name is not None:
            inputs[name] = strength_value(name, options.strength)
        elif schema is None:
            # No input list to read the strength's name from, and no name common enough to guess: a wrong
            # one would fail the job, a missing one only leaves the model's default.
            notes.append(tr("The API shows no input list for this model, so the variation keeps the model's strength."))
        else:
            notes.append(
                tr(
                    "This model has no strength setting, so the strength {strength} was ignored.",
                    strength=options.strength,
                )
            )
    for key, value in options.extra.items():
        if key == "prompt":
            raise InputRejected(tr("Give the prompt as the prompt itself, not as an extra input."))
        if key in inputs and key == (image_input or UNCHECKED_IMAGE_NAME) and options.image is not None:
            raise InputRejected(tr("Give the image once: as the image option or as {key}, not both.", key=key))
        if schema is not None and not schema.has(key):
            raise InputRejected(tr("This model has no input called {key}.", key=repr(key)))
        inputs[key] = _coerce(key, value, schema.properties[key] if schema else None)

    if schema is not None:
        for key, value in inputs.items():
            if key in schema.properties:
                _check(schema.properties[key], value)
    count_key = _count_name(schema)
    expected = inputs.get(count_key, 1) if count_key else 1
    return PlannedInputs(inputs, tuple(notes), expected if isinstance(expected, int) else 1, image_input)


def strength_value(name: str, strength: float) -> float:
    """What ``strength`` (0: keep the image, 1: ignore it) is as the model's input ``name``."""
    return round(1 - strength if name in _KEEPING_NAMES else strength, STRENGTH_DIGITS)


def _count_name(schema: InputSchema | None) -> str | None:
    if schema is None:
        return "num_outputs"
    return next((name for name in _COUNT_NAMES if schema.has(name)), None)


def _negative_name(schema: InputSchema | None) -> str | None:
    if schema is None:
        return _NEGATIVE_NAMES[0]
    return next((name for name in _NEGATIVE_NAMES if schema.has(name)), None)


def _dimensions(ratio: str, schema: InputSchema) -> dict[str, int]:
    """About one megapixel in ``ratio``, in multiples of 64, inside the schema's bounds."""
    w_ratio, h_ratio = (int(part) for part in ratio.split(":"))
    scale = math.sqrt(1024 * 1024 / (w_ratio * h_ratio))
    width, height = w_ratio * scale, h_ratio * scale
    # One factor for both sides, so a capped model keeps the shape that was asked for.
    caps = [
        prop.maximum / side
        for prop, side in ((schema.properties["width"], width), (schema.properties["height"], height))
        if prop.maximum is not None
    ]
    shrink = min([1.0, *caps])
    result: dict[str, int] = {}
    for key, value in (("width", width * shrink), ("height", height * shrink)):
        prop = schema.properties[key]
        size = max(64, round(value / 64) * 64)
        if prop.maximum is not None and size > prop.maximum:
            size = max(64, int(prop.maximum // 64) * 64)
        if prop.minimum is not None and size < prop.minimum:
            size = math.ceil(prop.minimum / 64) * 64
        result[key] = size
    return result
