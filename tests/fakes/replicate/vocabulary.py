"""Replicate's words as the fake uses them: statuses, route kinds, webhook events, fault names, and the
fixed texts, and the JSON and problem+json answers every route gives.
"""

from __future__ import annotations

import http
import json
from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

from aiohttp import web

JsonDict = dict[str, Any]


Status = Literal["starting", "processing", "succeeded", "failed", "canceled", "aborted"]
"""Every prediction status in Replicate's OpenAPI ``schemas_prediction_response.status``."""


FinalStatus = Literal["succeeded", "failed", "canceled", "aborted"]
"""Terminal statuses a :class:`Scenario` can end in."""


TERMINAL_STATUSES: Final[frozenset[str]] = frozenset(get_args(FinalStatus))


OutputShape = Literal["list", "string", "data"]
"""``list``: ``["http://…/out-0.webp", …]``; ``string``: one URL string (first output);
``data``: a list of ``data:image/…;base64,…`` URLs (Replicate's Oct 2024 sync-mode behaviour)."""


ModelOutput = Literal["files", "text", "text_stream"]
"""What a model returns: image files (the output shapes above), one string (a captioner), or a list of string
pieces that grows while it runs (a language model streaming its tokens, cog's ``Iterator[str]``)."""


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
    "account": "other",
    "file": "file",
    "evil_redirect": "file",
    "evil_endless": "file",
    "evil_not_image": "file",
}


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
