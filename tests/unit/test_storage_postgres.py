"""What only the PostgreSQL repository has: its schema and migrator, several processes on one database, LISTEN/NOTIFY.

"Processes" are stood in for by repository instances with pools of their own
(as many connections as a process has), and in one test by real child
processes. Each test has a fresh schema (``postgres_url``) or, where the
migrator must meet a database nobody has touched, a fresh database.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.storage import GuildConfig, LimitChanges, Limits, SchemaVersionError, StorageError, open_repository
from bot.storage.migrations import Migration
from bot.storage.postgres import PostgresRepository
from bot.storage.postgres.base import COMMAND_TIMEOUT
from bot.storage.schema import MIGRATIONS, latest_version
from bot.storage.schema import MIGRATIONS as SQLITE_MIGRATIONS
from tests.storage import T0, FakeClock, disposable_database, make_job

GUILD = 111
MOD = 900
MEMBER = 500
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_database(postgres_database: str) -> Iterator[str]:
    """A database nobody has touched, dropped after the test (``postgres_database``: skip without a server)."""
    with disposable_database("imagine_fresh") as url:
        yield url


@pytest.fixture
async def repo(postgres_url: str) -> AsyncIterator[PostgresRepository]:
    """One process's repository on a fresh schema."""
    repository = await PostgresRepository.open(postgres_url)
    try:
        yield repository
    finally:
        await repository.close()


Processes = tuple[PostgresRepository, PostgresRepository]


