"""The prediction API client: Replicate itself, or any gateway that mirrors it under a prefix.

Owns URLs (always built from the configured base, never from ``urls.get`` in a
response, which gateways pass through pointing at Replicate), authentication,
``application/problem+json`` errors, retries, the request budget, and the
model input-schema cache. Knows nothing of jobs or Discord.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import aiohttp

from bot.api.modelref import ModelRef
from bot.api.ratelimit import RequestBudget, TokenBucket
from bot.base.clock import Clock, SystemClock
from bot.base.errors import ImagineError

log = logging.getLogger(__name__)

TERMINAL_STATUSES: Final = frozenset({"succeeded", "failed", "canceled", "aborted"})
KNOWN_STATUSES: Final = frozenset({"starting", "processing", *TERMINAL_STATUSES})
MAX_PREFER_WAIT = 60
WEBHOOK_EVENTS: Final = ("start", "logs", "completed")
"""What the bot asks webhooks for: the start, progress from the logs, and the end."""
MAX_REPLY_BYTES = 16 * 1024 * 1024
"""Largest API reply read. A prediction with long logs is far smaller; ``data:`` URL outputs of four
full-size images (Replicate's sync mode did send those) are the largest real replies, around 10 MiB."""


# --------------------------------------------------------------------------- errors


class ApiError(ImagineError):
    """The API refused or failed a request; ``message`` is its own ``detail`` where it gave one."""

    status: int | None = None
    #: Whether the same request may succeed if simply tried again later.
    transient: bool = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
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

    def __init__(self, message: str, *, invalid_fields: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.invalid_fields = invalid_fields or []


class RateLimited(ApiError):
    """429: throttled; ``retry_after`` is the wait the API asked for, in seconds, where known."""

    status = 429
    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx, an unreadable reply, or a lost connection: may work if tried again."""

    transient = True


class RequestWithdrawn(ApiError):
    """The caller withdrew the request while it waited for the budget; nothing was sent."""


class _NoSchemaNow(Exception):
    """The schema could not be read this time; not cached."""


class ReplyTooLarge(ServerError):
    """The API's reply was larger than :data:`MAX_REPLY_BYTES`: asking again would not make it smaller."""

    transient = False


class CreateOutcomeUnknown(ApiError):
    """A create request may or may not have made a prediction: it is not sent again blindly, to never pay twice.

    ``message`` says what went wrong (“… while creating the prediction”); the caller looks the prediction
    up (:mod:`bot.jobs.recovery`) and words the outcome.
    """


# --------------------------------------------------------------------------- predictions

# tqdm: " 75%|███████▌ | 3/4 [00:00<00:00, 15.38it/s]"
_TQDM = re.compile(r"^\s*(\d{1,3})%\s*\|.*?\|\s*(\d+)/(\d+)")
# The rate at the end of a tqdm line: "[00:03<00:01, 1.50it/s]" or "[00:03<00:06, 2.10s/it]".
_TQDM_RATE = re.compile(r",\s*(\d{1,9}(?:\.\d{1,9})?)\s*(it/s|s/it)\s*\]")
_SEED = re.compile(r"\bseed\b\s*[:=]?\s*(\d{1,20})", re.IGNORECASE)


@dataclass(frozen=True)
class Progress:
    """How far a prediction is, from the last progress bar in its logs."""

    fraction: float
    current: int
    total: int
    remaining: float | None = field(default=None, compare=False)
    """Seconds tqdm expects until the last step, from its rate; ``None`` where it shows none.

    Not part of equality: two looks at the same bar position are the same progress."""
    estimated: bool = field(default=False, compare=False)
    """Carried forward from the last bar by its rate (:mod:`bot.jobs.progress`), not read from the logs."""
    step_seconds: float | None = field(default=None, compare=False)
    """Seconds one step takes, by the rate tqdm printed (``None``: no rate yet)."""
    step_error: float = field(default=0.0, compare=False)
    """How far :attr:`step_seconds` may be off because tqdm rounds the rate it prints (seconds)."""


def parse_progress(logs: str | None) -> Progress | None:
    """The last tqdm progress bar in ``logs``, splitting on both ``\\n`` and ``\\r``."""
    if not logs:
        return None
    for line in reversed(re.split(r"[\r\n]", logs)):
        match = _TQDM.match(line)
        if match:
            percent, current, total = (int(g) for g in match.groups())
            step, error = _step_seconds(line)
            steps_left = total - current
            remaining = 0.0 if steps_left <= 0 else None if step is None else steps_left * step
            return Progress(min(percent, 100) / 100.0, current, total, remaining, step_seconds=step, step_error=error)
    return None


def _step_seconds(line: str) -> tuple[float | None, float]:
    """Seconds per step by the rate at the end of a tqdm line, and how far tqdm's rounding may put it off.

    tqdm prints ``1.50it/s`` (or ``2.10s/it`` below one step a second) to as many decimals as shown: half a
    unit of the last one is the rounding's reach.
    """
    rate = _TQDM_RATE.search(line)
    if rate is None:
        return None, 0.0
    text, unit = rate.group(1), rate.group(2)
    value = float(text)
    if value <= 0:
        return None, 0.0
    decimals = len(text.partition(".")[2])
    half_unit = 0.5 * 10.0**-decimals
    if unit == "s/it":
        return value, half_unit
    # d = 1/r: an error of e in r moves d by about e/r² (bounded where the rate is a rounded small number).
    return 1.0 / value, min(1.0 / value, 1.0 / max(value - half_unit, 1e-9) - 1.0 / value)


def parse_seed(logs: str | None) -> int | None:
    """The seed a model reported in its logs (``Using seed: 1234``), the last one wins."""
    if not logs:
        return None
    matches = _SEED.findall(logs)
    return int(matches[-1]) if matches else None


@dataclass(frozen=True)
class Prediction:
    """The parts of a prediction object the bot uses; ``raw`` keeps the whole reply."""

    id: str
    status: str
    output: Any = None
    error: str | None = None
    logs: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    input: Mapping[str, Any] = field(default_factory=dict)
    data_removed: bool = False
    model: str | None = None
    """``owner/name`` of the model, where the API says."""
    version: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    """When the model began running it (the API's clock)."""
    completed_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Any) -> Prediction:
        """Parse a prediction object, or raise :class:`ServerError` if it is not one."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise ServerError("The API sent a reply that is not a prediction (no id)")
        status = data.get("status")
        if not isinstance(status, str):
            raise ServerError(f"The API sent prediction {data['id']} without a status")
        if status not in KNOWN_STATUSES:
            log.warning("prediction %s has an unknown status %r; treating it as still running", data["id"], status)
        error = data.get("error")
        logs = data.get("logs")
        metrics = data.get("metrics")
        inputs = data.get("input")
        model, version = data.get("model"), data.get("version")
        return cls(
            id=data["id"],
            status=status,
            output=data.get("output"),
            error=str(error).strip() or None if error is not None else None,
            logs=logs if isinstance(logs, str) else None,
            metrics=metrics if isinstance(metrics, dict) else {},
            input=inputs if isinstance(inputs, dict) else {},
            data_removed=bool(data.get("data_removed")),
            model=model if isinstance(model, str) else None,
            version=version if isinstance(version, str) else None,
            created_at=parse_timestamp(data.get("created_at")),
            started_at=parse_timestamp(data.get("started_at")),
            completed_at=parse_timestamp(data.get("completed_at")),
            raw=data,
        )

    @property
    def terminal(self) -> bool:
        """Whether the prediction has ended (an unknown status has not)."""
        return self.status in TERMINAL_STATUSES

    @property
    def progress(self) -> Progress | None:
        """Progress from the logs, where the model prints a progress bar."""
        return parse_progress(self.logs)

    @property
    def output_urls(self) -> list[str]:
        """Every output file the bot may fetch: http(s) and ``data:`` URLs, alone or in a list."""
        return [value for value in _collect_outputs(self.output) if isinstance(value, str) and _fetchable(value)]

    @property
    def refused_outputs(self) -> list[str]:
        """Why each output that is not a file the bot may fetch was refused, one sentence each."""
        return [_refusal(value) for value in _collect_outputs(self.output) if not _fetchable(value)]

    @property
    def seed(self) -> int | None:
        """The seed used: the input's if given, else the one the model logged."""
        value = self.input.get("seed")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return parse_seed(self.logs)

    @property
    def predict_time(self) -> float | None:
        """Seconds the model ran, where the API reports it."""
        value = self.metrics.get("predict_time")
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        try:
            seconds = float(value)
        except OverflowError:
            return None
        return seconds if math.isfinite(seconds) and seconds >= 0 else None


_FETCHABLE_SCHEMES: Final = ("http://", "https://", "data:")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]{0,30}):")


