"""A faithful, in-process fake of Replicate's HTTP predictions API (aiohttp, 127.0.0.1 only).

Quick start::

    async with FakeReplicate(prefix="/replicate") as fake:
        url = f"{fake.base_url}/v1/models/black-forest-labs/flux-schnell/predictions"
        ...  # point the code under test at fake.base_url with token fake.token
        pred = await fake.wait_for_status(fake.last_prediction.id, "succeeded")

What it serves (every API route lives under ``prefix`` and needs ``Authorization: Bearer <token>`` or
``Token <token>``):

* ``POST /v1/models/{owner}/{name}/predictions`` (official models), ``POST /v1/predictions`` (``version`` =
  ``owner/name``, ``owner/name:<id>`` or a bare ``<id>``), ``GET /v1/predictions/{id}``,
  ``POST /v1/predictions/{id}/cancel``, ``GET /v1/predictions`` (newest first, pages of
  :attr:`~FakeReplicate.list_page_size` whose ``next`` link points at ``urls_base``; 404 with
  ``serve_list = False``, like a gateway), ``GET /v1/models/{owner}/{name}``,
  ``GET /v1/models/{owner}/{name}/versions`` and ``GET /v1/models/{owner}/{name}/versions/{id}``,
  ``GET /v1/webhooks/default/secret`` (``{"key": "whsec_…"}`` = :attr:`~FakeReplicate.webhook_secret`, seeded;
  404 with ``serve_webhook_secret = False``, like a gateway).
* Output files at ``/files/{prediction_id}/out-{i}.{ext}`` *outside* the prefix, with no auth, like
  ``replicate.delivery``.

Behaviour follows Replicate's OpenAPI document and recorded traffic: predictions go ``starting`` →
``processing`` (tqdm progress in ``logs``) → ``succeeded``/``failed``/``canceled``, or ``starting`` →
``aborted``; ``Prefer: wait[=n]`` holds the create response; ``input`` is validated against the model's
cog schema with Replicate's 422 problem+json shape; errors are ``application/problem+json``;
``urls.*`` point at ``https://api.replicate.com`` (as gateways pass them through) so a client that
follows them would leave the fake.

Webhooks: a create with ``webhook`` (Replicate requires HTTPS; the fake accepts only ``http(s)://`` URLs on
127.0.0.1/localhost and refuses others, and unknown ``webhook_events_filter`` values, with a 422) gets the
prediction object (exactly what GET returns) POSTed for the events of ``webhook_events_filter`` (default
``output`` and ``completed``): ``start`` at creation, ``logs``/``output`` when they change (each at most once
per :attr:`~FakeReplicate.webhook_min_interval` = 0.5 s, the latest state wins, a pending one superseded by
``completed``), ``completed`` on any terminal status. One background task per prediction sends them in
order, never holding an API response. Signed per Standard Webhooks (``webhook-id`` ``msg_…``,
``webhook-timestamp``, ``webhook-signature`` ``v1,…``; :func:`sign_webhook`). Only ``completed`` is retried,
after a connection failure, timeout or non-2xx, on :attr:`~FakeReplicate.webhook_retry_delays` with the same
``webhook-id``; redirects are not followed. Every attempt is in :attr:`~FakeReplicate.webhook_deliveries`
(:class:`WebhookDelivery`); wait with :meth:`~FakeReplicate.wait_for_webhooks`. Switches:
:meth:`~FakeReplicate.lose_next_webhooks` (``drop``: never sent, never retried; ``fail``: attempts fail so
retries deliver later), :meth:`~FakeReplicate.delay_webhooks`, :meth:`~FakeReplicate.tamper_next_webhook`
(body changed after signing), :meth:`~FakeReplicate.stale_next_webhook` (old timestamp, valid signature),
:meth:`~FakeReplicate.replay_webhook` (an earlier delivery again, byte for byte).

Tests steer it with :class:`Scenario` (the timeline and outputs of a prediction; a global default plus a
FIFO of per-prediction overrides), fault injection (:meth:`FakeReplicate.fail_next`,
:meth:`~FakeReplicate.throttle_next`, :meth:`~FakeReplicate.reset_next`,
:meth:`~FakeReplicate.malformed_next`, :meth:`~FakeReplicate.insufficient_credit_next`,
:meth:`~FakeReplicate.stall_next`), seeded random faults (:meth:`FakeReplicate.chaos`, see :class:`Chaos`),
malicious output hosts (:meth:`~FakeReplicate.redirect_url`, :meth:`~FakeReplicate.endless_url`,
:meth:`~FakeReplicate.not_image_url`, ``Scenario(output_override=...)``), optional
sliding-window rate limits (:class:`RateLimits`), manual timeline drivers
(:meth:`~FakeReplicate.start_processing`, :meth:`~FakeReplicate.set_progress`,
:meth:`~FakeReplicate.finish`, ...) and event waits (:meth:`~FakeReplicate.wait_for_status`,
:meth:`~FakeReplicate.wait_for_requests`, :meth:`~FakeReplicate.wait_for_webhooks`,
:meth:`~FakeReplicate.wait_until`) so no test has to sleep.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import hmac
import http
import json
import math
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Literal, Self, get_args
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from tests.fakes import images
from tests.fakes.tcp import reset_connection

__all__ = [
    "ASPECT_RATIOS",
    "CHAOS_FAULTS",
    "DEFAULT_FAILURE_ERROR",
    "DEFAULT_WEBHOOK_EVENTS",
    "FAST_WEBHOOK_RETRY_DELAYS",
    "FLUX_SCHNELL",
    "FLUX_SCHNELL_DP_VERSION",
    "FLUX_SCHNELL_INPUT_SCHEMA",
    "FLUX_SCHNELL_LORA",
    "FLUX_SCHNELL_LORA_INPUT_SCHEMA",
    "FLUX_SCHNELL_LORA_OPENAPI_SCHEMA",
    "FLUX_SCHNELL_LORA_VERSION",
    "FLUX_SCHNELL_OPENAPI_SCHEMA",
    "FLUX_SCHNELL_VERSION",
    "INSUFFICIENT_CREDIT_DETAIL",
    "NSFW_ERROR",
    "REPLICATE_WEBHOOK_RETRY_DELAYS",
    "TERMINAL_STATUSES",
    "WEBHOOK_EVENTS",
    "Chaos",
    "ChaosEvent",
    "ChaosFault",
    "FakeFile",
    "FakeModel",
    "FakePrediction",
    "FakeReplicate",
    "FakeVersion",
    "Fault",
    "InvalidField",
    "RateLimits",
    "RecordedRequest",
    "RouteKind",
    "Scenario",
    "Status",
    "WebhookDelivery",
    "WebhookEvent",
    "cog_openapi_schema",
    "sign_webhook",
    "tqdm_line",
    "validate_input",
]

JsonDict = dict[str, Any]

# --------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------

Status = Literal["starting", "processing", "succeeded", "failed", "canceled", "aborted"]
"""Every prediction status in Replicate's OpenAPI ``schemas_prediction_response.status``."""

FinalStatus = Literal["succeeded", "failed", "canceled", "aborted"]
"""Terminal statuses a :class:`Scenario` can end in."""

TERMINAL_STATUSES: Final[frozenset[str]] = frozenset(get_args(FinalStatus))

OutputShape = Literal["list", "string", "data"]
"""``list``: ``["http://…/out-0.webp", …]``; ``string``: one URL string (first output);
``data``: a list of ``data:image/…;base64,…`` URLs (Replicate's Oct 2024 sync-mode behaviour)."""

ProgressStyle = Literal["newline", "carriage_return", "none"]
"""How tqdm progress lines appear in ``logs``: one per line, joined with ``\\r`` like raw tqdm, or absent."""

RouteKind = Literal["create", "get", "cancel", "list", "model", "secret", "file", "other"]
"""What a request was for. ``list`` is ``GET /v1/predictions``; ``model`` covers the model, version-list and
version routes; ``secret`` is ``GET /v1/webhooks/default/secret``; ``other`` is anything unmatched."""

WebhookEvent = Literal["start", "output", "logs", "completed"]
"""The values of a create's ``webhook_events_filter``."""

WEBHOOK_EVENTS: Final[tuple[WebhookEvent, ...]] = get_args(WebhookEvent)

DEFAULT_WEBHOOK_EVENTS: Final[frozenset[WebhookEvent]] = frozenset({"output", "completed"})
"""What Replicate sends when a create gives a ``webhook`` but no ``webhook_events_filter``."""

FAST_WEBHOOK_RETRY_DELAYS: Final[tuple[float, ...]] = (0.1, 0.2, 0.4, 0.8)
"""Default pauses before each retry of a ``completed`` webhook (fast, for tests)."""

REPLICATE_WEBHOOK_RETRY_DELAYS: Final[tuple[float, ...]] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
"""Production-like retry pauses: exponential, the last retry about a minute (63 s) after completion, as
Replicate documents."""

FaultAction = Literal["status", "reset", "malformed", "stall"]

ChaosFault = Literal["500", "503", "429", "reset", "malformed", "stall"]
"""What :meth:`FakeReplicate.chaos` may do to a request: answer 500 or 503 (problem+json), 429 with
``Retry-After``, reset the connection, answer a truncated JSON body, or (output files only) stall."""

CHAOS_FAULTS: Final[tuple[ChaosFault, ...]] = ("500", "503", "429", "reset", "malformed", "stall")

NSFW_ERROR: Final = "All generated images contained NSFW content. Try running it again with a different prompt."
"""``error`` of a flux prediction whose every image was flagged (cog-flux ``postprocess``)."""

DEFAULT_FAILURE_ERROR: Final = "Prediction interrupted; please retry (code: PA)"
"""``error`` used for ``final_status="failed"`` when the scenario gives none."""

INSUFFICIENT_CREDIT_DETAIL: Final = (
    "You have insufficient credit to run this model. Go to https://replicate.com/account/billing#billing "
    "to purchase credit. Once you purchase credit, please wait a few minutes before trying again."
)

_UNAUTHENTICATED: Final[JsonDict] = {
    "title": "Unauthenticated",
    "detail": "You did not pass a valid authentication token",
    "status": 401,
}
_INVALID_VERSION: Final[JsonDict] = {
    "title": "Invalid version or not permitted",
    "detail": "The specified version does not exist (or perhaps you don't have permission to use it?)",
    "status": 422,
}
_NOT_FOUND: Final[JsonDict] = {"detail": "Not found.", "status": 404}

_ID_ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"
_API_KINDS: Final[frozenset[str]] = frozenset({"create", "get", "cancel", "list", "model", "secret", "other"})
_KIND_BY_ROUTE: Final[dict[str, RouteKind]] = {
    "create_model": "create",
    "create_version": "create",
    "get": "get",
    "cancel": "cancel",
    "list": "list",
    "model": "model",
    "versions": "model",
    "version": "model",
    "webhook_secret": "secret",
    "file": "file",
    "evil_redirect": "file",
    "evil_endless": "file",
    "evil_not_image": "file",
}

# --------------------------------------------------------------------------------------------------
# Model schemas (cog-style OpenAPI documents)
# --------------------------------------------------------------------------------------------------


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

