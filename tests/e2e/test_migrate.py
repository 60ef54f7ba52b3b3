"""``python -m bot migrate`` as an operator runs it: a subprocess with only ``DATABASE_URL`` set."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e.test_cli import base_env, cli


def with_password(url: str, password: str) -> str:
    """``url`` with a password added (the test server trusts local connections, so any password works)."""
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}:{password}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


async def test_migrate_postgresql_then_again(postgres_url: str, tmp_path: Path) -> None:
    url = with_password(postgres_url, "hunter2-canary")
    first = await cli("migrate", env=base_env(DATABASE_URL=url), cwd=tmp_path)
    assert first.code == 0, first.err
    assert "applied migrations 1, 2, 3" in first.out
    again = await cli("migrate", env=base_env(DATABASE_URL=url), cwd=tmp_path)
    assert again.code == 0, again.err
    assert "already up to date" in again.out
    for text in (first.out, first.err, again.out, again.err):
        assert "hunter2-canary" not in text


async def test_migrate_sqlite(tmp_path: Path) -> None:
    result = await cli("migrate", env=base_env(DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}"), cwd=tmp_path)
    assert result.code == 0, result.err
    assert (tmp_path / "bot.db").is_file()


async def test_migrate_needs_no_token_and_reads_no_other_setting(tmp_path: Path) -> None:
    result = await cli("migrate", env=base_env(IMAGINE_MAX_RUNNING="many"), cwd=tmp_path)
    assert result.code == 0, result.err
    assert (tmp_path / "imagine.db").is_file()  # the default DATABASE_URL


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://imagine:hunter2-canary@127.0.0.1:1/imagine",  # nothing listens on port 1
        "mysql://imagine:hunter2-canary@127.0.0.1/imagine",
    ],
)
async def test_migrate_exits_2_with_one_line_when_the_database_cannot_be_reached(tmp_path: Path, url: str) -> None:
    started = time.monotonic()
    result = await cli("migrate", env=base_env(DATABASE_URL=url), cwd=tmp_path, timeout=20)
    assert time.monotonic() - started < 15
    assert result.code == 2
    assert result.out == ""
    (line,) = result.err.splitlines()
    assert line.startswith("error: DATABASE_URL: ")
    assert "imagine:***@127.0.0.1" in line
    assert "hunter2" not in result.err