def _collect_outputs(output: Any) -> list[Any]:
    """The output's items: a list is flattened, ``None`` (nothing yet) is no item."""
    if output is None:
        return []
    if isinstance(output, list):
        return [item for element in output for item in _collect_outputs(element)]
    return [output]


def _fetchable(value: Any) -> bool:
    return isinstance(value, str) and value.lower().startswith(_FETCHABLE_SCHEMES)


def _refusal(value: Any) -> str:
    if not isinstance(value, str):
        kind = (
            "a JSON object"
            if isinstance(value, dict)
            else "true or false"
            if isinstance(value, bool)
            else "a number"
            if isinstance(value, int | float)
            else "a value"
        )
        return f"the model returned {kind} instead of a link to a file"
    scheme = _SCHEME.match(value.strip())
    if scheme:
        return (
            f"the model returned a {scheme.group(1).lower()}: link, and the bot only downloads "
            "http, https and data: URLs"
        )
    shown = " ".join(value.split())
    shown = shown if len(shown) <= 60 else shown[:59] + "…"
    return f"the model returned text instead of a link to a file (“{shown}”)"


_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$")


def parse_timestamp(value: Any) -> datetime | None:
    """An API timestamp (ISO 8601, ``Z``, 0 to 9 fractional digits) as an aware datetime; ``None`` if unreadable."""
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.match(value.strip())
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    text = whole + (f".{(fraction or '')[:6].ljust(6, '0')}") + ("+00:00" if zone in (None, "Z") else zone)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class PredictionPage:
    """One page of ``GET /v1/predictions``: newest first, and the query of the next page, if any."""

    predictions: list[Prediction]
    next_query: str | None


