"""The PostgreSQL backend's own reading of a guild's settings: one statement (one snapshot, one round trip),
cached while notifications flow (see ``notifications.py``)."""

from __future__ import annotations

from bot.storage.common import check_id, model_roles_of
from bot.storage.postgres.base import PostgresBase
from bot.storage.records import GuildConfig, Limits, RoleLimits


class PostgresSettings(PostgresBase):
    """Each server's settings, read whole and cached while notifications flow."""

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
                       g.safety_checker_off,
                       ARRAY(SELECT model FROM allowed_models WHERE guild_id = $1 ORDER BY seq) AS models,
                       ARRAY(SELECT model FROM allowed_models WHERE guild_id = $1 AND nsfw) AS nsfw_models,
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
            safety_checker_off=row["safety_checker_off"] is True,
            nsfw_models=frozenset(row["nsfw_models"]),
        )
        self._cache.store(config, generation)
        return config
