"""The SQLite backend's moderation settings: models and their roles, channels, blocked words, limits,
role limits, the mod-log channel and the audit log, with the per-guild settings cache."""

from __future__ import annotations

from collections.abc import Callable

import aiosqlite

from bot.storage import AuditEntry, GuildConfig, Limits, RoleLimits
from bot.storage.common import (
    LOG_CHANNEL_ACTION,
    SETTINGS_CACHE_SIZE,
    check_id,
    id_text,
    limits_audit_text,
    merge_limits,
    merge_role_limits,
    model_name,
    model_roles_of,
    model_roles_text,
    non_negative,
    role_limits_text,
    word_and_key,
)
from bot.storage.sqlite.base import SqliteBase, from_text


class SqliteSettings(SqliteBase):
    """Each server's moderation settings, every change audited in its own transaction."""

    @staticmethod
    async def _limits(conn: aiosqlite.Connection, guild_id: int) -> Limits:
        row = await SqliteBase._one(
            conn,
            "SELECT cooldown_seconds, daily_images, concurrent_jobs FROM guilds WHERE guild_id = ?",
            (guild_id,),
        )
        if row is None:
            return Limits()
        return Limits(cooldown_seconds=int(row[0]), daily_images=int(row[1]), concurrent_jobs=int(row[2]))

    @staticmethod
    async def _default_model(conn: aiosqlite.Connection, guild_id: int) -> str | None:
        row = await SqliteBase._one(conn, "SELECT default_model FROM guilds WHERE guild_id = ?", (guild_id,))
        return None if row is None or row[0] is None else str(row[0])

    @staticmethod
    async def _log_channel(conn: aiosqlite.Connection, guild_id: int) -> int | None:
        row = await SqliteBase._one(conn, "SELECT log_channel_id FROM guilds WHERE guild_id = ?", (guild_id,))
        return None if row is None or row[0] is None else int(row[0])

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
            await self._audit(conn, guild_id, actor_id, "limits", limits_audit_text(old), limits_audit_text(new))
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
        row = await SqliteBase._one(
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
                at=from_text(str(row[4])),
            )
            for row in rows
        ]