# --------------------------------------------------------------------------- the client


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


_RETRY_HINT = re.compile(r"~\s*(\d+(?:\.\d+)?)\s*s")


def _retry_after(headers: Mapping[str, str], detail: str) -> float | None:
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    match = _RETRY_HINT.search(detail)
    return float(match.group(1)) if match else None


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
                error = ServerError(f"Could not connect to the prediction API ({_describe(exc)})")
            except (aiohttp.ClientError, TimeoutError, ServerError) as exc:
                if create:
                    if isinstance(exc, ServerError) and exc.status is not None:
                        what = f"The prediction API answered “{exc.message}” while creating the prediction"
                    elif isinstance(exc, ServerError):
                        what = f"{exc.message.rstrip('.')} while creating the prediction"
                    else:
                        what = "The connection to the prediction API failed while creating the prediction"
                    raise CreateOutcomeUnknown(what) from exc
                if isinstance(exc, ServerError) and not exc.transient:
                    raise
                pause = self._retry.delay(attempt, self._rng)
                error = (
                    exc
                    if isinstance(exc, ServerError)
                    else ServerError(f"The prediction API did not answer ({_describe(exc)})")
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
                raise _error_from(response.status, response.headers, body)
            if response.status >= 300:
                raise ServerError(f"The prediction API answered with a redirect ({response.status})")
            try:
                data = json.loads(body)
            except (ValueError, RecursionError) as exc:
                raise ServerError("The prediction API sent a reply that is not valid JSON") from exc
            if not isinstance(data, dict):
                raise ServerError("The prediction API sent a reply that is not a JSON object")
            return data

    def _observe(self, method: str, url: str, status: int | None) -> None:
        if self._on_response is not None:
            self._on_response(method, url.removeprefix(self._base), status)


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or :class:`ReplyTooLarge` as soon as it passes ``limit`` bytes."""
    too_large = ReplyTooLarge(f"The prediction API sent a reply larger than {limit // (1024 * 1024)} MiB")
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


def _error_from(status: int, headers: Mapping[str, str], body: bytes) -> ApiError:
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
    message = detail or title or f"The prediction API answered HTTP {status}"
    if status == 401:
        return Unauthenticated(message)
    if status == 402:
        return InsufficientCredit(message)
    if status == 404:
        return NotFound(message)
    if status == 422:
        return InvalidInput(message, invalid_fields=invalid)
    if status == 429:
        return RateLimited(message, retry_after=_retry_after(headers, detail))
    if status >= 500:
        return ServerError(message, status=status)
    return ApiError(message, status=status)