FLUX_SCHNELL_OPENAPI_SCHEMA: Final[JsonDict] = cog_openapi_schema(
    {
        "prompt": {"type": "string", "description": "Prompt for generated image"},
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
        "seed": {"type": "integer", "description": "Random seed. Set for reproducible generation"},
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
        "output_format": ["webp", "jpg", "png"],
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
        "prompt": {"type": "string", "description": "Prompt for generated image"},
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
        "seed": {"type": "integer", "description": "Random seed. Set for reproducible generation"},
        "output_format": {"default": "webp", "description": "Format of the output image"},
        "output_quality": {"type": "integer", "default": 80, "minimum": 0, "maximum": 100},
        "disable_safety_checker": {"type": "boolean", "default": False},
    },
    required=("prompt",),
    enums={"output_format": ["webp", "jpg", "png"]},
)
"""flux-schnell-lora's cog ``openapi_schema``. Treat as read-only."""

FLUX_SCHNELL_LORA_INPUT_SCHEMA: Final[JsonDict] = FLUX_SCHNELL_LORA_OPENAPI_SCHEMA["components"]["schemas"]["Input"]

_GENERIC_SCHEMA: Final[JsonDict] = cog_openapi_schema({"prompt": {"type": "string"}})

# --------------------------------------------------------------------------------------------------
# Input validation (Replicate's 422 "Input validation failed")
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvalidField:
    """One entry of a 422 body's ``invalid_fields`` (``type``, ``field``, ``description``)."""

    type: str
    field: str
    description: str

    def to_json(self) -> JsonDict:
        """Return the JSON object Replicate sends for this entry."""
        return {"type": self.type, "field": self.field, "description": self.description}

    def detail_line(self) -> str:
        """Return this entry as a line of the 422 ``detail`` text, e.g. ``- input.seed: …\\n``."""
        return f"- {self.field or 'input'}: {self.description}\n"


