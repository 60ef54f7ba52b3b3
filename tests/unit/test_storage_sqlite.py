"""What only the SQLite repository has: its file, its pragmas, and its migrator.

The behaviour both backends share is tested in ``test_storage.py``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from bot.storage import SchemaVersionError, StorageError
from bot.storage.migrations import Migration, check_migrations
from bot.storage.schema import MIGRATIONS, latest_version
from bot.storage.sqlite import SqliteRepository
from bot.storage.sqlite.dialect import apply_migrations, schema_version
from tests.storage import T0, FakeClock

GUILD = 111
MOD = 900


# ---------------------------------------------------------------------------- files


async def test_file_database_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = str(tmp_path / "imagine.db")
    repo = await SqliteRepository.open(path)
    try:
        conn = repo._connection()
        async with conn.execute("PRAGMA journal_mode") as cursor:
            assert (await cursor.fetchone()) == ("wal",)
        async with conn.execute("PRAGMA foreign_keys") as cursor:
            assert (await cursor.fetchone()) == (1,)
        async with conn.execute("PRAGMA busy_timeout") as cursor:
            row = await cursor.fetchone()
            assert row is not None and row[0] > 0
        # FULL (2): a commit (the journal's create mark) survives a power cut, so no prediction is paid twice.
        async with conn.execute("PRAGMA synchronous") as cursor:
            assert (await cursor.fetchone()) == (2,)
    finally:
        await repo.close()
    # WAL is a property of the file: a plain connection sees it too.
    with sqlite3.connect(path) as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    plain.close()


async def test_only_writes_a_power_cut_may_lose_skip_the_disk_wait(tmp_path: Path) -> None:
    """Webhook ids and heartbeats commit with NORMAL; the journal and charges (every other write) with FULL."""
    repo = await SqliteRepository.open(str(tmp_path / "imagine.db"))
    modes: list[int] = []
    try:
        conn = repo._connection()

        async def mode() -> int:
            async with conn.execute("PRAGMA synchronous") as cursor:
                row = await cursor.fetchone()
            assert row is not None
            return int(row[0])

        async with repo._transaction(write=True, durable=False):
            modes.append(await mode())
        modes.append(await mode())
        with pytest.raises(RuntimeError):
            async with repo._transaction(write=True, durable=False):
                raise RuntimeError("a failed relaxed write")
        modes.append(await mode())
        async with repo._transaction(write=True):
            modes.append(await mode())
        assert await repo.record_webhook("wh_1", "p1", stage=0, payload=None)
        modes.append(await mode())
    finally:
        await repo.close()
    assert modes == [1, 2, 2, 2, 2]  # NORMAL inside the relaxed one only; FULL again after, even after a failure


async def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dirs" / "imagine.db"
    await (await SqliteRepository.open(str(path))).close()
    assert path.is_file()


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not a database, just some text that is long enough " * 20)
    with pytest.raises(StorageError, match=r"notes\.db"):
        await SqliteRepository.open(str(path))


# ---------------------------------------------------------------------------- migrations


async def _versions(path: str) -> list[tuple[int, str]]:
    async with (
        aiosqlite.connect(path) as conn,
        conn.execute("SELECT version, applied_at FROM schema_version ORDER BY version") as cursor,
    ):
        return [(int(row[0]), str(row[1])) for row in await cursor.fetchall()]


async def test_fresh_database_reaches_the_latest_version(tmp_path: Path, clock: FakeClock) -> None:
    path = str(tmp_path / "imagine.db")
    repo = await SqliteRepository.open(path, clock=clock)
    await repo.close()
    versions = await _versions(path)
    assert [v for v, _ in versions] == list(range(1, latest_version() + 1))
    assert versions[0][1] == T0.isoformat()


async def test_a_database_of_an_earlier_version_is_brought_up_to_date(tmp_path: Path, clock: FakeClock) -> None:
    """A database written before the journal's prediction index (version 2) keeps its data and gains the index."""
    path = str(tmp_path / "imagine.db")
    old = await SqliteRepository.open(path, clock=clock, migrations=MIGRATIONS[:2])
    assert old.applied_migrations == (1, 2)
    await old.allow_model(GUILD, "a/a", actor_id=MOD)
    await old.close()

    repo = await SqliteRepository.open(path, clock=clock)
    try:
        assert repo.applied_migrations == tuple(range(3, latest_version() + 1))
        assert (await repo.guild_config(GUILD)).models == ("a/a",)
        async with repo._connection().execute("SELECT 1 FROM sqlite_master WHERE name = 'jobs_by_prediction'") as c:
            assert await c.fetchone() == (1,)
    finally:
        await repo.close()


