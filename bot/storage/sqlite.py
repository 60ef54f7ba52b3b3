"""The embedded store: :class:`bot.storage.Repository` on one SQLite file.

One :class:`SqliteRepository` owns one aiosqlite connection (aiosqlite runs it
on a thread of its own, so the event loop never blocks on disk). Everything
the repository does goes through :meth:`SqliteRepository._transaction`, which

* holds an :class:`asyncio.Lock`, because all coroutines share the one
  connection: without it, a second coroutine's statements would land inside
  the first one's open transaction;
* opens ``BEGIN IMMEDIATE`` for writes, so the write lock is taken up front
  and a read-then-write (like :meth:`~SqliteRepository.charge`) can never be
  overtaken by another process between its read and its write;
* commits on success and rolls back on any exception, cancellation included.

Reads take the same lock and a deferred transaction so that a multi-query read
such as :meth:`~SqliteRepository.guild_config` sees one consistent snapshot.

Datetimes are stored as ISO-8601 text in UTC (sortable, readable in the sqlite3
shell) and returned timezone-aware. Discord ids are SQLite INTEGERs, which are
64-bit signed: every snowflake (< 2**63) round-trips exactly.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

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
    SchemaVersionError,
    Spend,
    StorageError,
    Usage,
)
from bot.storage.common import (
    JOB_COLUMN_NAMES,
    JOB_COLUMNS,
    JOB_TIMES,
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
from bot.storage.migrations import MIGRATIONS, Migration, apply_migrations

__all__ = [
    "MEMORY",
    "RepositoryClosedError",
    "SchemaVersionError",
    "SqliteRepository",
    "StorageError",
]

MEMORY = ":memory:"
"""The path of a private in-memory database (tests)."""


# ---------------------------------------------------------------------------- helpers


def _to_text(moment: datetime) -> str:
    return utc(moment).isoformat(timespec="microseconds")


def _from_text(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# ---------------------------------------------------------------------------- repository


class SqliteRepository:
    """:class:`bot.storage.Repository` on SQLite. Open it with :meth:`open` (or :func:`bot.storage.open_repository`)."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        *,
        path: str,
        clock: Clock | None = None,
        applied_migrations: Sequence[int] = (),
    ) -> None:
        """Wrap an open, migrated connection; use :meth:`open` rather than calling this directly."""
        self.applied_migrations = tuple(applied_migrations)
        """The schema versions this open applied (empty if the database was up to date)."""
        self._conn: aiosqlite.Connection | None = conn
        self._path = path
        self._clock: Clock = clock or SystemClock()
        self._lock = asyncio.Lock()
        # Settings are read on every /imagine and change rarely; _audit() drops a guild's entry.
        self._configs: dict[int, GuildConfig] = {}
        self._changes = SettingsChanges()

    # ------------------------------------------------------------- lifecycle

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        clock: Clock | None = None,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> SqliteRepository:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date.

        ``path`` is what :func:`bot.settings.sqlite_path` returns, or
        :data:`MEMORY`. Missing parent directories are created. ``clock``
        stamps audit entries; ``migrations`` is for tests of the migrator.
        Raises :class:`SchemaVersionError` for a database written by a newer
        bot and :class:`StorageError` for one that cannot be opened at all.
        """
        if path != MEMORY:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create the directory for the database {path!r}: {exc}") from exc
        try:
            # isolation_level=None: no implicit BEGINs from Python's sqlite3;
            # every transaction here is explicit.
            conn = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the database {path!r}: {exc}") from exc
        try:
            # These pragmas cannot run inside a transaction, and foreign_keys is
            # per connection, so they are set once here before anything else.
            await conn.execute("PRAGMA busy_timeout = 5000")  # ms; PRAGMA takes no parameters
            await conn.execute("PRAGMA foreign_keys = ON")
            # WAL lets readers (the sqlite3 shell, a backup) work while the bot
            # writes. An in-memory database stays in "memory" mode.
            await conn.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL is still crash-safe (a power cut may lose the last commits, never
            # corrupt the file) and spares an fsync per commit: a burst of /imagine stays fast.
            await conn.execute("PRAGMA synchronous = NORMAL")
            applied = await apply_migrations(
                conn, migrations, now=(clock or SystemClock()).now(), where=f"the database {path!r}"
            )
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise StorageError(f"cannot use the database {path!r}: {exc}") from exc
            raise
        return cls(conn, path=path, clock=clock, applied_migrations=applied)

    async def close(self) -> None:
        """Release the database; later calls raise :class:`RepositoryClosedError`. Idempotent."""
        if self._conn is None:
            return
        # Wait for a transaction in flight rather than closing under it.
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                await conn.close()

    async def ping(self) -> None:
        """``SELECT 1`` in a transaction of its own: it waits behind a write in flight, as any caller would."""
        async with self._transaction(write=False) as conn:
            await self._one(conn, "SELECT 1")

    @property
    def path(self) -> str:
        """Where the database lives (or :data:`MEMORY`)."""
        return self._path

    def _connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RepositoryClosedError(f"the repository for {self._path!r} is closed")
        return self._conn

    @asynccontextmanager
    async def _transaction(self, *, write: bool) -> AsyncIterator[aiosqlite.Connection]:
        """One transaction, alone on the connection; committed on success, rolled back otherwise."""
        self._connection()  # fail fast, before waiting for the lock
        async with self._lock:
            conn = self._connection()  # close() may have run while we waited
            await conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
                await conn.execute("COMMIT")
            except BaseException:
                self._changes.discard(conn)
                # Unconditional: sqlite3's rollback() is a no-op when SQLite has
                # already ended the transaction itself, and it runs on the
                # connection's thread after any statement still in flight
                # (a cancelled await does not stop the statement).
                await conn.rollback()
                raise
            committed = self._changes.take(conn)
        self._changes.announce(committed)

    # ------------------------------------------------------------- small SQL helpers

    @staticmethod
    async def _one(conn: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        async with conn.execute(sql, tuple(params)) as cursor:
            return await cursor.fetchone()

    @staticmethod
    async def _all(conn: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        async with conn.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

    @staticmethod
    async def _run(conn: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> int:
        """Execute a write; return the number of rows it changed."""
        async with conn.execute(sql, tuple(params)) as cursor:
            return cursor.rowcount

    @staticmethod
    async def _ensure_guild(conn: aiosqlite.Connection, guild_id: int) -> None:
        # The guilds row is the parent every per-server row points to.
        await conn.execute("INSERT OR IGNORE INTO guilds (guild_id) VALUES (?)", (guild_id,))

    async def _audit(
        self,
        conn: aiosqlite.Connection,
        guild_id: int,
        actor_id: int,
        action: str,
        before: str | None,
        after: str | None,
    ) -> None:
        # Every settings change is audited, so this is the one place that invalidates the cache.
        self._configs.pop(guild_id, None)
        entry = AuditEntry(guild_id, actor_id, action, before, after, utc(self._clock.now()))
        await conn.execute(
            "INSERT INTO audit_log (guild_id, actor_id, action, before, after, at) VALUES (?, ?, ?, ?, ?, ?)",
            (guild_id, actor_id, action, before, after, _to_text(entry.at)),
        )
        self._changes.record(conn, entry)

    @staticmethod
    async def _limits(conn: aiosqlite.Connection, guild_id: int) -> Limits:
        row = await SqliteRepository._one(
            conn,
            "SELECT cooldown_seconds, daily_images, concurrent_jobs FROM guilds WHERE guild_id = ?",
            (guild_id,),
        )
        if row is None:
            return Limits()
        return Limits(cooldown_seconds=int(row[0]), daily_images=int(row[1]), concurrent_jobs=int(row[2]))

    @staticmethod
    async def _default_model(conn: aiosqlite.Connection, guild_id: int) -> str | None:
        row = await SqliteRepository._one(conn, "SELECT default_model FROM guilds WHERE guild_id = ?", (guild_id,))
        return None if row is None or row[0] is None else str(row[0])

    @staticmethod
    async def _log_channel(conn: aiosqlite.Connection, guild_id: int) -> int | None:
        row = await SqliteRepository._one(conn, "SELECT log_channel_id FROM guilds WHERE guild_id = ?", (guild_id,))
        return None if row is None or row[0] is None else int(row[0])

    # ------------------------------------------------------------- moderation settings

    async def guild_config(self, guild_id: int) -> GuildConfig:
        """The server's settings (defaults if it never set any); cached until the next change."""
        check_id("guild_id", guild_id)
        cached = self._configs.get(guild_id)
        if cached is not None:
            return cached
        async with self._transaction(write=False) as conn:
            limits = await self._limits(conn, guild_id)
            default_model = await self._default_model(conn, guild_id)
            log_channel_id = await self._log_channel(conn, guild_id)
            models = await self._all(
                conn, "SELECT model FROM allowed_models WHERE guild_id = ? ORDER BY seq", (guild_id,)
            )
            channels = await self._all(conn, "SELECT channel_id FROM allowed_channels WHERE guild_id = ?", (guild_id,))
            words = await self._all(conn, "SELECT word FROM blocked_words WHERE guild_id = ? ORDER BY seq", (guild_id,))
            model_roles = await self._all(
                conn, "SELECT model, role_id FROM model_roles WHERE guild_id = ?", (guild_id,)
            )
            role_limits = await self._all(
                conn,
                "SELECT role_id, cooldown_seconds, daily_images, concurrent_jobs FROM role_limits "
                "WHERE guild_id = ? ORDER BY role_id",
                (guild_id,),
            )
        names = tuple(str(row[0]) for row in models)
        config = GuildConfig(
            guild_id=guild_id,
            models=names,
            default_model=default_model,
            channels=frozenset(int(row[0]) for row in channels),
            blocked_words=tuple(str(row[0]) for row in words),
            limits=limits,
            log_channel_id=log_channel_id,
            model_roles=model_roles_of(names, ((str(row[0]), int(row[1])) for row in model_roles)),
            role_limits=tuple(RoleLimits(*row) for row in role_limits),
        )
        if len(self._configs) > SETTINGS_CACHE_SIZE:
            self._configs.clear()
        self._configs[guild_id] = config
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
        async with self._transaction(write=True) as conn:
            await self._ensure_guild(conn, guild_id)
            added = await self._run(
                conn, "INSERT OR IGNORE INTO allowed_models (guild_id, model) VALUES (?, ?)", (guild_id, model)
            )
            if added and role_id is None:  # a model just added has no roles: it is everyone's
                await self._audit(conn, guild_id, actor_id, "models allow", None, model)
                return True
            rows = await self._all(
                conn, "SELECT role_id FROM model_roles WHERE guild_id = ? AND model = ?", (guild_id, model)
            )
            old_roles = {int(row[0]) for row in rows}
            if role_id is None:
                await conn.execute("DELETE FROM model_roles WHERE guild_id = ? AND model = ?", (guild_id, model))
                new_roles: set[int] = set()
            else:
                await conn.execute(
                    "INSERT OR IGNORE INTO model_roles (guild_id, model, role_id) VALUES (?, ?, ?)",
                    (guild_id, model, role_id),
                )
                new_roles = old_roles | {role_id}
            changed = bool(added) or new_roles != old_roles
            if changed:
                before = None if added else model_roles_text(model, old_roles)
                await self._audit(conn, guild_id, actor_id, "models allow", before, model_roles_text(model, new_roles))
        return changed

    async def remove_model(self, guild_id: int, model: str, *, actor_id: int) -> bool:
        """Remove from the allowlist; ``False`` if absent.

        If it was the server's default, the default is cleared too, and that is
        audited as a separate ``models default`` entry (``model`` → ``None``) in
        the same transaction, so the log reads exactly like a moderator had
        cleared it by hand.
        """
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        model = model_name(model)
        async with self._transaction(write=True) as conn:
            removed = await self._run(
                conn, "DELETE FROM allowed_models WHERE guild_id = ? AND model = ?", (guild_id, model)
            )
            if not removed:
                return False
            await self._audit(conn, guild_id, actor_id, "models remove", model, None)
            if await self._default_model(conn, guild_id) == model:
                await conn.execute("UPDATE guilds SET default_model = NULL WHERE guild_id = ?", (guild_id,))
                await self._audit(conn, guild_id, actor_id, "models default", model, None)
        return True

    async def set_default_model(self, guild_id: int, model: str | None, *, actor_id: int) -> bool:
        """Set (or, with ``None``, clear) the server's default model.

        The model need not be on the server's allowlist: with an empty list the
        bot-wide models apply, and choosing among them is the caller's policy.
        Setting the value it already has records nothing.
        """
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        new = None if model is None else model_name(model)
        async with self._transaction(write=True) as conn:
            old = await self._default_model(conn, guild_id)
            if old == new:
                return False
            await self._ensure_guild(conn, guild_id)
            await conn.execute("UPDATE guilds SET default_model = ? WHERE guild_id = ?", (new, guild_id))
            await self._audit(conn, guild_id, actor_id, "models default", old, new)
            return True

    async def allow_channel(self, guild_id: int, channel_id: int, *, actor_id: int) -> bool:
        """Add a channel where ``/imagine`` may be used; ``False`` if already there."""
        check_id("guild_id", guild_id)
        check_id("channel_id", channel_id)
        check_id("actor_id", actor_id)
        async with self._transaction(write=True) as conn:
            await self._ensure_guild(conn, guild_id)
            added = await self._run(
                conn,
                "INSERT OR IGNORE INTO allowed_channels (guild_id, channel_id) VALUES (?, ?)",
                (guild_id, channel_id),
            )
            if added:
                await self._audit(conn, guild_id, actor_id, "channels allow", None, str(channel_id))
        return bool(added)

    async def remove_channel(self, guild_id: int, channel_id: int, *, actor_id: int) -> bool:
        """Remove a channel; ``False`` if absent."""
        check_id("guild_id", guild_id)
        check_id("channel_id", channel_id)
        check_id("actor_id", actor_id)
        async with self._transaction(write=True) as conn:
            removed = await self._run(
                conn,
                "DELETE FROM allowed_channels WHERE guild_id = ? AND channel_id = ?",
                (guild_id, channel_id),
            )
            if removed:
                await self._audit(conn, guild_id, actor_id, "channels remove", str(channel_id), None)
        return bool(removed)

    async def add_word(self, guild_id: int, word: str, *, actor_id: int) -> bool:
        """Block a word, stored trimmed but otherwise as given; ``False`` if blocked in any letter case."""
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        word, key = word_and_key(word)
        async with self._transaction(write=True) as conn:
            await self._ensure_guild(conn, guild_id)
            added = await self._run(
                conn,
                "INSERT OR IGNORE INTO blocked_words (guild_id, word, word_key) VALUES (?, ?, ?)",
                (guild_id, word, key),
            )
            if added:
                await self._audit(conn, guild_id, actor_id, "words add", None, word)
        return bool(added)

    async def remove_word(self, guild_id: int, word: str, *, actor_id: int) -> bool:
        """Unblock a word in any letter case; ``False`` if it was not blocked.

        The audit entry's ``before`` is the word as it was stored.
        """
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        _, key = word_and_key(word)
        async with self._transaction(write=True) as conn:
            row = await self._one(
                conn, "SELECT word FROM blocked_words WHERE guild_id = ? AND word_key = ?", (guild_id, key)
            )
            if row is None:
                return False
            await conn.execute("DELETE FROM blocked_words WHERE guild_id = ? AND word_key = ?", (guild_id, key))
            await self._audit(conn, guild_id, actor_id, "words remove", str(row[0]), None)
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
        async with self._transaction(write=True) as conn:
            old = await self._limits(conn, guild_id)
            new = merge_limits(old, cooldown_seconds, daily_images, concurrent_jobs)
            if new == old:
                return old
            await self._ensure_guild(conn, guild_id)
            await conn.execute(
                "UPDATE guilds SET cooldown_seconds = ?, daily_images = ?, concurrent_jobs = ? WHERE guild_id = ?",
                (new.cooldown_seconds, new.daily_images, new.concurrent_jobs, guild_id),
            )
            await self._audit(conn, guild_id, actor_id, "limits", limits_text(old), limits_text(new))
        return new

    async def set_log_channel(self, guild_id: int, channel_id: int | None, *, actor_id: int) -> bool:
        """Set (or, with ``None``, turn off) the mod-log channel; ``False`` (and no audit) if unchanged.

        Audited as ``log channel`` with the channel ids as text, old → new.
        """
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        if channel_id is not None:
            check_id("channel_id", channel_id)
        async with self._transaction(write=True) as conn:
            old = await self._log_channel(conn, guild_id)
            if old == channel_id:
                return False
            await self._ensure_guild(conn, guild_id)
            await conn.execute("UPDATE guilds SET log_channel_id = ? WHERE guild_id = ?", (channel_id, guild_id))
            await self._audit(conn, guild_id, actor_id, LOG_CHANNEL_ACTION, id_text(old), id_text(channel_id))
            return True

    def on_settings_change(self, listener: Callable[[AuditEntry], None]) -> None:
        """Call ``listener`` with each audit entry once its transaction has committed (this process's changes)."""
        self._changes.listen(listener)

    @staticmethod
    async def _role_limits(conn: aiosqlite.Connection, guild_id: int, role_id: int) -> RoleLimits:
        row = await SqliteRepository._one(
            conn,
            "SELECT role_id, cooldown_seconds, daily_images, concurrent_jobs FROM role_limits "
            "WHERE guild_id = ? AND role_id = ?",
            (guild_id, role_id),
        )
        return RoleLimits(role_id) if row is None else RoleLimits(*row)

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
        async with self._transaction(write=True) as conn:
            old = await self._role_limits(conn, guild_id, role_id)
            new = merge_role_limits(old, cooldown_seconds, daily_images, concurrent_jobs)
            if new == old:
                return old
            await self._ensure_guild(conn, guild_id)
            await conn.execute(
                "INSERT INTO role_limits (guild_id, role_id, cooldown_seconds, daily_images, concurrent_jobs) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id, role_id) DO UPDATE SET "
                "cooldown_seconds = excluded.cooldown_seconds, daily_images = excluded.daily_images, "
                "concurrent_jobs = excluded.concurrent_jobs",
                (guild_id, role_id, new.cooldown_seconds, new.daily_images, new.concurrent_jobs),
            )
            await self._audit(conn, guild_id, actor_id, "limits role", role_limits_text(old), role_limits_text(new))
        return new

    async def clear_role_limits(self, guild_id: int, role_id: int, *, actor_id: int) -> bool:
        """Forget every limit of ``role_id`` (audited as ``limits role`` → nothing); ``False`` if it had none."""
        check_id("guild_id", guild_id)
        check_id("role_id", role_id)
        check_id("actor_id", actor_id)
        async with self._transaction(write=True) as conn:
            old = await self._role_limits(conn, guild_id, role_id)
            if old == RoleLimits(role_id):
                return False
            await conn.execute("DELETE FROM role_limits WHERE guild_id = ? AND role_id = ?", (guild_id, role_id))
            await self._audit(conn, guild_id, actor_id, "limits role", role_limits_text(old), None)
        return True

    async def audit_log(self, guild_id: int, *, limit: int = 10) -> list[AuditEntry]:
        """The server's latest changes, newest first (in the order they were made)."""
        check_id("guild_id", guild_id)
        if limit < 0:
            raise ValueError(f"limit must be ≥ 0, got {limit}")
        async with self._transaction(write=False) as conn:
            rows = await self._all(
                conn,
                "SELECT actor_id, action, before, after, at FROM audit_log WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
                (guild_id, limit),
            )
        return [
            AuditEntry(
                guild_id=guild_id,
                actor_id=int(row[0]),
                action=str(row[1]),
                before=None if row[2] is None else str(row[2]),
                after=None if row[3] is None else str(row[3]),
                at=_from_text(str(row[4])),
            )
            for row in rows
        ]

    # ------------------------------------------------------------- usage

    @staticmethod
    async def _usage(conn: aiosqlite.Connection, guild_id: int, member_id: int, today: date) -> Usage:
        row = await SqliteRepository._one(
            conn,
            "SELECT day, images_today, last_request_at, spent_today FROM member_usage "
            "WHERE guild_id = ? AND member_id = ?",
            (guild_id, member_id),
        )
        if row is None:
            return usage_on(today, None, 0, None)
        last = None if row[2] is None else _from_text(str(row[2]))
        return usage_on(today, date.fromisoformat(str(row[0])), int(row[1]), last, int(row[3]))

    async def usage(self, guild_id: int, member_id: int, *, now: datetime) -> Usage:
        """A member's usage today (UTC day of ``now``)."""
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        today = utc(now).date()
        async with self._transaction(write=False) as conn:
            return await self._usage(conn, guild_id, member_id, today)

    async def charge(
        self, guild_id: int, member_id: int, images: int, *, limits: Limits, now: datetime, cost: int = 0
    ) -> Charge:
        """Atomically check the cooldown, the daily limit, then the budgets, and if all allow it record the request.

        Refusals change nothing. A charge moves ``last_request_at`` to ``now``,
        adds ``images`` to the count of ``now``'s UTC day (starting from 0
        on a new day) and reserves ``cost`` against the month's and the member's
        day's spend. ``0`` in ``limits`` or the budget means no limit.
        """
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        image_count(images, minimum=1)
        non_negative("cost", cost)
        now = utc(now)
        today = now.date()
        async with self._transaction(write=True) as conn:
            # BEGIN IMMEDIATE holds the write lock from these reads to the writes below.
            usage = await self._usage(conn, guild_id, member_id, today)
            decision = decide_charge(usage, images, limits=limits, now=now)
            if not decision.charged:
                return decision
            await self._ensure_guild(conn, guild_id)
            if cost:
                spend = Spend(await self._month_spend(conn, guild_id, today), usage.spent_today)
                over = decide_budget(await self._budget(conn, guild_id), spend, cost)
                if over is not None:
                    return replace(decision, charged=False, usage=usage, over_budget=over, spend=spend)
                await self._add_month_spend(conn, guild_id, today, cost)
                decision = replace(decision, spend=Spend(spend.month + cost, spend.member_today + cost))
            await conn.execute(
                """
                INSERT INTO member_usage (guild_id, member_id, day, images_today, last_request_at, spent_today)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (guild_id, member_id) DO UPDATE SET
                    day = excluded.day,
                    images_today = excluded.images_today,
                    last_request_at = excluded.last_request_at,
                    spent_today = excluded.spent_today
                """,
                (
                    guild_id,
                    member_id,
                    today.isoformat(),
                    decision.usage.images_today,
                    _to_text(now),
                    usage.spent_today + cost,
                ),
            )
        return replace(decision, usage=replace(decision.usage, spent_today=usage.spent_today + cost))

    async def refund_job(self, job_id: str, guild_id: int, member_id: int, images: int, *, day: date) -> bool:
        """Refund a journaled job's undelivered images, once: ``False`` if it already was."""
        async with self._transaction(write=True) as conn:
            marked = await self._run(
                conn, "UPDATE jobs SET refunded = ? WHERE job_id = ? AND refunded = 0", (images, job_id)
            )
            if not marked:
                return False
            await self._give_back(conn, guild_id, member_id, images, day)
        return True

    async def refund(self, guild_id: int, member_id: int, images: int, *, day: date, cost: int = 0) -> None:
        """Give back images charged on ``day`` that were not delivered, and ``cost`` reserved (never below zero).

        A refund for a day other than the one on record (yesterday's job that
        failed after midnight, say) changes nothing in the member's counts: that
        day's no longer limit anyone; the month's spend is given back all the
        same. The cooldown is not given back.
        """
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        if image_count(images, minimum=0) == 0 and not non_negative("cost", cost):
            return
        async with self._transaction(write=True) as conn:
            await self._give_back(conn, guild_id, member_id, images, day)
            if cost:
                await self._move_spend(conn, guild_id, member_id, -cost, day)

    @staticmethod
    async def _give_back(conn: aiosqlite.Connection, guild_id: int, member_id: int, images: int, day: date) -> None:
        await conn.execute(
            """
            UPDATE member_usage SET images_today = MAX(images_today - ?, 0)
            WHERE guild_id = ? AND member_id = ? AND day = ?
            """,
            (images, guild_id, member_id, day.isoformat()),
        )

    # ------------------------------------------------------------- budgets

    @staticmethod
    async def _budget(conn: aiosqlite.Connection, guild_id: int) -> Budget:
        row = await SqliteRepository._one(
            conn, "SELECT budget_monthly, budget_member_daily FROM guilds WHERE guild_id = ?", (guild_id,)
        )
        return Budget() if row is None else Budget(int(row[0]), int(row[1]))

    @staticmethod
    async def _month_spend(conn: aiosqlite.Connection, guild_id: int, day: date) -> int:
        row = await SqliteRepository._one(
            conn,
            "SELECT spent FROM guild_spend WHERE guild_id = ? AND month = ?",
            (guild_id, month_of(day).isoformat()),
        )
        return 0 if row is None else int(row[0])

    @staticmethod
    async def _add_month_spend(conn: aiosqlite.Connection, guild_id: int, day: date, amount: int) -> None:
        """Move the month's spend by ``amount`` (never below zero); the guild's row must exist."""
        await conn.execute(
            "INSERT INTO guild_spend (guild_id, month, spent) VALUES (?, ?, MAX(?, 0)) "
            "ON CONFLICT (guild_id, month) DO UPDATE SET spent = MAX(spent + ?, 0)",
            (guild_id, month_of(day).isoformat(), amount, amount),
        )

    async def _move_spend(
        self, conn: aiosqlite.Connection, guild_id: int, member_id: int, amount: int, day: date
    ) -> None:
        """Move the spend of ``day``'s month and of the member's ``day`` (if still on record) by ``amount``."""
        await self._ensure_guild(conn, guild_id)
        await self._add_month_spend(conn, guild_id, day, amount)
        await conn.execute(
            "UPDATE member_usage SET spent_today = MAX(spent_today + ?, 0) "
            "WHERE guild_id = ? AND member_id = ? AND day = ?",
            (amount, guild_id, member_id, day.isoformat()),
        )

    async def settle_cost(
        self, job_id: str, guild_id: int, member_id: int, *, reserved: int, actual: int, day: date
    ) -> bool:
        """Book a journaled job's real cost once; the spend moves by the difference to what was reserved."""
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        non_negative("reserved", reserved)
        non_negative("actual", actual)
        async with self._transaction(write=True) as conn:
            marked = await self._run(
                conn,
                "UPDATE jobs SET cost = ?, cost_settled = 1 WHERE job_id = ? AND cost_settled = 0",
                (actual, job_id),
            )
            if not marked:
                return False
            if actual != reserved:
                await self._move_spend(conn, guild_id, member_id, actual - reserved, day)
        return True

    async def budget(self, guild_id: int) -> Budget:
        """The server's spending caps."""
        check_id("guild_id", guild_id)
        async with self._transaction(write=False) as conn:
            return await self._budget(conn, guild_id)

    async def set_budget(
        self, guild_id: int, *, actor_id: int, monthly: int | None = None, member_daily: int | None = None
    ) -> Budget:
        """Change the given caps; one ``budget`` audit entry shows both before and after (none if unchanged)."""
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        non_negative("monthly", monthly)
        non_negative("member_daily", member_daily)
        async with self._transaction(write=True) as conn:
            old = await self._budget(conn, guild_id)
            new = Budget(
                old.monthly if monthly is None else monthly,
                old.member_daily if member_daily is None else member_daily,
            )
            if new == old:
                return old
            await self._ensure_guild(conn, guild_id)
            await conn.execute(
                "UPDATE guilds SET budget_monthly = ?, budget_member_daily = ? WHERE guild_id = ?",
                (new.monthly, new.member_daily, guild_id),
            )
            await self._audit(conn, guild_id, actor_id, "budget", budget_text(old), budget_text(new))
        return new

    async def spend(self, guild_id: int, member_id: int | None, *, now: datetime) -> Spend:
        """The server's spend this calendar month and (with a member) the member's today."""
        check_id("guild_id", guild_id)
        today = utc(now).date()
        async with self._transaction(write=False) as conn:
            month = await self._month_spend(conn, guild_id, today)
            member = 0 if member_id is None else (await self._usage(conn, guild_id, member_id, today)).spent_today
        return Spend(month, member)

    async def job_tallies(self, guild_id: int, *, since: datetime) -> list[JobTally]:
        """The server's jobs created since ``since``, per member and model."""
        check_id("guild_id", guild_id)
        async with self._transaction(write=False) as conn:
            rows = await self._all(conn, TALLY_SQL.format(guild="?", since="?"), (guild_id, _to_text(since)))
        return [
            JobTally(None if row[0] is None else int(row[0]), str(row[1]), *(int(figure) for figure in row[2:]))
            for row in rows
        ]

    # ------------------------------------------------------------- the jobs journal

    async def add_job(self, record: JobRecord) -> None:
        """Journal a newly accepted job."""
        values = _encode_job(job_values(record))
        placeholders = ", ".join("?" for _ in JOB_COLUMN_NAMES)
        async with self._transaction(write=True) as conn:
            await conn.execute(
                f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({placeholders})",
                tuple(values[name] for name in JOB_COLUMN_NAMES),
            )

    async def update_job(self, job_id: str, *, owner: str | None = None, **changes: Any) -> bool:
        """Change some of a job's :data:`~bot.storage.JOB_FIELDS`; with ``owner``, only while it owns the job."""
        values = _encode_job(job_changes(changes))
        if not values:
            return True
        # Column names come from JOB_FIELDS only, never from callers' strings.
        assignments = ", ".join(f"{name} = ?" for name in values)
        guard, extra = ("", ()) if owner is None else (" AND owner = ?", (owner,))
        async with self._transaction(write=True) as conn:
            cursor = await conn.execute(
                f"UPDATE jobs SET {assignments} WHERE job_id = ?{guard}", (*values.values(), job_id, *extra)
            )
            return cursor.rowcount > 0

    async def get_job(self, job_id: str) -> JobRecord | None:
        """One job, finished or not."""
        async with self._transaction(write=False) as conn:
            row = await self._one(conn, f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,))
        return None if row is None else _decode_job(row)

    async def job_with_prediction(self, prediction_id: str) -> str | None:
        """The id of the journaled job whose prediction is ``prediction_id``, or ``None``.

        A prediction belongs to one job; were there ever two rows, the newest wins.
        """
        async with self._transaction(write=False) as conn:
            row = await self._one(
                conn,
                "SELECT job_id FROM jobs WHERE prediction_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
                (prediction_id,),
            )
        return None if row is None else str(row[0])

    async def active_jobs(self, guild_id: int, member_id: int) -> int:
        """The member's unfinished jobs in this server (one whose outcome is being shown no longer counts)."""
        async with self._transaction(write=False) as conn:
            row = await self._one(
                conn,
                "SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND requester_id = ? AND ended_at IS NULL "
                "AND state <> 'finishing'",
                (guild_id, member_id),
            )
        return int(row[0]) if row else 0

    async def member_history(self, guild_id: int, member_id: int, *, limit: int = 10) -> list[JobRecord]:
        """The member's latest ``limit`` jobs in this server, newest first (journal order within a microsecond)."""
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        async with self._transaction(write=False) as conn:
            rows = await self._all(
                conn,
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE guild_id = ? AND requester_id = ? "
                "ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (guild_id, member_id, history_limit(limit)),
            )
        return [_decode_job(row) for row in rows]

    # ------------------------------------------------------------- processes (scale-out)

    async def register_process(self, incarnation: str, name: str, shards: str, *, now: datetime) -> None:
        """Record a starting process; forget processes dead for a day that own no unfinished job."""
        stamp = _to_text(now)
        async with self._transaction(write=True) as conn:
            await conn.execute("DELETE FROM webhooks WHERE received_at < ?", (_to_text(now - timedelta(days=1)),))
            await conn.execute(
                "DELETE FROM processes WHERE alive_at < ? AND incarnation NOT IN "
                "(SELECT owner FROM jobs WHERE ended_at IS NULL AND owner IS NOT NULL)",
                (_to_text(now - timedelta(days=1)),),
            )
            await conn.execute(
                "INSERT INTO processes (incarnation, name, shards, started_at, alive_at) VALUES (?, ?, ?, ?, ?)",
                (incarnation, name, shards, stamp, stamp),
            )

    async def heartbeat(self, incarnation: str, *, now: datetime, alive_since: datetime) -> int:
        """Record the process alive; the number of processes alive since ``alive_since``."""
        async with self._transaction(write=True) as conn:
            await conn.execute("UPDATE processes SET alive_at = ? WHERE incarnation = ?", (_to_text(now), incarnation))
            row = await self._one(conn, "SELECT COUNT(*) FROM processes WHERE alive_at >= ?", (_to_text(alive_since),))
        return int(row[0]) if row else 1

    async def claim_jobs(
        self, incarnation: str, *, name: str | None = None, dead_before: datetime | None = None
    ) -> list[JobRecord]:
        """Take unfinished jobs of earlier incarnations of ``name`` (and ownerless ones), or of dead processes."""
        if name is not None:
            where = (
                "(owner IS NULL OR owner IN (SELECT incarnation FROM processes WHERE name = ? AND incarnation <> ?))"
            )
            params: tuple[Any, ...] = (name, incarnation)
        elif dead_before is not None:
            where = "owner IN (SELECT incarnation FROM processes WHERE alive_at < ? AND incarnation <> ?)"
            params = (_to_text(dead_before), incarnation)
        else:
            return []
        async with self._transaction(write=True) as conn:
            rows = await self._all(
                conn,
                f"UPDATE jobs SET owner = ? WHERE ended_at IS NULL AND {where} RETURNING rowid, {JOB_COLUMNS}",
                (incarnation, *params),
            )
            if name is not None:
                # Earlier incarnations of this name are this process before its restart: dead now that their
                # jobs are taken back (not before: another process could have taken them over meanwhile).
                await conn.execute(
                    "UPDATE processes SET alive_at = ? WHERE name = ? AND incarnation <> ?",
                    (_to_text(_LONG_AGO), name, incarnation),
                )
        ordered = sorted(rows, key=lambda row: (row[JOB_COLUMN_NAMES.index("created_at") + 1], row[0]))
        return [_decode_job(row[1:]) for row in ordered]

    async def owned_jobs(self, incarnation: str, job_ids: Collection[str]) -> set[str]:
        """Which of ``job_ids`` this incarnation still owns."""
        ids = list(job_ids)
        if not ids:
            return set()
        marks = ", ".join("?" for _ in ids)
        async with self._transaction(write=False) as conn:
            rows = await self._all(
                conn, f"SELECT job_id FROM jobs WHERE owner = ? AND job_id IN ({marks})", (incarnation, *ids)
            )
        return {str(row[0]) for row in rows}

    async def model_run_time(self, model: str) -> float | None:
        """The model's usual run time."""
        async with self._transaction(write=False) as conn:
            row = await self._one(conn, "SELECT seconds FROM model_run_times WHERE model = ?", (model,))
        return None if row is None else float(row[0])

    async def record_run_time(self, model: str, seconds: float, *, now: datetime) -> None:
        """An exponential moving average: recent runs weigh most (a model's hardware or version changes)."""
        async with self._transaction(write=True) as conn:
            await conn.execute(
                "INSERT INTO model_run_times (model, seconds, samples, updated_at) VALUES (?, ?, 1, ?) "
                "ON CONFLICT (model) DO UPDATE SET seconds = seconds + ? * (excluded.seconds - seconds), "
                "samples = samples + 1, updated_at = excluded.updated_at",
                (model, seconds, _to_text(now), RUN_TIME_WEIGHT),
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
        """Keep a verified webhook unless its id was seen before."""
        async with self._transaction(write=True) as conn:
            cursor = await conn.execute(
                "INSERT INTO webhooks (webhook_id, prediction_id, status, terminal, payload, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (webhook_id) DO NOTHING",
                (webhook_id, prediction_id, status, int(terminal), json.dumps(payload), _to_text(now)),
            )
            return cursor.rowcount > 0

    async def latest_webhook(self, prediction_id: str) -> Mapping[str, Any] | None:
        """A terminal payload of the prediction if there is one, else the newest."""
        async with self._transaction(write=False) as conn:
            row = await self._one(
                conn,
                "SELECT payload FROM webhooks WHERE prediction_id = ? ORDER BY terminal DESC, received_at DESC LIMIT 1",
                (prediction_id,),
            )
        return None if row is None else json.loads(row[0])

    def on_webhook(self, listener: Callable[[str], None]) -> None:
        """One process on SQLite: the process that records a webhook is the one that runs its job."""


_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
"""The last sign of life given to a process known to be gone."""


def _encode_job(values: dict[str, Any]) -> dict[str, Any]:
    """Journal values as SQLite stores them: JSON as text, datetimes as ISO-8601 text in UTC."""
    encoded = dict(values)
    for name in ("request", "target"):
        if encoded.get(name) is not None:
            encoded[name] = json.dumps(encoded[name])
    for name in JOB_TIMES:
        if encoded.get(name) is not None:
            encoded[name] = _to_text(encoded[name])
    return encoded


def _decode_job(values: Sequence[Any]) -> JobRecord:
    row = dict(zip(JOB_COLUMN_NAMES, values, strict=True))
    for name in ("request", "target"):
        if row[name] is not None:
            row[name] = json.loads(row[name])
    for name in JOB_TIMES:
        if row[name] is not None:
            row[name] = _from_text(row[name])
    return job_record(row)
