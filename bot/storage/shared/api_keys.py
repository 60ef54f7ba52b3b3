"""Servers' own API keys (``guild_api_keys``), stored alike by both backends: only as ciphertext.

The key is encrypted before it reaches the repository (:mod:`bot.moderation.api_keys`); the audit log and
the mod-log read only ``set, ends in …abcd``.
"""

from __future__ import annotations

from bot.storage.common import check_id, utc
from bot.storage.records import StoredApiKey
from bot.storage.shared.base import SqlBase

API_KEY_ACTION = "apikey"
"""The audit log's action for a server's API key being set, turned off or rejected."""


def key_text(last4: str) -> str:
    """What the audit log says of a key: never the key, only its end."""
    return f"set, ends in …{last4}"


class SqlApiKeys(SqlBase):
    """Each server's own API key: set, read, turned off, marked rejected."""

    async def api_key(self, guild_id: int) -> StoredApiKey | None:
        """The server's stored key (ciphertext), ``None`` if it uses the deployment's."""
        check_id("guild_id", guild_id)
        async with self._reading() as db:
            row = await db.one(
                "SELECT ciphertext, last4, rejected, set_by, set_at FROM guild_api_keys WHERE guild_id = ?", guild_id
            )
            if row is None:
                return None
            set_at = db.dialect.moment(row[4])
        return StoredApiKey(guild_id, str(row[0]), str(row[1]), bool(row[2]), int(row[3]), set_at)

    async def set_api_key(self, guild_id: int, ciphertext: str, last4: str, *, actor_id: int) -> None:
        """Keep the server's key (replacing any, rejected or not); audited as ``apikey``: ``set, ends in …abcd``."""
        if not ciphertext or len(last4) > 8:
            raise ValueError("set_api_key takes the key's ciphertext and at most its last few characters")
        async with self._settings_change(guild_id, actor_id=actor_id) as db:
            await self._ensure_guild(db, guild_id)
            old = await db.one("SELECT last4 FROM guild_api_keys WHERE guild_id = ?{for_update}", guild_id)
            await db.run(
                "INSERT INTO guild_api_keys (guild_id, ciphertext, last4, rejected, set_by, set_at) "
                "VALUES (?, ?, ?, FALSE, ?, ?) ON CONFLICT (guild_id) DO UPDATE SET ciphertext = excluded.ciphertext, "
                "last4 = excluded.last4, rejected = FALSE, set_by = excluded.set_by, set_at = excluded.set_at",
                guild_id,
                ciphertext,
                last4,
                actor_id,
                utc(self._clock.now()),
            )
            before = None if old is None else key_text(str(old[0]))
            await self._audit(db, guild_id, actor_id, API_KEY_ACTION, before, key_text(last4))

    async def clear_api_key(self, guild_id: int, *, actor_id: int) -> bool:
        """Back to the deployment's key; ``False`` (and no audit) if the server had none."""
        async with self._settings_change(guild_id, actor_id=actor_id) as db:
            old = await db.one("SELECT last4 FROM guild_api_keys WHERE guild_id = ?{for_update}", guild_id)
            if old is None:
                return False
            await db.run("DELETE FROM guild_api_keys WHERE guild_id = ?", guild_id)
            await self._audit(db, guild_id, actor_id, API_KEY_ACTION, key_text(str(old[0])), None)
        return True

    async def reject_api_key(self, guild_id: int, ciphertext: str) -> bool:
        """The API refused this key: mark it rejected, if it is still the server's key; ``True`` if it was."""
        check_id("guild_id", guild_id)
        async with self._writing() as db:
            changed = await db.run(
                "UPDATE guild_api_keys SET rejected = TRUE WHERE guild_id = ? AND ciphertext = ? AND NOT rejected",
                guild_id,
                ciphertext,
            )
        return bool(changed)
