"""How fast the shards of this process may identify.

Discord lets a bot start ``max_concurrency`` gateway sessions every 5 seconds: shard ``s``
identifies in bucket ``s % max_concurrency`` and each bucket may identify once per 5 s
(``session_start_limit`` of ``GET /gateway/bot``). discord.py's default hook simply waits 5 s
before every identify but the first, which turns 16 shards of a large bot into 75 s of start-up
even where Discord would allow them all at once; :class:`IdentifyPacer` waits only as the
buckets require.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

IDENTIFY_INTERVAL = 5.0
"""Seconds between two identifies of one bucket (Discord's rule)."""


class IdentifyPacer:
    """Holds each identify until its bucket's previous one is :data:`IDENTIFY_INTERVAL` seconds old.

    ``max_concurrency`` starts at 1 (the safe value: one identify per 5 s) until
    :meth:`set_max_concurrency` is told Discord's figure.
    """

    def __init__(
        self,
        *,
        interval: float = IDENTIFY_INTERVAL,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        """``monotonic`` and ``sleep`` are the clock (tests pass a fake one)."""
        self.max_concurrency = 1
        self._interval = interval
        self._monotonic = monotonic
        self._sleep = sleep
        self._last: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def set_max_concurrency(self, value: int) -> None:
        """Discord's ``session_start_limit.max_concurrency`` (values below 1 count as 1)."""
        self.max_concurrency = max(1, value)

    async def wait(self, shard_id: int) -> None:
        """Return when shard ``shard_id`` may identify, and count that identify against its bucket."""
        bucket = shard_id % self.max_concurrency
        # One identify of a bucket at a time: two shards reconnecting together must not both see it free.
        async with self._locks.setdefault(bucket, asyncio.Lock()):
            last = self._last.get(bucket)
            if last is not None:
                delay = last + self._interval - self._monotonic()
                if delay > 0:
                    await self._sleep(delay)
            self._last[bucket] = self._monotonic()
