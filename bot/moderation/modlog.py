"""The mod-log: blocked-word refusals and settings changes, posted to each server's log channel.

What happens (a refusal, a change) is handed to :meth:`ModLog.submit`, which
only appends to a bounded queue: posting never slows or breaks ``/imagine``
or an admin command. One background task posts the events in order, reading
each server's log channel as it goes (``/imagine-admin log channel``), through
a :class:`ModLogSink` (the Discord one lives in :mod:`bot.discord_app.modlog`).
A channel that is gone or closed to the bot is logged as a warning and the
event skipped: nothing is retried, so one bad channel cannot hold the queue.
When the queue is full the oldest event is dropped, with a warning.

Settings changes come from :meth:`bot.storage.Repository.on_settings_change`,
so every audited setting reaches the mod-log without its command knowing of
it. With several processes, the process where something happens posts it.
Knows nothing of Discord.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.storage import AuditEntry, GuildConfig, Repository
from bot.storage.common import LOG_CHANNEL_ACTION

log = logging.getLogger(__name__)

QUEUE_CAPACITY = 1000
"""Events waiting to be posted at most; past that the oldest is dropped."""

POST_TIMEOUT = 15.0
"""Seconds one post may take (Discord's own rate limits included) before it is given up."""

CLOSE_GRACE = 3.0
"""Seconds :meth:`ModLog.close` lets the queue drain before dropping what is left."""


@dataclass(frozen=True)
class BlockedWordEvent:
    """A prompt refused for a blocked word: who, where, and the word matched (never the prompt)."""

    guild_id: int
    member_id: int
    channel_id: int | None
    word: str
    """The blocked word as the moderators wrote it."""
    at: datetime


@dataclass(frozen=True)
class ApiKeyRejectedEvent:
    """The API refused the server's own key: its jobs were ended and ``/imagine`` waits for a new key."""

    guild_id: int
    last4: str
    """The end of the key, as ``show`` reads it (never more of it)."""
    jobs_ended: int
    at: datetime


ModLogEvent = BlockedWordEvent | AuditEntry | ApiKeyRejectedEvent
"""What the mod-log posts: a blocked-word refusal, a settings change (an audit entry), a rejected API key."""


class ModLogChannelUnavailable(Exception):
    """The log channel is gone or the bot may not post there; the event is skipped, not retried."""


class ModLogSink(Protocol):
    """Where events are posted (the Discord front end)."""

    async def post(self, channel_id: int, event: ModLogEvent) -> None:
        """Post ``event`` to ``channel_id``; :class:`ModLogChannelUnavailable` if that channel cannot take it."""
        ...


def destination(event: ModLogEvent, config: GuildConfig) -> int | None:
    """The channel an event goes to: the server's log channel, if it has one.

    Turning the mod-log off is itself posted, to the channel it is turned off
    in, so the moderators reading it learn why it went quiet.
    """
    if config.log_channel_id is not None:
        return config.log_channel_id
    if isinstance(event, AuditEntry) and event.action == LOG_CHANNEL_ACTION and event.after is None:
        return int(event.before) if event.before and event.before.isdigit() else None
    return None


class ModLog:
    """A bounded queue of events and the one task that posts them in order."""

    def __init__(
        self,
        repository: Repository,
        *,
        capacity: int = QUEUE_CAPACITY,
        post_timeout: float = POST_TIMEOUT,
    ) -> None:
        """Events submitted before :meth:`start` (the command line has no Discord) are ignored."""
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._repository = repository
        self._capacity = capacity
        self._post_timeout = post_timeout
        self._queue: deque[ModLogEvent] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        """Events dropped because the queue was full, since start."""

    def start(self, sink: ModLogSink) -> None:
        """Post to ``sink`` from now on (call inside the running event loop)."""
        if self._task is not None:
            raise RuntimeError("the mod-log is already started")
        self._task = asyncio.get_running_loop().create_task(self._run(sink), name="mod-log")

    def submit(self, event: ModLogEvent) -> None:
        """Queue ``event`` for posting; returns at once, whatever happens to the post."""
        if self._task is None or self._task.done():
            return
        if len(self._queue) >= self._capacity:
            oldest = self._queue.popleft()
            self.dropped += 1
            if self.dropped % 100 == 1:  # one line per hundred, not a flood during a flood
                log.warning(
                    "mod-log queue full (%d waiting); dropped the oldest entry (guild %s), %d dropped so far",
                    self._capacity,
                    oldest.guild_id,
                    self.dropped,
                )
        self._queue.append(event)
        self._idle.clear()
        self._wakeup.set()

    async def flush(self) -> None:
        """Wait until every event submitted so far has been posted or skipped."""
        await self._idle.wait()

    async def close(self, grace: float = CLOSE_GRACE) -> None:
        """Let the queue drain for up to ``grace`` seconds, then stop (what is left is dropped). Idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._idle.wait()), grace)
        if self._queue:
            log.warning("mod-log closed with %d entries not posted", len(self._queue))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._queue.clear()
        self._idle.set()

    async def _run(self, sink: ModLogSink) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._post(sink, self._queue.popleft())

    async def _post(self, sink: ModLogSink, event: ModLogEvent) -> None:
        """Post one event; every failure is logged and the queue moves on."""
        guild_id = event.guild_id
        channel_id: int | None = None
        try:
            channel_id = destination(event, await self._repository.guild_config(guild_id))
            if channel_id is None:
                return
            async with asyncio.timeout(self._post_timeout):
                await sink.post(channel_id, event)
        except ModLogChannelUnavailable as exc:
            log.warning("mod-log channel %s of guild %s: %s; entry skipped", channel_id, guild_id, exc)
        except TimeoutError:
            log.warning("mod-log channel %s of guild %s did not take an entry in time; skipped", channel_id, guild_id)
        except Exception:
            log.exception("could not post to the mod-log of guild %s; entry skipped", guild_id)
