"""The request budget: token buckets that keep the whole process under the API's rate limits."""

from __future__ import annotations

import asyncio
from collections import deque

from bot.base.clock import Clock, SystemClock

# Replicate's published limits (requests per minute), "short bursts allowed". We aim a little under them
# (the steady rate at 90 %) so that a sliding-window enforcer never sees the bucket's burst push us over.
REPLICATE_CREATES_PER_MINUTE = 600
REPLICATE_OTHER_PER_MINUTE = 3000
_HEADROOM = 0.9
_BURST_SHARE = 0.05
OTHER_BURST_SHARE = 0.2
"""The burst of the polls' bucket: a fifth of a minute's worth, spent where a batch of jobs ends together."""
WINDOW_HEADROOM = 0.95
"""Share of the per-minute limit never exceeded in any sliding window, whatever the burst (the hard cap)."""


class TokenBucket:
    """An async token bucket shared by every caller of one kind of request, under a sliding-window cap.

    The bucket paces (a steady rate and a burst); the window is the API's own rule (so many requests in any
    minute), kept as a hard cap so that a large burst can never add up to a 429 with the steady rate.

    ``pause`` stops everyone sharing the bucket for a while: a 429 means the
    server's view of our rate disagrees with ours, so all callers back off,
    not only the one that was refused.

    Callers that are not ``urgent`` (a poll far from its prediction's expected end) wait while an urgent one
    waits, and take only tokens nobody urgent needs.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        burst: float | None = None,
        clock: Clock | None = None,
        window: float = 60.0,
        start_full: bool = True,
    ) -> None:
        """``per_minute`` requests per ``window`` seconds (a minute unless a test compresses time).

        ``start_full=False`` starts with no burst: the API still counts what a previous life of the process,
        or a peer, spent this minute, so the burst is earned at the steady rate first.
        """
        if per_minute <= 0 or window <= 0:
            raise ValueError("per_minute and window must be positive")
        self._clock = clock or SystemClock()
        self._window = window
        self._full_rate = per_minute * _HEADROOM / window
        self._full_capacity = max(1.0, burst if burst is not None else per_minute * _BURST_SHARE)
        self._full_limit = max(1.0, per_minute * WINDOW_HEADROOM)
        self._rate = self._full_rate
        self._capacity = self._full_capacity
        self._limit = self._full_limit
        self._tokens = self._capacity if start_full else 0.0
        self._stamp = self._clock.monotonic()
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self._low_lock = asyncio.Lock()
        self._urgent_waiting = 0

    @property
    def per_second(self) -> float:
        """The sustained rate this bucket allows."""
        return self._rate

    @property
    def capacity(self) -> float:
        """The most requests the bucket lets through at once after an idle spell."""
        return self._capacity

    def spare(self) -> float:
        """Requests that could go out at once now: the burst left, within the window's room."""
        now = self._clock.monotonic()
        if now < self._paused_until:
            return 0.0
        self._refill(now)
        self._forget(now)
        return max(0.0, min(self._tokens, self._limit - len(self._sent)))

    def share(self, fraction: float) -> None:
        """Allow only ``fraction`` of the configured rate and burst (this process's share of a deployment)."""
        fraction = min(1.0, max(1e-3, fraction))
        now = self._clock.monotonic()
        if now > self._stamp:  # not while paused: the pause set the stamp ahead
            self._refill(now)
        self._rate = self._full_rate * fraction
        self._capacity = max(1.0, self._full_capacity * fraction)
        self._limit = max(1.0, self._full_limit * fraction)
        self._tokens = min(self._tokens, self._capacity)

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now

    def _forget(self, now: float) -> None:
        sent = self._sent
        while sent and sent[0] <= now - self._window:
            sent.popleft()

    async def acquire(self, *, urgent: bool = True) -> None:
        """Wait until one request may be sent. Callers of one urgency are served in arrival order."""
        if not urgent:
            async with self._low_lock:  # one patient caller looks at a time; the others queue behind it
                while self._urgent_waiting or self.spare() < 1.0 - 1e-9:
                    await self._clock.sleep(max(1e-3, 1.0 / self._rate))
                await self._take()
            return
        self._urgent_waiting += 1
        try:
            await self._take()
        finally:
            self._urgent_waiting -= 1

    async def _take(self) -> None:
        async with self._lock:
            while True:
                now = self._clock.monotonic()
                if now < self._paused_until:
                    await self._clock.sleep(self._paused_until - now)
                    continue
                self._refill(now)
                self._forget(now)
                # The tolerance keeps float dust from making a wait too short to move a clock.
                if self._tokens >= 1.0 - 1e-9 and len(self._sent) < self._limit:
                    self._tokens = max(0.0, self._tokens - 1.0)
                    self._sent.append(now)
                    return
                waits = [1e-3]
                if self._tokens < 1.0 - 1e-9:
                    waits.append((1.0 - self._tokens) / self._rate)
                if len(self._sent) >= self._limit:
                    waits.append(self._sent[0] + self._window - now)
                await self._clock.sleep(max(waits))

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now (longest pause wins); empties the burst."""
        now = self._clock.monotonic()
        self._paused_until = max(self._paused_until, now + seconds)
        self._tokens = 0.0
        self._stamp = max(self._stamp, self._paused_until)


class RequestBudget:
    """One bucket for prediction creates and one for every other API request (polls, mostly)."""

    def __init__(
        self,
        creates_per_minute: float = REPLICATE_CREATES_PER_MINUTE,
        other_per_minute: float = REPLICATE_OTHER_PER_MINUTE,
        *,
        clock: Clock | None = None,
        window: float = 60.0,
    ) -> None:
        self.creates = TokenBucket(creates_per_minute, clock=clock, window=window)
        # Its large burst is earned, not given: a restarted process (and its resumed jobs' polls at once)
        # cannot add a fifth of a minute on top of what its previous life spent.
        self.other = TokenBucket(
            other_per_minute, burst=other_per_minute * OTHER_BURST_SHARE, clock=clock, window=window, start_full=False
        )

    def share(self, processes: int) -> None:
        """Split the deployment's budget evenly: this process is one of ``processes`` live ones."""
        for bucket in (self.creates, self.other):
            bucket.share(1 / max(1, processes))
