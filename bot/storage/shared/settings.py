"""The moderation settings both backends store alike: models and their roles, channels, blocked words,
limits, role limits, the mod-log channel and the audit log.

Changes that depend on what is stored lock the guild's row first (on SQLite the
write transaction holds the whole database); the others are single conditional
statements whose row counts say whether anything changed. Reading a guild's
whole settings (and caching them) is each backend's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from bot.storage.common import (
    LOG_CHANNEL_ACTION,
    check_id,
    id_text,
    limits_audit_text,
    limits_given,
    model_name,
    model_roles_text,
    role_limits_text,
    word_and_key,
)
from bot.storage.records import AuditEntry, LimitChanges, Limits, RoleLimits
from bot.storage.shared.base import SqlBase
from bot.storage.shared.dialect import Executor


class SqlSettings(SqlBase):
    """Each server's moderation settings, every change audited in its own transaction."""

    async def allow_model(self, guild_id: int, model: str, *, actor_id: int, role_id: int | None = None) -> bool:
        """Add to the allowlist (at the end), for everyone or, with ``role_id``, for that role too.

        Allowing a model without a role drops the roles it had (it is everyone's again). ``False`` if
        nothing changed. Audited as ``models allow`` with the model's roles before and after.
        """
        model = model_name(model)
        async with self._settings_change(guild_id, actor_id=actor_id, optional={"role_id": role_id}) as db:
            await self._ensure_guild(db, guild_id)
            added = await db.run(
                "INSERT INTO allowed_models (guild_id, model) VALUES (?, ?) ON CONFLICT DO NOTHING", guild_id, model
            )
            if added and role_id is None:  # a model just added has no roles: it is everyone's
                await self._audit(db, guild_id, actor_id, "models allow", None, model)
                return True
            # The model's row, locked: two moderators changing its roles at once take turns.
            await db.one("SELECT 1 FROM allowed_models WHERE guild_id = ? AND model = ?{for_update}", guild_id, model)
            rows = await db.all("SELECT role_id FROM model_roles WHERE guild_id = ? AND model = ?", guild_id, model)
            old_roles = {int(row[0]) for row in rows}
            if role_id is None:
                await db.run("DELETE FROM model_roles WHERE guild_id = ? AND model = ?", guild_id, model)
                new_roles: set[int] = set()
            else:
                await db.run(
                    "INSERT INTO model_roles (guild_id, model, role_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    guild_id,
                    model,
                    role_id,
                )
                new_roles = old_roles | {role_id}
            changed = bool(added) or new_roles != old_roles
            if changed:
                before = None if added else model_roles_text(model, old_roles)
                await self._audit(db, guild_id, actor_id, "models allow", before, model_roles_text(model, new_roles))
        return changed

    async def remove_model(self, guild_id: int, model: str, *, actor_id: int) -> bool:
        """Remove from the allowlist; ``False`` if absent.

        If it was the server's default, the default is cleared too, and that is
        audited as a separate ``models default`` entry (``model`` → ``None``) in
        the same transaction, so the log reads exactly like a moderator had
        cleared it by hand.
        """
        model = model_name(model)
        async with self._settings_change(guild_id, actor_id=actor_id) as db:
            if not await db.run("DELETE FROM allowed_models WHERE guild_id = ? AND model = ?", guild_id, model):
                return False
            await self._audit(db, guild_id, actor_id, "models remove", model, None)
            if await db.run(
                "UPDATE guilds SET default_model = NULL WHERE guild_id = ? AND default_model = ?", guild_id, model
            ):
                await self._audit(db, guild_id, actor_id, "models default", model, None)
        return True

    async def set_default_model(self, guild_id: int, model: str | None, *, actor_id: int) -> bool:
        """Set (or, with ``None``, clear) the server's default model; ``False`` (and no audit) if unchanged.

        The model need not be on the server's allowlist: with an empty list the
        bot-wide models apply, and choosing among them is the caller's policy.
        """
        new = None if model is None else model_name(model)
        async with self._settings_change(guild_id, actor_id=actor_id) as db:
            old = (await self._locked_guild(db, guild_id)).default_model
            if old == new:
                return False
            await self._update_guild(db, guild_id, default_model=new)
            await self._audit(db, guild_id, actor_id, "models default", old, new)
            return True

    async def allow_channel(self, guild_id: int, channel_id: int, *, actor_id: int) -> bool:
        """Add a channel where ``/imagine`` may be used; ``False`` if already there."""
        async with self._settings_change(guild_id, channel_id=channel_id, actor_id=actor_id) as db:
            await self._ensure_guild(db, guild_id)
            added = await db.run(
                "INSERT INTO allowed_channels (guild_id, channel_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                guild_id,
                channel_id,
            )
            if added:
                await self._audit(db, guild_id, actor_id, "channels allow", None, str(channel_id))
        return bool(added)

    async def remove_channel(self, guild_id: int, channel_id: int, *, actor_id: int) -> bool:
        """Remove a channel; ``False`` if absent."""
        async with self._settings_change(guild_id, channel_id=channel_id, actor_id=actor_id) as db:
            removed = await db.run(
                "DELETE FROM allowed_channels WHERE guild_id = ? AND channel_id = ?", guild_id, channel_id
            )
            if removed:
                await self._audit(db, guild_id, actor_id, "channels remove", str(channel_id), None)
        return bool(removed)

    async def add_word(self, guild_id: int, word: str, *, actor_id: int) -> bool:
        """Block a word, stored trimmed but otherwise as given; ``False`` if blocked in any letter case."""
        word, key = word_and_key(word)
        async with self._settings_change(guild_id, actor_id=actor_id) as db:
            await self._ensure_guild(db, guild_id)
            added = await db.run(
                "INSERT INTO blocked_words (guild_id, word, word_key) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                guild_id,
                word,
                key,
            )
            if added:
                await self._audit(db, guild_id, actor_id, "words add", None, word)
        return bool(added)

    async def remove_word(self, guild_id: int, word: str, *, actor_id: int) -> bool:
        """Unblock a word in any letter case; ``False`` if it was not blocked. The audit shows the stored word."""
        _, key = word_and_key(word)
        async with self._settings_change(guild_id, actor_id=actor_id) as db:
            row = await db.one(
                "DELETE FROM blocked_words WHERE guild_id = ? AND word_key = ? RETURNING word", guild_id, key
            )
            if row is None:
                return False
            await self._audit(db, guild_id, actor_id, "words remove", str(row[0]), None)
        return True

    async def set_limits(self, guild_id: int, changes: LimitChanges, *, actor_id: int) -> Limits:
        """Make the given limits' changes; returns the limits now in force.

        One ``limits`` audit entry shows all three before and after; a call that
        changes nothing records nothing.
        """
        given = limits_given(changes)
        async with self._settings_change(guild_id, actor_id=actor_id) as db:
            old = (await self._locked_guild(db, guild_id)).limits
            new = replace(old, **given)
            if new == old:
                return old
            # The guild's columns are named as the limits are.
            await self._update_guild(db, guild_id, **given)
            await self._audit(db, guild_id, actor_id, "limits", limits_audit_text(old), limits_audit_text(new))
        return new

    async def set_log_channel(self, guild_id: int, channel_id: int | None, *, actor_id: int) -> bool:
        """Set (or, with ``None``, turn off) the mod-log channel; ``False`` (and no audit) if unchanged.

        Audited as ``log channel`` with the channel ids as text, old → new.
        """
        async with self._settings_change(guild_id, actor_id=actor_id, optional={"channel_id": channel_id}) as db:
            old = (await self._locked_guild(db, guild_id)).log_channel_id
            if old == channel_id:
                return False
            await self._update_guild(db, guild_id, log_channel_id=channel_id)
            await self._audit(db, guild_id, actor_id, LOG_CHANNEL_ACTION, id_text(old), id_text(channel_id))
            return True

    def on_settings_change(self, listener: Callable[[AuditEntry], None]) -> None:
        """Call ``listener`` with each audit entry once its transaction has committed (this process's changes).

        Other processes' changes are not announced here: the process where a change is made posts it.
        """
        self._changes.listen(listener)

    @staticmethod
    async def _role_limits(db: Executor, guild_id: int, role_id: int) -> RoleLimits:
        row = await db.one(
            "SELECT role_id, cooldown_seconds, daily_images, concurrent_jobs FROM role_limits "
            "WHERE guild_id = ? AND role_id = ?",
            guild_id,
            role_id,
        )
        return RoleLimits(role_id) if row is None else RoleLimits(*row)

    async def set_role_limits(self, guild_id: int, role_id: int, changes: LimitChanges, *, actor_id: int) -> RoleLimits:
        """Make the given changes to the limits of members with ``role_id``; returns that role's limits.

        One ``limits role`` audit entry shows the role's three before and after; no change records nothing.
        """
        given = limits_given(changes)
        async with self._settings_change(guild_id, role_id=role_id, actor_id=actor_id) as db:
            # The guild's row, locked: concurrent changes to one role's limits take turns, none is lost.
            await self._locked_guild(db, guild_id)
            old = await self._role_limits(db, guild_id, role_id)
            new = replace(old, **given)
            if new == old:
                return old
            await db.run(
                "INSERT INTO role_limits (guild_id, role_id, cooldown_seconds, daily_images, concurrent_jobs) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id, role_id) DO UPDATE SET "
                "cooldown_seconds = excluded.cooldown_seconds, daily_images = excluded.daily_images, "
                "concurrent_jobs = excluded.concurrent_jobs",
                guild_id,
                role_id,
                new.cooldown_seconds,
                new.daily_images,
                new.concurrent_jobs,
            )
            await self._audit(db, guild_id, actor_id, "limits role", role_limits_text(old), role_limits_text(new))
        return new

    async def clear_role_limits(self, guild_id: int, role_id: int, *, actor_id: int) -> bool:
        """Forget every limit of ``role_id`` (audited as ``limits role`` → nothing); ``False`` if it had none."""
        async with self._settings_change(guild_id, role_id=role_id, actor_id=actor_id) as db:
            row = await db.one(
                "DELETE FROM role_limits WHERE guild_id = ? AND role_id = ? "
                "RETURNING role_id, cooldown_seconds, daily_images, concurrent_jobs",
                guild_id,
                role_id,
            )
            if row is None:
                return False
            await self._audit(db, guild_id, actor_id, "limits role", role_limits_text(RoleLimits(*row)), None)
        return True

    async def audit_log(self, guild_id: int, *, limit: int = 10) -> list[AuditEntry]:
        """The server's latest changes, newest first (in the order they were made)."""
        check_id("guild_id", guild_id)
        if limit < 0:
            raise ValueError(f"limit must be ≥ 0, got {limit}")
        async with self._reading() as db:
            rows = await db.all(
                "SELECT actor_id, action, before, after, at FROM audit_log WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
                guild_id,
                limit,
            )
            moment = db.dialect.moment
        return [AuditEntry(guild_id, int(row[0]), str(row[1]), row[2], row[3], moment(row[4])) for row in rows]
