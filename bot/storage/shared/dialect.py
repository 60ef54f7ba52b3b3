"""What the shared SQL runs on: a :class:`Dialect` (how a backend words and stores things) and an
:class:`Executor` (one transaction, or one connection, of that backend).

Shared SQL is written with ``?`` placeholders (never inside a literal) and a few
``{word}`` slots for what the two dialects spell differently (:attr:`Dialect.words`);
each backend renders it once per text and caches the result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, ClassVar, Literal, Protocol

DialectName = Literal["sqlite", "postgres"]

_SLOT = re.compile(r"\{(\w+)\}")


def fill_slots(text: str, words: Mapping[str, str]) -> str:
    """``text`` with each ``{word}`` slot of ``words`` filled in (other braces are left as they are)."""
    return _SLOT.sub(lambda slot: words.get(slot[1], slot[0]), text)


Row = Sequence[Any]
"""A result row, read by position."""


class Dialect:
    """How one backend words the shared SQL and stores what its columns hold.

    The defaults are PostgreSQL's driver's: values come back as Python objects.
    """

    name: ClassVar[DialectName]
    numbered: ClassVar[bool] = False
    """Placeholders are ``$1, $2, …`` rather than ``?``."""
    words: ClassVar[Mapping[str, str]]
    """The text of each ``{word}`` slot of the shared SQL."""

    def __init__(self) -> None:
        self._rendered: dict[str, str] = {}

    def sql(self, text: str) -> str:
        """``text`` as this dialect runs it."""
        rendered = self._rendered.get(text)
        if rendered is None:
            rendered = fill_slots(text, self.words)
            if self.numbered:
                numbers = iter(range(1, rendered.count("?") + 1))
                rendered = re.sub(r"\?", lambda _: f"${next(numbers)}", rendered)
            self._rendered[text] = rendered
        return rendered

    def moment(self, value: Any) -> datetime:
        """A stored moment, timezone-aware in UTC."""
        assert isinstance(value, datetime)
        return value

    def day(self, value: Any) -> date:
        """A stored day."""
        assert isinstance(value, date)
        return value

    def to_json(self, value: Any) -> Any:
        """JSON-able data as a JSON column takes it."""
        return value

    def from_json(self, value: Any) -> Any:
        """A JSON column's value as Python data."""
        return value

    def ago(self, seconds: float) -> Any:
        """The argument of the ``{ago}`` slot (the database's clock ``seconds`` before now; never ahead)."""
        return max(0.0, seconds)

    def version_stamp(self, moment: datetime) -> Any:
        """``schema_version.applied_at`` as this backend has always written it."""
        return moment


class Executor(Protocol):
    """One transaction (or, for single statements, one connection) of a backend."""

    @property
    def dialect(self) -> Dialect:
        """How this backend words and stores things."""
        ...

    @property
    def key(self) -> object:
        """What identifies the transaction (settings changes are held under it until it commits)."""
        ...

    async def one(self, sql: str, *args: Any) -> Row | None:
        """The first row of ``sql`` (shared SQL, rendered for the dialect), if any."""
        ...

    async def all(self, sql: str, *args: Any) -> list[Row]:
        """Every row of ``sql``."""
        ...

    async def run(self, sql: str, *args: Any) -> int:
        """Run a write; the number of rows it changed."""
        ...

    async def script(self, sql: str) -> None:
        """Run ``sql`` exactly as written, with no parameters (schema steps)."""
        ...
