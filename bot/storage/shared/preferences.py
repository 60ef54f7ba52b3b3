"""Members' preferences (``/imagine-settings``): one row per member, named options in their own table.

A member's preferences are the same in every server of the deployment, so nothing here names a server.
Every change to one member's named options first locks that member's preferences row (created if need
be): two changes at once queue on it, and the second counts what the first committed, so no race makes
more than :data:`~bot.storage.records.MAX_NAMED_OPTIONS`. Nothing is cached: each read is one short
transaction, and a change made by another process is seen at once.
"""

from __future__ import annotations

from bot.storage.common import check_id, utc
from bot.storage.records import MAX_NAMED_OPTIONS, PreferenceChanges, Preferences
from bot.storage.shared.base import SqlBase
from bot.storage.shared.dialect import Executor

_COLUMNS = "model, aspect_ratio, count, remix, suffix"


def _checked(changes: PreferenceChanges) -> dict[str, object]:
    """The columns ``changes`` sets, as stored (an empty model or suffix is NULL); ``ValueError`` for a count
    below 1. What a member may choose (ratios, lengths) is for the command to check and explain;
    storage keeps what it is given."""
    columns: dict[str, object] = {}
    if changes.model is not None:
        columns["model"] = changes.model.strip() or None
    if changes.aspect_ratio is not None:
        columns["aspect_ratio"] = changes.aspect_ratio.strip() or None
    if changes.count is not None:
        if isinstance(changes.count, bool) or not isinstance(changes.count, int) or changes.count < 1:
            raise ValueError(f"count must be a whole number ≥ 1, got {changes.count!r}")
        columns["count"] = changes.count
    if changes.remix is not None:
        columns["remix"] = bool(changes.remix)
    if changes.suffix is not None:
        columns["suffix"] = changes.suffix.strip() or None
    return columns


def _checked_option(name: str, value: str | None) -> None:
    """``ValueError`` for a name not as stored (trimmed, lower-case, not empty) or an empty value."""
    if not name or name != name.strip().lower():
        raise ValueError(f"a named option's name is stored trimmed and lower-case, got {name!r}")
    if value is not None and not value.strip():
        raise ValueError("a named option's value is never empty (None removes the option)")


class SqlPreferences(SqlBase):
    """The repository's preferences part."""

    async def preferences(self, member_id: int) -> Preferences:
        """A member's preferences (all defaults for one who set none)."""
        check_id("member_id", member_id)
        async with self._reading() as db:
            return await self._preferences_in(db, member_id)

    async def set_preferences(self, member_id: int, changes: PreferenceChanges) -> Preferences:
        """Change the given preferences; returns them as they are now."""
        check_id("member_id", member_id)
        columns = _checked(changes)
        if not columns:
            return await self.preferences(member_id)
        assignments = ", ".join(f"{name} = ?" for name in columns)  # names from _checked, never a caller's
        async with self._writing() as db:
            await self._ensure_member(db, member_id)
            await db.run(
                f"UPDATE member_preferences SET {assignments}, updated_at = ? WHERE member_id = ?",
                *columns.values(),
                utc(self._clock.now()),
                member_id,
            )
            return await self._preferences_in(db, member_id)

    async def set_named_option(self, member_id: int, name: str, value: str | None) -> bool:
        """Set (or, with ``None``, remove) a named option; ``False`` past the limit or for one the member does
        not have. Atomic: two at once never make 21."""
        check_id("member_id", member_id)
        _checked_option(name, value)
        async with self._writing() as db:
            if value is None:
                removed = await db.run("DELETE FROM member_options WHERE member_id = ? AND name = ?", member_id, name)
                if removed:
                    await self._touch(db, member_id)
                return removed > 0
            await self._ensure_member(db, member_id)
            # Held until the transaction ends: another change to this member's options waits here, then counts.
            await db.one("SELECT member_id FROM member_preferences WHERE member_id = ?{for_no_key_update}", member_id)
            row = await db.one(
                "SELECT COUNT(*), COALESCE(SUM(CASE WHEN name = ? THEN 1 ELSE 0 END), 0) FROM member_options "
                "WHERE member_id = ?",
                name,
                member_id,
            )
            assert row is not None  # an aggregate always yields one row
            held, replacing = int(row[0]), int(row[1]) > 0
            if not replacing and held >= MAX_NAMED_OPTIONS:
                return False
            await db.run(
                "INSERT INTO member_options (member_id, name, value) VALUES (?, ?, ?) "
                "ON CONFLICT (member_id, name) DO UPDATE SET value = excluded.value",
                member_id,
                name,
                value,
            )
            await self._touch(db, member_id)
            return True

    async def reset_preferences(self, member_id: int) -> None:
        """Forget every preference and named option of the member."""
        check_id("member_id", member_id)
        async with self._writing() as db:
            # The options would go with their parent row anyway (ON DELETE CASCADE); said here, not left to it.
            await db.run("DELETE FROM member_options WHERE member_id = ?", member_id)
            await db.run("DELETE FROM member_preferences WHERE member_id = ?", member_id)

    # ------------------------------------------------------------- helpers

    async def _ensure_member(self, db: Executor, member_id: int) -> None:
        """The member's preferences row, created with no preference if missing (the parent of their options)."""
        await db.run(
            "INSERT INTO member_preferences (member_id, updated_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            member_id,
            utc(self._clock.now()),
        )

    async def _touch(self, db: Executor, member_id: int) -> None:
        now = utc(self._clock.now())
        await db.run("UPDATE member_preferences SET updated_at = ? WHERE member_id = ?", now, member_id)

    @staticmethod
    async def _preferences_in(db: Executor, member_id: int) -> Preferences:
        row = await db.one(f"SELECT {_COLUMNS} FROM member_preferences WHERE member_id = ?", member_id)
        if row is None:
            return Preferences(member_id)
        options = await db.all("SELECT name, value FROM member_options WHERE member_id = ? ORDER BY name", member_id)
        return Preferences(
            member_id,
            model=row[0],
            aspect_ratio=row[1],
            count=None if row[2] is None else int(row[2]),
            remix=bool(row[3]),
            suffix=row[4],
            options={str(name): str(value) for name, value in options},
        )