@pytest.fixture
async def two_processes(postgres_url: str) -> AsyncIterator[Processes]:
    """Two repositories on one fresh schema, each with a pool and a listener of its own."""
    a, b = await PostgresRepository.open(postgres_url), await PostgresRepository.open(postgres_url)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def _fetch(url: str, sql: str, *args: Any) -> list[Any]:
    conn: Any = await asyncpg.connect(url, timeout=5)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> float:
    """Seconds until ``check()`` holds; fails the test after ``timeout``."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"not seen within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


# ---------------------------------------------------------------------------- schema and migrations


async def test_a_fresh_database_gets_every_version_in_postgresql_types(postgres_url: str, clock: FakeClock) -> None:
    repo = await PostgresRepository.open(postgres_url, clock=clock)
    await repo.close()
    assert repo.applied_migrations == tuple(range(1, latest_version(MIGRATIONS) + 1))
    rows = await _fetch(postgres_url, "SELECT version, applied_at FROM schema_version ORDER BY version")
    assert [(row["version"], row["applied_at"]) for row in rows] == [(v, T0) for v in repo.applied_migrations]
    types = {
        (row["table_name"], row["column_name"]): row["data_type"]
        for row in await _fetch(
            postgres_url,
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema()",
        )
    }
    assert types["guilds", "guild_id"] == types["audit_log", "actor_id"] == types["jobs", "channel_id"] == "bigint"
    assert types["audit_log", "at"] == types["jobs", "created_at"] == "timestamp with time zone"
    assert types["jobs", "request"] == types["jobs", "target"] == "jsonb"
    assert types["member_usage", "day"] == "date"
    # Same version numbers as SQLite: version N means the same tables on either backend.
    assert [m.description for m in MIGRATIONS] == [m.description for m in SQLITE_MIGRATIONS]


async def test_reopening_applies_nothing(postgres_url: str, clock: FakeClock) -> None:
    await (await PostgresRepository.open(postgres_url, clock=clock)).close()
    again = await PostgresRepository.open(postgres_url, clock=clock)
    await again.close()
    assert again.applied_migrations == ()


async def test_concurrent_opens_of_a_fresh_database_migrate_it_once(fresh_database: str) -> None:
    """Three processes starting at once: all open, each step applied by exactly one of them."""
    repos = await asyncio.gather(*(PostgresRepository.open(fresh_database) for _ in range(3)))
    try:
        applied = sorted(v for repo in repos for v in repo.applied_migrations)
        assert applied == list(range(1, latest_version(MIGRATIONS) + 1))
        rows = await _fetch(fresh_database, "SELECT version FROM schema_version ORDER BY version")
        assert [row["version"] for row in rows] == applied
        # All three work on the one schema.
        results = await asyncio.gather(*(repo.allow_model(GUILD, "a/a", actor_id=MOD) for repo in repos))
        assert sorted(results) == [False, False, True]
    finally:
        await asyncio.gather(*(repo.close() for repo in repos))


async def test_a_failing_migration_leaves_nothing_behind(postgres_url: str) -> None:
    await (await PostgresRepository.open(postgres_url)).close()
    broken = Migration(latest_version(MIGRATIONS) + 1, "half a step", ("CREATE TABLE half_done (x INT)", "NOT SQL"))
    with pytest.raises(StorageError, match="syntax error"):
        await PostgresRepository.open(postgres_url, migrations=(*MIGRATIONS, broken))
    assert await _fetch(postgres_url, "SELECT to_regclass('half_done') AS t") == [(None,)]
    assert len(await _fetch(postgres_url, "SELECT 1 FROM schema_version")) == latest_version(MIGRATIONS)


async def test_a_database_newer_than_the_code_is_refused(postgres_url: str) -> None:
    await (await PostgresRepository.open(postgres_url)).close()
    newer = latest_version(MIGRATIONS) + 1
    await _fetch(postgres_url, "INSERT INTO schema_version VALUES ($1, 'from the future', now())", newer)
    with pytest.raises(SchemaVersionError, match=rf"schema version {newer}.*newer imagine-bot"):
        await PostgresRepository.open(postgres_url)


async def test_a_hole_in_the_version_table_is_refused(postgres_url: str) -> None:
    await (await PostgresRepository.open(postgres_url)).close()
    await _fetch(postgres_url, "DELETE FROM schema_version WHERE version = 1")
    with pytest.raises(SchemaVersionError, match="edited by hand"):
        await PostgresRepository.open(postgres_url)


async def test_an_unreachable_server_fails_fast_without_the_password() -> None:
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        await open_repository("postgresql://imagine:hunter2@127.0.0.1:1/imagine")
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert "hunter2" not in message
    assert "postgresql://imagine:***@127.0.0.1:1/imagine" in message


async def test_an_unknown_scheme_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match=r"mysql://root:\*\*\*@h/db"):
        await open_repository("mysql://root:hunter2@h/db")


# ---------------------------------------------------------------------------- several processes, one database


async def test_two_processes_share_one_daily_limit(two_processes: Processes) -> None:
    a, b = two_processes
    limits = Limits(daily_images=5)
    results = await asyncio.gather(
        *((a if n % 2 else b).charge(GUILD, MEMBER, 1, limits=limits, now=T0) for n in range(20))
    )
    assert sum(r.charged for r in results) == 5
    assert sum(r.over_daily_limit for r in results) == 15
    assert (await a.usage(GUILD, MEMBER, now=T0)).images_today == 5
    # Refunds from both sides land on the same row, never below zero.
    await asyncio.gather(a.refund(GUILD, MEMBER, 2, day=T0.date()), b.refund(GUILD, MEMBER, 2, day=T0.date()))
    assert (await b.usage(GUILD, MEMBER, now=T0)).images_today == 1


async def test_two_processes_share_one_cooldown(two_processes: Processes) -> None:
    a, b = two_processes
    results = await asyncio.gather(
        *(repo.charge(GUILD, MEMBER, 1, limits=Limits(cooldown_seconds=60), now=T0) for repo in (a, b) * 5)
    )
    assert sum(r.charged for r in results) == 1
    assert all(r.retry_after_seconds == 60 for r in results if not r.charged)


async def test_a_job_is_refunded_once_whichever_process_ends_it(two_processes: Processes) -> None:
    a, b = two_processes
    await a.charge(GUILD, MEMBER, 4, limits=Limits(), now=T0)
    await a.add_job(make_job("job-1", guild_id=GUILD, requester_id=MEMBER))
    assert await b.job_with_prediction("p-1") is None
    await a.update_job("job-1", prediction_id="p-1")
    assert await b.job_with_prediction("p-1") == "job-1"
    results = await asyncio.gather(*(repo.refund_job("job-1", GUILD, MEMBER, 4, day=T0.date()) for repo in (a, b) * 4))
    assert sum(results) == 1
    assert (await b.usage(GUILD, MEMBER, now=T0)).images_today == 0


_CHILD = """
import asyncio, json, sys
from datetime import datetime
from bot.storage import Limits, open_repository

async def main(url, at):
    repo = await open_repository(url)
    try:
        now = datetime.fromisoformat(at)
        results = await asyncio.gather(
            *(repo.charge(111, 500, 1, limits=Limits(daily_images=5), now=now) for _ in range(10))
        )
        print(json.dumps(sum(r.charged for r in results)))
    finally:
        await repo.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_real_processes_share_one_daily_limit(postgres_url: str) -> None:
    await (await PostgresRepository.open(postgres_url)).close()  # migrated once, so the children race on charges
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CHILD,
            postgres_url,
            T0.isoformat(),
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs = [await asyncio.wait_for(child.communicate(), timeout=60) for child in children]
    assert all(child.returncode == 0 for child in children), [err.decode() for _, err in outputs]
    assert sum(json.loads(out) for out, _ in outputs) == 5


# ---------------------------------------------------------------------------- the settings cache


