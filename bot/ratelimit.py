"""The request budget: token buckets that keep the whole process under the API's rate limits."""

from __future__ import annotations

import asyncio

from bot.clock import Clock, SystemClock

# Replicate's published limits (requests per minute). We aim a little under them
# so that a sliding-window enforcer never sees the bucket's burst push us over.
REPLICATE_CREATES_PER_MINUTE = 600
REPLICATE_OTHER_PER_MINUTE = 3000
_HEADROOM = 0.9
_BURST_SHARE = 0.05


class TokenBucket:
    """An async token bucket shared by every caller of one kind of request.

    ``pause`` stops everyone sharing the bucket for a while: a 429 means the
    server's view of our rate disagrees with ours, so all callers back off,
    not only the one that was refused.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        burst: float | None = None,
        clock: Clock | None = None,
        window: float = 60.0,
    ) -> None:
        """``per_minute`` requests per ``window`` seconds (a minute unless a test compresses time)."""
        if per_minute <= 0 or window <= 0:
            raise ValueError("per_minute and window must be positive")
        self._clock = clock or SystemClock()
        self._full_rate = per_minute * _HEADROOM / window
        self._full_capacity = max(1.0, burst if burst is not None else per_minute * _BURST_SHARE)
        self._rate = self._full_rate
        self._capacity = self._full_capacity
        self._tokens = self._capacity
        self._stamp = self._clock.monotonic()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    @property
    def per_second(self) -> float:
        """The sustained rate this bucket allows."""
        return self._rate

    def share(self, fraction: float) -> None:
        """Allow only ``fraction`` of the configured rate and burst (this process's share of a deployment)."""
        fraction = min(1.0, max(1e-3, fraction))
        now = self._clock.monotonic()
        if now > self._stamp:  # not while paused: the pause set the stamp ahead
            self._refill(now)
        self._rate = self._full_rate * fraction
        self._capacity = max(1.0, self._full_capacity * fraction)
        self._tokens = min(self._tokens, self._capacity)

    def _refill(self, now: float) -> None:
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    async def acquire(self) -> None:
        """Wait until one request may be sent. Callers are served in arrival order."""
        async with self._lock:
            while True:
                now = self._clock.monotonic()
                if now < self._paused_until:
                    await self._clock.sleep(self._paused_until - now)
                    continue
                self._refill(now)
                # The tolerance keeps float dust from making a wait too short to move a clock.
                if self._tokens >= 1.0 - 1e-9:
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return
                await self._clock.sleep(max(1e-3, (1.0 - self._tokens) / self._rate))

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now (longest pause wins); empties the burst."""
        now = self._clock.monotonic()
        self._paused_until = max(self._paused_until, now + seconds)
        self._tokens = 0.0
        self._stamp = max(self._stamp, self._paused_until)


class RequestBudget:
    """One bucket for prediction creates and one for every other API request."""

    def __init__(
        self,
        creates_per_minute: float = REPLICATE_CREATES_PER_MINUTE,
        other_per_minute: float = REPLICATE_OTHER_PER_MINUTE,
        *,
        clock: Clock | None = None,
        window: float = 60.0,
    ) -> None:
        self.creates = TokenBucket(creates_per_minute, clock=clock, window=window)
        self.other = TokenBucket(other_per_minute, clock=clock, window=window)

    def share(self, processes: int) -> None:
        """Split the deployment's budget evenly: this process is one of ``processes`` live ones."""
        for bucket in (self.creates, self.other):
            bucket.share(1 / max(1, processes))
