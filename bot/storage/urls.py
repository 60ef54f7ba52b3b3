"""``DATABASE_URL``: which backend it names, checked up front, and shown without its password.

Two kinds are understood:

* ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
  ``sqlite:///:memory:``: the embedded store;
* ``postgresql://user:password@host:5432/dbname`` (also ``postgres://``;
  extra query parameters such as ``?sslmode=require`` go to the driver).

Any message that quotes a URL goes through :func:`mask_url` first, so a
password never reaches a terminal or a log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")
_EXPECTED = "sqlite:///path/to/file.db or postgresql://user:password@host:5432/dbname"

# "scheme://user:secret@" in any text, however malformed the rest: the secret is what goes.
# Greedy up to the last "@" of the word: a password with an unencoded "@" is masked whole.
_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/?#@:\s]*:)\S*@")


def mask_url(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@`` in it replaced by ``***``."""
    return _CREDENTIALS.sub(r"\g<head>***@", text)


@dataclass(frozen=True)
class DatabaseUrl:
    """A checked ``DATABASE_URL``."""

    backend: Literal["sqlite", "postgres"]
    url: str = field(repr=False)
    """The URL as given: it may hold a password, so it is left out of ``repr``."""
    sqlite_path: str | None = None
    """The file (or ``:memory:``) for SQLite; ``None`` for PostgreSQL."""

    @property
    def masked(self) -> str:
        """The URL with its password, if any, masked: safe to print."""
        return mask_url(self.url)

    def __repr__(self) -> str:
        return f"DatabaseUrl(backend={self.backend!r}, url={self.masked!r})"


def parse_database_url(url: str) -> DatabaseUrl:
    """Check ``url``; ``ValueError`` (with a message that shows no password) for anything not understood."""
    if url.startswith(SQLITE_PREFIX):
        path = url[len(SQLITE_PREFIX) :]
        if not path:
            raise ValueError(f"must look like {_EXPECTED} (got {mask_url(url)!r}): the file name is missing")
        # sqlite:////abs/path keeps its leading slash; sqlite:///rel/path is relative.
        return DatabaseUrl("sqlite", url, sqlite_path=path)
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in POSTGRES_SCHEMES:
        raise ValueError(f"must look like {_EXPECTED} (got {mask_url(url)!r})")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError(f"is not a valid PostgreSQL URL: {mask_url(url)!r}") from None
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ValueError(
            f"must name one database, as in postgresql://user:password@host:5432/dbname (got {mask_url(url)!r})"
        )
    return DatabaseUrl("postgres", url)