async def test_a_change_by_another_process_is_seen_within_seconds(two_processes: Processes) -> None:
    a, b = two_processes
    assert await b.guild_config(GUILD) == GuildConfig(guild_id=GUILD)  # now cached in b
    await a.add_word(GUILD, "cat", actor_id=MOD)

    async def b_sees_it() -> bool:
        return (await b.guild_config(GUILD)).blocked_words == ("cat",)

    assert await _eventually(b_sees_it) < 2
    # And b serves it from its cache until the next change.
    assert b._cache.get(GUILD) is not None
    await a.set_limits(GUILD, LimitChanges(daily_images=3), actor_id=MOD)

    async def b_sees_the_limit() -> bool:
        return (await b.guild_config(GUILD)).limits.daily_images == 3

    await _eventually(b_sees_the_limit)


async def test_a_lost_listener_drops_the_cache_and_comes_back(two_processes: Processes, postgres_url: str) -> None:
    """Notifications sent while the listener is down are lost: the whole cache goes, and it listens again."""
    a, b = two_processes
    await b.guild_config(GUILD)
    assert b._cache.get(GUILD) is not None
    listener_pid = b._listener._conn.get_server_pid()
    await _fetch(postgres_url, "SELECT pg_terminate_backend($1)", listener_pid)
    await a.allow_channel(GUILD, 10, actor_id=MOD)  # its notification reaches no listener of b's

    async def listening_again() -> bool:
        conn = b._listener._conn
        return b._cache.live and conn is not None and conn.get_server_pid() != listener_pid

    await _eventually(listening_again)
    assert (await b.guild_config(GUILD)).channels == frozenset({10})
    await a.allow_channel(GUILD, 20, actor_id=MOD)

    async def b_sees_it() -> bool:
        return (await b.guild_config(GUILD)).channels == frozenset({10, 20})

    await _eventually(b_sees_it)


async def test_nothing_is_cached_while_the_listener_is_down(repo: PostgresRepository) -> None:
    repo._cache.live = False  # as between a lost connection and the next one
    await repo.guild_config(GUILD)
    assert repo._cache.get(GUILD) is None
    repo._cache.live = True
    assert repo._cache.get(GUILD) is None  # nothing was stored meanwhile


async def test_own_changes_are_seen_at_once(repo: PostgresRepository) -> None:
    await repo.guild_config(GUILD)
    await repo.allow_model(GUILD, "a/a", actor_id=MOD)
    assert (await repo.guild_config(GUILD)).models == ("a/a",)


# ---------------------------------------------------------------------------- timeouts


async def test_pooled_connections_carry_timeouts_and_keepalives(repo: PostgresRepository) -> None:
    """A half-open connection is found (keepalives, both ends) and no session holds locks forever."""
    async with repo._connection() as conn:
        settings = {
            name: await conn.fetchval(f"SHOW {name}")
            for name in ("statement_timeout", "idle_in_transaction_session_timeout", "tcp_keepalives_idle")
        }
        sock = conn._con._transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert conn._con._config.command_timeout == COMMAND_TIMEOUT
    assert settings == {
        "statement_timeout": "30s",
        "idle_in_transaction_session_timeout": "30s",
        "tcp_keepalives_idle": "30",
    }


# ---------------------------------------------------------------------------- identify turns

BOT = 4_000_000_000_000_000


async def test_identify_turns_of_one_bucket_queue_across_processes(two_processes: Processes) -> None:
    a, b = two_processes
    waits = sorted(
        await asyncio.gather(
            *((a if n % 2 else b).take_identify_turn(BOT, 0, spacing=5.0, within=60.0) for n in range(6))
        )
    )
    # One turn each, 5 s apart on the database's clock (less the moments the reservations took).
    assert waits[0] == 0
    for place, wait in enumerate(waits):
        assert wait is not None and 5.0 * place - 2 < wait <= 5.0 * place, waits
    # Other buckets, and other bots on the same database, have turns of their own.
    assert await a.take_identify_turn(BOT, 1, spacing=5.0, within=60.0) == 0
    assert await b.take_identify_turn(BOT + 1, 0, spacing=5.0, within=60.0) == 0
    # A turn long past (a process that died, or just identified long ago) holds nothing up.
    assert await a.take_identify_turn(BOT, 2, spacing=0.05, within=60.0) == 0
    await asyncio.sleep(0.2)
    assert await b.take_identify_turn(BOT, 2, spacing=0.05, within=60.0) == 0
    # A turn further out than the taker can wait is not reserved: the queue does not grow for nothing.
    assert await a.take_identify_turn(BOT, 3, spacing=30.0, within=45.0) == 0
    second = await b.take_identify_turn(BOT, 3, spacing=30.0, within=45.0)
    assert second is not None and 28.0 < second <= 30.0
    assert await a.take_identify_turn(BOT, 3, spacing=30.0, within=45.0) == math.inf  # 60 s away
    assert await b.take_identify_turn(BOT, 3, spacing=30.0, within=45.0) == math.inf  # still: none reserved
    last = await a.take_identify_turn(BOT, 3, spacing=30.0, within=90.0)
    assert last is not None and 58.0 < last <= 60.0
