"""Replicate's sliding-window rate limits (:class:`RateLimits`), enforced when the fake is given them."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakes.replicate.vocabulary import _problem

if TYPE_CHECKING:
    from tests.fakes.replicate.vocabulary import RouteKind


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


class RateLimitsMixin:
    """Part of :class:`FakeReplicate`: counting requests against the limits."""

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
