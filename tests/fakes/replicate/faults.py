"""Scripted and random failures: :class:`Fault` (status, reset, malformed body, stall) and
:class:`Chaos` (seeded random faults, each kept as a :class:`ChaosEvent`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from aiohttp import web

from tests.fakes.replicate.vocabulary import CHAOS_FAULTS, _default_problem, _problem
from tests.fakes.tcp import reset_connection

if TYPE_CHECKING:
    from tests.fakes.replicate.http import RecordedRequest
    from tests.fakes.replicate.vocabulary import ChaosFault, FaultAction, JsonDict, RouteKind


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


class FaultsMixin:
    """Part of :class:`FakeReplicate`: the switches that script failures, and answering them."""

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
