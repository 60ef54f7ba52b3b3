"""A database that stops answering: every wait bounded, the member told privately, nothing charged.

PostgreSQL sits behind :class:`~tests.fakes.tcp.FreezableProxy`, which can stop passing bytes without
closing anything (a half-open connection, as after a cable pull or a frozen host); without a target it
is a server that accepts and never answers. Waits are bounded generously (shared machines); the
assertions are on outcomes, never on timing.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from bot.base.clock import SystemClock
from bot.discord_app.starter import DATABASE_DOWN
from bot.jobs.journal import NOT_STARTED, RETRY_DELAYS, Journal
from bot.storage import DatabaseUnavailable, Limits, Spend, StorageError, open_repository
from bot.storage.postgres import PostgresRepository
from tests.e2e.conftest import Stack, StackFactory, status_of
from tests.fakes.tcp import FreezableProxy
from tests.faults.conftest import UnhandledWatch
from tests.storage import T0, make_job

# Frozen databases and commits that land late wait out real timeouts and heartbeats (15-50 s a test):
# with the chaos runs, in `pytest -m slow` (see README, Testing).
pytestmark = pytest.mark.slow

BOUND = 60.0  # seconds: far past any timeout below, so a hang fails the test instead of passing slowly
FAST = {"command_timeout": 1.0, "acquire_timeout": 1.0, "connect_timeout": 1.0}
GUILD, MEMBER = 11, 22


def through(proxy: FreezableProxy, url: str) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    user = f"{netloc[0]}@" if len(netloc) == 2 else ""
    return urlunsplit((parts.scheme, f"{user}127.0.0.1:{proxy.port}", parts.path, parts.query, ""))


@pytest.fixture
async def proxy(postgres_url: str) -> AsyncIterator[FreezableProxy]:
    """A proxy in front of the test server (its database: ``postgres_url``, a fresh schema)."""
    parts = urlsplit(postgres_url)
    server = await FreezableProxy((parts.hostname or "127.0.0.1", parts.port or 5432)).start()
    yield server
    await server.close()


@pytest.fixture
async def frozen_repository(proxy: FreezableProxy, postgres_url: str) -> AsyncIterator[PostgresRepository]:
    """A repository through ``proxy``, with one-second timeouts (the defaults are longer)."""
    repository = await PostgresRepository.open(through(proxy, postgres_url), **FAST)
    yield repository
    proxy.thaw()
    await asyncio.wait_for(repository.close(), BOUND)


async def bounded(call: Any) -> Any:
    return await asyncio.wait_for(call, BOUND)


async def test_every_call_to_a_frozen_database_gives_up_and_the_pool_recovers(
    proxy: FreezableProxy, frozen_repository: PostgresRepository
) -> None:
    repository = frozen_repository
    await repository.add_job(make_job("j1", owner="me"))
    proxy.freeze()
    calls = {
        "ping": lambda: repository.ping(),
        "usage": lambda: repository.usage(GUILD, MEMBER, now=T0),
        "charge": lambda: repository.charge(GUILD, MEMBER, 1, limits=Limits(), now=T0),
        "update_job": lambda: repository.update_job("j1", owner="me", state="creating"),
        "heartbeat": lambda: repository.heartbeat("me", alive_within=30),
    }
    for name, call in calls.items():
        with pytest.raises(DatabaseUnavailable):
            await bounded(call())
            pytest.fail(f"{name} answered through a frozen connection")
    proxy.thaw()
    await bounded(repository.ping())
    assert (await bounded(repository.charge(GUILD, MEMBER, 1, limits=Limits(), now=T0))).charged
    assert (await repository.usage(GUILD, MEMBER, now=T0)).images_today == 1  # the frozen charge never landed


async def test_a_server_that_never_answers_is_refused_at_open(postgres_url: str) -> None:
    silent = await FreezableProxy().start()  # accepts, never answers
    try:
        with pytest.raises(StorageError, match="no answer in time"):
            await bounded(PostgresRepository.open(through(silent, postgres_url), **FAST))
    finally:
        await silent.close()


async def test_closing_a_repository_whose_database_froze_returns(proxy: FreezableProxy, postgres_url: str) -> None:
    repository = await PostgresRepository.open(through(proxy, postgres_url), **FAST)
    await repository.ping()
    proxy.freeze()
    with pytest.raises(DatabaseUnavailable):
        await bounded(repository.ping())
    await bounded(repository.close())


class ThawingClock(SystemClock):
    """The real clock, whose sleeps (the journal's back-off) are recorded and may thaw the proxy."""

    def __init__(self, proxy: FreezableProxy, *, thaw_after: int | None) -> None:
        self.proxy = proxy
        self.thaw_after = thaw_after
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.thaw_after is not None and len(self.sleeps) >= self.thaw_after:
            self.proxy.thaw()
        await super().sleep(seconds)


async def test_the_journal_tries_a_write_again_until_the_database_answers(
    proxy: FreezableProxy, frozen_repository: PostgresRepository
) -> None:
    await frozen_repository.add_job(make_job("j1", owner="me"))
    clock = ThawingClock(proxy, thaw_after=2)
    journal = Journal(frozen_repository, clock, owner="me")
    proxy.freeze()
    await bounded(journal.creating("j1"))
    assert clock.sleeps == list(RETRY_DELAYS[:2])
    job = await frozen_repository.get_job("j1")
    assert job is not None and job.state == "creating" and job.create_started_at is not None


async def test_the_journal_gives_up_after_its_tries(
    proxy: FreezableProxy, frozen_repository: PostgresRepository
) -> None:
    await frozen_repository.add_job(make_job("j1", owner="me"))
    clock = ThawingClock(proxy, thaw_after=None)
    journal = Journal(frozen_repository, clock, owner="me")
    proxy.freeze()
    # The create mark cannot be written: the job must not create its prediction (no second one after a restart).
    with pytest.raises(DatabaseUnavailable):
        await bounded(journal.creating("j1"))
    assert clock.sleeps == list(RETRY_DELAYS)
    assert await bounded(journal.abandon("j1", "gone")) is False  # logged; the job stays for a restart


async def test_a_busy_sqlite_file_is_unavailable_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "imagine.db"
    repository = await open_repository(f"sqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # a backup or the sqlite3 shell holding the write lock
        with pytest.raises(DatabaseUnavailable):
            await bounded(repository.charge(GUILD, MEMBER, 1, limits=Limits(), now=T0))
        holder.execute("ROLLBACK")
        assert (await repository.charge(GUILD, MEMBER, 1, limits=Limits(), now=T0)).charged
    finally:
        holder.close()
        await repository.close()


async def on_postgres(stack: Stack, url: str) -> None:
    """Run the stack's bot on ``url`` from now on."""
    await stack.stop_bot()
    stack.settings = replace(stack.settings, database_url=url)
    await stack.start_bot()


async def test_imagine_on_a_frozen_database_is_refused_privately_and_charges_nothing(
    make_stack: StackFactory, proxy: FreezableProxy, postgres_url: str, unhandled: UnhandledWatch
) -> None:
    stack = await make_stack()
    await on_postgres(stack, through(proxy, postgres_url))
    proxy.freeze()
    handle = await stack.imagine()
    refusal = await stack.discord.wait_for(lambda: next(iter(handle.followups), None), BOUND, what="the refusal")
    assert refusal.ephemeral and refusal.content == str(DATABASE_DOWN)
    assert handle.original_message is None or handle.original_message.deleted
    assert stack.api.count("POST", "create") == 0
    proxy.thaw()
    assert stack.bot is not None
    repository = stack.bot.core.repository
    member = stack.guild.member("member").user.id
    assert (await repository.usage(stack.guild.id, member, now=stack.bot.core.clock.now())).images_today == 0
    assert await repository.member_history(stack.guild.id, member) == []
    # The member's lock was let go: the next /imagine runs.
    final = await stack.final_message(await stack.imagine())
    assert "Done" in status_of(final) and final.attachments
    await stack.stop_bot()
    unhandled.check()


CHARGER = """
import asyncio, sys
from datetime import UTC, datetime
from bot.storage import JobRecord, Limits, open_repository

async def main(url: str) -> None:
    repository = await open_repository(url)
    number = 0
    while True:
        number += 1
        job = JobRecord(job_id=f"{sys.argv[2]}-{number}", model="a/b", prompt="p", request={}, state="queued",
                        created_at=datetime.now(UTC), guild_id=11, requester_id=22, owner="charger")
        await repository.charge(11, 22, 2, limits=Limits(), now=datetime.now(UTC), cost=7, job=job)
        print(number, flush=True)

asyncio.run(main(sys.argv[1]))
"""


async def test_a_process_killed_while_charging_leaves_no_charge_without_its_job(database_url: str) -> None:
    """SIGKILL lands wherever it lands, often inside a charge: every image and micro-dollar charged has its job."""
    repository = await open_repository(database_url)  # migrated before the charger starts
    try:
        for run in range(3):
            charger = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CHARGER, database_url, f"run{run}", stdout=asyncio.subprocess.PIPE
            )
            assert charger.stdout is not None
            for _ in range(20):  # well into its stride
                assert await bounded(charger.stdout.readline()), "the charger stopped"
            charger.kill()
            await charger.wait()
        now = datetime.now(UTC)
        (tally,) = await repository.job_tallies(GUILD, since=now - timedelta(days=1))
        assert tally.jobs >= 60
        usage = await repository.usage(GUILD, MEMBER, now=now)
        spend = await repository.spend(GUILD, MEMBER, now=now)
        assert usage.images_today == 2 * tally.jobs
        assert spend.member_today == spend.month == 7 * tally.jobs
        latest = await repository.member_history(GUILD, MEMBER, limit=10)
        assert all((job.charged_images, job.reserved_cost) == (2, 7) for job in latest)
    finally:
        await repository.close()


async def polled(check: Callable[[], Awaitable[Any]]) -> Any:
    """``check()``'s first truthy answer, asked every 0.2 s for up to :data:`BOUND` seconds."""
    async with asyncio.timeout(BOUND):
        while not (found := await check()):  # noqa: ASYNC110 (the database has no event to wait on)
            await asyncio.sleep(0.2)
    return found


SLOW_COMMIT = """
CREATE TABLE slow_once (slow BOOLEAN);
INSERT INTO slow_once VALUES (true);
CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    first INTEGER;
    started TIMESTAMPTZ := clock_timestamp();
BEGIN
    -- The first job's commit only. Past the bot's command timeout: its driver then cancels the COMMIT; every
    -- cancel is swallowed (the driver and its pool may send more than one, at any moment of a loaded
    -- machine), so the commit lands anyway, 9 s in, after the bot was told it failed (a lost answer).
    DELETE FROM slow_once;
    GET DIAGNOSTICS first = ROW_COUNT;
    IF first > 0 THEN
        LOOP
            BEGIN
                PERFORM pg_sleep(GREATEST(0, 9 - EXTRACT(EPOCH FROM clock_timestamp() - started)));
                EXIT;
            EXCEPTION WHEN query_canceled THEN
                NULL;  -- swallowed: sleep out the rest
            END;
        END LOOP;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON jobs DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION slow_commit();
"""


@pytest.mark.parametrize("restart", [False, True], ids=["heartbeat", "restart"])
async def test_a_charge_whose_commit_lands_after_the_refusal_is_given_back_and_never_runs(
    make_stack: StackFactory, proxy: FreezableProxy, postgres_url: str, unhandled: UnhandledWatch, restart: bool
) -> None:
    """The member was told nothing started: the job the late commit left is abandoned (its charge given back
    once), whether the database answers again while the process lives or only after a restart."""
    stack = await make_stack()
    await on_postgres(stack, through(proxy, postgres_url))
    assert stack.bot is not None
    direct = await PostgresRepository.open(postgres_url)  # the test's own way in, never frozen
    try:
        async with direct._transaction() as conn:
            await conn.execute(SLOW_COMMIT)
        guild, member = stack.guild.id, stack.guild.member("member").user.id
        handle = await stack.imagine()
        refusal = await stack.discord.wait_for(lambda: next(iter(handle.followups), None), BOUND, what="the refusal")
        assert refusal.ephemeral and refusal.content == str(DATABASE_DOWN)
        proxy.freeze()  # and down through every abandon the bot tries meanwhile
        # The member's set-up ends with the refusal: their lock is let go while the abandon still waits.
        lock = stack.bot.core.policy.member_lock(guild, member)
        await polled(lambda: asyncio.sleep(0, not lock.locked()))
        assert stack.bot.core.journal._abandoning, "the abandon ended, or ran inside the member's lock"

        async def committed() -> Any:
            history = await direct.member_history(guild, member)
            return history[0] if history else None

        job = await polled(committed)
        assert (job.state, job.charged_images) == ("queued", 1)
        if restart:
            await asyncio.wait_for(stack.stop_bot(), 2 * BOUND)  # every close step waits out the frozen database
            proxy.thaw()
            await stack.start_bot()
        else:
            proxy.thaw()

        async def abandoned() -> Any:
            found = await direct.get_job(job.job_id)
            return found if found is not None and found.ended_at is not None else None

        ended = await polled(abandoned)
        assert (ended.state, ended.error) == ("failed", NOT_STARTED)
        now = datetime.now(UTC)
        assert (await direct.usage(guild, member, now=now)).images_today == 0
        assert await direct.spend(guild, member, now=now) == Spend(0, 0)
        assert stack.api.count("POST", "create") == 0
        final = await stack.final_message(await stack.imagine())  # the member's next /imagine runs
        assert "Done" in status_of(final)
        assert stack.api.count("POST", "create") == 1
    finally:
        await direct.close()
    await stack.stop_bot()
    unhandled.check()
