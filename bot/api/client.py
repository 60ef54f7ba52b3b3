"""The prediction API client: Replicate itself, or any gateway that mirrors it under a prefix.

Owns URLs (always built from the configured base, never from ``urls.get`` in a
response, which gateways pass through pointing at Replicate), authentication,
retries, the request budget, and the model input-schema cache. The replies are
read into :mod:`bot.api.predictions` records, failures into :mod:`bot.api.errors`.
Knows nothing of jobs or Discord.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import aiohttp

from bot.api.errors import (
    ApiError,
    CreateOutcomeUnknown,
    InsufficientCredit,
    NotFound,
    RateLimited,
    ReplyTooLarge,
    RequestWithdrawn,
    ServerError,
    Unauthenticated,
    error_from_reply,
)
from bot.api.modelref import ModelRef
from bot.api.predictions import Prediction, PredictionPage
from bot.api.ratelimit import RequestBudget, TokenBucket
from bot.base.clock import Clock, SystemClock
from bot.i18n import tr

log = logging.getLogger(__name__)

MAX_PREFER_WAIT = 60
WEBHOOK_EVENTS: Final = ("start", "logs", "completed")
"""What the bot asks webhooks for: the start, progress from the logs, and the end."""
MAX_REPLY_BYTES = 16 * 1024 * 1024
"""Largest API reply read. A prediction with long logs is far smaller; ``data:`` URL outputs of four
full-size images (Replicate's sync mode did send those) are the largest real replies, around 10 MiB."""


class _NoSchemaNow(Exception):
    """The schema could not be read this time; not cached."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for requests that are safe to repeat."""

    attempts: int = 6
    base_delay: float = 0.25
    max_delay: float = 30.0

    def delay(self, attempt: int, rng: random.Random, hint: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based); a server's hint wins."""
        if hint is not None:
            return min(max(hint, 0.0), self.max_delay * 4)
        backoff: float = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return backoff * rng.uniform(0.8, 1.2)


class ReplicateClient:
    """Async client for the predictions API, sharing one :class:`aiohttp.ClientSession`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        *,
        budget: RequestBudget | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        request_timeout: float = 30.0,
        on_response: Callable[[str, str, int | None], None] | None = None,
    ) -> None:
        """``on_response(method, path, status)`` hears of every attempt (``status`` ``None``: no answer)."""
        self._session = session
        self._on_response = on_response
        self._base = base_url.rstrip("/")
        self._token = token
        self._clock = clock or SystemClock()
        self.budget = budget or RequestBudget(clock=self._clock)
        self._retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self._timeout = request_timeout
        self._schemas: dict[str, dict[str, Any] | None] = {}
        self._schema_locks: dict[str, asyncio.Lock] = {}

    def url(self, path: str) -> str:
        """``{base}/v1/{path}``: every URL comes from the configured base."""
        return f"{self._base}/v1/{path.lstrip('/')}"

    # ----------------------------------------------------------------- public calls

    async def create(
        self,
        model: ModelRef,
        inputs: Mapping[str, Any],
        *,
        wait: int | None = None,
        cancel_after: float | None = None,
        proceed: Callable[[], bool] | None = None,
        webhook: str | None = None,
        webhook_events: Sequence[str] = WEBHOOK_EVENTS,
    ) -> Prediction:
        """Create a prediction; with ``wait`` the API may hold the reply until it ends (``Prefer: wait``).

        Retried only where nothing can have been created (429, connection refused).
        Any other failure after the request may have reached the API raises
        :class:`CreateOutcomeUnknown` rather than risk a second prediction.
        ``proceed`` is asked just before each attempt goes out (after waiting
        for the budget); ``False`` raises :class:`RequestWithdrawn`, nothing sent.
        """
        body: dict[str, Any] = {"input": dict(inputs)}
        if model.version:
            path, body = "predictions", {"version": model.version, **body}
        else:
            path = f"models/{model.owner}/{model.name}/predictions"
        if webhook:
            body["webhook"] = webhook
            body["webhook_events_filter"] = list(webhook_events)
        headers: dict[str, str] = {}
        timeout = self._timeout
        if wait:
            seconds = max(1, min(MAX_PREFER_WAIT, int(wait)))
            headers["Prefer"] = f"wait={seconds}"
            timeout += seconds
        if cancel_after:
            headers["Cancel-After"] = f"{max(5, int(cancel_after))}s"
        data = await self._send(
            "POST", path, json_body=body, headers=headers, timeout=timeout, create=True, proceed=proceed
        )
        return Prediction.from_json(data)

    async def webhook_secret(self) -> str:
        """The account's webhook signing secret (``GET /v1/webhooks/default/secret``): ``whsec_…``.

        Raises :class:`NotFound` (or :class:`ApiError` 405) where the API has no such route.
        """
        data = await self._send("GET", "webhooks/default/secret")
        key = data.get("key")
        if not isinstance(key, str) or not key.startswith("whsec_"):
            raise ServerError("The API sent a webhook secret that is not a whsec_ key")
        return key

    async def get(self, prediction_id: str, *, urgent: bool = True) -> Prediction:
        """Fetch a prediction's current state (retried on 429, 5xx and connection errors).

        A poll that is not ``urgent`` (far from the prediction's expected end) waits while urgent ones do.
        """
        return Prediction.from_json(await self._send("GET", f"predictions/{prediction_id}", urgent=urgent))

    async def cancel(self, prediction_id: str) -> Prediction:
        """Ask the API to cancel a prediction; cancel is idempotent, so it is retried like a GET."""
        return Prediction.from_json(await self._send("POST", f"predictions/{prediction_id}/cancel"))

    async def list_predictions(
        self, *, created_after: datetime | None = None, page_query: str | None = None
    ) -> PredictionPage:
        """One page of the account's predictions, newest first (``GET /v1/predictions``).

        ``page_query`` is a previous page's :attr:`PredictionPage.next_query`: only the query of the API's
        ``next`` link is kept, and it is sent to the configured base (a gateway passes Replicate's own
        links through). Gateways without the route answer 404 or 405 (:class:`NotFound`, :class:`ApiError`).
        """
        if page_query is not None:
            query = page_query
        else:
            params = {"created_after": _iso(created_after)} if created_after is not None else {}
            query = urlencode(params)
        data = await self._send("GET", f"predictions?{query}" if query else "predictions")
        results = data.get("results")
        if not isinstance(results, list):
            raise ServerError("The API sent a list of predictions without results")
        predictions = []
        for item in results:
            try:
                predictions.append(Prediction.from_json(item))
            except ServerError:
                log.debug("skipping an unreadable entry in the list of predictions")
        following = data.get("next")
        next_query = urlsplit(following).query or None if isinstance(following, str) and following else None
        return PredictionPage(predictions, next_query)

    async def input_schema(self, model: ModelRef) -> dict[str, Any] | None:
        """The model's OpenAPI document (``openapi_schema``), cached; ``None`` where the API serves none.

        Gateways often serve only the prediction routes: a 404/405 (or any
        non-auth failure) means "unknown", never an error for the member.
        """
        key = str(model)
        if key in self._schemas:
            return self._schemas[key]
        lock = self._schema_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key in self._schemas:
                return self._schemas[key]
            try:
                schema = await self._fetch_schema(model)
            except _NoSchemaNow:
                return None  # a passing failure: ask again next time
            self._schemas[key] = schema
            return schema

    async def _fetch_schema(self, model: ModelRef) -> dict[str, Any] | None:
        path = _model_path(model)
        try:
            data = await self._send("GET", path)
        except (Unauthenticated, InsufficientCredit):
            raise
        except NotFound:
            log.info("the API serves no input schema for %s; options are sent unchecked", model)
            return None
        except ApiError as exc:
            if exc.status in (405, 501):  # a gateway without model routes: that will not change
                return None
            log.info("input schema of %s not available now (%s); options are sent unchecked this time", model, exc)
            raise _NoSchemaNow from exc
        version = data.get("latest_version") if not model.version else data
        schema = version.get("openapi_schema") if isinstance(version, dict) else None
        return schema if isinstance(schema, dict) else None

    async def account(self) -> dict[str, Any]:
        """The account this client's key belongs to (``GET /v1/account``): the cheapest proof a key works."""
        return await self._send("GET", "account", timeout=min(self._timeout, 10.0))

    async def model_exists(self, model: ModelRef) -> bool | None:
        """True/False where the API can tell, ``None`` where it serves no model routes."""
        path = _model_path(model)
        try:
            await self._send("GET", path)
        except NotFound:
            return False
        except (Unauthenticated, InsufficientCredit):
            raise
        except ApiError:
            return None
        return True

    async def model_known(self, model: ModelRef, *, known: ModelRef) -> bool | None:
        """Whether the API has ``model``, ``None`` where it cannot tell; never raises :class:`ApiError`.

        ``False`` only when the API does find ``known`` (a model that exists): a gateway
        without model routes may answer "not found" for every model, which says nothing.
        """
        try:
            exists = await self.model_exists(model)
            if exists is False and not await self.model_exists(known):
                return None
        except ApiError as exc:
            log.warning("could not check model %s: %s", model, exc)
            return None
        return exists

    # ----------------------------------------------------------------- transport

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        create: bool = False,
        proceed: Callable[[], bool] | None = None,
        urgent: bool = True,
    ) -> dict[str, Any]:
        bucket: TokenBucket = self.budget.creates if create else self.budget.other
        url = self.url(path)
        all_headers = {"Authorization": f"Bearer {self._token}", **(headers or {})}
        attempt = 0
        while True:
            attempt += 1
            await bucket.acquire(urgent=urgent)
            if proceed is not None and not proceed():
                raise RequestWithdrawn("The request was withdrawn before it was sent")
            try:
                return await self._attempt(method, url, json_body, all_headers, timeout or self._timeout)
            except RateLimited as exc:
                # Nothing was created or read: safe to repeat for every kind of request.
                pause = self._retry.delay(attempt, self._rng, exc.retry_after)
                bucket.pause(pause)
                error: ApiError = exc
            except aiohttp.ClientConnectorError as exc:
                # The connection was never made, so the request never left.
                pause = self._retry.delay(attempt, self._rng)
                error = ServerError(tr("Could not connect to the prediction API ({reason})", reason=_describe(exc)))
            except (aiohttp.ClientError, TimeoutError, ServerError) as exc:
                if create:
                    if isinstance(exc, ServerError) and exc.status is not None:
                        what = tr(
                            "The prediction API answered “{answer}” while creating the prediction", answer=exc.text
                        )
                    elif isinstance(exc, ServerError):
                        reason = exc.text.rstrip(".") if isinstance(exc.text, str) else exc.text
                        what = tr("{reason} while creating the prediction", reason=reason)
                    else:
                        what = tr("The connection to the prediction API failed while creating the prediction")
                    raise CreateOutcomeUnknown(what) from exc
                if isinstance(exc, ServerError) and not exc.transient:
                    raise
                pause = self._retry.delay(attempt, self._rng)
                error = (
                    exc
                    if isinstance(exc, ServerError)
                    else ServerError(tr("The prediction API did not answer ({reason})", reason=_describe(exc)))
                )
            if attempt >= self._retry.attempts:
                raise error
            log.debug("%s %s failed (%s); retry %d in %.2fs", method, path, error, attempt, pause)
            await self._clock.sleep(pause)

    async def _attempt(
        self,
        method: str,
        url: str,
        json_body: Mapping[str, Any] | None,
        headers: Mapping[str, str],
        timeout: float,
    ) -> dict[str, Any]:
        sending = self._session.request(
            method,
            url,
            json=json_body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout, connect=10),
            allow_redirects=False,
        )
        try:
            response = await sending
        except (aiohttp.ClientError, TimeoutError):
            self._observe(method, url, None)
            raise
        self._observe(method, url, response.status)
        async with response:
            body = await _read_capped(response, MAX_REPLY_BYTES)
            if response.status >= 400:
                raise error_from_reply(response.status, response.headers, body)
            if response.status >= 300:
                raise ServerError(tr("The prediction API answered with a redirect ({status})", status=response.status))
            try:
                data = json.loads(body)
            except (ValueError, RecursionError) as exc:
                raise ServerError(tr("The prediction API sent a reply that is not valid JSON")) from exc
            if not isinstance(data, dict):
                raise ServerError(tr("The prediction API sent a reply that is not a JSON object"))
            return data

    def _observe(self, method: str, url: str, status: int | None) -> None:
        if self._on_response is not None:
            self._on_response(method, url.removeprefix(self._base), status)


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or :class:`ReplyTooLarge` as soon as it passes ``limit`` bytes."""
    too_large = ReplyTooLarge(tr("The prediction API sent a reply larger than {size} MiB", size=limit // (1024 * 1024)))
    if response.content_length is not None and response.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _model_path(model: ModelRef) -> str:
    """Where the API describes a model (or one version of it), with its input schema."""
    path = f"models/{model.owner}/{model.name}"
    return f"{path}/versions/{model.version}" if model.version else path


def _describe(exc: BaseException) -> str:
    return type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
