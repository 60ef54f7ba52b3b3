"""The shared store: :class:`bot.storage.Repository` on PostgreSQL, for one process or many.

One :class:`PostgresRepository` owns an asyncpg pool. Every method is one
transaction on one pooled connection; many processes may use the same database
at once, so correctness never rests on anything held in this process:

* **Read-modify-write under row locks.** A change that depends on what is
  stored (a charge against today's count, new limits against the old ones)
  first locks the row (``SELECT … FOR UPDATE``), after making sure it exists
  with ``INSERT … ON CONFLICT DO NOTHING``; a concurrent transaction, in this
  process or another, waits for the lock and then sees the committed result.
  Plain changes are single conditional statements (``… ON CONFLICT DO
  NOTHING RETURNING``, ``DELETE … RETURNING``, ``UPDATE … WHERE refunded = 0
  RETURNING``), whose row counts say whether anything happened.
* **Audit in the same transaction** as the change it records, as on SQLite.
* **Settings cache: LISTEN/NOTIFY.** ``/imagine`` reads a guild's settings on
  every call, so they are cached; every settings change sends
  ``NOTIFY imagine_settings, '<guild id>'`` in its transaction (delivered on
  commit). A dedicated connection LISTENs and drops that guild's entry.
  Entries are kept only while that connection is up: when it drops, the whole
  cache is dropped and nothing is cached until it is back (re-connecting in
  the background), because notifications sent meanwhile are lost. A read
  that raced a notification is not cached (a generation counter). Each entry
  also expires after :data:`CACHE_MAX_AGE` (5 s): a backstop for a listener
  connection that died without the client noticing (a silent network
  partition), so no change takes longer than that to be seen. Normally
  another process's change is seen as soon as its notification arrives,
  within milliseconds; this process's own changes at once.

Discord ids are BIGINT (snowflakes are below 2**63), moments TIMESTAMPTZ
(returned in UTC), the journal's request and target JSONB.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from bot.clock import Clock, SystemClock
from bot.costs import month_of
from bot.storage import (
    AuditEntry,
    Budget,
    Charge,
    GuildConfig,
    JobRecord,
    JobTally,
    Limits,
    RepositoryClosedError,
    RoleLimits,
    Spend,
    StorageError,
    Usage,
)
from bot.storage.common import (
    JOB_COLUMN_NAMES,
    JOB_COLUMNS,
    LOG_CHANNEL_ACTION,
    RUN_TIME_WEIGHT,
    SETTINGS_CACHE_SIZE,
    TALLY_SQL,
    SettingsChanges,
    budget_text,
    check_id,
    decide_budget,
    decide_charge,
    history_limit,
    id_text,
    image_count,
    job_changes,
    job_record,
    job_values,
    limits_text,
    merge_limits,
    merge_role_limits,
    model_name,
    model_roles_of,
    model_roles_text,
    non_negative,
    role_limits_text,
    usage_on,
    utc,
    word_and_key,
)
from bot.storage.migrations import Migration
from bot.storage.postgres_migrations import MIGRATIONS, apply_migrations
from bot.storage.urls import DatabaseUrl, mask_url, parse_database_url

log = logging.getLogger(__name__)

SETTINGS_CHANNEL = "imagine_settings"
"""The NOTIFY channel that carries the id of a guild whose settings changed."""
WEBHOOK_CHANNEL = "imagine_webhooks"
"""The NOTIFY channel that carries the prediction id of a webhook just recorded (by any process)."""

CACHE_MAX_AGE = 5.0
"""Seconds a cached guild's settings are trusted at most, notifications or not (a backstop only)."""

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for the server to answer a new connection: a wrong host fails quickly, not in a minute."""

# Errors that mean "the database cannot be reached or refused us", turned into StorageError at open.
_CONNECT_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def _init_connection(conn: Any) -> None:
    """Every connection decodes JSONB to Python objects and encodes them back, as the SQLite side does by hand."""
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


# ---------------------------------------------------------------------------- the settings cache


class _SettingsCache:
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


class _SettingsListener:
    """The dedicated LISTEN connection: keeps :class:`_SettingsCache` honest, reconnects when it drops."""

    def __init__(self, url: DatabaseUrl, cache: _SettingsCache, *, connect_timeout: float) -> None:
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
                except _CONNECT_ERRORS as exc:
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
            with contextlib.suppress(*_CONNECT_ERRORS):
                await conn.close(timeout=self._connect_timeout)


# ---------------------------------------------------------------------------- repository


class PostgresRepository:
    """:class:`bot.storage.Repository` on PostgreSQL. Open it with :meth:`open`."""

    def __init__(
        self,
        pool: Any,
        listener: _SettingsListener,
        cache: _SettingsCache,
        *,
        url: DatabaseUrl,
        clock: Clock | None = None,
        applied_migrations: Sequence[int] = (),
    ) -> None:
        """Wrap an open pool over a migrated database; use :meth:`open` rather than calling this directly."""
        self._pool: Any = pool
        self._listener = listener
        self._cache = cache
        self._url = url
        self._clock: Clock = clock or SystemClock()
        self.applied_migrations = tuple(applied_migrations)
        """The schema versions this open applied (empty if the database was up to date)."""
        self._closed = False
        self._changes = SettingsChanges()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # ------------------------------------------------------------- lifecycle

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        clock: Clock | None = None,
        migrations: Sequence[Migration] = MIGRATIONS,
        connect_timeout: float = CONNECT_TIMEOUT,
        pool_size: int = 10,
    ) -> PostgresRepository:
        """Connect to the database at ``url``, bring its schema up to date, and open a pool.

        Raises :class:`~bot.storage.StorageError` (its message shows the URL with
        the password masked) when the server cannot be reached or refuses us,
        and :class:`~bot.storage.SchemaVersionError` for a database written by a
        newer bot.
        """
        try:
            parsed = parse_database_url(url)
        except ValueError as exc:
            raise StorageError(f"DATABASE_URL {exc}") from None
        if parsed.backend != "postgres":
            raise StorageError(f"not a PostgreSQL URL: {parsed.masked}")
        where = f"the database {parsed.masked}"
        try:
            conn = await asyncpg.connect(parsed.url, timeout=connect_timeout)
        except _CONNECT_ERRORS as exc:
            raise StorageError(f"cannot connect to {where}: {_reason(exc)}") from None
        pool: Any = None
        cache = _SettingsCache()
        listener = _SettingsListener(parsed, cache, connect_timeout=connect_timeout)
        try:
            try:
                applied = await apply_migrations(conn, migrations, now=(clock or SystemClock()).now(), where=where)
                pool = await asyncpg.create_pool(
                    parsed.url,
                    min_size=1,
                    max_size=pool_size,
                    timeout=connect_timeout,
                    init=_init_connection,
                )
                # The migration connection becomes the dedicated LISTEN connection.
                await listener.start(conn)
            except _CONNECT_ERRORS as exc:
                raise StorageError(f"cannot use {where}: {_reason(exc)}") from None
        except BaseException:
            await listener.close()
            if pool is not None:
                await pool.close()
            with contextlib.suppress(*_CONNECT_ERRORS):
                await conn.close(timeout=connect_timeout)
            raise
        return cls(pool, listener, cache, url=parsed, clock=clock, applied_migrations=applied)

    async def close(self) -> None:
        """Release the database once the calls in flight have finished; later calls raise. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._idle.wait()
        await self._listener.close()
        await self._pool.close()

    @property
    def url(self) -> str:
        """The database's URL with its password masked."""
        return self._url.masked

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """One pooled connection, counted in flight so that :meth:`close` waits for it."""
        if self._closed:
            raise RepositoryClosedError(f"the repository for {self._url.masked} is closed")
        self._in_flight += 1
        self._idle.clear()
        try:
            async with self._pool.acquire() as conn:
                yield conn
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Any]:
        """One READ COMMITTED transaction; committed on success, rolled back otherwise (cancellation included).

        Reads need none: each is a single statement, which sees one snapshot by itself.
        """
        async with self._connection() as conn:
            try:
                async with conn.transaction():
                    yield conn
            except BaseException:
                self._changes.discard(conn)
                raise
            committed = self._changes.take(conn)
        for entry in committed:
            # Again after the commit: a read between _audit's invalidation and the commit saw the old settings
            # and may have cached them; the listeners below read the new ones.
            self._cache.invalidate(entry.guild_id)
        self._changes.announce(committed)

    # ------------------------------------------------------------- small SQL helpers

    @staticmethod
    async def _ensure_guild(conn: Any, guild_id: int) -> None:
        # The guilds row is the parent every per-server row points to.
        await conn.execute("INSERT INTO guilds (guild_id) VALUES ($1) ON CONFLICT DO NOTHING", guild_id)

    async def _audit(
        self, conn: Any, guild_id: int, actor_id: int, action: str, before: str | None, after: str | None
    ) -> None:
        # Every settings change is audited, so this is the one place that tells every process
        # (this one included: the notification comes back to our own listener) to forget the guild.
        self._cache.invalidate(guild_id)
        entry = AuditEntry(guild_id, actor_id, action, before, after, utc(self._clock.now()))
        await conn.execute(
            "INSERT INTO audit_log (guild_id, actor_id, action, before, after, at) VALUES ($1, $2, $3, $4, $5, $6)",
            guild_id,
            actor_id,
            action,
            before,
            after,
            entry.at,
        )
        await conn.execute("SELECT pg_notify($1, $2)", SETTINGS_CHANNEL, str(guild_id))
        self._changes.record(conn, entry)

    @staticmethod
    async def _locked_guild(conn: Any, guild_id: int) -> Any:
        """The guild's row, created if need be and locked until the transaction ends.

        ``FOR NO KEY UPDATE`` rather than ``FOR UPDATE``: inserting a child row
        (an allowed model, a usage row) only needs ``KEY SHARE`` on its parent,
        which this does not block.
        """
        await PostgresRepository._ensure_guild(conn, guild_id)
        return await conn.fetchrow(
            "SELECT default_model, cooldown_seconds, daily_images, concurrent_jobs, log_channel_id FROM guilds "
            "WHERE guild_id = $1 FOR NO KEY UPDATE",
            guild_id,
        )

    # ------------------------------------------------------------- moderation settings

    async def guild_config(self, guild_id: int) -> GuildConfig:
        """The server's settings (defaults if it never set any); cached while notifications flow."""
        check_id("guild_id", guild_id)
        cached = self._cache.get(guild_id)
        if cached is not None:
            return cached
        generation = self._cache.generation
        async with self._connection() as conn:
            # One statement: one snapshot of the four tables, one round trip.
            row = await conn.fetchrow(
                """
                SELECT g.default_model, g.cooldown_seconds, g.daily_images, g.concurrent_jobs, g.log_channel_id,
                       ARRAY(SELECT model FROM allowed_models WHERE guild_id = $1 ORDER BY seq) AS models,
                       ARRAY(SELECT channel_id FROM allowed_channels WHERE guild_id = $1) AS channels,
                       ARRAY(SELECT word FROM blocked_words WHERE guild_id = $1 ORDER BY seq) AS words,
                       ARRAY(SELECT ROW(model, role_id) FROM model_roles WHERE guild_id = $1) AS model_roles,
                       ARRAY(
                           SELECT ROW(role_id, cooldown_seconds, daily_images, concurrent_jobs)
                           FROM role_limits WHERE guild_id = $1 ORDER BY role_id
                       ) AS role_limits
                FROM (SELECT $1::BIGINT AS guild_id) AS asked LEFT JOIN guilds AS g USING (guild_id)
                """,
                guild_id,
            )
        limits = (
            Limits()
            if row["cooldown_seconds"] is None
            else Limits(row["cooldown_seconds"], row["daily_images"], row["concurrent_jobs"])
        )
        models = tuple(row["models"])
        config = GuildConfig(
            guild_id=guild_id,
            models=models,
            default_model=row["default_model"],
            channels=frozenset(row["channels"]),
            blocked_words=tuple(row["words"]),
            limits=limits,
            log_channel_id=row["log_channel_id"],
            model_roles=model_roles_of(models, ((pair[0], pair[1]) for pair in row["model_roles"])),
            role_limits=tuple(RoleLimits(*values) for values in row["role_limits"]),
        )
        self._cache.store(config, generation)
        return config

    async def allow_model(self, guild_id: int, model: str, *, actor_id: int, role_id: int | None = None) -> bool:
        """Add to the allowlist (at the end), for everyone or, with ``role_id``, for that role too.

        Allowing a model without a role drops the roles it had (it is everyone's again). ``False`` if
        nothing changed. Audited as ``models allow`` with the model's roles before and after.
        """
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        if role_id is not None:
            check_id("role_id", role_id)
        model = model_name(model)
        async with self._transaction() as conn:
            await self._ensure_guild(conn, guild_id)
            added = await conn.fetchval(
                "INSERT INTO allowed_models (guild_id, model) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING seq",
                guild_id,
                model,
            )
            if added is not None and role_id is None:  # a model just added has no roles: it is everyone's
                await self._audit(conn, guild_id, actor_id, "models allow", None, model)
                return True
            # The model's row, locked: two moderators changing its roles at once take turns.
            await conn.execute(
                "SELECT 1 FROM allowed_models WHERE guild_id = $1 AND model = $2 FOR UPDATE", guild_id, model
            )
            old_roles = set(
                await conn.fetchval(
                    "SELECT ARRAY(SELECT role_id FROM model_roles WHERE guild_id = $1 AND model = $2)", guild_id, model
                )
            )
            if role_id is None:
                await conn.execute("DELETE FROM model_roles WHERE guild_id = $1 AND model = $2", guild_id, model)
                new_roles: set[int] = set()
            else:
                await conn.execute(
                    "INSERT INTO model_roles (guild_id, model, role_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    guild_id,
                    model,
                    role_id,
                )
                new_roles = old_roles | {role_id}
            changed = added is not None or new_roles != old_roles
            if changed:
                before = None if added is not None else model_roles_text(model, old_roles)
                await self._audit(conn, guild_id, actor_id, "models allow", before, model_roles_text(model, new_roles))
        return changed

    async def remove_model(self, guild_id: int, model: str, *, actor_id: int) -> bool:
        """Remove from the allowlist; ``False`` if absent. Clears (and audits) the default if it was this model."""
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        model = model_name(model)
        async with self._transaction() as conn:
            removed = await conn.fetchval(
                "DELETE FROM allowed_models WHERE guild_id = $1 AND model = $2 RETURNING seq", guild_id, model
            )
            if removed is None:
                return False
            await self._audit(conn, guild_id, actor_id, "models remove", model, None)
            cleared = await conn.fetchval(
                "UPDATE guilds SET default_model = NULL WHERE guild_id = $1 AND default_model = $2 RETURNING guild_id",
                guild_id,
                model,
            )
            if cleared is not None:
                await self._audit(conn, guild_id, actor_id, "models default", model, None)
        return True

    async def set_default_model(self, guild_id: int, model: str | None, *, actor_id: int) -> bool:
        """Set (or, with ``None``, clear) the server's default model; ``False`` (and no audit) if unchanged."""
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        new = None if model is None else model_name(model)
        async with self._transaction() as conn:
            old = (await self._locked_guild(conn, guild_id))["default_model"]
            if old == new:
                return False
            await conn.execute("UPDATE guilds SET default_model = $2 WHERE guild_id = $1", guild_id, new)
            await self._audit(conn, guild_id, actor_id, "models default", old, new)
            return True

    async def allow_channel(self, guild_id: int, channel_id: int, *, actor_id: int) -> bool:
        """Add a channel where ``/imagine`` may be used; ``False`` if already there."""
        check_id("guild_id", guild_id)
        check_id("channel_id", channel_id)
        check_id("actor_id", actor_id)
        async with self._transaction() as conn:
            await self._ensure_guild(conn, guild_id)
            added = await conn.fetchval(
                "INSERT INTO allowed_channels (guild_id, channel_id) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING RETURNING channel_id",
                guild_id,
                channel_id,
            )
            if added is not None:
                await self._audit(conn, guild_id, actor_id, "channels allow", None, str(channel_id))
        return added is not None

    async def remove_channel(self, guild_id: int, channel_id: int, *, actor_id: int) -> bool:
        """Remove a channel; ``False`` if absent."""
        check_id("guild_id", guild_id)
        check_id("channel_id", channel_id)
        check_id("actor_id", actor_id)
        async with self._transaction() as conn:
            removed = await conn.fetchval(
                "DELETE FROM allowed_channels WHERE guild_id = $1 AND channel_id = $2 RETURNING channel_id",
                guild_id,
                channel_id,
            )
            if removed is not None:
                await self._audit(conn, guild_id, actor_id, "channels remove", str(channel_id), None)
        return removed is not None

    async def add_word(self, guild_id: int, word: str, *, actor_id: int) -> bool:
        """Block a word, stored trimmed but otherwise as given; ``False`` if blocked in any letter case."""
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        word, key = word_and_key(word)
        async with self._transaction() as conn:
            await self._ensure_guild(conn, guild_id)
            added = await conn.fetchval(
                "INSERT INTO blocked_words (guild_id, word, word_key) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING RETURNING seq",
                guild_id,
                word,
                key,
            )
            if added is not None:
                await self._audit(conn, guild_id, actor_id, "words add", None, word)
        return added is not None

    async def remove_word(self, guild_id: int, word: str, *, actor_id: int) -> bool:
        """Unblock a word in any letter case; ``False`` if it was not blocked. The audit shows the stored word."""
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        _, key = word_and_key(word)
        async with self._transaction() as conn:
            stored = await conn.fetchval(
                "DELETE FROM blocked_words WHERE guild_id = $1 AND word_key = $2 RETURNING word", guild_id, key
            )
            if stored is None:
                return False
            await self._audit(conn, guild_id, actor_id, "words remove", stored, None)
        return True

    async def set_limits(
        self,
        guild_id: int,
        *,
        actor_id: int,
        cooldown_seconds: int | None = None,
        daily_images: int | None = None,
        concurrent_jobs: int | None = None,
    ) -> Limits:
        """Change the given limits (``None``: unchanged); returns the limits now in force.

        One ``limits`` audit entry shows all three before and after; a call that
        changes nothing records nothing.
        """
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        non_negative("cooldown_seconds", cooldown_seconds)
        non_negative("daily_images", daily_images)
        non_negative("concurrent_jobs", concurrent_jobs)
        async with self._transaction() as conn:
            row = await self._locked_guild(conn, guild_id)
            old = Limits(row["cooldown_seconds"], row["daily_images"], row["concurrent_jobs"])
            new = merge_limits(old, cooldown_seconds, daily_images, concurrent_jobs)
            if new == old:
                return old
            await conn.execute(
                "UPDATE guilds SET cooldown_seconds = $2, daily_images = $3, concurrent_jobs = $4 WHERE guild_id = $1",
                guild_id,
                new.cooldown_seconds,
                new.daily_images,
                new.concurrent_jobs,
            )
            await self._audit(conn, guild_id, actor_id, "limits", limits_text(old), limits_text(new))
        return new

    async def set_log_channel(self, guild_id: int, channel_id: int | None, *, actor_id: int) -> bool:
        """Set (or, with ``None``, turn off) the mod-log channel; ``False`` (and no audit) if unchanged."""
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        if channel_id is not None:
            check_id("channel_id", channel_id)
        async with self._transaction() as conn:
            old = (await self._locked_guild(conn, guild_id))["log_channel_id"]
            if old == channel_id:
                return False
            await conn.execute("UPDATE guilds SET log_channel_id = $2 WHERE guild_id = $1", guild_id, channel_id)
            await self._audit(conn, guild_id, actor_id, LOG_CHANNEL_ACTION, id_text(old), id_text(channel_id))
            return True

    def on_settings_change(self, listener: Callable[[AuditEntry], None]) -> None:
        """Call ``listener`` with each audit entry once its transaction has committed (this process's changes).

        Other processes' changes are not announced here: the process where a change is made posts it.
        """
        self._changes.listen(listener)

    async def set_role_limits(
        self,
        guild_id: int,
        role_id: int,
        *,
        actor_id: int,
        cooldown_seconds: int | None = None,
        daily_images: int | None = None,
        concurrent_jobs: int | None = None,
    ) -> RoleLimits:
        """Change the given limits of members with ``role_id`` (``None``: unchanged); returns that role's limits.

        One ``limits role`` audit entry shows the role's three before and after; no change records nothing.
        """
        check_id("guild_id", guild_id)
        check_id("role_id", role_id)
        check_id("actor_id", actor_id)
        non_negative("cooldown_seconds", cooldown_seconds)
        non_negative("daily_images", daily_images)
        non_negative("concurrent_jobs", concurrent_jobs)
        async with self._transaction() as conn:
            # The guild's row, locked: concurrent changes to one role's limits take turns, none is lost.
            await self._locked_guild(conn, guild_id)
            old = await self._role_limits(conn, guild_id, role_id)
            new = merge_role_limits(old, cooldown_seconds, daily_images, concurrent_jobs)
            if new == old:
                return old
            await conn.execute(
                "INSERT INTO role_limits (guild_id, role_id, cooldown_seconds, daily_images, concurrent_jobs) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (guild_id, role_id) DO UPDATE SET "
                "cooldown_seconds = excluded.cooldown_seconds, daily_images = excluded.daily_images, "
                "concurrent_jobs = excluded.concurrent_jobs",
                guild_id,
                role_id,
                new.cooldown_seconds,
                new.daily_images,
                new.concurrent_jobs,
            )
            await self._audit(conn, guild_id, actor_id, "limits role", role_limits_text(old), role_limits_text(new))
        return new

    async def clear_role_limits(self, guild_id: int, role_id: int, *, actor_id: int) -> bool:
        """Forget every limit of ``role_id`` (audited as ``limits role`` → nothing); ``False`` if it had none."""
        check_id("guild_id", guild_id)
        check_id("role_id", role_id)
        check_id("actor_id", actor_id)
        async with self._transaction() as conn:
            row = await conn.fetchrow(
                "DELETE FROM role_limits WHERE guild_id = $1 AND role_id = $2 "
                "RETURNING role_id, cooldown_seconds, daily_images, concurrent_jobs",
                guild_id,
                role_id,
            )
            if row is None:
                return False
            await self._audit(conn, guild_id, actor_id, "limits role", role_limits_text(RoleLimits(*row)), None)
        return True

    @staticmethod
    async def _role_limits(conn: Any, guild_id: int, role_id: int) -> RoleLimits:
        row = await conn.fetchrow(
            "SELECT role_id, cooldown_seconds, daily_images, concurrent_jobs FROM role_limits "
            "WHERE guild_id = $1 AND role_id = $2",
            guild_id,
            role_id,
        )
        return RoleLimits(role_id) if row is None else RoleLimits(*row)

    async def audit_log(self, guild_id: int, *, limit: int = 10) -> list[AuditEntry]:
        """The server's latest changes, newest first (in the order they were made)."""
        check_id("guild_id", guild_id)
        if limit < 0:
            raise ValueError(f"limit must be ≥ 0, got {limit}")
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT actor_id, action, before, after, at FROM audit_log WHERE guild_id = $1 ORDER BY id DESC "
                "LIMIT $2",
                guild_id,
                limit,
            )
        return [
            AuditEntry(guild_id, row["actor_id"], row["action"], row["before"], row["after"], row["at"]) for row in rows
        ]

    # ------------------------------------------------------------- usage

    async def usage(self, guild_id: int, member_id: int, *, now: datetime) -> Usage:
        """A member's usage today (UTC day of ``now``)."""
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        today = utc(now).date()
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "SELECT day, images_today, last_request_at, spent_today FROM member_usage "
                "WHERE guild_id = $1 AND member_id = $2",
                guild_id,
                member_id,
            )
        if row is None:
            return usage_on(today, None, 0, None)
        return usage_on(today, row["day"], row["images_today"], row["last_request_at"], row["spent_today"])

    async def charge(
        self, guild_id: int, member_id: int, images: int, *, limits: Limits, now: datetime, cost: int = 0
    ) -> Charge:
        """Atomically check the cooldown, the daily limit, then the budgets, and if all allow it record the request.

        The member's usage row is created if missing (a row for today with
        nothing used is the same as no row) and locked, so concurrent charges
        from any number of connections and processes queue on it: each sees
        the count the previous one committed. A charge with a cost first locks
        the server's row of the month (every transaction that takes both locks
        the month's before the member's, so none deadlock), so charges
        against the monthly budget queue on it. Refusals change nothing that
        :meth:`usage` or :meth:`spend` can see.
        """
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        image_count(images, minimum=1)
        non_negative("cost", cost)
        now = utc(now)
        today = now.date()
        async with self._transaction() as conn:
            await self._ensure_guild(conn, guild_id)
            month_spent = await self._locked_month_spend(conn, guild_id, today) if cost else 0
            await conn.execute(
                "INSERT INTO member_usage (guild_id, member_id, day) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                guild_id,
                member_id,
                today,
            )
            row = await conn.fetchrow(
                "SELECT day, images_today, last_request_at, spent_today FROM member_usage "
                "WHERE guild_id = $1 AND member_id = $2 FOR UPDATE",
                guild_id,
                member_id,
            )
            usage = usage_on(today, row["day"], row["images_today"], row["last_request_at"], row["spent_today"])
            decision = decide_charge(usage, images, limits=limits, now=now)
            if not decision.charged:
                return decision
            if cost:
                spend = Spend(month_spent, usage.spent_today)
                over = decide_budget(await self._budget(conn, guild_id), spend, cost)
                if over is not None:
                    return replace(decision, charged=False, usage=usage, over_budget=over, spend=spend)
                await self._add_month_spend(conn, guild_id, today, cost)
                decision = replace(decision, spend=Spend(spend.month + cost, spend.member_today + cost))
            await conn.execute(
                "UPDATE member_usage SET day = $3, images_today = $4, last_request_at = $5, spent_today = $6 "
                "WHERE guild_id = $1 AND member_id = $2",
                guild_id,
                member_id,
                today,
                decision.usage.images_today,
                now,
                usage.spent_today + cost,
            )
        return replace(decision, usage=replace(decision.usage, spent_today=usage.spent_today + cost))

    async def refund(self, guild_id: int, member_id: int, images: int, *, day: date, cost: int = 0) -> None:
        """Give back images charged on ``day`` that were not delivered (never below zero; other days: nothing),
        and ``cost`` reserved (the month's spend, and the member's if ``day`` is still on record).
        """
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        if image_count(images, minimum=0) == 0 and not non_negative("cost", cost):
            return
        async with self._transaction() as conn:
            if cost:
                await self._move_spend(conn, guild_id, member_id, -cost, day)  # month's row first, as charge
            await self._give_back(conn, guild_id, member_id, images, day)

    async def refund_job(self, job_id: str, guild_id: int, member_id: int, images: int, *, day: date) -> bool:
        """Refund a journaled job's undelivered images, once: ``False`` if it already was."""
        async with self._transaction() as conn:
            # The row lock of this UPDATE makes a second, concurrent refund wait and then find refunded <> 0.
            marked = await conn.fetchval(
                "UPDATE jobs SET refunded = $1 WHERE job_id = $2 AND refunded = 0 RETURNING job_id", images, job_id
            )
            if marked is None:
                return False
            await self._give_back(conn, guild_id, member_id, images, day)
        return True

    @staticmethod
    async def _give_back(conn: Any, guild_id: int, member_id: int, images: int, day: date) -> None:
        # One statement: the subtraction happens on the row as locked, never on a stale read.
        await conn.execute(
            "UPDATE member_usage SET images_today = GREATEST(images_today - $1, 0) "
            "WHERE guild_id = $2 AND member_id = $3 AND day = $4",
            images,
            guild_id,
            member_id,
            day,
        )

    # ------------------------------------------------------------- budgets

    @staticmethod
    async def _budget(conn: Any, guild_id: int) -> Budget:
        row = await conn.fetchrow(
            "SELECT budget_monthly, budget_member_daily FROM guilds WHERE guild_id = $1", guild_id
        )
        return Budget() if row is None else Budget(row["budget_monthly"], row["budget_member_daily"])

    @staticmethod
    async def _locked_month_spend(conn: Any, guild_id: int, day: date) -> int:
        """The server's spend in ``day``'s month, its row created if need be and locked until the transaction ends."""
        month = month_of(day)
        await conn.execute(
            "INSERT INTO guild_spend (guild_id, month) VALUES ($1, $2) ON CONFLICT DO NOTHING", guild_id, month
        )
        spent = await conn.fetchval(
            "SELECT spent FROM guild_spend WHERE guild_id = $1 AND month = $2 FOR UPDATE", guild_id, month
        )
        return int(spent)

    @staticmethod
    async def _add_month_spend(conn: Any, guild_id: int, day: date, amount: int) -> None:
        """Move the month's spend by ``amount`` in one statement (never below zero); the guild's row must exist."""
        await conn.execute(
            "INSERT INTO guild_spend AS s (guild_id, month, spent) VALUES ($1, $2, GREATEST($3::BIGINT, 0)) "
            "ON CONFLICT (guild_id, month) DO UPDATE SET spent = GREATEST(s.spent + $3::BIGINT, 0)",
            guild_id,
            month_of(day),
            amount,
        )

    async def _move_spend(self, conn: Any, guild_id: int, member_id: int, amount: int, day: date) -> None:
        """Move the spend of ``day``'s month, then of the member's ``day`` (if still on record), by ``amount``."""
        await self._ensure_guild(conn, guild_id)
        await self._add_month_spend(conn, guild_id, day, amount)
        await conn.execute(
            "UPDATE member_usage SET spent_today = GREATEST(spent_today + $1::BIGINT, 0) "
            "WHERE guild_id = $2 AND member_id = $3 AND day = $4",
            amount,
            guild_id,
            member_id,
            day,
        )

    async def settle_cost(
        self, job_id: str, guild_id: int, member_id: int, *, reserved: int, actual: int, day: date
    ) -> bool:
        """Book a journaled job's real cost once (the job's row lock makes a second settlement wait, then find it
        settled); the spend moves by the difference to what was reserved."""
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        non_negative("reserved", reserved)
        non_negative("actual", actual)
        async with self._transaction() as conn:
            marked = await conn.fetchval(
                "UPDATE jobs SET cost = $1, cost_settled = true WHERE job_id = $2 AND NOT cost_settled "
                "RETURNING job_id",
                actual,
                job_id,
            )
            if marked is None:
                return False
            if actual != reserved:
                await self._move_spend(conn, guild_id, member_id, actual - reserved, day)
        return True

    async def budget(self, guild_id: int) -> Budget:
        """The server's spending caps."""
        check_id("guild_id", guild_id)
        async with self._connection() as conn:
            return await self._budget(conn, guild_id)

    async def set_budget(
        self, guild_id: int, *, actor_id: int, monthly: int | None = None, member_daily: int | None = None
    ) -> Budget:
        """Change the given caps under the guild's row lock; one ``budget`` audit entry (none if unchanged)."""
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        non_negative("monthly", monthly)
        non_negative("member_daily", member_daily)
        async with self._transaction() as conn:
            await self._locked_guild(conn, guild_id)
            old = await self._budget(conn, guild_id)
            new = Budget(
                old.monthly if monthly is None else monthly,
                old.member_daily if member_daily is None else member_daily,
            )
            if new == old:
                return old
            await conn.execute(
                "UPDATE guilds SET budget_monthly = $2, budget_member_daily = $3 WHERE guild_id = $1",
                guild_id,
                new.monthly,
                new.member_daily,
            )
            await self._audit(conn, guild_id, actor_id, "budget", budget_text(old), budget_text(new))
        return new

    async def spend(self, guild_id: int, member_id: int | None, *, now: datetime) -> Spend:
        """The server's spend this calendar month and (with a member) the member's today, in one snapshot."""
        check_id("guild_id", guild_id)
        today = utc(now).date()
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "SELECT (SELECT spent FROM guild_spend WHERE guild_id = $1 AND month = $2) AS month, "
                "(SELECT spent_today FROM member_usage WHERE guild_id = $1 AND member_id = $3 AND day = $4) AS today",
                guild_id,
                month_of(today),
                member_id,
                today,
            )
        return Spend(row["month"] or 0, row["today"] or 0)

    async def job_tallies(self, guild_id: int, *, since: datetime) -> list[JobTally]:
        """The server's jobs created since ``since``, per member and model."""
        check_id("guild_id", guild_id)
        async with self._connection() as conn:
            rows = await conn.fetch(TALLY_SQL.format(guild="$1", since="$2"), guild_id, utc(since, "since"))
        return [JobTally(row[0], row[1], *(int(figure) for figure in row[2:])) for row in rows]

    # ------------------------------------------------------------- the jobs journal

    async def add_job(self, record: JobRecord) -> None:
        """Journal a newly accepted job."""
        values = job_values(record)
        placeholders = ", ".join(f"${n}" for n in range(1, len(JOB_COLUMN_NAMES) + 1))
        async with self._transaction() as conn:
            await conn.execute(
                f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({placeholders})",
                *(values[name] for name in JOB_COLUMN_NAMES),
            )

    async def update_job(self, job_id: str, *, owner: str | None = None, **changes: Any) -> bool:
        """Change some of a job's :data:`~bot.storage.JOB_FIELDS`; with ``owner``, only while it owns the job."""
        values = job_changes(changes)
        if not values:
            return True
        # Column names come from JOB_FIELDS only, never from callers' strings.
        assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(values, start=2))
        guard = "" if owner is None else f" AND owner = ${len(values) + 2}"
        extra = () if owner is None else (owner,)
        async with self._connection() as conn:
            status = await conn.execute(
                f"UPDATE jobs SET {assignments} WHERE job_id = $1{guard}", job_id, *values.values(), *extra
            )
        return str(status).split()[-1] != "0"

    async def ping(self) -> None:
        """``SELECT 1`` on a pooled connection."""
        async with self._connection() as conn:
            await conn.fetchval("SELECT 1")

    async def get_job(self, job_id: str) -> JobRecord | None:
        """One job, finished or not."""
        async with self._connection() as conn:
            row = await conn.fetchrow(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1", job_id)
        return None if row is None else job_record(row)

    async def job_with_prediction(self, prediction_id: str) -> str | None:
        """The id of the journaled job whose prediction is ``prediction_id``, or ``None`` (newest if ever two)."""
        async with self._connection() as conn:
            job_id = await conn.fetchval(
                "SELECT job_id FROM jobs WHERE prediction_id = $1 ORDER BY created_at DESC, seq DESC LIMIT 1",
                prediction_id,
            )
        return None if job_id is None else str(job_id)

    async def active_jobs(self, guild_id: int, member_id: int) -> int:
        """The member's unfinished jobs in this server (one whose outcome is being shown no longer counts)."""
        async with self._connection() as conn:
            count = await conn.fetchval(
                "SELECT COUNT(*) FROM jobs WHERE guild_id = $1 AND requester_id = $2 AND ended_at IS NULL "
                "AND state <> 'finishing'",
                guild_id,
                member_id,
            )
        return int(count)

    async def member_history(self, guild_id: int, member_id: int, *, limit: int = 10) -> list[JobRecord]:
        """The member's latest ``limit`` jobs in this server, newest first (journal order within a microsecond)."""
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id = $1 AND requester_id = $2 "
                "ORDER BY created_at DESC, seq DESC LIMIT $3",
                guild_id,
                member_id,
                history_limit(limit),
            )
        return [job_record(row) for row in rows]

    # ------------------------------------------------------------- processes (scale-out)

    async def register_process(self, incarnation: str, name: str, shards: str, *, now: datetime) -> None:
        """Record a starting process; forget processes dead for a day that own no unfinished job."""
        async with self._transaction() as conn:
            await conn.execute("DELETE FROM webhooks WHERE received_at < $1", now - timedelta(days=1))
            await conn.execute(
                "DELETE FROM processes WHERE alive_at < $1 AND incarnation NOT IN "
                "(SELECT owner FROM jobs WHERE ended_at IS NULL AND owner IS NOT NULL)",
                now - timedelta(days=1),
            )
            await conn.execute(
                "INSERT INTO processes (incarnation, name, shards, started_at, alive_at) VALUES ($1, $2, $3, $4, $4)",
                incarnation,
                name,
                shards,
                now,
            )

    async def heartbeat(self, incarnation: str, *, now: datetime, alive_since: datetime) -> int:
        """Record the process alive; the number of processes alive since ``alive_since``."""
        async with self._connection() as conn:
            live = await conn.fetchval(
                "WITH beat AS (UPDATE processes SET alive_at = $2 WHERE incarnation = $1) "
                "SELECT COUNT(*) FROM processes WHERE alive_at >= $3 OR incarnation = $1",
                incarnation,
                now,
                alive_since,
            )
        return max(1, int(live))

    async def claim_jobs(
        self, incarnation: str, *, name: str | None = None, dead_before: datetime | None = None
    ) -> list[JobRecord]:
        """Take unfinished jobs of earlier incarnations of ``name`` (and ownerless ones), or of dead processes.

        One ``UPDATE``: a row another claimer took first is re-checked after its lock and no longer matches
        (its new owner is neither an earlier incarnation of ``name`` nor a dead process).
        """
        if name is not None:
            where = (
                "(owner IS NULL OR owner IN (SELECT incarnation FROM processes WHERE name = $2 AND incarnation <> $1))"
            )
            argument: Any = name
        elif dead_before is not None:
            where = "owner IN (SELECT incarnation FROM processes WHERE alive_at < $2 AND incarnation <> $1)"
            argument = dead_before
        else:
            return []
        async with self._transaction() as conn:
            rows = await conn.fetch(
                f"UPDATE jobs SET owner = $1 WHERE ended_at IS NULL AND {where} RETURNING seq, {JOB_COLUMNS}",
                incarnation,
                argument,
            )
            if name is not None:
                # Earlier incarnations of this name are this process before its restart: dead now that their
                # jobs are taken back (not before: another process could have taken them over meanwhile).
                await conn.execute(
                    "UPDATE processes SET alive_at = $1 WHERE name = $2 AND incarnation <> $3",
                    _LONG_AGO,
                    name,
                    incarnation,
                )
        return [job_record(row) for row in sorted(rows, key=lambda row: (row["created_at"], row["seq"]))]

    async def owned_jobs(self, incarnation: str, job_ids: Collection[str]) -> set[str]:
        """Which of ``job_ids`` this incarnation still owns."""
        if not job_ids:
            return set()
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT job_id FROM jobs WHERE owner = $1 AND job_id = ANY($2::text[])", incarnation, list(job_ids)
            )
        return {str(row["job_id"]) for row in rows}

    async def model_run_time(self, model: str) -> float | None:
        """The model's usual run time."""
        async with self._connection() as conn:
            seconds = await conn.fetchval("SELECT seconds FROM model_run_times WHERE model = $1", model)
        return None if seconds is None else float(seconds)

    async def record_run_time(self, model: str, seconds: float, *, now: datetime) -> None:
        """An exponential moving average, updated in one statement (concurrent ends from any process)."""
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO model_run_times AS t (model, seconds, samples, updated_at) VALUES ($1, $2, 1, $3) "
                "ON CONFLICT (model) DO UPDATE SET seconds = t.seconds + $4 * (excluded.seconds - t.seconds), "
                "samples = t.samples + 1, updated_at = excluded.updated_at",
                model,
                seconds,
                now,
                RUN_TIME_WEIGHT,
            )

    # ------------------------------------------------------------- webhooks

    async def record_webhook(
        self,
        webhook_id: str,
        prediction_id: str,
        *,
        status: str,
        terminal: bool,
        payload: Mapping[str, Any],
        now: datetime,
    ) -> bool:
        """Keep a verified webhook unless its id was seen before; tell every process (``NOTIFY``, on commit)."""
        async with self._transaction() as conn:
            inserted = await conn.fetchval(
                "INSERT INTO webhooks (webhook_id, prediction_id, status, terminal, payload, received_at) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (webhook_id) DO NOTHING RETURNING true",
                webhook_id,
                prediction_id,
                status,
                terminal,
                dict(payload),
                now,
            )
            if inserted:
                await conn.execute("SELECT pg_notify($1, $2)", WEBHOOK_CHANNEL, prediction_id)
        return bool(inserted)

    async def latest_webhook(self, prediction_id: str) -> Mapping[str, Any] | None:
        """A terminal payload of the prediction if there is one, else the newest."""
        async with self._connection() as conn:
            payload = await conn.fetchval(
                "SELECT payload FROM webhooks WHERE prediction_id = $1 "
                "ORDER BY terminal DESC, received_at DESC LIMIT 1",
                prediction_id,
            )
        return payload if isinstance(payload, dict) else None

    def on_webhook(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(prediction_id)`` for every webhook any process records."""
        self._listener.webhook_listeners.append(listener)


_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
"""The last sign of life given to a process known to be gone."""


def _reason(exc: BaseException) -> str:
    """A short, password-free reason for a failed connection."""
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer in time"
    # asyncpg's messages name hosts and users, never passwords; mask anyway in case a URL is quoted.
    return mask_url(str(exc) or type(exc).__name__)
