"""Rate limits and edit pacing: Discord's limit of edits per message (:class:`MessageEditLimit`,
enforced with a 429 and true ``X-RateLimit-*`` headers) and the generous headers of every other answer.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
import time
from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakes.discord.errors import DiscordError
from tests.fakes.discord.http import _LIMIT_KEY
from tests.fakes.discord.protocol import EDIT_LIMIT, EDIT_WINDOW

if TYPE_CHECKING:
    from tests.fakes.discord.messages import StoredMessage
    from tests.fakes.discord.protocol import JSON


class _EditRateLimited(DiscordError):
    """A message edited past Discord's per-message limit: 429 with ``retry_after`` (headers set apart)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(429, 0, "You are being rate limited.")
        self.retry_after = retry_after

    def body(self) -> JSON:
        """Discord's 429 body: no ``code`` unless global."""
        # Rounded up: a retry after the rounded wait finds the edit's place free.
        return {"message": self.message, "retry_after": math.ceil(self.retry_after * 1000) / 1000, "global": False}


@dataclasses.dataclass(frozen=True)
class RateLimitedEdit:
    """An edit the fake answered 429 because its message had used up its edits (see :class:`MessageEditLimit`)."""

    #: :class:`Routes` name of the edit.
    route: str
    message_id: int
    #: ``time.monotonic()`` when it arrived.
    at: float


class MessageEditLimit:
    """Discord's limit on edits of one message: ``limit`` requests in any ``window`` seconds (sliding).

    Every edit request that reaches a message counts, whichever route it came by (the interaction's
    ``@original``, the webhook message by id, the channel message), even one refused afterwards for its
    payload; one answered 429 does not. A request made exactly ``window`` seconds after an earlier one no
    longer counts that one.
    """

    def __init__(self, limit: int = EDIT_LIMIT, window: float = EDIT_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._times: dict[int, collections.deque[float]] = {}

    def _recent(self, message_id: int, now: float) -> collections.deque[float]:
        times = self._times.setdefault(message_id, collections.deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def take(self, message_id: int, now: float) -> float | None:
        """Count an edit of ``message_id`` at ``now``; ``None`` if it fits, else the seconds until one would."""
        times = self._recent(message_id, now)
        if len(times) >= self.limit:
            return times[len(times) - self.limit] + self.window - now
        times.append(now)
        return None

    def headers(self, message_id: int, now: float) -> dict[str, str]:
        """``X-RateLimit-*`` as Discord sends them, true to this message's window at ``now``.

        ``Reset-After`` is the time until the oldest counted edit leaves the window (the next edit fits
        then, when ``Remaining`` is 0): discord.py sleeps it out after an answer with ``Remaining: 0``.
        """
        times = self._recent(message_id, now)
        reset_after = times[0] + self.window - now if times else 0.0
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - len(times))),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        }


class RateLimitsMixin:
    """Part of :class:`FakeDiscord`: counting edits per message and the rate-limit headers."""

    @staticmethod
    def _add_ratelimit_headers(response: web.StreamResponse, template: str) -> None:
        bucket = hashlib.sha1(template.encode(), usedforsecurity=False).hexdigest()[:32]
        response.headers.setdefault("X-RateLimit-Limit", "50")
        response.headers.setdefault("X-RateLimit-Remaining", "49")
        response.headers.setdefault("X-RateLimit-Reset", f"{time.time() + 1:.3f}")
        response.headers.setdefault("X-RateLimit-Reset-After", "1.000")
        response.headers.setdefault("X-RateLimit-Bucket", bucket)

    def _count_edit(self, request: web.Request, message: StoredMessage, route: str) -> None:
        """Count an edit of ``message`` under its edit limit: its answer tells how much is left, or it is 429'd.

        The 429 carries ``Via`` like Discord's own, so discord.py waits ``retry_after`` and tries again.
        """
        limit = self.edit_limiter
        if limit is None:
            return
        now = time.monotonic()
        retry_after = limit.take(message.id, now)
        headers = limit.headers(message.id, now)
        if retry_after is not None:
            headers |= {
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                "X-RateLimit-Scope": "user",
                "Retry-After": str(max(1, int(retry_after + 0.999))),
                "Via": "1.1 google",
            }
        request[_LIMIT_KEY] = headers
        if retry_after is not None:
            self.rate_limited.append(RateLimitedEdit(route, message.id, now))
            raise _EditRateLimited(retry_after)
