"""How fast the shards of this process, and of every process of the bot, may identify.

Discord lets a bot start ``max_concurrency`` gateway sessions every 5 seconds: shard ``s``
identifies in bucket ``s % max_concurrency`` and each bucket may identify once per 5 s
(``session_start_limit`` of ``GET /gateway/bot``), whichever process sends the IDENTIFY; past
that Discord answers with an invalid session, and every IDENTIFY counts against the day's
session starts. discord.py's default hook simply waits 5 s before every identify but the first,
within one process, which turns 16 shards of a large bot into 75 s of start-up even where Discord
would allow them all at once, and lets several processes started together identify at once.

:class:`IdentifyPacer` waits only as the buckets require. Where processes share a PostgreSQL
database it takes each identify's turn there (:meth:`bot.storage.Repository.take_identify_turn`):
turns of one bucket are reserved in order, :data:`IDENTIFY_INTERVAL` plus :data:`SHARED_MARGIN`
apart on the database's clock, so the processes take turns; a process killed before or after its
turn leaves only that turn unused. On SQLite (one process) it paces the process's own shards.

discord.py gives up on a connection whose identify waits too long, and cancels the wait: 60 s around a
reconnect (``Shard.reconnect`` and ``reidentify``), ``shard_connect_timeout`` (180 s) around a first
connect (``launch_shard``), the socket's own connect included. A turn it cancelled is wasted, and the
retry would reserve another at the end of a longer queue. So every wait (for the bucket's lock, the
database and the turn) is bounded well under those (:data:`RECONNECT_WAIT`, :data:`CONNECT_WAIT`), no
turn is reserved further out than what is left of it, and a shard whose turn cannot come in time raises
:class:`TimeoutError` instead: discord.py connects again later (after its back-off), and asks again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

IDENTIFY_INTERVAL = 5.0
"""Seconds between two identifies of one bucket (Discord's rule)."""

SHARED_MARGIN = 1.0
"""Seconds added between turns taken through the database: a turn is given on the database's clock,
but the IDENTIFY reaches Discord a round trip and a scheduling delay later, which differ per process."""

CONNECT_WAIT = 150.0
"""Longest wait of a shard's first connect for its turn (discord.py allows 180 s for all of it)."""

RECONNECT_WAIT = 45.0
"""Longest wait of a reconnecting shard for its turn (discord.py allows 60 s for all of it)."""

TURN_TIMEOUT = 5.0
"""Seconds the database gets to give a turn; past it, or on an error, the process paces itself."""

MAX_CONCURRENCY = 1024
"""Highest ``max_concurrency`` believed (Discord gives 1, 16, 32, 64...): more is a broken answer."""

TakeTurn = Callable[[int, float, float], Awaitable[float | None]]
"""``(bucket, spacing, within)`` → seconds until the bucket's turn, reserved if at most ``within`` away
(``math.inf``: none is, nothing reserved), or ``None`` if turns are not shared."""


class IdentifyPacer:
    """Holds each identify until its bucket's turn: through the database if shared, else in this process.

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
        self._take_turn: TakeTurn | None = None
        self._last: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def set_max_concurrency(self, value: object) -> None:
        """Discord's ``session_start_limit.max_concurrency`` (anything but a sane whole number counts as 1)."""
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_CONCURRENCY:
            self.max_concurrency = value
        else:
            self.max_concurrency = 1

    def share(self, take_turn: TakeTurn) -> None:
        """Take every identify's turn with ``take_turn`` (the database every process of the bot uses)."""
        self._take_turn = take_turn

    async def wait(self, shard_id: int, *, reconnect: bool = False) -> None:
        """Return when shard ``shard_id`` may identify, and count that identify against its bucket.

        Raises :class:`TimeoutError` if that cannot be within :data:`RECONNECT_WAIT` (a ``reconnect``) or
        :data:`CONNECT_WAIT` seconds (nothing is reserved then: discord.py connects again later).
        """
        within = RECONNECT_WAIT if reconnect else CONNECT_WAIT
        started = self._monotonic()
        bucket = shard_id % self.max_concurrency
        # One identify of a bucket at a time: two shards reconnecting together must not both see it free.
        lock = self._locks.setdefault(bucket, asyncio.Lock())
        try:
            async with asyncio.timeout(within):
                await lock.acquire()
        except TimeoutError:
            raise TimeoutError(f"shard {shard_id} waited {within:.0f}s for its turn to identify") from None
        try:
            left = within - (self._monotonic() - started)
            if not await self._shared_turn(shard_id, bucket, left):
                last = self._last.get(bucket)
                if last is not None:
                    delay = last + self._interval - self._monotonic()
                    if delay > 0:
                        await self._sleep(delay)
            self._last[bucket] = self._monotonic()
        finally:
            lock.release()

    async def _shared_turn(self, shard_id: int, bucket: int, left: float) -> bool:
        """Wait for the bucket's turn taken through the database, if it comes within ``left`` seconds;
        ``False`` if there is none to take (the process paces itself)."""
        if self._take_turn is None:
            return False
        if left <= 0:
            raise TimeoutError(f"shard {shard_id} found no time left for its turn to identify")
        try:
            async with asyncio.timeout(min(TURN_TIMEOUT, left)):
                delay = await self._take_turn(bucket, self._interval + SHARED_MARGIN, left)
        except Exception as exc:  # TimeoutError included
            log.warning(
                "shard %d could not take its identify turn from the database (%s); pacing this process alone",
                shard_id,
                str(exc) or type(exc).__name__,
            )
            return False
        if delay is None:
            return False
        if delay > left:
            # Nothing was reserved: the shard asks again when discord.py connects it again.
            log.warning("shard %d's turn to identify is more than %.0fs away; it connects again later", shard_id, left)
            raise TimeoutError(f"shard {shard_id}'s turn to identify is more than {left:.0f}s away")
        if delay > 0:
            log.info(
                "shard %d waits %.1fs for its turn to identify (bucket %d of %d, shared with the bot's other shards)",
                shard_id,
                delay,
                bucket,
                self.max_concurrency,
            )
            await self._sleep(delay)
        return True
