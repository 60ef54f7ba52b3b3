"""Members' preferences (``/imagine-settings``): one row per member, named options in their own table."""

from __future__ import annotations

from bot.storage.records import PreferenceChanges, Preferences
from bot.storage.shared.base import SqlBase


class SqlPreferences(SqlBase):
    """The repository's preferences part."""

    async def preferences(self, member_id: int) -> Preferences:
        """A member's preferences (all defaults for one who set none)."""
        return Preferences(member_id)

    async def set_preferences(self, member_id: int, changes: PreferenceChanges) -> Preferences:
        """Change the given preferences; returns them as they are now."""
        raise NotImplementedError

    async def set_named_option(self, member_id: int, name: str, value: str | None) -> bool:
        """Set (or remove) a named option; ``False`` past the limit or for one the member does not have."""
        raise NotImplementedError

    async def reset_preferences(self, member_id: int) -> None:
        """Forget every preference and named option of the member."""
        raise NotImplementedError
