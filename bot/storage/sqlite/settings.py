"""The SQLite backend's own reading of a guild's settings: several queries in one read transaction,
cached in memory until the next change (this process is the only one that changes them)."""

from __future__ import annotations

from bot.storage.common import SETTINGS_CACHE_SIZE, check_id, model_roles_of
from bot.storage.records import GuildConfig, Limits, RoleLimits
from bot.storage.sqlite.base import SqliteBase


class SqliteSettings(SqliteBase):
    """Each server's settings, read whole and cached."""

    async def guild_config(self, guild_id: int) -> GuildConfig:
        """The server's settings (defaults if it never set any); cached until the next change."""
        check_id("guild_id", guild_id)
        cached = self._configs.get(guild_id)
        if cached is not None:
            return cached
        async with self._reading() as db:
            guild = await db.one(
                "SELECT default_model, cooldown_seconds, daily_images, concurrent_jobs, log_channel_id FROM guilds "
                "WHERE guild_id = ?",
                guild_id,
            )
            models = await db.all("SELECT model, nsfw FROM allowed_models WHERE guild_id = ? ORDER BY seq", guild_id)
            checker = await db.one("SELECT safety_checker_off FROM guilds WHERE guild_id = ?", guild_id)
            channels = await db.all("SELECT channel_id FROM allowed_channels WHERE guild_id = ?", guild_id)
            words = await db.all("SELECT word FROM blocked_words WHERE guild_id = ? ORDER BY seq", guild_id)
            model_roles = await db.all("SELECT model, role_id FROM model_roles WHERE guild_id = ?", guild_id)
            role_limits = await db.all(
                "SELECT role_id, cooldown_seconds, daily_images, concurrent_jobs FROM role_limits "
                "WHERE guild_id = ? ORDER BY role_id",
                guild_id,
            )
        names = tuple(str(row[0]) for row in models)
        config = GuildConfig(
            guild_id=guild_id,
            models=names,
            default_model=None if guild is None else guild[0],
            channels=frozenset(int(row[0]) for row in channels),
            blocked_words=tuple(str(row[0]) for row in words),
            limits=Limits() if guild is None else Limits(int(guild[1]), int(guild[2]), int(guild[3])),
            log_channel_id=None if guild is None else guild[4],
            model_roles=model_roles_of(names, ((str(row[0]), int(row[1])) for row in model_roles)),
            role_limits=tuple(RoleLimits(*row) for row in role_limits),
            safety_checker_off=checker is not None and bool(checker[0]),
            nsfw_models=frozenset(str(row[0]) for row in models if row[1]),
        )
        if len(self._configs) > SETTINGS_CACHE_SIZE:
            self._configs.clear()
        self._configs[guild_id] = config
        return config
