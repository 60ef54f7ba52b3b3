"""The PostgreSQL backend's settings cache and the dedicated LISTEN connection that keeps it honest.

``/imagine`` reads a guild's settings on every call, so they are cached; every
settings change sends ``NOTIFY imagine_settings, '<guild id>'`` in its
transaction (delivered on commit), and the listener drops that guild's entry.
Entries are kept only while that connection is up: when it drops, the whole
cache is dropped and nothing is cached until it is back (re-connecting in the
background), because notifications sent meanwhile are lost. A read that raced
a notification is not cached (a generation counter). Each entry also expires
after :data:`CACHE_MAX_AGE`: a backstop for a listener connection that died
without the client noticing (a silent network partition). The same connection
hears of every webhook any process records (``NOTIFY imagine_webhooks``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import asyncpg

from bot.storage.common import SETTINGS_CACHE_SIZE
from bot.storage.records import GuildConfig
from bot.storage.urls import DatabaseUrl

log = logging.getLogger(__name__)

SETTINGS_CHANNEL = "imagine_settings"
"""The NOTIFY channel that carries the id of a guild whose settings changed."""
WEBHOOK_CHANNEL = "imagine_webhooks"
"""The NOTIFY channel that carries the prediction id of a webhook just recorded (by any process)."""

CACHE_MAX_AGE = 5.0
"""Seconds a cached guild's settings are trusted at most, notifications or not (a backstop only)."""

# Errors that mean "the database cannot be reached or refused us": the listener reconnects, open() reports them.
CONNECT_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class SettingsCache:
    """Guild settings kept in memory while notifications can be trusted to invalidate them."""

    def __init__(self) -> None:
        self._configs: dict[int, tuple[float, GuildConfig]] = {}
        self._generation = 0
        self.live = False
        """True while the LISTEN connection is up; nothing is cached (or served from cache) otherwise."""

    @property
    def generation(self) -> int:
        """Bumped by every invalidation: a read that saw it change must not be cached."""
        return self._generation

    def get(self, guild_id: int) -> GuildConfig | None:
        entry = self._configs.get(guild_id)
        if not self.live or entry is None or time.monotonic() - entry[0] > CACHE_MAX_AGE:
            return None
        return entry[1]

    def store(self, config: GuildConfig, generation: int) -> None:
        """Cache ``config`` if nothing was invalidated since ``generation`` was read, before the query."""
        if not self.live or generation != self._generation:
            return
        if len(self._configs) >= SETTINGS_CACHE_SIZE:
            self._configs.clear()
        self._configs[config.guild_id] = (time.monotonic(), config)

    def invalidate(self, guild_id: int | None = None) -> None:
        """Forget one guild's settings, or (``None``) everything."""
        self._generation += 1
        if guild_id is None:
            self._configs.clear()
        else:
            self._configs.pop(guild_id, None)


class SettingsListener:
    """The dedicated LISTEN connection: keeps :class:`SettingsCache` honest, reconnects when it drops."""

    def __init__(self, url: DatabaseUrl, cache: SettingsCache, *, connect_timeout: float) -> None:
        self._url = url
        self._cache = cache
        self._connect_timeout = connect_timeout
        self._conn: Any = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._closed = False
        self.webhook_listeners: list[Callable[[str], None]] = []
        """Called with a prediction id whenever any process records a webhook for it."""

    async def start(self, conn: Any) -> None:
        """Listen on ``conn`` (an open connection this listener now owns)."""
        await conn.add_listener(SETTINGS_CHANNEL, self._notified)
        await conn.add_listener(WEBHOOK_CHANNEL, self._webhook)
        conn.add_termination_listener(self._terminated)
        self._conn = conn
        # Anything read before LISTEN took effect may be stale: start from nothing.
        self._cache.invalidate()
        self._cache.live = True

    def _webhook(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        for listener in self.webhook_listeners:
            try:
                listener(payload)
            except Exception:
                log.exception("a webhook listener failed")

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._cache.invalidate(int(payload))
        except ValueError:
            self._cache.invalidate()

    def _terminated(self, _conn: Any) -> None:
        self._cache.live = False
        self._cache.invalidate()
        self._conn = None
        if not self._closed and self._reconnecting is None:
            log.warning("lost the settings-notification connection to the database; reconnecting")
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.1
        try:
            while not self._closed:
                conn: Any = None
                try:
                    conn = await asyncpg.connect(self._url.url, timeout=self._connect_timeout)
                    if self._closed:
                        await conn.close()
                        return
                    await self.start(conn)
                except CONNECT_ERRORS as exc:
                    if conn is not None:
                        conn.terminate()
                    log.warning("cannot reach the database for settings notifications (%s)", type(exc).__name__)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                log.info("settings notifications are back")
                return
        finally:
            self._reconnecting = None

    async def close(self) -> None:
        """Stop listening and reconnecting. Idempotent."""
        self._closed = True
        self._cache.live = False
        task, self._reconnecting = self._reconnecting, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.remove_termination_listener(self._terminated)
            with contextlib.suppress(*CONNECT_ERRORS):
                await conn.close(timeout=self._connect_timeout)
