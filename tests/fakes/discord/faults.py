"""Scripted and random failures: :class:`Fault` (the next requests to a route answer 5xx/429 or reset),
:class:`Hold` (a request held mid-flight) and :class:`DiscordChaos` (seeded random 429/5xx).
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from tests.fakes.discord.protocol import Routes

if TYPE_CHECKING:
    from tests.fakes.discord.protocol import JSON


@dataclasses.dataclass
class Fault:
    """A scripted failure: the next ``times`` requests matching ``route`` get ``status`` (or, with ``reset``,
    their connection reset and no answer)."""

    route: str | Callable[[str, str, str], bool]
    status: int
    times: int
    body: JSON
    headers: dict[str, str]
    #: How many requests this fault answered so far.
    hits: int = 0
    #: Only requests that upload files (multipart) match: a message's images, not its other edits.
    uploads_only: bool = False
    #: Only requests that upload no files match: a message's progress edits, not the one with its images.
    no_uploads: bool = False
    #: Reset the TCP connection instead of answering (the request is never handled).
    reset: bool = False

    def matches(self, method: str, path: str, template: str, *, uploading: bool = False) -> bool:
        """Match a :class:`Routes` name exactly, or a ``"METHOD /glob*"`` pattern against the real path."""
        if (self.uploads_only and not uploading) or (self.no_uploads and uploading):
            return False
        if callable(self.route):
            return self.route(method, path, template)
        return self.route == template or fnmatch.fnmatchcase(f"{method} {path}", self.route)


@dataclasses.dataclass
class Hold:
    """Holds the next request matching ``route`` before it is handled (see :meth:`FakeDiscord.hold_next`)."""

    route: str | Callable[[str, str, str], bool]
    arrived: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    released: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    drop: bool = True
    """On release, answer 503 without handling the request (it never reached Discord)."""
    taken: bool = False

    def matches(self, method: str, path: str, template: str) -> bool:
        """Like :meth:`Fault.matches`."""
        if callable(self.route):
            return self.route(method, path, template)
        return self.route == template or fnmatch.fnmatchcase(f"{method} {path}", self.route)

    def release(self) -> None:
        """Let the held request go on (or be dropped)."""
        self.released.set()


class DiscordChaos:
    """Seeded random 429/5xx answers for a share of the requests to some routes (see :meth:`FakeDiscord.chaos`).

    Every request to a chaotic route consumes the same number of draws from the seeded generator, so the
    sequence of faults is the same on every run for the same sequence of requests.
    """

    def __init__(
        self,
        rate: float,
        *,
        seed: int,
        routes: Sequence[str],
        statuses: Sequence[int],
        retry_after: float,
        via_share: float,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1: {rate!r}")
        if not statuses or any(status != 429 and not 500 <= status <= 599 for status in statuses):
            raise ValueError(f"statuses must be 429 or 5xx: {statuses!r}")
        self.rate = rate
        self.seed = seed
        self.routes = tuple(routes)
        self.statuses = tuple(statuses)
        self.retry_after = retry_after
        self.via_share = via_share
        #: ``(route, status, via)`` of every fault injected, in order (``via``: the 429 carried ``Via``).
        self.hits: list[tuple[str, int, bool]] = []
        #: Requests to chaotic routes that were considered (hit or not).
        self.requests_seen = 0
        self._rng = random.Random(seed)

    def draw(self, method: str, path: str, template: str) -> Fault | None:
        """The fault for this request, or ``None``."""
        if not any(route == template or fnmatch.fnmatchcase(f"{method} {path}", route) for route in self.routes):
            return None
        self.requests_seen += 1
        roll, pick, via_roll = self._rng.random(), self._rng.random(), self._rng.random()
        if roll >= self.rate:
            return None
        status = self.statuses[min(len(self.statuses) - 1, int(pick * len(self.statuses)))]
        via = status == 429 and via_roll < self.via_share
        self.hits.append((template, status, via))
        if status == 429:
            headers = {
                "Retry-After": str(max(1, int(self.retry_after + 0.999))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + self.retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{self.retry_after:.3f}",
                "X-RateLimit-Scope": "user",
            }
            if via:
                headers["Via"] = "1.1 google"
            body: JSON = {"message": "You are being rate limited.", "retry_after": self.retry_after, "global": False}
            return Fault(route=template, status=429, times=1, body=body, headers=headers, hits=1)
        body = {"message": f"{status}: chaos", "code": 0}
        return Fault(route=template, status=status, times=1, body=body, headers={}, hits=1)


class FaultsMixin:
    """Part of :class:`FakeDiscord`: the switches that script failures, and taking the next one."""

    def fail_next(
        self,
        route: str | Callable[[str, str, str], bool],
        *,
        times: int = 1,
        status: int = 500,
        code: int = 0,
        message: str | None = None,
        body: JSON | None = None,
        headers: Mapping[str, str] | None = None,
        uploads_only: bool = False,
        no_uploads: bool = False,
    ) -> Fault:
        """Answer the next ``times`` requests matching ``route`` with ``status`` and a JSON error body.

        ``route`` is a :class:`Routes` name, a ``"METHOD /api-path-glob"`` pattern (e.g.
        ``"PATCH /channels/*/messages/*"``; paths without the ``/api/v10`` prefix) or a
        predicate ``(method, path, route) -> bool``. With ``uploads_only`` only requests that
        upload files count (a result's images, not the edits before it); with ``no_uploads`` only
        those that upload none (the edits before a result's images, not the one with them).

        discord.py retries some answers itself before its caller sees them: a 429 with ``Via`` (see
        :meth:`rate_limit_next`), and on its bot routes 500, 502, 504 and 524 (five tries), on webhook
        routes every 5xx (five tries, 25 s of sleeps). A 503 on a bot route, or a 429 without ``Via``,
        reaches the caller at once.
        """
        fault = Fault(
            route=route,
            status=status,
            times=times,
            body=body if body is not None else {"message": message or f"{status}: fault", "code": code},
            headers=dict(headers or {}),
            uploads_only=uploads_only,
            no_uploads=no_uploads,
        )
        self.faults.append(fault)
        return fault

    def reset_next(
        self, route: str | Callable[[str, str, str], bool], *, times: int = 1, uploads_only: bool = False
    ) -> Fault:
        """Reset the TCP connection of the next ``times`` requests matching ``route`` (as :meth:`fail_next`),
        with no answer: the request is never handled. They are recorded with status ``0``."""
        fault = self.fail_next(route, times=times, status=0, uploads_only=uploads_only)
        fault.reset = True
        return fault

    def rate_limit_next(
        self,
        route: str | Callable[[str, str, str], bool],
        *,
        times: int = 1,
        retry_after: float = 0.05,
        via: bool = True,
        scope: Literal["user", "global", "shared"] = "user",
        is_global: bool = False,
        uploads_only: bool = False,
    ) -> Fault:
        """Answer the next ``times`` requests matching ``route`` with 429.

        The body has ``retry_after``/``global``; headers ``Retry-After``, ``X-RateLimit-*``
        (remaining 0), ``X-RateLimit-Scope`` and, when ``via`` (default), ``Via`` — discord.py
        retries a 429 only if ``Via`` is present and raises ``HTTPException`` otherwise.
        """
        headers = {
            "Retry-After": str(max(1, int(retry_after + 0.999))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Scope": scope,
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        if via:
            headers["Via"] = "1.1 google"
        body: JSON = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
        if is_global:
            body["code"] = 0
        return self.fail_next(route, times=times, status=429, body=body, headers=headers, uploads_only=uploads_only)

    def clear_faults(self) -> None:
        """Drop all pending faults."""
        self.faults.clear()

    def chaos(
        self,
        rate: float = 0.1,
        *,
        seed: int = 0,
        routes: Sequence[str] = (*Routes.WEBHOOK_EDITS, Routes.EDIT_MESSAGE),
        statuses: Sequence[int] = (429, 500),
        retry_after: float = 0.05,
        via_share: float = 0.5,
    ) -> DiscordChaos:
        """Answer a share ``rate`` of the requests to ``routes`` with one of ``statuses``, drawn from a
        generator seeded with ``seed``.

        ``routes`` are :class:`Routes` names or ``"METHOD /api-path-glob"`` patterns (default: every message
        edit). A 429 looks like :meth:`rate_limit_next`'s; a share ``via_share`` of them carry ``Via`` (which
        discord.py retries by itself), the others do not (discord.py raises them to the caller). Scripted
        faults take precedence. Replaces any earlier chaos; returns the :class:`DiscordChaos`.
        """
        self.active_chaos = DiscordChaos(
            rate, seed=seed, routes=routes, statuses=statuses, retry_after=retry_after, via_share=via_share
        )
        return self.active_chaos

    def stop_chaos(self) -> DiscordChaos | None:
        """End :meth:`chaos` mode; returns it (its hits stay readable)."""
        chaos, self.active_chaos = self.active_chaos, None
        return chaos

    def hold_next(self, route: str | Callable[[str, str, str], bool], *, drop: bool = True) -> Hold:
        """Hold the next request matching ``route`` until :meth:`Hold.release` (for crashes mid-request).

        With ``drop`` (default) the released request is answered 503 and never handled, as if it never
        reached Discord (the client that sent it is usually dead by then).
        """
        hold = Hold(route=route, drop=drop)
        self.holds.append(hold)
        return hold

    def _take_fault(self, method: str, path: str, template: str, *, uploading: bool) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.matches(method, path, template, uploading=uploading):
                fault.times -= 1
                fault.hits += 1
                return fault
        return None