def _resolve(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> JsonDict:
    """Inline ``$ref`` and single-``$ref`` ``allOf`` entries of ``schema`` (cog's enum style)."""
    out: JsonDict = {k: v for k, v in schema.items() if k not in ("allOf", "$ref")}
    refs = [schema["$ref"]] if "$ref" in schema else []
    refs += [part["$ref"] for part in schema.get("allOf", []) if "$ref" in part]
    for ref in refs:
        target: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        for key, value in _resolve(doc, target).items():
            out.setdefault(key, value)
    return out


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_ok(expected: str, value: Any) -> bool:
    actual = _json_type(value)
    return actual == expected or (expected == "number" and actual == "integer")


def _fmt_num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def validate_input(openapi_schema: Mapping[str, Any], value: Any) -> list[InvalidField]:
    """Validate a prediction ``input`` against a cog ``openapi_schema`` as Replicate does.

    Checks, in order: ``input`` is an object, required properties, unknown properties
    (``additional_property_not_allowed``), JSON type (``invalid_type``), ``enum``, ``minimum``
    (``number_gte``) and ``maximum`` (``number_lte``). Returns an empty list when the input is valid.
    ``null`` is only accepted for properties marked ``nullable``.
    """
    input_schema = openapi_schema["components"]["schemas"]["Input"]
    if not isinstance(value, dict):
        return [InvalidField("invalid_type", "input", f"Invalid type. Expected: object, given: {_json_type(value)}")]
    errors: list[InvalidField] = [
        InvalidField("required", "input", f"{name} is required")
        for name in input_schema.get("required", [])
        if name not in value
    ]
    properties: Mapping[str, Any] = input_schema.get("properties", {})
    for key, item in value.items():
        if key not in properties:
            errors.append(
                InvalidField("additional_property_not_allowed", "", f"Additional property {key} is not allowed")
            )
            continue
        prop = _resolve(openapi_schema, properties[key])
        where = f"input.{key}"
        if item is None and prop.get("nullable"):
            continue
        expected = prop.get("type")
        if isinstance(expected, str) and not _type_ok(expected, item):
            errors.append(
                InvalidField("invalid_type", where, f"Invalid type. Expected: {expected}, given: {_json_type(item)}")
            )
            continue
        if "enum" in prop and item not in prop["enum"]:
            allowed = ", ".join(json.dumps(v) for v in prop["enum"])
            errors.append(InvalidField("enum", where, f"{key} must be one of the following: {allowed}"))
            continue
        if isinstance(item, int | float) and not isinstance(item, bool):
            if "minimum" in prop and item < prop["minimum"]:
                errors.append(
                    InvalidField("number_gte", where, f"Must be greater than or equal to {_fmt_num(prop['minimum'])}")
                )
            if "maximum" in prop and item > prop["maximum"]:
                errors.append(
                    InvalidField("number_lte", where, f"Must be less than or equal to {_fmt_num(prop['maximum'])}")
                )
    return errors


def _input_defaults(openapi_schema: Mapping[str, Any]) -> JsonDict:
    props: Mapping[str, Any] = openapi_schema["components"]["schemas"]["Input"].get("properties", {})
    return {name: spec["default"] for name, spec in props.items() if "default" in spec}


# --------------------------------------------------------------------------------------------------
# Public data classes
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """How one prediction behaves. Immutable; derive variants with ``dataclasses.replace``.

    Timeline: ``starting`` for ``start_delay`` s → ``processing`` (tqdm logs grow step by step over
    ``duration`` s) → ``final_status``. ``start_delay=None`` keeps the prediction ``starting`` until a test
    drives it (:meth:`FakeReplicate.start_processing`, :meth:`~FakeReplicate.set_progress`,
    :meth:`~FakeReplicate.finish`); ``duration=None`` keeps it ``processing`` until
    :meth:`FakeReplicate.finish`. ``Scenario.manual()`` sets both to ``None``.
    """

    start_delay: float | None = 0.02
    """Seconds in ``starting``; ``None`` = manual."""
    duration: float | None = 0.05
    """Seconds in ``processing``; ``None`` = manual (wait for :meth:`FakeReplicate.finish`)."""
    final_status: FinalStatus = "succeeded"
    """Where the timeline ends. ``aborted`` goes straight from ``starting`` (no ``started_at``, no output);
    ``canceled`` here means "canceled by Replicate" (e.g. deadline) after processing."""
    error: str | None = None
    """``error`` for ``final_status="failed"`` (default :data:`DEFAULT_FAILURE_ERROR`)."""
    output_shape: OutputShape = "list"
    nsfw_dropped: int = 0
    """How many of the requested images the safety checker drops (the first ones). If that is all of
    them the prediction fails with :data:`NSFW_ERROR`."""
    progress_style: ProgressStyle = "newline"
    setup: float = 0.0
    """Seconds in ``processing`` before the progress bar starts (a real model loads weights, encodes the
    prompt): no tqdm line until then. ``duration`` is the bar's own time, which follows."""
    wrap_up: float = 0.0
    """Seconds after the bar's last step before the prediction ends (decoding, the safety checker, upload)."""
    output_lead: float = 0.0
    """Seconds for which ``output`` is already set while status is still ``processing`` before the
    terminal status (recorded sync-mode reality). ``Prefer: wait`` returns as soon as output exists."""
    image_format: images.ImageFormat | None = None
    """Force the file format; ``None`` follows ``input.output_format`` (or its schema default, else png)."""
    image_size: tuple[int, int] | None = (64, 64)
    """Pixel size of output images; ``None`` = real size from ``aspect_ratio``/``megapixels`` or
    ``width``/``height``."""
    huge_image_mib: float | None = None
    """Serve PNGs of random noise larger than this many MiB (format forced to png)."""
    file_status: int = 200
    """HTTP status of the output-file route (e.g. 404, 403, 500)."""
    file_stall: bool = False
    """The file route sends status and headers (with the full Content-Length), then
    ``file_stall_after_bytes`` bytes, then stalls until the fake closes."""
    file_stall_after_bytes: int = 0
    file_not_image: bool = False
    """The file route serves an HTML page while claiming the image Content-Type."""
    data_removed_after: float | None = None
    """Seconds after the terminal status at which ``output`` becomes ``null``, ``data_removed`` true and
    files 404 (``0`` = immediately). ``None`` = never."""
    null_logs_on_cancel: bool = True
    """A user cancel sets ``logs`` to ``null`` as recorded Replicate traffic shows (the OpenAPI schema says
    string, so set ``False`` to keep logs)."""
    extra_outputs: int = 0
    """A hostile model: this many more output files than ``num_outputs`` asked for."""
    file_bytes: bytes | None = None
    """Serve exactly these bytes as every output file (e.g. a decompression bomb), whatever the format."""
    output_override: Any = None
    """When not ``None``, a succeeded prediction's ``output`` is exactly this value instead of the URLs of
    its files (e.g. ``"ftp://host/x.png"``, a metadata address, :meth:`FakeReplicate.redirect_url`)."""

    @classmethod
    def manual(cls, **changes: Any) -> Scenario:
        """A scenario whose timeline only moves when the test drives it."""
        return cls(**{"start_delay": None, "duration": None, **changes})


@dataclass(frozen=True)
class RateLimits:
    """Sliding-window limits enforced when passed as ``FakeReplicate(rate_limits=...)``.

    Replicate documents 600 prediction creates per minute and 3000 requests per minute to everything
    else. File downloads are not counted. ``retry_after_header`` adds ``Retry-After`` (Replicate does not
    send one; the ``~Ns`` hint in ``detail`` is its only retry hint).
    """

    creates_per_window: int = 600
    others_per_window: int = 3000
    window: float = 60.0
    retry_after_header: bool = False


@dataclass
class Fault:
    """A one-shot (or ``count``-shot) HTTP failure for requests matching ``kind`` and ``method``.

    ``action``: ``status`` answers ``status`` with ``body`` (default: Replicate-style problem+json for the
    status; plain text for ``file``); ``reset`` closes the TCP connection with an RST and no response;
    ``malformed`` answers 200 ``application/json`` with the truncated body ``{"id": ``; ``stall`` (meant
    for ``file``) sends status 200 and headers, ``stall_after_bytes`` bytes of the body, then nothing more
    until ``stall_seconds`` pass (``None``: until the fake closes) and resets the connection.
    With ``processed=True`` the request is first handled normally (a create really creates the prediction,
    including any ``Prefer: wait`` hold) and the fault then replaces the response; otherwise the fault
    answers before anything happens (no auth check, no state change).
    """

    kind: RouteKind | None
    action: FaultAction = "status"
    status: int = 500
    count: int = 1
    method: str | None = None
    processed: bool = False
    body: JsonDict | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    stall_after_bytes: int = 8
    stall_seconds: float | None = None

    def matches(self, method: str, kind: RouteKind) -> bool:
        """Whether this fault applies to a request."""
        return (
            self.count > 0
            and (self.kind is None or self.kind == kind)
            and (self.method is None or self.method.upper() == method.upper())
        )


@dataclass
class RecordedRequest:
    """One HTTP request the fake received (every route, including files and unknown paths)."""

    method: str
    path: str
    """Full path including the prefix, e.g. ``/replicate/v1/predictions``."""
    kind: RouteKind
    headers: CIMultiDict[str]
    """Case-insensitive copy of the request headers."""
    query: dict[str, str]
    body: bytes
    json: Any
    """Parsed JSON body, or ``None`` (no body, or not JSON)."""
    time: float
    """``time.monotonic()`` on arrival."""
    response_status: int | None = None
    """Status sent back; ``None`` while in flight or when the connection was reset."""
    reset: bool = False
    """The fake reset the connection instead of answering."""
    prediction_id: str | None = None
    """The prediction this request created or addressed, if any."""
    chaos: ChaosFault | None = None
    """The fault :meth:`FakeReplicate.chaos` injected into this request, if any."""
    chaos_processed: bool = False
    """Whether that fault came after the request was handled (a create then did create its prediction)."""
    body_bytes_sent: int = 0
    """Body bytes written by the endless and stalled routes (the others leave it 0)."""

    @property
    def authorization(self) -> str | None:
        """The ``Authorization`` header, if sent."""
        return self.headers.get("Authorization")


def sign_webhook(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of a webhook, per Standard Webhooks (reference §5).

    ``v1,`` + base64 of HMAC-SHA256 over ``"{webhook_id}.{timestamp}.{raw body}"``, keyed with the
    base64-decoded part of ``secret`` after ``whsec_``.
    """
    key = base64.b64decode(secret.removeprefix("whsec_") + "==")
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@dataclass
class WebhookDelivery:
    """One attempt of the fake to deliver a webhook (see :attr:`FakeReplicate.webhook_deliveries`)."""

    prediction_id: str
    event: WebhookEvent
    webhook_id: str
    """``webhook-id``: the same on every retry of one delivery (and on a :meth:`~FakeReplicate.replay_webhook`)."""
    attempt: int
    """1 for the first try; retries of a ``completed`` webhook count up."""
    url: str
    timestamp: int
    """``webhook-timestamp`` sent (unix seconds)."""
    headers: dict[str, str]
    """The headers sent (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``, ``Content-Type``)."""
    body: bytes
    """The raw body sent (after any tampering)."""
    time: float
    """``time.monotonic()`` when the attempt was made."""
    status: int | None = None
    """HTTP status the receiver answered; ``None`` when there was no answer (see :attr:`error`)."""
    error: str | None = None
    """Why there was no answer: a connection failure, a timeout, or ``lost``
    (:meth:`~FakeReplicate.lose_next_webhooks`)."""
    finished: float | None = None
    """``time.monotonic()`` when the attempt ended (answered, failed or lost); ``None`` while in flight."""
    lost: bool = False
    """Never sent: taken by :meth:`~FakeReplicate.lose_next_webhooks`."""
    tampered: bool = False
    """The body was changed after signing (:meth:`~FakeReplicate.tamper_next_webhook`)."""
    stale: bool = False
    """The timestamp is in the past (:meth:`~FakeReplicate.stale_next_webhook`); the signature is valid."""
    replay: bool = False
    """Sent by :meth:`~FakeReplicate.replay_webhook` (same id, timestamp, signature and body as the original)."""

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def done(self) -> bool:
        """Whether the attempt has ended (answered, failed or lost)."""
        return self.finished is not None

    @property
    def json(self) -> Any:
        """The body parsed as JSON (``None`` if it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def signature(self) -> str:
        """The ``webhook-signature`` header sent."""
        return self.headers["webhook-signature"]


@dataclass
class _WebhookSwitch:
    action: Literal["drop", "fail", "tamper", "stale"]
    count: int
    events: frozenset[WebhookEvent]
    seconds: float = 0.0


_LOOPBACK_HOSTS: Final[frozenset[str]] = frozenset({"127.0.0.1", "localhost", "::1"})


def _webhook_errors(body: Mapping[str, Any]) -> list[InvalidField]:
    """Check a create body's ``webhook`` and ``webhook_events_filter`` (the fake only calls loopback URLs)."""
    errors: list[InvalidField] = []
    hook = body.get("webhook")
    if hook is not None:
        if not isinstance(hook, str):
            errors.append(
                InvalidField("invalid_type", "webhook", f"Invalid type. Expected: string, given: {_json_type(hook)}")
            )
        else:
            parts = urlsplit(hook)
            try:
                port_ok = parts.port is None or parts.port > 0
            except ValueError:
                port_ok = False
            if parts.scheme not in ("http", "https") or parts.hostname not in _LOOPBACK_HOSTS or not port_ok:
                errors.append(
                    InvalidField(
                        "format",
                        "webhook",
                        "webhook must be an HTTPS URL (this fake accepts only http(s) URLs on 127.0.0.1 or localhost)",
                    )
                )
    events = body.get("webhook_events_filter")
    if events is not None:
        if not isinstance(events, list):
            errors.append(
                InvalidField(
                    "invalid_type",
                    "webhook_events_filter",
                    f"Invalid type. Expected: array, given: {_json_type(events)}",
                )
            )
        else:
            allowed = ", ".join(json.dumps(v) for v in WEBHOOK_EVENTS)
            errors.extend(
                InvalidField(
                    "enum",
                    f"webhook_events_filter.{i}",
                    f"webhook_events_filter.{i} must be one of the following: {allowed}",
                )
                for i, value in enumerate(events)
                if value not in WEBHOOK_EVENTS
            )
    return errors


_API_ROUTE_KINDS: Final[frozenset[RouteKind]] = frozenset(
    {"create", "get", "cancel", "list", "model", "secret", "other"}
)
_CHAOS_APPLIES: Final[dict[ChaosFault, frozenset[RouteKind]]] = {
    "500": _API_ROUTE_KINDS | {"file"},
    "503": _API_ROUTE_KINDS | {"file"},
    "429": _API_ROUTE_KINDS | {"file"},
    "reset": _API_ROUTE_KINDS | {"file"},
    "malformed": _API_ROUTE_KINDS,
    "stall": frozenset({"file"}),
}
_SIDE_EFFECT_KINDS: Final[frozenset[RouteKind]] = frozenset({"create", "cancel"})


@dataclass(frozen=True)
class ChaosEvent:
    """One fault injected by :meth:`FakeReplicate.chaos`."""

    request: RecordedRequest
    fault: ChaosFault
    processed: bool
    """``True``: the request was handled first (a create made its prediction), then the fault replaced the
    answer. ``429`` and ``stall`` are always before processing, ``malformed`` always after."""

    @property
    def safe_to_retry(self) -> bool:
        """Whether the client can know that nothing happened (only a 429 says so; any other failure of a
        create may have come after the prediction was made, as far as the client can tell)."""
        return self.fault == "429" or self.request.kind not in _SIDE_EFFECT_KINDS


class Chaos:
    """Seeded random faults for a share of requests: see :meth:`FakeReplicate.chaos`.

    Every request of a chaotic kind consumes one draw of the seeded generator (plus two more when it is hit),
    so the sequence of faults is the same on every run for the same sequence of requests. Which job a
    fault lands on still depends on how concurrent requests interleave; read :attr:`events` (or
    :attr:`RecordedRequest.chaos`) to know.
    """

    def __init__(
        self,
        rate: float,
        *,
        seed: int,
        kinds: Sequence[RouteKind],
        faults: Sequence[ChaosFault],
        after_share: float,
        retry_after: float | str,
        stall_seconds: float | None,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1: {rate!r}")
        unknown = set(faults) - set(CHAOS_FAULTS)
        if unknown or not faults:
            raise ValueError(f"faults must be a non-empty subset of {CHAOS_FAULTS}: {sorted(unknown)}")
        self.rate = rate
        self.seed = seed
        self.kinds: frozenset[RouteKind] = frozenset(kinds)
        self.faults: tuple[ChaosFault, ...] = tuple(faults)
        self.after_share = after_share
        self.retry_after = str(retry_after)
        self.stall_seconds = stall_seconds
        self.events: list[ChaosEvent] = []
        """Every fault injected, in order."""
        self.requests_seen = 0
        """Requests of a chaotic kind that were considered (hit or not)."""
        self._rng = random.Random(seed)

    def draw(self, kind: RouteKind) -> tuple[ChaosFault, Fault, bool] | None:
        """``(name, fault, after processing)`` for the next request of ``kind``, or ``None`` (no fault)."""
        if kind not in self.kinds:
            return None
        self.requests_seen += 1
        if self._rng.random() >= self.rate:
            return None
        choices = [fault for fault in self.faults if kind in _CHAOS_APPLIES[fault]]
        pick = self._rng.random()
        after = self._rng.random() < self.after_share
        if not choices:
            return None
        name = choices[min(len(choices) - 1, int(pick * len(choices)))]
        processed = name == "malformed" or (name in ("500", "503", "reset") and kind in _SIDE_EFFECT_KINDS and after)
        if name == "429":
            seconds = self.retry_after
            fault = Fault(
                kind=kind,
                status=429,
                body={"detail": f"Request was throttled. Your rate limit resets in ~{seconds}s."},
                headers={"Retry-After": seconds, "ratelimit-remaining": "0", "ratelimit-reset": seconds},
            )
        elif name in ("500", "503"):
            fault = Fault(kind=kind, status=int(name), processed=processed)
        elif name == "reset":
            fault = Fault(kind=kind, action="reset", processed=processed)
        elif name == "malformed":
            fault = Fault(kind=kind, action="malformed", status=200, processed=True)
        else:
            fault = Fault(kind=kind, action="stall", stall_seconds=self.stall_seconds)
        return name, fault, processed

    def events_for(self, kind: RouteKind | None = None) -> list[ChaosEvent]:
        """Injected faults on requests of ``kind`` (``None``: all)."""
        return [event for event in self.events if kind is None or event.request.kind == kind]


@dataclass
class FakeFile:
    """An output file of a prediction, served at :attr:`url` (bytes generated lazily, then cached)."""

    prediction_id: str
    index: int
    name: str
    url: str
    content_type: str
    fmt: str
    size: tuple[int, int]
    colour: images.Rgb
    huge_bytes: int | None = None
    not_image: bool = False
    _data: bytes | None = field(default=None, repr=False)
    """Generated on first use, or given (:attr:`Scenario.file_bytes`)."""

    @property
    def data(self) -> bytes:
        """The exact bytes the file route serves."""
        if self._data is None:
            if self.not_image:
                self._data = images.not_an_image()
            elif self.huge_bytes is not None:
                self._data = images.noise_png(self.huge_bytes)
            else:
                self._data = images.image_bytes(self.fmt, self.size, self.colour)
        return self._data

    def data_url(self) -> str:
        """This file as a ``data:`` URL."""
        return f"data:{self.content_type};base64,{base64.b64encode(self.data).decode()}"


@dataclass
class FakePrediction:
    """Server-side state of one prediction. :meth:`to_json` is exactly what the API returns."""

    id: str
    model: str
    version: str
    input: JsonDict
    scenario: Scenario
    urls: dict[str, str]
    created_at: datetime
    created_mono: float
    status: Status = "starting"
    logs: str | None = ""
    output: Any = None
    error: str | None = None
    data_removed: bool = False
    started_at: datetime | None = None
    completed_at: datetime | None = None
    metrics: JsonDict | None = None
    deadline: datetime | None = None
    cancel_after: str | None = None
    """Raw ``Cancel-After`` header of the create request."""
    prefer: str | None = None
    """Raw ``Prefer`` header of the create request."""
    body: JsonDict = field(default_factory=dict)
    """The whole create body (including ``webhook`` and ``webhook_events_filter``)."""
    webhook: str | None = None
    """The create's ``webhook`` URL (loopback only in the fake), or ``None``: no webhooks are sent."""
    webhook_events: frozenset[WebhookEvent] = frozenset()
    """The events sent to :attr:`webhook` (``webhook_events_filter``, default output and completed)."""
    files: list[FakeFile] = field(default_factory=list)
    effective_input: JsonDict = field(default_factory=dict)
    """``input`` merged over the schema defaults."""
    seed: int = 0
    step: int = 0
    total_steps: int = 4
    _header: str = ""
    _footer: str = ""
    _progress: list[str] = field(default_factory=list)
    _rate: float = 14.0
    _hook_wake: asyncio.Event | None = field(default=None, repr=False)

    @property
    def terminal(self) -> bool:
        """Whether the status is terminal (succeeded, failed, canceled, aborted)."""
        return self.status in TERMINAL_STATUSES

    def monotonic_of(self, moment: datetime) -> float:
        """``moment``, one of this prediction's wall-clock stamps (``started_at``, ``completed_at``), on
        ``time.monotonic()``.

        The create is stamped on both clocks (``created_at``, ``created_mono``), later moments on the wall clock
        only: the wall-clock span from the create to ``moment`` is added to ``created_mono``, so a step of the wall
        clock (NTP) moves the result only if it falls inside the prediction's own seconds.
        """
        return self.created_mono + (moment - self.created_at).total_seconds()

    def to_json(self) -> JsonDict:
        """Return the prediction object as Replicate serialises it (a fresh deep copy)."""
        out: JsonDict = {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "input": copy.deepcopy(self.input),
            "logs": self.logs,
            "output": copy.deepcopy(self.output),
            "data_removed": self.data_removed,
            "error": self.error,
            "status": self.status,
            "created_at": _iso(self.created_at, 3),
            "urls": dict(self.urls),
        }
        if self.started_at is not None:
            out["started_at"] = _iso(self.started_at, 6)
        if self.completed_at is not None:
            out["completed_at"] = _iso(self.completed_at, 6)
        if self.metrics is not None:
            out["metrics"] = dict(self.metrics)
        if self.deadline is not None:
            out["deadline"] = _iso(self.deadline, 3)
        return out


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


_RECORD: Final = web.RequestKey("fake_replicate_record", RecordedRequest)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _iso(dt: datetime, digits: int) -> str:
    """ISO 8601 UTC with ``Z`` and ``digits`` fractional digits (Replicate's precision varies)."""
    text = dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[: len(text) - (6 - digits)] + "Z"


def _mmss(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


def tqdm_line(n: int, total: int, rate: float) -> str:
    """Format one tqdm progress line as flux's logs show it.

    Example: ``' 50%|█████     | 2/4 [00:00<00:00, 14.02it/s]'`` (10-cell bar, ``0/N`` has ``[00:00<?, ?it/s]``;
    under one step a second tqdm prints seconds per step: ``7.50s/it``).
    """
    frac = n / total if total else 1.0
    full, part = divmod(int(frac * 10 * 8), 8)
    bar = "█" * full
    if full < 10:
        bar += " ▏▎▍▌▋▊▉"[part] + " " * (10 - full - 1)
    head = f"{frac * 100:3.0f}%|{bar}| {n}/{total}"
    if n == 0:
        return f"{head} [00:00<?, ?it/s]"
    # Like tqdm: below one step a second the rate is printed inverted, which keeps its precision.
    shown = f"{rate:5.2f}it/s" if rate >= 1 else f"{1 / rate:5.2f}s/it"
    return f"{head} [{_mmss(n / rate)}<{_mmss((total - n) / rate)}, {shown}]"


_CANCEL_AFTER_RE: Final = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def _parse_cancel_after(value: str) -> float | None:
    match = _CANCEL_AFTER_RE.fullmatch(value.strip())
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def _parse_prefer(value: str | None) -> tuple[float, str] | None:
    """Return ``(seconds, Preference-Applied value)`` for ``Prefer: wait`` / ``wait=N``, else ``None``."""
    if not value:
        return None
    for token in value.split(","):
        token = token.strip().lower()
        if token == "wait":
            return 60.0, "wait"
        if token.startswith("wait="):
            try:
                seconds = int(token[5:])
            except ValueError:
                return None
            if seconds <= 0:
                return None
            seconds = min(seconds, 60)
            return float(seconds), f"wait={seconds}"
    return None


def _json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _problem(body: Mapping[str, Any], status: int, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(body, ensure_ascii=False),
        status=status,
        content_type="application/problem+json",
        headers=headers,
    )


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _default_problem(status: int) -> JsonDict:
    if status == 401:
        return dict(_UNAUTHENTICATED)
    if status == 402:
        return {"title": "Insufficient credit", "detail": INSUFFICIENT_CREDIT_DETAIL, "status": 402}
    if status == 404:
        return dict(_NOT_FOUND)
    if status == 429:
        return {"detail": "Request was throttled. Your rate limit resets in ~30s."}
    phrase = _phrase(status)
    return {"title": phrase, "detail": f"{phrase} (injected by FakeReplicate)", "status": status}


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------


class FakeReplicate:
    """An aiohttp server on 127.0.0.1 that behaves like Replicate's predictions API.

    Args:
        token: the API token every API route requires (``Bearer`` or ``Token`` scheme).
        prefix: path prefix of the API routes, e.g. ``"/replicate"`` to mimic a gateway (``""`` = none).
        port: TCP port; ``0`` picks a free ephemeral port.
        scenario: the default :class:`Scenario` (also settable later as :attr:`default_scenario`).
        rate_limits: ``True`` enforces Replicate's documented limits, a :class:`RateLimits` custom ones.
        urls_base: origin used in ``urls.get``/``urls.cancel`` (default ``https://api.replicate.com``).
        stream_base: origin of ``urls.stream``; web_base: origin of ``urls.web``.
        min_cancel_after: lower clamp for ``Cancel-After`` (Replicate's minimum is 5 s).
        default_models: register flux-schnell and flux-schnell-lora.
        seed: seed for ids, log seeds and tqdm rates (deterministic runs); also for :attr:`webhook_secret` and
            webhook ids (from a generator of their own, so prediction ids do not depend on webhooks).
        webhook_secret: the ``whsec_…`` signing secret (default: ``whsec_`` + base64 of 32 seeded random bytes).
        webhook_retry_delays: pauses before each retry of a ``completed`` webhook
            (default :data:`FAST_WEBHOOK_RETRY_DELAYS`; :data:`REPLICATE_WEBHOOK_RETRY_DELAYS` is production-like).
    """

    def __init__(
        self,
        *,
        token: str = "r8_test_token",
        prefix: str = "",
        port: int = 0,
        scenario: Scenario | None = None,
        rate_limits: bool | RateLimits = False,
        urls_base: str = "https://api.replicate.com",
        stream_base: str = "https://stream.replicate.com",
        web_base: str = "https://replicate.com",
        min_cancel_after: float = 5.0,
        default_models: bool = True,
        seed: int | None = None,
        webhook_secret: str | None = None,
        webhook_retry_delays: Sequence[float] = FAST_WEBHOOK_RETRY_DELAYS,
    ) -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"prefix must be '' or start with '/' and not end with '/': {prefix!r}")
        self.token = token
        self.prefix = prefix
        self.default_scenario: Scenario = scenario or Scenario()
        """Scenario for predictions when no queued one is pending."""
        self.rate_limits: RateLimits | None = (
            RateLimits() if rate_limits is True else rate_limits if isinstance(rate_limits, RateLimits) else None
        )
        self.urls_base = urls_base.rstrip("/")
        self.stream_base = stream_base.rstrip("/")
        self.web_base = web_base.rstrip("/")
        self.min_cancel_after = min_cancel_after

        self.requests: list[RecordedRequest] = []
        """Every request received, in arrival order."""
        self.predictions: dict[str, FakePrediction] = {}
        """Every prediction created, by id (insertion order = creation order)."""
        self.models: dict[str, FakeModel] = {}
        """Registered models by ``owner/name``."""
        self.faults: list[Fault] = []
        """Pending faults (consumed in order of registration)."""
        self.throttled_count = 0
        """Number of 429 responses sent (injected or enforced)."""
        self.active_chaos: Chaos | None = None
        """The running :meth:`chaos` mode, if any."""
        self.max_sync_wait: float | None = None
        """Longest a ``Prefer: wait`` create is held, in seconds (``None``: as asked, up to 60; ``0``: answer at
        once, as a gateway without sync mode does)."""
        self.serve_list = True
        """``False``: ``GET /v1/predictions`` answers 404, as on gateways that serve only the prediction routes."""
        self.list_page_size = 100
        """Predictions per page of ``GET /v1/predictions`` (Replicate's is 100)."""
        self.scenario_chooser: Callable[[JsonDict], Scenario | None] | None = None
        """Picks a prediction's scenario from its ``input`` (e.g. by a tag in the prompt); ``None`` from it
        falls back to the queued scenarios, then the default."""

        self._hook_rng = random.Random(None if seed is None else f"webhooks:{seed}")
        self.webhook_secret: str = webhook_secret or "whsec_" + base64.b64encode(self._hook_rng.randbytes(32)).decode()
        """The signing secret of every webhook, served by ``GET /v1/webhooks/default/secret``."""
        self.serve_webhook_secret = True
        """``False``: ``GET /v1/webhooks/default/secret`` answers 404, like a gateway without the route."""
        self.webhook_retry_delays: tuple[float, ...] = tuple(webhook_retry_delays)
        """Pauses before each retry of a ``completed`` webhook (its attempts: one more than this has entries)."""
        self.webhook_min_interval = 0.5
        """Throttle of ``logs`` and ``output`` webhooks: at most one of each per this many seconds per prediction."""
        self.webhook_timeout = 5.0
        """Seconds the fake waits for a receiver's answer before counting the attempt as failed."""
        self.webhook_delay = 0.0
        """Seconds every webhook attempt waits before it is sent (:meth:`delay_webhooks`)."""
        self.webhook_deliveries: list[WebhookDelivery] = []
        """Every webhook attempt (sent, failed or lost), in the order they were made."""
        self._webhook_switches: list[_WebhookSwitch] = []
        self._webhook_session: aiohttp.ClientSession | None = None

        self._port = port
        self._rng = random.Random(seed)
        self._scenario_queue: deque[Scenario] = deque()
        self._windows: dict[str, deque[float]] = {"create": deque(), "other": deque()}
        self._changed = asyncio.Event()
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None

        if default_models:
            self.add_model(
                FLUX_SCHNELL,
                schema=FLUX_SCHNELL_OPENAPI_SCHEMA,
                versions=[FLUX_SCHNELL_VERSION],
                official=True,
                prediction_version=FLUX_SCHNELL_DP_VERSION,
                description="The fastest image generation model tailored for local development and personal use",
            )
            self.add_model(
                FLUX_SCHNELL_LORA,
                schema=FLUX_SCHNELL_LORA_OPENAPI_SCHEMA,
                versions=[FLUX_SCHNELL_LORA_VERSION],
                official=False,
                description="FLUX.1-Schnell with LoRA support",
            )

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Bind 127.0.0.1 and start serving."""
        if self._runner is not None:
            raise RuntimeError("FakeReplicate already started")
        app = web.Application(middlewares=[self._middleware], client_max_size=8 * 1024 * 1024)
        p = self.prefix
        app.router.add_post(p + "/v1/models/{owner}/{name}/predictions", self._handle_create_model, name="create_model")
        app.router.add_post(p + "/v1/predictions", self._handle_create_version, name="create_version")
        app.router.add_get(p + "/v1/predictions", self._handle_list, name="list")
        app.router.add_get(p + "/v1/predictions/{id}", self._handle_get, name="get")
        app.router.add_post(p + "/v1/predictions/{id}/cancel", self._handle_cancel, name="cancel")
        app.router.add_get(p + "/v1/models/{owner}/{name}", self._handle_model, name="model")
        app.router.add_get(p + "/v1/models/{owner}/{name}/versions", self._handle_versions, name="versions")
        app.router.add_get(p + "/v1/models/{owner}/{name}/versions/{version}", self._handle_version, name="version")
        app.router.add_get(p + "/v1/webhooks/default/secret", self._handle_webhook_secret, name="webhook_secret")
        app.router.add_get("/files/{id}/{filename}", self._handle_file, name="file")
        app.router.add_get("/evil/redirect", self._handle_evil_redirect, name="evil_redirect")
        app.router.add_get("/evil/endless", self._handle_evil_endless, name="evil_endless")
        app.router.add_get("/evil/not-image", self._handle_evil_not_image, name="evil_not_image")
        runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self._port)
        await site.start()
        self._port = int(runner.addresses[0][1])
        self._runner = runner
        self._closing = False
        # Replicate does not follow redirects; no cookies, no proxies from the environment.
        self._webhook_session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(), trust_env=False)

    async def close(self) -> None:
        """Stop timelines, release held/stalled requests and shut the server down. Idempotent."""
        if self._runner is None:
            return
        self._closing = True
        self._notify()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._webhook_session is not None:
            session, self._webhook_session = self._webhook_session, None
            await session.close()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._runner is None:
            raise RuntimeError("FakeReplicate not started")
        return self._port

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:{port}`` (no prefix); output files live under ``{origin}/files/``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What a client uses as its API base: ``http://127.0.0.1:{port}{prefix}`` (append ``/v1/...``)."""
        return self.origin + self.prefix

    # ---------------------------------------------------------------- configuration

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

    def set_default_scenario(self, scenario: Scenario | None = None, /, **changes: Any) -> Scenario:
        """Replace the default scenario: ``scenario`` (or the current default) with ``changes`` applied."""
        self.default_scenario = replace(scenario or self.default_scenario, **changes)
        return self.default_scenario

    def push_scenario(self, scenario: Scenario | None = None, /, *, count: int = 1, **changes: Any) -> Scenario:
        """Queue a scenario for the next ``count`` created predictions (FIFO, before the default).

        ``scenario`` defaults to the current default scenario; ``changes`` are applied on top, e.g.
        ``fake.push_scenario(final_status="failed", error="boom")``. Only requests that actually create a
        prediction consume the queue (not 4xx answers, not faults that answer before processing).
        """
        chosen = replace(scenario or self.default_scenario, **changes)
        self._scenario_queue.extend([chosen] * count)
        return chosen

    def clear_scenarios(self) -> None:
        """Drop queued per-prediction scenarios."""
        self._scenario_queue.clear()

    # ---------------------------------------------------------------- faults

    def add_fault(self, fault: Fault) -> Fault:
        """Register a :class:`Fault`; it fires for the next ``fault.count`` matching requests."""
        self.faults.append(fault)
        return fault

    def fail_next(
        self,
        kind: RouteKind | None,
        status: int = 500,
        *,
        count: int = 1,
        method: str | None = None,
        detail: str | None = None,
        body: JsonDict | None = None,
        retry_after: float | str | None = None,
        headers: Mapping[str, str] | None = None,
        processed: bool = False,
    ) -> Fault:
        """The next ``count`` requests of ``kind`` (``None`` = any) answer ``status``.

        API routes get problem+json (Replicate's bodies for 401/402/404/429, a generic one otherwise;
        ``detail`` overrides the text, ``body`` the whole object); ``file`` gets plain text.
        ``retry_after`` adds a ``Retry-After`` header. ``processed=True``: handle first, then fail (a
        create's prediction exists although the client sees the error).
        """
        merged: dict[str, str] = dict(headers or {})
        if retry_after is not None:
            merged["Retry-After"] = str(retry_after)
        problem = body
        if problem is None and detail is not None:
            problem = {**_default_problem(status), "detail": detail}
        return self.add_fault(
            Fault(
                kind=kind,
                action="status",
                status=status,
                count=count,
                method=method,
                processed=processed,
                body=problem,
                headers=merged,
            )
        )

    def throttle_next(
        self,
        kind: RouteKind | None = "create",
        *,
        count: int = 1,
        resets_in: int = 30,
        retry_after: float | str | None = None,
    ) -> Fault:
        """The next ``count`` requests of ``kind`` get 429 ``{"detail": "Request was throttled. Your rate
        limit resets in ~{resets_in}s."}`` plus ``ratelimit-remaining: 0`` / ``ratelimit-reset``; a
        ``Retry-After`` header only if ``retry_after`` is given."""
        headers = {"ratelimit-remaining": "0", "ratelimit-reset": str(resets_in)}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        body = {"detail": f"Request was throttled. Your rate limit resets in ~{resets_in}s."}
        return self.add_fault(Fault(kind=kind, status=429, count=count, body=body, headers=headers))

    def insufficient_credit_next(self, *, count: int = 1) -> Fault:
        """The next ``count`` creates get Replicate's 402 "Insufficient credit" problem+json."""
        return self.fail_next("create", 402, count=count)

    def reset_next(
        self, kind: RouteKind | None, *, count: int = 1, method: str | None = None, processed: bool = False
    ) -> Fault:
        """The next ``count`` requests of ``kind`` get their TCP connection reset, no response.

        For ``kind="create"``: ``processed=False`` resets before anything is created; ``processed=True``
        creates the prediction and then resets (the client cannot know it exists).

        Caveat: aiohttp's client silently retries an idempotent request (GET) once when a *reused*
        keep-alive connection fails, so one GET reset can be invisible to the client; use ``count=2`` to
        make a GET failure surface. POST is never retried by aiohttp.
        """
        return self.add_fault(Fault(kind=kind, action="reset", count=count, method=method, processed=processed))

    def malformed_next(
        self, kind: RouteKind | None, *, count: int = 1, method: str | None = None, processed: bool = True
    ) -> Fault:
        """The next ``count`` requests of ``kind`` get 200 ``application/json`` with body ``{"id": ``.

        By default the request is processed first (a create does create the prediction).
        """
        return self.add_fault(
            Fault(kind=kind, action="malformed", status=200, count=count, method=method, processed=processed)
        )

    def clear_faults(self) -> None:
        """Drop all pending faults."""
        self.faults.clear()

    def stall_next(
        self, kind: RouteKind = "file", *, count: int = 1, after_bytes: int = 8, seconds: float | None = None
    ) -> Fault:
        """The next ``count`` requests of ``kind`` get status 200 and headers, ``after_bytes`` bytes of the body,
        then nothing for ``seconds`` (``None``: until the fake closes) before the connection is reset."""
        return self.add_fault(
            Fault(kind=kind, action="stall", count=count, stall_after_bytes=after_bytes, stall_seconds=seconds)
        )

    def chaos(
        self,
        rate: float = 0.1,
        *,
        seed: int = 0,
        kinds: Sequence[RouteKind] = ("create", "get", "cancel", "model", "file"),
        faults: Sequence[ChaosFault] = CHAOS_FAULTS,
        after_share: float = 0.5,
        retry_after: float | str = 1,
        stall_seconds: float | None = None,
    ) -> Chaos:
        """Fail a share ``rate`` of the requests of ``kinds`` at random, from a generator seeded with ``seed``.

        Each hit picks one of ``faults`` that fits the route: ``500``/``503`` (problem+json; plain text for
        files), ``429`` with ``Retry-After: retry_after`` (never processed), ``reset`` (connection reset),
        ``malformed`` (truncated JSON, API routes only, always after processing) or ``stall`` (files only:
        headers and a few bytes, then silence for ``stall_seconds``, ``None`` = until the fake closes).
        A 5xx or reset of a create or cancel comes after processing for a share ``after_share`` of hits
        (the prediction exists although the client saw a failure), before it otherwise. Scripted faults
        (:meth:`fail_next` and friends) take precedence. Replaces any earlier chaos; returns the
        :class:`Chaos`, whose :attr:`Chaos.events` list every injected fault.
        """
        self.active_chaos = Chaos(
            rate,
            seed=seed,
            kinds=kinds,
            faults=faults,
            after_share=after_share,
            retry_after=retry_after,
            stall_seconds=stall_seconds,
        )
        return self.active_chaos

    def stop_chaos(self) -> Chaos | None:
        """End :meth:`chaos` mode; returns it (its events stay readable)."""
        chaos, self.active_chaos = self.active_chaos, None
        return chaos

    # ---------------------------------------------------------------- webhook switches

    def _add_webhook_switch(
        self,
        action: Literal["drop", "fail", "tamper", "stale"],
        count: int,
        events: Sequence[WebhookEvent] | None,
        seconds: float = 0.0,
    ) -> None:
        chosen = frozenset(events) if events is not None else frozenset(WEBHOOK_EVENTS)
        unknown = chosen - set(WEBHOOK_EVENTS)
        if unknown:
            raise ValueError(f"unknown webhook events: {sorted(unknown)}")
        self._webhook_switches.append(_WebhookSwitch(action, count, chosen, seconds))

    def lose_next_webhooks(
        self,
        count: int = 1,
        events: Sequence[WebhookEvent] = ("completed",),
        *,
        mode: Literal["drop", "fail"] = "drop",
    ) -> None:
        """The next ``count`` webhook attempts of ``events`` are never sent (recorded with ``lost=True``).

        ``mode="drop"``: lost for good, as if the network ate a request the fake believes delivered; a lost
        ``completed`` is *not* retried. ``mode="fail"``: each attempt fails like a connection failure, so a
        ``completed`` is retried on :attr:`webhook_retry_delays` (``count`` below the number of attempts means
        a later retry gets through, with the same ``webhook-id``); an intermediate one is just gone.
        """
        self._add_webhook_switch(mode, count, events)

    def delay_webhooks(self, seconds: float) -> None:
        """Every webhook attempt from now on waits ``seconds`` before it is sent (``0``: no delay).

        Attempts of one prediction stay in order, so a delay also holds that prediction's later events."""
        self.webhook_delay = max(0.0, seconds)

    def tamper_next_webhook(self, count: int = 1, events: Sequence[WebhookEvent] | None = None) -> None:
        """The next ``count`` webhook attempts (of ``events``, ``None`` = any) are signed, then their body is
        changed (a ``"tampered": true`` key is added), so the signature no longer matches: a forgery. A
        receiver that refuses a ``completed`` with a non-2xx gets it again, correctly signed, on a retry."""
        self._add_webhook_switch("tamper", count, events)

    def stale_next_webhook(
        self, seconds: float = 600.0, *, count: int = 1, events: Sequence[WebhookEvent] | None = None
    ) -> None:
        """The next ``count`` webhook attempts (of ``events``, ``None`` = any) carry a ``webhook-timestamp``
        ``seconds`` in the past, correctly signed (a replay of an old message, as a receiver sees it)."""
        self._add_webhook_switch("stale", count, events, seconds)

    def clear_webhook_switches(self) -> None:
        """Drop pending lose/tamper/stale switches and the delay."""
        self._webhook_switches.clear()
        self.webhook_delay = 0.0

    async def replay_webhook(self, delivery: WebhookDelivery) -> WebhookDelivery:
        """Send an earlier delivery again, byte for byte: same URL, body, ``webhook-id``, timestamp and
        signature. Returns the new attempt's record (``replay=True``), once it has ended."""
        record = replace(
            delivery,
            headers=dict(delivery.headers),
            time=time.monotonic(),
            status=None,
            error=None,
            finished=None,
            lost=False,
            replay=True,
        )
        await self._post_webhook(record)
        return record

    # ---------------------------------------------------------------- malicious output hosts

    def redirect_url(self, target: str, *, status: int = 302) -> str:
        """A URL on this fake that answers ``status`` with ``Location: target`` (no auth, like a file host)."""
        return f"{self.origin}/evil/redirect?{urlencode({'to': target, 'status': str(status)})}"

    def endless_url(self, *, declared_length: int | None = None, image_header: bool = True) -> str:
        """A URL on this fake whose body never ends (chunked; or announcing ``declared_length`` bytes).

        The body starts with a PNG's signature and header (``image_header``: 64×64 pixels), so that only a
        size cap stops a reader, however early it checks the header. Bytes
        written are counted in :attr:`RecordedRequest.body_bytes_sent` and :attr:`endless_bytes_sent`.
        """
        query: dict[str, str] = {"header": "1" if image_header else "0"}
        if declared_length is not None:
            query["length"] = str(declared_length)
        return f"{self.origin}/evil/endless?{urlencode(query)}"

    def not_image_url(self) -> str:
        """A URL on this fake serving an HTML page as ``Content-Type: image/png``."""
        return f"{self.origin}/evil/not-image"

    @property
    def endless_bytes_sent(self) -> int:
        """Body bytes written by every request to :meth:`endless_url` so far."""
        return sum(r.body_bytes_sent for r in self.requests if r.path == "/evil/endless")

    # ---------------------------------------------------------------- accessors

    @property
    def api_requests(self) -> list[RecordedRequest]:
        """Requests other than output-file downloads."""
        return [r for r in self.requests if r.kind != "file"]

    @property
    def creates(self) -> list[RecordedRequest]:
        """Create requests (both create routes), including rejected or faulted ones."""
        return [r for r in self.requests if r.kind == "create"]

    @property
    def file_requests(self) -> list[RecordedRequest]:
        """Output-file downloads."""
        return [r for r in self.requests if r.kind == "file"]

    @property
    def file_requests_with_auth(self) -> list[RecordedRequest]:
        """File downloads that carried an ``Authorization`` header (should stay empty)."""
        return [r for r in self.file_requests if r.authorization is not None]

    @property
    def last_prediction(self) -> FakePrediction:
        """The most recently created prediction (LookupError if none)."""
        if not self.predictions:
            raise LookupError("no prediction has been created")
        return next(reversed(self.predictions.values()))

    def count(self, method: str | None = None, kind: RouteKind | None = None) -> int:
        """Number of recorded requests matching ``method`` and/or ``kind`` (``None`` = any)."""
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method.upper()) and (kind is None or r.kind == kind)
        )

    def clear_requests(self) -> None:
        """Forget recorded requests (predictions are kept)."""
        self.requests.clear()

    # ---------------------------------------------------------------- waiting (no sleeps)

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_until(self, predicate: Callable[[], bool], *, timeout: float = 5.0, what: str = "condition") -> None:
        """Return once ``predicate()`` is true; it is re-checked after every request and state change.

        Raises ``TimeoutError`` naming ``what`` after ``timeout`` seconds.
        """
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"FakeReplicate: timed out after {timeout}s waiting for {what}") from None

    async def wait_for_status(self, prediction_id: str, *statuses: Status, timeout: float = 5.0) -> FakePrediction:
        """Wait until the prediction has one of ``statuses`` (none given = any terminal status)."""
        wanted = frozenset(statuses) or TERMINAL_STATUSES

        def reached() -> bool:
            pred = self.predictions.get(prediction_id)
            return pred is not None and pred.status in wanted

        await self.wait_until(reached, timeout=timeout, what=f"{prediction_id} in {sorted(wanted)}")
        return self.predictions[prediction_id]

    async def wait_for_requests(
        self,
        kind: RouteKind | None = None,
        count: int = 1,
        *,
        method: str | None = None,
        answered: bool = False,
        timeout: float = 5.0,
    ) -> list[RecordedRequest]:
        """Wait until at least ``count`` requests of ``kind``/``method`` arrived (``answered=True``: and
        got a response or reset); returns the matching requests."""

        def matching() -> list[RecordedRequest]:
            return [
                r
                for r in self.requests
                if (kind is None or r.kind == kind)
                and (method is None or r.method == method.upper())
                and (not answered or r.response_status is not None or r.reset)
            ]

        await self.wait_until(lambda: len(matching()) >= count, timeout=timeout, what=f"{count} {kind} request(s)")
        return matching()

    def webhooks_for(
        self,
        prediction_id: str | None = None,
        event: WebhookEvent | None = None,
        *,
        ok: bool | None = None,
        done: bool = True,
    ) -> list[WebhookDelivery]:
        """Recorded webhook attempts matching ``prediction_id``/``event`` (``None`` = any); ``ok=True``: only
        those answered 2xx (``False``: only the others); ``done``: only attempts that have ended."""
        return [
            d
            for d in self.webhook_deliveries
            if (prediction_id is None or d.prediction_id == prediction_id)
            and (event is None or d.event == event)
            and (ok is None or d.ok == ok)
            and (not done or d.done)
        ]

    async def wait_for_webhooks(
        self,
        count: int = 1,
        *,
        prediction_id: str | None = None,
        event: WebhookEvent | None = None,
        ok: bool | None = None,
        timeout: float = 5.0,
    ) -> list[WebhookDelivery]:
        """Wait until at least ``count`` ended webhook attempts match (see :meth:`webhooks_for`); return them."""

        def matching() -> list[WebhookDelivery]:
            return self.webhooks_for(prediction_id, event, ok=ok)

        what = f"{count} webhook(s) {event or 'any'} for {prediction_id or 'any prediction'} (ok={ok})"
        await self.wait_until(lambda: len(matching()) >= count, timeout=timeout, what=what)
        return matching()

    async def wait_for_prediction(self, count: int = 1, *, timeout: float = 5.0) -> FakePrediction:
        """Wait until ``count`` predictions exist; return the ``count``-th (1-based)."""
        await self.wait_until(lambda: len(self.predictions) >= count, timeout=timeout, what=f"{count} prediction(s)")
        return list(self.predictions.values())[count - 1]

    # ---------------------------------------------------------------- manual timeline drivers

    def start_processing(self, prediction_id: str) -> FakePrediction:
        """Move a ``starting`` prediction to ``processing`` (``started_at``, seed line, 0% progress)."""
        pred = self._live(prediction_id)
        if pred.status == "starting":
            pred.status = "processing"
            pred.started_at = datetime.now(UTC)
            pred._header = f"Using seed: {pred.seed}\n"
            pred._progress = [tqdm_line(0, pred.total_steps, pred._rate)]
            pred.step = 0
            self._render_logs(pred)
            self._touch(pred)
            self._notify()
        return pred

    def set_progress(self, prediction_id: str, step: int) -> FakePrediction:
        """Set the denoising step (0..total_steps), starting the prediction if needed; logs grow."""
        pred = self.start_processing(prediction_id)
        step = max(0, min(step, pred.total_steps))
        pred._progress = [tqdm_line(i, pred.total_steps, pred._rate) for i in range(step + 1)]
        pred.step = step
        self._render_logs(pred)
        self._touch(pred)
        self._notify()
        return pred

    def emit_output(self, prediction_id: str) -> FakePrediction:
        """Publish the output while the prediction is still ``processing`` (sync-mode early output).

        If every image is NSFW-dropped nothing is published."""
        pred = self.set_progress(prediction_id, self.predictions[prediction_id].total_steps)
        if pred.output is None:
            kept = self._make_files(pred)
            if kept:
                pred.output = self._output_of(pred)
                self._touch(pred)
                self._notify()
        return pred

    def finish(
        self, prediction_id: str, status: FinalStatus | None = None, *, error: str | None = None
    ) -> FakePrediction:
        """Drive a prediction to a terminal status now (default: its scenario's ``final_status``).

        ``succeeded`` produces the outputs (and fails with :data:`NSFW_ERROR` if all are dropped);
        ``failed`` uses ``error`` or the scenario's; ``aborted`` only makes sense from ``starting``. A
        terminal prediction is returned unchanged.
        """
        pred = self.predictions[prediction_id]
        if pred.terminal:
            return pred
        final = status or pred.scenario.final_status
        if final == "aborted":
            self._complete(pred, "aborted")
            return pred
        self.set_progress(prediction_id, pred.total_steps if final == "succeeded" else pred.step)
        if final == "succeeded":
            files = pred.files or self._make_files(pred)
            dropped = self._dropped(pred)
            notes = "".join(f"NSFW content detected in image {i}\n" for i in range(dropped))
            if not files:
                pred._footer = notes
                self._complete(pred, "failed", error=NSFW_ERROR)
                return pred
            pred._footer = notes + f"Total safe images: {len(files)} out of {len(files) + dropped}\n"
            if pred.output is None:
                pred.output = self._output_of(pred)
            self._complete(pred, "succeeded")
        elif final == "failed":
            self._complete(pred, "failed", error=error or pred.scenario.error or DEFAULT_FAILURE_ERROR)
        else:
            self._complete(pred, "canceled")
        return pred

    def remove_data(self, prediction_id: str) -> FakePrediction:
        """Expire the prediction's data now: ``output`` null, ``data_removed`` true, files 404."""
        pred = self.predictions[prediction_id]
        pred.output = None
        pred.data_removed = True
        self._notify()
        return pred

    # ---------------------------------------------------------------- internals: predictions

    def _live(self, prediction_id: str) -> FakePrediction:
        pred = self.predictions[prediction_id]
        if pred.terminal:
            raise RuntimeError(f"prediction {prediction_id} is already {pred.status}")
        return pred

    def _new_id(self) -> str:
        while True:
            pid = "".join(self._rng.choice(_ID_ALPHABET) for _ in range(26))
            if pid not in self.predictions:
                return pid

    def _render_logs(self, pred: FakePrediction) -> None:
        style = pred.scenario.progress_style
        lines = pred._progress if style != "none" else []
        if style == "carriage_return":
            done = pred.step >= pred.total_steps
            progress = "\r".join(lines) + ("\n" if lines and done else "")
        else:
            progress = "".join(line + "\n" for line in lines)
        pred.logs = pred._header + progress + pred._footer

    def _dropped(self, pred: FakePrediction) -> int:
        requested = int(pred.effective_input.get("num_outputs", 1))
        return max(0, min(pred.scenario.nsfw_dropped, requested))

    def _make_files(self, pred: FakePrediction) -> list[FakeFile]:
        sc = pred.scenario
        eff = pred.effective_input
        requested = int(eff.get("num_outputs", 1))
        fmt: str = sc.image_format or str(eff.get("output_format") or "png")
        if fmt not in ("png", "jpg", "webp"):
            fmt = "png"
        huge = math.ceil(sc.huge_image_mib * 1024 * 1024) + 1 if sc.huge_image_mib is not None else None
        if huge is not None:
            fmt = "png"
        size = sc.image_size or self._real_size(eff)
        pred.files = [
            FakeFile(
                prediction_id=pred.id,
                index=i,
                name=f"out-{i}.{fmt}",
                url=f"{self.origin}/files/{pred.id}/out-{i}.{fmt}",
                content_type=images.mime_type(fmt),
                fmt=fmt,
                size=size,
                colour=images.distinct_colour(pred.id, i),
                huge_bytes=huge,
                not_image=sc.file_not_image,
                _data=sc.file_bytes,
            )
            for i in range(self._dropped(pred), requested + sc.extra_outputs)
        ]
        return pred.files

    @staticmethod
    def _real_size(eff: Mapping[str, Any]) -> tuple[int, int]:
        if "width" in eff and "height" in eff:
            return int(eff["width"]), int(eff["height"])
        width, height = ASPECT_RATIOS.get(str(eff.get("aspect_ratio", "1:1")), (1024, 1024))
        if str(eff.get("megapixels", "1")) == "0.25":
            width, height = width // 2, height // 2
        return width, height

    def _output_of(self, pred: FakePrediction) -> Any:
        override = pred.scenario.output_override
        return copy.deepcopy(override) if override is not None else self._shape_output(pred)

    def _shape_output(self, pred: FakePrediction) -> Any:
        shape = pred.scenario.output_shape
        if shape == "string":
            return pred.files[0].url
        if shape == "data":
            return [f.data_url() for f in pred.files]
        return [f.url for f in pred.files]

    def _complete(self, pred: FakePrediction, status: FinalStatus, *, error: str | None = None) -> None:
        now = datetime.now(UTC)
        if status != "aborted" and pred.started_at is None:
            pred.started_at = now
        if status != "succeeded":
            pred.output = None
        pred.status = status
        pred.error = error
        pred.completed_at = now
        total = (now - pred.created_at).total_seconds()
        metrics: JsonDict = {}
        if pred.started_at is not None:
            metrics["predict_time"] = round((now - pred.started_at).total_seconds(), 6)
        if status == "succeeded":
            metrics["image_count"] = len(pred.files)
        metrics["total_time"] = round(total, 6)
        pred.metrics = metrics
        if status != "aborted":
            self._render_logs(pred)
        if pred.scenario.data_removed_after is not None:
            self._spawn(self._remove_later(pred, pred.scenario.data_removed_after))
        self._touch(pred)
        self._notify()

    def _cancel(self, pred: FakePrediction) -> None:
        if pred.terminal:
            return
        self._complete(pred, "canceled")
        if pred.scenario.null_logs_on_cancel:
            pred.logs = None

    async def _remove_later(self, pred: FakePrediction, delay: float) -> None:
        await asyncio.sleep(delay)
        self.remove_data(pred.id)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------- internals: webhooks

    @staticmethod
    def _touch(pred: FakePrediction) -> None:
        """Wake the prediction's webhook worker (its state changed)."""
        if pred._hook_wake is not None:
            pred._hook_wake.set()

    async def _webhook_worker(self, pred: FakePrediction, created: JsonDict) -> None:
        """Send one prediction's webhooks, in order: ``start`` (the state at creation), ``output``/``logs``
        when they change (each at most once per :attr:`webhook_min_interval`, the latest state wins; a pending
        one is superseded by ``completed``), then ``completed`` (retried) once terminal."""
        wake = pred._hook_wake
        assert wake is not None
        events = pred.webhook_events
        if "start" in events:
            await self._send_webhook(pred, "start", created)
        sent: dict[str, Any] = {"output": created["output"], "logs": created["logs"]}
        last: dict[str, float] = {"output": -math.inf, "logs": -math.inf}
        while True:
            wake.clear()
            if pred.terminal:
                if "completed" in events:
                    await self._send_webhook(pred, "completed", pred.to_json())
                return
            snapshot = pred.to_json()
            now = time.monotonic()
            wait: float | None = None
            due: WebhookEvent | None = None
            for event in ("output", "logs"):
                if event not in events or snapshot[event] == sent[event]:
                    continue
                left = last[event] + self.webhook_min_interval - now
                if left <= 0:
                    due = event
                    break
                wait = left if wait is None else min(wait, left)
            if due is not None:
                sent[due] = snapshot[due]
                last[due] = now
                await self._send_webhook(pred, due, snapshot)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await wake.wait()

    def _new_webhook_id(self) -> str:
        alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        return "msg_" + "".join(self._hook_rng.choice(alphabet) for _ in range(27))

    def _take_webhook_switch(self, action: str, event: WebhookEvent) -> _WebhookSwitch | None:
        for switch in self._webhook_switches:
            if switch.action == action and event in switch.events and switch.count > 0:
                switch.count -= 1
                if switch.count <= 0:
                    self._webhook_switches.remove(switch)
                return switch
        return None

    async def _send_webhook(self, pred: FakePrediction, event: WebhookEvent, payload: JsonDict) -> None:
        """Deliver one webhook: a single attempt, or for ``completed`` retries on :attr:`webhook_retry_delays`
        after a connection failure or a non-2xx answer (the same ``webhook-id``, a fresh timestamp)."""
        assert pred.webhook is not None
        body = json.dumps(payload, ensure_ascii=False).encode()
        webhook_id = self._new_webhook_id()
        delays = self.webhook_retry_delays if event == "completed" else ()
        attempt = 0
        while True:
            attempt += 1
            if self.webhook_delay > 0:
                await asyncio.sleep(self.webhook_delay)
            loss = self._take_webhook_switch("drop", event) or self._take_webhook_switch("fail", event)
            timestamp = int(time.time())
            stale = self._take_webhook_switch("stale", event)
            if stale is not None:
                timestamp -= math.ceil(stale.seconds)
            headers = {
                "Content-Type": "application/json",
                "webhook-id": webhook_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign_webhook(self.webhook_secret, webhook_id, timestamp, body),
            }
            sent_body = body
            tampered = self._take_webhook_switch("tamper", event) is not None
            if tampered:
                sent_body = json.dumps({**payload, "tampered": True}, ensure_ascii=False).encode()
            record = WebhookDelivery(
                prediction_id=pred.id,
                event=event,
                webhook_id=webhook_id,
                attempt=attempt,
                url=pred.webhook,
                timestamp=timestamp,
                headers=headers,
                body=sent_body,
                time=time.monotonic(),
                tampered=tampered,
                stale=stale is not None,
            )
            if loss is not None:
                record.lost = True
                record.error = "lost"
                record.finished = time.monotonic()
                self.webhook_deliveries.append(record)
                self._notify()
                if loss.action == "drop":
                    return
            else:
                await self._post_webhook(record)
                if record.ok:
                    return
            if attempt > len(delays):
                return
            await asyncio.sleep(delays[attempt - 1])

    async def _post_webhook(self, record: WebhookDelivery) -> None:
        """Make one HTTP attempt of ``record`` (recorded in :attr:`webhook_deliveries`); no redirects followed."""
        self.webhook_deliveries.append(record)
        self._notify()
        session = self._webhook_session
        try:
            if session is None:
                raise RuntimeError("FakeReplicate not started")
            async with session.post(
                record.url,
                data=record.body,
                headers=record.headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
            ) as response:
                await response.read()
                record.status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError, RuntimeError) as exc:
            record.error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        record.finished = time.monotonic()
        self._notify()

    async def _timeline(self, pred: FakePrediction) -> None:
        sc = pred.scenario
        if sc.start_delay is None:
            return
        await asyncio.sleep(sc.start_delay)
        if pred.terminal:
            return
        if sc.final_status == "aborted":
            self._complete(pred, "aborted")
            return
        self.start_processing(pred.id)
        if sc.setup > 0:
            pred._progress = []  # the bar has not started yet
            self._render_logs(pred)
            await asyncio.sleep(sc.setup)
            if pred.terminal:
                return
            self.set_progress(pred.id, 0)
        if sc.duration is None:
            return
        for step in range(1, pred.total_steps + 1):
            await asyncio.sleep(sc.duration / pred.total_steps)
            if pred.terminal:
                return
            self.set_progress(pred.id, step)
        if sc.wrap_up > 0:
            await asyncio.sleep(sc.wrap_up)
            if pred.terminal:
                return
        if sc.output_lead > 0 and sc.final_status == "succeeded":
            self.emit_output(pred.id)
            await asyncio.sleep(sc.output_lead)
            if pred.terminal:
                return
        self.finish(pred.id)

    async def _deadline_watch(self, pred: FakePrediction, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if pred.status == "starting":
            self._complete(pred, "aborted")
        elif not pred.terminal:
            self._complete(pred, "canceled")

    def _create_prediction(
        self, request: web.Request, model: FakeModel, version: FakeVersion, version_field: str, body: JsonDict
    ) -> FakePrediction:
        pid = self._new_id()
        inp: JsonDict = body.get("input") or {}
        chosen = self.scenario_chooser(inp) if self.scenario_chooser is not None else None
        if chosen is not None:
            scenario = chosen
        else:
            scenario = self._scenario_queue.popleft() if self._scenario_queue else self.default_scenario
        effective = {**_input_defaults(version.openapi_schema), **inp}
        now = datetime.now(UTC)
        stream_token = "".join(self._rng.choice(_ID_ALPHABET) for _ in range(52))
        pred = FakePrediction(
            id=pid,
            model=model.ref,
            version=version_field,
            input=copy.deepcopy(inp),
            scenario=scenario,
            urls={
                "cancel": f"{self.urls_base}/v1/predictions/{pid}/cancel",
                "get": f"{self.urls_base}/v1/predictions/{pid}",
                "stream": f"{self.stream_base}/v1/files/bcwr-{stream_token}",
                "web": f"{self.web_base}/p/{pid}",
            },
            created_at=now,
            created_mono=time.monotonic(),
            cancel_after=request.headers.get("Cancel-After"),
            prefer=request.headers.get("Prefer"),
            body=copy.deepcopy(body),
            effective_input=effective,
            seed=int(seed) if isinstance(seed := inp.get("seed"), int | float) else self._rng.randint(0, 65535),
            total_steps=(steps := max(1, int(effective.get("num_inference_steps", 4)))),
            # Real tqdm reports the rate it measures: a timed scenario's bar says how long is left.
            _rate=(
                round(steps / scenario.duration, 4) if scenario.duration else round(self._rng.uniform(12.0, 16.0), 2)
            ),
        )
        self.predictions[pid] = pred
        model.run_count += 1
        if pred.cancel_after is not None:
            seconds = _parse_cancel_after(pred.cancel_after)
            if seconds is not None:
                seconds = max(seconds, self.min_cancel_after)
                pred.deadline = now + timedelta(seconds=seconds)
                self._spawn(self._deadline_watch(pred, seconds))
        if isinstance(body.get("webhook"), str) and body["webhook"]:
            pred.webhook = body["webhook"]
            chosen_events = body.get("webhook_events_filter")
            pred.webhook_events = (
                DEFAULT_WEBHOOK_EVENTS if chosen_events is None else frozenset(chosen_events)  # validated already
            )
            pred._hook_wake = asyncio.Event()
            self._spawn(self._webhook_worker(pred, pred.to_json()))
        self._spawn(self._timeline(pred))
        self._notify()
        return pred

    # ---------------------------------------------------------------- internals: HTTP

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        route_name = request.match_info.route.name
        kind: RouteKind = _KIND_BY_ROUTE.get(route_name or "", "other")
        body = await request.read()
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            kind=kind,
            headers=CIMultiDict(request.headers),
            query=dict(request.query),
            body=body,
            json=parsed,
            time=time.monotonic(),
            prediction_id=request.match_info.get("id") if kind in ("get", "cancel", "file") else None,
        )
        self.requests.append(record)
        request[_RECORD] = record
        self._notify()
        try:
            response = await self._dispatch(request, handler, record)
        except asyncio.CancelledError:
            record.reset = True
            self._notify()
            raise
        except web.HTTPException as exc:
            record.response_status = exc.status
            self._notify()
            raise
        record.response_status = response.status
        self._notify()
        return response

    def _take_fault(self, method: str, kind: RouteKind) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, kind):
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _fault_response(self, request: web.Request, fault: Fault, kind: RouteKind) -> web.StreamResponse:
        if fault.action == "reset":
            reset_connection(request)
        if fault.action == "malformed":
            return web.Response(body=b'{"id": ', status=200, content_type="application/json")
        if fault.status == 429:
            self.throttled_count += 1
        if kind == "file":
            return web.Response(status=fault.status, text=f"{fault.status} injected error", headers=fault.headers)
        return _problem(fault.body or _default_problem(fault.status), fault.status, fault.headers)

    async def _dispatch(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        record: RecordedRequest,
    ) -> web.StreamResponse:
        kind = record.kind
        is_api = kind in _API_KINDS and request.path.startswith(self.prefix + "/")
        fault = self._take_fault(request.method, kind)
        if fault is None and self.active_chaos is not None:
            drawn = self.active_chaos.draw(kind)
            if drawn is not None:
                name, fault, processed = drawn
                record.chaos, record.chaos_processed = name, processed
                self.active_chaos.events.append(ChaosEvent(record, name, processed))
        if fault is not None and fault.action == "stall":
            return await self._stall(request, fault, record)
        if fault is not None and not fault.processed:
            return self._fault_response(request, fault, kind)
        limit_headers: dict[str, str] = {}
        if is_api:
            throttled, limit_headers = self._rate_check(kind)
            if throttled is not None:
                return throttled
            if not self._authorized(request):
                return _problem(_UNAUTHENTICATED, 401, limit_headers)
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            if not is_api:
                raise
            response = _problem(_default_problem(exc.status), exc.status)
        if fault is not None:
            return self._fault_response(request, fault, kind)
        if is_api and not response.prepared:
            response.headers.update(limit_headers)
        return response

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() in ("bearer", "token") and credential.strip() == self.token

    def _rate_check(self, kind: RouteKind) -> tuple[web.Response | None, dict[str, str]]:
        limits = self.rate_limits or RateLimits()
        bucket = "create" if kind == "create" else "other"
        limit = limits.creates_per_window if bucket == "create" else limits.others_per_window
        window = self._windows[bucket]
        now = time.monotonic()
        while window and window[0] <= now - limits.window:
            window.popleft()
        if self.rate_limits is not None and len(window) >= limit:
            resets = max(1, math.ceil(window[0] + limits.window - now))
            headers = {"ratelimit-remaining": "0", "ratelimit-reset": str(resets)}
            if limits.retry_after_header:
                headers["Retry-After"] = str(resets)
            self.throttled_count += 1
            body = {"detail": f"Request was throttled. Your rate limit resets in ~{resets}s."}
            return _problem(body, 429, headers), headers
        window.append(now)
        return None, {"ratelimit-remaining": str(max(0, limit - len(window))), "ratelimit-reset": "1"}

    def _body(self, request: web.Request) -> JsonDict | web.Response:
        record: RecordedRequest = request[_RECORD]
        if not isinstance(record.json, dict):
            detail = "Request body must be a JSON object" if record.body else "Request body is required"
            return _problem({"title": "Bad request", "detail": detail, "status": 400}, 400)
        return record.json

    async def _handle_create_model(self, request: web.Request) -> web.StreamResponse:
        model = self.models.get(f"{request.match_info['owner']}/{request.match_info['name']}")
        if model is None:
            return _problem(_NOT_FOUND, 404)
        if not model.official:
            # [I] not an official model: the models endpoint needs a version; answer like a bad version.
            return _problem(_INVALID_VERSION, 422)
        body = self._body(request)
        if isinstance(body, web.Response):
            return body
        return await self._create(request, model, model.latest_version, model.prediction_version, body)

    async def _handle_create_version(self, request: web.Request) -> web.StreamResponse:
        body = self._body(request)
        if isinstance(body, web.Response):
            return body
        resolved = self._resolve_version(body.get("version"))
        if resolved is None:
            return _problem(_INVALID_VERSION, 422)
        model, version, version_field = resolved
        return await self._create(request, model, version, version_field, body)

    def _resolve_version(self, ref: Any) -> tuple[FakeModel, FakeVersion, str] | None:
        if not isinstance(ref, str) or not ref:
            return None
        name, sep, version_id = ref.partition(":")
        if sep:
            model = self.models.get(name)
            version = model.version(version_id) if model else None
            return (model, version, version_id) if model and version else None
        if "/" in ref:
            model = self.models.get(ref)
            if model is None or not model.official:
                return None
            return model, model.latest_version, model.prediction_version
        for model in self.models.values():
            version = model.version(ref)
            if version is not None:
                return model, version, ref
        return None

    async def _create(
        self, request: web.Request, model: FakeModel, version: FakeVersion, version_field: str, body: JsonDict
    ) -> web.StreamResponse:
        errors = _webhook_errors(body) + validate_input(version.openapi_schema, body.get("input", {}))
        if errors:
            problem = {
                "detail": "".join(e.detail_line() for e in errors),
                "status": 422,
                "title": "Input validation failed",
                "invalid_fields": [e.to_json() for e in errors],
            }
            return _problem(problem, 422)
        pred = self._create_prediction(request, model, version, version_field, body)
        request[_RECORD].prediction_id = pred.id
        headers = {"Location": pred.urls["get"]}
        wait = _parse_prefer(request.headers.get("Prefer"))
        if wait is not None:
            seconds, applied = wait
            headers["Preference-Applied"] = applied
            if self.max_sync_wait is not None:
                seconds = min(seconds, max(0.0, self.max_sync_wait))
            with contextlib.suppress(TimeoutError):
                await self.wait_until(
                    lambda: pred.terminal or pred.output is not None or self._closing,
                    timeout=seconds,
                    what="sync prediction",
                )
        return _json_response(pred.to_json(), 201, headers)

    async def _handle_get(self, request: web.Request) -> web.StreamResponse:
        pred = self.predictions.get(request.match_info["id"])
        if pred is None:
            return _problem(_NOT_FOUND, 404)
        return _json_response(pred.to_json())

    async def _handle_list(self, request: web.Request) -> web.StreamResponse:
        """Newest first, ``created_after``/``created_before`` filters, pages with a ``cursor`` in ``next``."""
        if not self.serve_list:
            return _problem(_NOT_FOUND, 404)
        bounds: dict[str, datetime] = {}
        for name in ("created_after", "created_before"):
            raw = request.query.get(name)
            if raw is None:
                continue
            try:
                bounds[name] = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                return _problem({"title": "Invalid query", "detail": f"{name} is not a date-time", "status": 400}, 400)
        chosen = [
            pred
            for pred in reversed(self.predictions.values())
            if ("created_after" not in bounds or pred.created_at >= bounds["created_after"])
            and ("created_before" not in bounds or pred.created_at < bounds["created_before"])
        ]
        try:
            offset = int(base64.urlsafe_b64decode(request.query.get("cursor", "") + "==").decode() or 0)
        except ValueError:
            return _problem({"title": "Invalid cursor", "detail": "The cursor is not valid", "status": 400}, 400)
        page = chosen[offset : offset + self.list_page_size]
        following = None
        if offset + self.list_page_size < len(chosen):
            cursor = base64.urlsafe_b64encode(str(offset + self.list_page_size).encode()).decode().rstrip("=")
            query = {**{k: v for k, v in request.query.items() if k != "cursor"}, "cursor": cursor}
            following = f"{self.urls_base}/v1/predictions?{urlencode(query)}"
        results = [pred.to_json() for pred in page]
        for item in results:
            item["source"] = "api"
        return _json_response({"next": following, "previous": None, "results": results})

    async def _handle_cancel(self, request: web.Request) -> web.StreamResponse:
        pred = self.predictions.get(request.match_info["id"])
        if pred is None:
            return _problem(_NOT_FOUND, 404)
        self._cancel(pred)
        return _json_response(pred.to_json())

    def _served_model(self, request: web.Request) -> FakeModel | None:
        model = self.models.get(f"{request.match_info['owner']}/{request.match_info['name']}")
        return model if model is not None and model.serve_schema else None

    async def _handle_model(self, request: web.Request) -> web.StreamResponse:
        model = self._served_model(request)
        return _json_response(model.to_json()) if model else _problem(_NOT_FOUND, 404)

    async def _handle_versions(self, request: web.Request) -> web.StreamResponse:
        model = self._served_model(request)
        if model is None:
            return _problem(_NOT_FOUND, 404)
        results = [v.to_json() for v in reversed(model.versions)]
        return _json_response({"next": None, "previous": None, "results": results})

    async def _handle_version(self, request: web.Request) -> web.StreamResponse:
        model = self._served_model(request)
        version = model.version(request.match_info["version"]) if model else None
        return _json_response(version.to_json()) if version else _problem(_NOT_FOUND, 404)

    async def _handle_webhook_secret(self, request: web.Request) -> web.StreamResponse:
        if not self.serve_webhook_secret:
            return _problem(_NOT_FOUND, 404)
        return _json_response({"key": self.webhook_secret})

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        pred = self.predictions.get(request.match_info["id"])
        name = request.match_info["filename"]
        file = next((f for f in pred.files if f.name == name), None) if pred else None
        if pred is None or file is None or pred.data_removed:
            return web.Response(status=404, text="404 page not found\n")
        sc = pred.scenario
        if sc.file_status != 200:
            reason = _phrase(sc.file_status)
            return web.Response(status=sc.file_status, text=f"{sc.file_status} {reason}\n")
        data = await asyncio.to_thread(lambda: file.data) if file.huge_bytes else file.data
        if sc.file_stall:
            response = web.StreamResponse(
                status=200, headers={"Content-Type": file.content_type, "Content-Length": str(len(data))}
            )
            await response.prepare(request)
            if sc.file_stall_after_bytes:
                await response.write(data[: sc.file_stall_after_bytes])
            await self.wait_until(lambda: self._closing, timeout=3600, what="close")
            reset_connection(request)
        return web.Response(body=data, status=200, headers={"Content-Type": file.content_type})

    async def _stall(self, request: web.Request, fault: Fault, record: RecordedRequest) -> web.StreamResponse:
        """Status 200 and headers, a few body bytes, then silence; then a reset (see :class:`Fault`)."""
        data, content_type = b"\x89PNG\r\n\x1a\n" + bytes(1024), "image/png"
        pred = self.predictions.get(request.match_info.get("id", ""))
        file = next((f for f in pred.files if f.name == request.match_info.get("filename")), None) if pred else None
        if file is not None:
            data = await asyncio.to_thread(lambda: file.data) if file.huge_bytes else file.data
            content_type = file.content_type
        response = web.StreamResponse(
            status=200, headers={"Content-Type": content_type, "Content-Length": str(len(data))}
        )
        await response.prepare(request)
        head = data[: max(0, min(fault.stall_after_bytes, len(data) - 1))]
        if head:
            await response.write(head)
            record.body_bytes_sent = len(head)
        with contextlib.suppress(TimeoutError):
            await self.wait_until(
                lambda: self._closing, timeout=fault.stall_seconds if fault.stall_seconds is not None else 3600
            )
        reset_connection(request)

    async def _handle_evil_redirect(self, request: web.Request) -> web.StreamResponse:
        status = int(request.query.get("status", "302"))
        return web.Response(status=status, headers={"Location": request.query.get("to", "/")})

    async def _handle_evil_endless(self, request: web.Request) -> web.StreamResponse:
        record: RecordedRequest = request[_RECORD]
        headers = {"Content-Type": "image/png"}
        declared = request.query.get("length")
        left = int(declared) if declared is not None else None
        if declared is not None:
            headers["Content-Length"] = declared
        response = web.StreamResponse(status=200, headers=headers)
        if declared is None:
            response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = bytes(range(256)) * 256  # 64 KiB
        header = images.png_header((64, 64)) if request.query.get("header", "1") == "1" else b""
        piece = header + chunk[len(header) :]
        try:
            while not self._closing and (left is None or left > 0):
                if left is not None:
                    piece, left = piece[:left], left - len(piece[:left])
                await response.write(piece)
                record.body_bytes_sent += len(piece)
                piece = chunk
                await asyncio.sleep(0)  # let the reader (and everything else) run
        except (ConnectionError, RuntimeError):
            pass  # the reader hung up, as it should
        self._notify()
        return response

    async def _handle_evil_not_image(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=images.not_an_image(), status=200, headers={"Content-Type": "image/png"})
