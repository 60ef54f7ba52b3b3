"""What both backends store alike about age-restricted content: the server's safety checker (on, the default,
or off in its age-restricted channels) and the models only for age-restricted channels. Every change is audited
(``safety checker``: ``on``/``off``; ``models nsfw``: the model, ``age-restricted`` or not)."""

from __future__ import annotations

from bot.storage.common import model_name
from bot.storage.shared.base import SqlBase

SAFETY_CHECKER_ACTION = "safety checker"
MODEL_NSFW_ACTION = "models nsfw"
AGE_RESTRICTED = "age-restricted"
"""How the audit log says a model is only for age-restricted channels."""


def checker_text(off: bool) -> str:
    """The checker's state as the audit log and ``show`` say it."""
    return "off" if off else "on"


class SqlSafety(SqlBase):
    """A server's safety checker and its age-restricted models."""

    async def set_safety_checker(self, guild_id: int, *, off: bool, actor_id: int) -> bool:
        """Turn the models' safety checker off in the server's age-restricted channels (or, ``off=False``, keep it
        on everywhere); ``False`` (and no audit) if it already was so."""
        async with self._settings_change(guild_id, actor_id=actor_id) as db:
            await self._locked_guild(db, guild_id)
            row = await db.one("SELECT safety_checker_off FROM guilds WHERE guild_id = ?", guild_id)
            old = bool(row[0]) if row is not None else False
            if old == off:
                return False
            await self._update_guild(db, guild_id, safety_checker_off=off)
            await self._audit(db, guild_id, actor_id, SAFETY_CHECKER_ACTION, checker_text(old), checker_text(off))
            return True

    async def set_model_nsfw(self, guild_id: int, model: str, *, nsfw: bool, actor_id: int) -> bool:
        """Mark a model of the server's list as only for age-restricted channels (or not); ``False`` (and no audit)
        if it is not on the list or already was so."""
        model = model_name(model)
        async with self._settings_change(guild_id, actor_id=actor_id) as db:
            changed = await db.run(
                "UPDATE allowed_models SET nsfw = ? WHERE guild_id = ? AND model = ? AND nsfw <> ?",
                nsfw,
                guild_id,
                model,
                nsfw,
            )
            if changed:
                before, after = (
                    (model, f"{model} ({AGE_RESTRICTED})") if nsfw else (f"{model} ({AGE_RESTRICTED})", model)
                )
                await self._audit(db, guild_id, actor_id, MODEL_NSFW_ACTION, before, after)
        return bool(changed)