async def test_reopening_applies_nothing_new(tmp_path: Path, clock: FakeClock) -> None:
    path = str(tmp_path / "imagine.db")
    await (await SqliteRepository.open(path, clock=clock)).close()
    before = await _versions(path)
    clock.advance(3600)
    await (await SqliteRepository.open(path, clock=clock)).close()
    assert await _versions(path) == before  # same rows, same applied_at

    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await apply_migrations(conn) == []
        assert await schema_version(conn) == latest_version()


async def test_appending_a_migration_applies_only_that_one(tmp_path: Path, clock: FakeClock) -> None:
    path = str(tmp_path / "imagine.db")
    repo = await SqliteRepository.open(path, clock=clock)
    await repo.allow_model(GUILD, "a/a", actor_id=MOD)
    await repo.close()

    journal = Migration(
        latest_version() + 1,
        "a test table",
        ("CREATE TABLE test_jobs (job_id TEXT PRIMARY KEY, guild_id INTEGER REFERENCES guilds (guild_id))",),
    )
    repo = await SqliteRepository.open(path, clock=clock, migrations=(*MIGRATIONS, journal))
    try:
        assert (await repo.guild_config(GUILD)).models == ("a/a",)
        async with repo._connection().execute("SELECT COUNT(*) FROM test_jobs") as cursor:
            assert await cursor.fetchone() == (0,)
    finally:
        await repo.close()
    assert [v for v, _ in await _versions(path)] == list(range(1, journal.version + 1))


async def test_a_failing_migration_is_rolled_back(tmp_path: Path) -> None:
    path = str(tmp_path / "imagine.db")
    await (await SqliteRepository.open(path)).close()
    broken = Migration(
        latest_version() + 1,
        "half a step",
        ("CREATE TABLE half_done (x INTEGER)", "THIS IS NOT SQL"),
    )
    with pytest.raises(StorageError):
        await SqliteRepository.open(path, migrations=(*MIGRATIONS, broken))
    async with aiosqlite.connect(path) as conn:
        assert await schema_version(conn) == latest_version()
        async with conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'half_done'") as cursor:
            assert await cursor.fetchone() == (0,)
    # The database is still perfectly usable by the shipped code.
    await (await SqliteRepository.open(path)).close()


async def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "imagine.db")
    await (await SqliteRepository.open(path)).close()
    newer = latest_version() + 1
    with sqlite3.connect(path) as plain:
        plain.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, 'from the future', ?)",
            (newer, T0.isoformat()),
        )
    plain.close()
    with pytest.raises(SchemaVersionError, match=rf"schema version {newer}.*newer imagine-bot"):
        await SqliteRepository.open(path)
    assert [v for v, _ in await _versions(path)][-1] == newer  # nothing was touched


async def test_a_hole_in_the_version_table_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "imagine.db")
    latest = latest_version()
    extra = (latest + 1, latest + 2)
    three = (*MIGRATIONS, *(Migration(n, f"step {n}", (f"CREATE TABLE t{n} (x)",)) for n in extra))
    await (await SqliteRepository.open(path, migrations=three)).close()
    with sqlite3.connect(path) as plain:
        plain.execute("DELETE FROM schema_version WHERE version = ?", (extra[0],))
    plain.close()
    with pytest.raises(SchemaVersionError, match="edited by hand"):
        await SqliteRepository.open(path, migrations=three)


def test_migration_list_must_be_numbered_from_one() -> None:
    check_migrations(MIGRATIONS)
    with pytest.raises(ValueError, match="numbered"):
        check_migrations((*MIGRATIONS, Migration(latest_version() + 2, "gap", ("SELECT 1",))))
    with pytest.raises(ValueError, match="no statements"):
        check_migrations((*MIGRATIONS, Migration(latest_version() + 1, "empty", ())))


async def test_identify_turns_are_the_one_process_s_own(tmp_path: Path) -> None:
    repo = await SqliteRepository.open(str(tmp_path / "imagine.db"))
    try:
        assert await repo.take_identify_turn(4_000_000, 0, spacing=5.0, within=45.0) is None
    finally:
        await repo.close()
