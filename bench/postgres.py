"""A throwaway PostgreSQL database for the scale-out runs, made and dropped as the tests do.

The server is the tests' one (``tests/storage.py``): ``postgresql://postgres@127.0.0.1:5432/test``,
or ``IMAGINE_TEST_POSTGRES_URL``. The database there is used only to create ours, with a random
name, and to drop it at the end (``WITH (FORCE)``: whoever is still connected). The tests' helpers
are not imported because they need pytest, which the ``bench`` extra does not install.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
URL_VARIABLE = "IMAGINE_TEST_POSTGRES_URL"


class PostgresUnavailable(Exception):
    """No PostgreSQL server answered (the message says why)."""


def admin_url() -> str:
    """The server's URL: ``IMAGINE_TEST_POSTGRES_URL``, else the tests' default."""
    return os.environ.get(URL_VARIABLE, DEFAULT_POSTGRES_URL)


def _redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def execute_once(url: str, statement: str) -> None:
    """Run one statement on a connection of its own (``CREATE DATABASE`` cannot run inside a transaction)."""
    conn: Any = await asyncpg.connect(url, timeout=3)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@asynccontextmanager
async def disposable_database(server: str, prefix: str = "imagine_bench") -> AsyncIterator[str]:
    """A new, empty database on ``server`` for the ``async with`` block; its URL.

    Raises :class:`PostgresUnavailable` when the server does not answer or refuses.
    """
    name = f"{prefix}_{secrets.token_hex(6)}"
    try:
        await execute_once(server, f'CREATE DATABASE "{name}"')
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise PostgresUnavailable(f"{_redacted(server)}: {type(exc).__name__}: {exc}") from exc
    parts = urlsplit(server)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    finally:
        await execute_once(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
