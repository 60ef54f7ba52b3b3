"""The prediction API's typed errors, and the reading of its ``application/problem+json`` error replies.

Each HTTP status the bot acts on has its class; :attr:`ApiError.transient` says whether the same request
may succeed later. :func:`error_from_reply` turns a failed reply into one of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from bot.base.errors import ImagineError, Shown
from bot.i18n import tr


class ApiError(ImagineError):
    """The API refused or failed a request; ``message`` is its own ``detail`` where it gave one."""

    status: int | None = None
    #: Whether the same request may succeed if simply tried again later.
    transient: bool = False

    def __init__(self, message: str | Shown, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class Unauthenticated(ApiError):
    """401: the API token is missing or wrong."""

    status = 401


class InsufficientCredit(ApiError):
    """402: the account behind the token has run out of credit."""

    status = 402


class NotFound(ApiError):
    """404: no such model, version or prediction."""

    status = 404


class InvalidInput(ApiError):
    """422: the input (or version) was rejected; ``invalid_fields`` has the details where given."""

    status = 422

    def __init__(self, message: str | Shown, *, invalid_fields: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.invalid_fields = invalid_fields or []


class RateLimited(ApiError):
    """429: throttled; ``retry_after`` is the wait the API asked for, in seconds, where known."""

    status = 429
    transient = True

    def __init__(self, message: str | Shown, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx, an unreadable reply, or a lost connection: may work if tried again."""

    transient = True


class RequestWithdrawn(ApiError):
    """The caller withdrew the request while it waited for the budget; nothing was sent."""


class ReplyTooLarge(ServerError):
    """The API's reply was larger than :data:`bot.api.client.MAX_REPLY_BYTES`: asking again would not shrink it."""

    transient = False


class CreateOutcomeUnknown(ApiError):
    """A create request may or may not have made a prediction: it is not sent again blindly, to never pay twice.

    ``message`` says what went wrong (“… while creating the prediction”); the caller looks the prediction
    up (:mod:`bot.jobs.recovery`) and words the outcome.
    """


_RETRY_HINT = re.compile(r"~\s*(\d+(?:\.\d+)?)\s*s")


def retry_after_seconds(headers: Mapping[str, str], detail: str) -> float | None:
    """The wait a 429 asks for: its ``Retry-After`` header, else a ``~N s`` in its detail; ``None`` if neither."""
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    match = _RETRY_HINT.search(detail)
    return float(match.group(1)) if match else None


def error_from_reply(status: int, headers: Mapping[str, str], body: bytes) -> ApiError:
    """The error for a failed reply, worded by its problem+json ``detail`` (or ``title``) where it has one."""
    detail, title, invalid = "", "", None
    try:
        problem = json.loads(body)
    except (ValueError, RecursionError):
        problem = None
    if isinstance(problem, dict):
        detail = str(problem.get("detail") or "").strip()
        title = str(problem.get("title") or "").strip()
        fields = problem.get("invalid_fields")
        invalid = fields if isinstance(fields, list) else None
    message: str | Shown = detail or title or tr("The prediction API answered HTTP {status}", status=status)
    if status == 401:
        return Unauthenticated(message)
    if status == 402:
        return InsufficientCredit(message)
    if status == 404:
        return NotFound(message)
    if status == 422:
        return InvalidInput(message, invalid_fields=invalid)
    if status == 429:
        return RateLimited(message, retry_after=retry_after_seconds(headers, detail))
    if status >= 500:
        return ServerError(message, status=status)
    return ApiError(message, status=status)
