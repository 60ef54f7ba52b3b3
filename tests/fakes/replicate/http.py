"""HTTP plumbing: the middleware that records every request (:class:`RecordedRequest`) and applies faults,
chaos, rate limits and authentication.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from multidict import CIMultiDict

from tests.fakes.replicate.faults import ChaosEvent
from tests.fakes.replicate.vocabulary import _API_KINDS, _KIND_BY_ROUTE, _UNAUTHENTICATED, _default_problem, _problem

if TYPE_CHECKING:
    from tests.fakes.replicate.vocabulary import ChaosFault, JsonDict, RouteKind


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

    @property
    def token(self) -> str | None:
        """The API token the request carried (its account), if any."""
        scheme, _, credential = (self.authorization or "").partition(" ")
        return credential.strip() if scheme.lower() in ("bearer", "token") and credential.strip() else None


_RECORD: Final = web.RequestKey("fake_replicate_record", RecordedRequest)


class HttpMixin:
    """Part of :class:`FakeReplicate`: receiving, recording and answering requests."""

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
        """A known account's token that is not revoked (each token is an account: see ``accounts.py``)."""
        return self._account_of(request) is not None

    def _body(self, request: web.Request) -> JsonDict | web.Response:
        record: RecordedRequest = request[_RECORD]
        if not isinstance(record.json, dict):
            detail = "Request body must be a JSON object" if record.body else "Request body is required"
            return _problem({"title": "Bad request", "detail": detail, "status": 400}, 400)
        return record.json
