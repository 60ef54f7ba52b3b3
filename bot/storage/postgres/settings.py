"""The PostgreSQL backend's moderation settings: models and their roles, channels, blocked words, limits,
role limits, the mod-log channel and the audit log. Changes that depend on what is stored take the
guild's row lock first; the others are single conditional statements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.storage import AuditEntry, GuildConfig, Limits, RoleLimits
from bot.storage.common import (
    LOG_CHANNEL_ACTION,
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
from bot.storage.postgres.base import PostgresBase


class PostgresSettings(PostgresBase):
    """Each server's moderation settings, cached while notifications flow, every change audited."""

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
            await self._audit(conn, guild_id, actor_id, "limits", limits_audit_text(old), limits_audit_text(new))
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
