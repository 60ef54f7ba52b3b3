"""The SQLite repository: settings, audit log, usage accounting, migrations, lifecycle.

Every test uses an in-memory database or a file under ``tmp_path`` and passes
explicit datetimes, so nothing sleeps and nothing depends on the real clock.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import aiosqlite
import pytest

from bot.storage import AuditEntry, GuildConfig, Limits, Repository, Usage
from bot.storage.migrations import (
    MIGRATIONS,
    Migration,
    SchemaVersionError,
    apply_migrations,
    check_migrations,
    latest_version,
    schema_version,
)
from bot.storage.sqlite import (
    MEMORY,
    RepositoryClosedError,
    SqliteRepository,
    StorageError,
    open_repository,
)

GUILD = 111
OTHER_GUILD = 222
MOD = 900
OTHER_MOD = 901
MEMBER = 500
SNOWFLAKE_MAX = 2**63 - 1
T0 = datetime(2025, 3, 14, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    """Wall-clock time that moves only when the test says so; stamps audit entries."""

    def __init__(self, start: datetime = T0) -> None:
        self.current = start

    def monotonic(self) -> float:
        return self.current.timestamp()

    def now(self) -> datetime:
        return self.current

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def repo(clock: FakeClock) -> AsyncIterator[SqliteRepository]:
    repository = await open_repository(MEMORY, clock=clock)
    yield repository
    await repository.close()


def _is_repository(repository: Repository) -> Repository:
    """Typed identity: mypy checks that SqliteRepository satisfies the Protocol."""
    return repository


# ---------------------------------------------------------------------------- defaults


async def test_unknown_guild_has_defaults(repo: SqliteRepository) -> None:
    assert _is_repository(repo) is repo
    assert await repo.guild_config(GUILD) == GuildConfig(guild_id=GUILD)
    assert await repo.audit_log(GUILD) == []
    assert await repo.usage(GUILD, MEMBER, now=T0) == Usage(day=T0.date())


# ---------------------------------------------------------------------------- models


async def test_allow_model_is_audited_and_idempotent(repo: SqliteRepository, clock: FakeClock) -> None:
    assert await repo.allow_model(GUILD, "owner/model", actor_id=MOD) is True
    assert (await repo.guild_config(GUILD)).models == ("owner/model",)
    assert await repo.audit_log(GUILD) == [AuditEntry(GUILD, MOD, "models allow", None, "owner/model", T0)]

    clock.advance(60)
    assert await repo.allow_model(GUILD, "owner/model", actor_id=OTHER_MOD) is False
    assert len(await repo.audit_log(GUILD)) == 1


async def test_models_keep_insertion_order(repo: SqliteRepository) -> None:
    for model in ("c/c", "a/a", "b/b"):
        await repo.allow_model(GUILD, model, actor_id=MOD)
    assert (await repo.guild_config(GUILD)).models == ("c/c", "a/a", "b/b")

    await repo.remove_model(GUILD, "a/a", actor_id=MOD)
    await repo.allow_model(GUILD, "a/a", actor_id=MOD)
    assert (await repo.guild_config(GUILD)).models == ("c/c", "b/b", "a/a")


async def test_remove_model(repo: SqliteRepository, clock: FakeClock) -> None:
    assert await repo.remove_model(GUILD, "x/y", actor_id=MOD) is False
    assert await repo.audit_log(GUILD) == []

    await repo.allow_model(GUILD, "x/y", actor_id=MOD)
    clock.advance(5)
    assert await repo.remove_model(GUILD, "x/y", actor_id=OTHER_MOD) is True
    assert (await repo.guild_config(GUILD)).models == ()
    newest = (await repo.audit_log(GUILD))[0]
    assert newest == AuditEntry(GUILD, OTHER_MOD, "models remove", "x/y", None, T0 + timedelta(seconds=5))


async def test_removing_the_default_model_clears_it(repo: SqliteRepository) -> None:
    await repo.allow_model(GUILD, "a/a", actor_id=MOD)
    await repo.allow_model(GUILD, "b/b", actor_id=MOD)
    await repo.set_default_model(GUILD, "b/b", actor_id=MOD)

    await repo.remove_model(GUILD, "a/a", actor_id=MOD)
    assert (await repo.guild_config(GUILD)).default_model == "b/b"

    await repo.remove_model(GUILD, "b/b", actor_id=OTHER_MOD)
    config = await repo.guild_config(GUILD)
    assert config.default_model is None
    assert config.models == ()
    # Two entries from one change, the default's last (newest first).
    log = await repo.audit_log(GUILD, limit=2)
    assert [(e.action, e.actor_id, e.before, e.after) for e in log] == [
        ("models default", OTHER_MOD, "b/b", None),
        ("models remove", OTHER_MOD, "b/b", None),
    ]


async def test_set_default_model(repo: SqliteRepository) -> None:
    await repo.set_default_model(GUILD, "a/a", actor_id=MOD)
    assert (await repo.guild_config(GUILD)).default_model == "a/a"
    await repo.set_default_model(GUILD, "a/a", actor_id=MOD)  # unchanged: not audited
    await repo.set_default_model(GUILD, "b/b:abc123", actor_id=MOD)
    await repo.set_default_model(GUILD, None, actor_id=OTHER_MOD)
    await repo.set_default_model(GUILD, None, actor_id=OTHER_MOD)  # unchanged: not audited
    assert (await repo.guild_config(GUILD)).default_model is None
    log = await repo.audit_log(GUILD)
    assert [(e.action, e.actor_id, e.before, e.after) for e in log] == [
        ("models default", OTHER_MOD, "b/b:abc123", None),
        ("models default", MOD, "a/a", "b/b:abc123"),
        ("models default", MOD, None, "a/a"),
    ]


async def test_empty_model_is_refused(repo: SqliteRepository) -> None:
    with pytest.raises(ValueError, match="model"):
        await repo.allow_model(GUILD, "   ", actor_id=MOD)


# ---------------------------------------------------------------------------- channels


async def test_channels_allow_and_remove(repo: SqliteRepository) -> None:
    assert await repo.allow_channel(GUILD, 10, actor_id=MOD) is True
    assert await repo.allow_channel(GUILD, 20, actor_id=MOD) is True
    assert await repo.allow_channel(GUILD, 10, actor_id=MOD) is False
    assert (await repo.guild_config(GUILD)).channels == frozenset({10, 20})

    assert await repo.remove_channel(GUILD, 10, actor_id=OTHER_MOD) is True
    assert await repo.remove_channel(GUILD, 10, actor_id=OTHER_MOD) is False
    assert (await repo.guild_config(GUILD)).channels == frozenset({20})
    log = await repo.audit_log(GUILD)
    assert [(e.action, e.actor_id, e.before, e.after) for e in log] == [
        ("channels remove", OTHER_MOD, "10", None),
        ("channels allow", MOD, None, "20"),
        ("channels allow", MOD, None, "10"),
    ]


# ---------------------------------------------------------------------------- words


async def test_words_are_stored_as_given_and_unique_in_any_case(repo: SqliteRepository) -> None:
    assert await repo.add_word(GUILD, "  Cat ", actor_id=MOD) is True
    assert await repo.add_word(GUILD, "cat", actor_id=MOD) is False
    assert await repo.add_word(GUILD, "CAT", actor_id=MOD) is False
    assert await repo.add_word(GUILD, "dog", actor_id=MOD) is True
    assert (await repo.guild_config(GUILD)).blocked_words == ("Cat", "dog")
    assert [(e.action, e.after) for e in await repo.audit_log(GUILD)] == [("words add", "dog"), ("words add", "Cat")]


async def test_word_case_folding_covers_unicode(repo: SqliteRepository) -> None:
    assert await repo.add_word(GUILD, "Straße", actor_id=MOD) is True
    assert await repo.add_word(GUILD, "STRASSE", actor_id=MOD) is False
    assert await repo.remove_word(GUILD, "strasse", actor_id=MOD) is True


async def test_remove_word_is_case_insensitive(repo: SqliteRepository) -> None:
    await repo.add_word(GUILD, "Cat", actor_id=MOD)
    assert await repo.remove_word(GUILD, " cAT ", actor_id=OTHER_MOD) is True
    assert await repo.remove_word(GUILD, "cat", actor_id=OTHER_MOD) is False
    assert (await repo.guild_config(GUILD)).blocked_words == ()
    newest = (await repo.audit_log(GUILD))[0]
    assert (newest.action, newest.actor_id, newest.before, newest.after) == ("words remove", OTHER_MOD, "Cat", None)
    assert len(await repo.audit_log(GUILD)) == 2


async def test_empty_word_is_refused(repo: SqliteRepository) -> None:
    with pytest.raises(ValueError, match="word"):
        await repo.add_word(GUILD, " \t", actor_id=MOD)


# ---------------------------------------------------------------------------- limits


async def test_limits_partial_updates(repo: SqliteRepository) -> None:
    assert await repo.set_limits(GUILD, actor_id=MOD, cooldown_seconds=30) == Limits(30, 0, 0)
    assert await repo.set_limits(GUILD, actor_id=MOD, daily_images=5) == Limits(30, 5, 0)
    assert await repo.set_limits(GUILD, actor_id=MOD, concurrent_jobs=2, cooldown_seconds=0) == Limits(0, 5, 2)
    assert (await repo.guild_config(GUILD)).limits == Limits(0, 5, 2)
    log = await repo.audit_log(GUILD)
    assert [(e.action, e.before, e.after) for e in log] == [
        ("limits", "cooldown=30 daily=5 concurrent=0", "cooldown=0 daily=5 concurrent=2"),
        ("limits", "cooldown=30 daily=0 concurrent=0", "cooldown=30 daily=5 concurrent=0"),
        ("limits", "cooldown=0 daily=0 concurrent=0", "cooldown=30 daily=0 concurrent=0"),
    ]


async def test_limits_that_change_nothing_are_not_audited(repo: SqliteRepository) -> None:
    assert await repo.set_limits(GUILD, actor_id=MOD) == Limits()
    assert await repo.set_limits(GUILD, actor_id=MOD, daily_images=0) == Limits()
    await repo.set_limits(GUILD, actor_id=MOD, daily_images=3)
    assert await repo.set_limits(GUILD, actor_id=MOD, daily_images=3) == Limits(0, 3, 0)
    assert len(await repo.audit_log(GUILD)) == 1


async def test_negative_limits_are_refused(repo: SqliteRepository) -> None:
    with pytest.raises(ValueError, match="cooldown_seconds"):
        await repo.set_limits(GUILD, actor_id=MOD, cooldown_seconds=-1)
    assert await repo.audit_log(GUILD) == []


# ---------------------------------------------------------------------------- audit log


async def test_audit_log_is_newest_first_and_limited(repo: SqliteRepository, clock: FakeClock) -> None:
    for n in range(15):
        await repo.allow_model(GUILD, f"o/m{n}", actor_id=MOD + n)
        clock.advance(1)
    log = await repo.audit_log(GUILD)
    assert len(log) == 10
    assert [e.after for e in log] == [f"o/m{n}" for n in range(14, 4, -1)]
    assert log[0].actor_id == MOD + 14
    assert log[0].at == T0 + timedelta(seconds=14)
    assert log[0].at.tzinfo is not None and log[0].at.utcoffset() == timedelta(0)
    assert [e.after for e in await repo.audit_log(GUILD, limit=3)] == ["o/m14", "o/m13", "o/m12"]
    assert await repo.audit_log(GUILD, limit=0) == []
    assert len(await repo.audit_log(GUILD, limit=100)) == 15


async def test_audit_times_are_stored_in_utc(repo: SqliteRepository, clock: FakeClock) -> None:
    clock.current = datetime(2025, 6, 1, 2, 30, tzinfo=timezone(timedelta(hours=2)))
    await repo.allow_model(GUILD, "a/a", actor_id=MOD)
    (entry,) = await repo.audit_log(GUILD)
    assert entry.at == datetime(2025, 6, 1, 0, 30, tzinfo=UTC)
    assert entry.at.utcoffset() == timedelta(0)


async def test_change_and_audit_share_one_transaction(repo: SqliteRepository, clock: FakeClock) -> None:
    """If writing the audit entry fails, the change itself is rolled back."""

    def broken_now() -> datetime:
        raise RuntimeError("clock exploded")

    clock.now = broken_now  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="clock exploded"):
        await repo.allow_model(GUILD, "a/a", actor_id=MOD)
    with pytest.raises(RuntimeError, match="clock exploded"):
        await repo.set_limits(GUILD, actor_id=MOD, daily_images=3)
    assert await repo.guild_config(GUILD) == GuildConfig(guild_id=GUILD)
    assert await repo.audit_log(GUILD) == []


# ---------------------------------------------------------------------------- usage


async def test_charge_records_usage(repo: SqliteRepository) -> None:
    result = await repo.charge(GUILD, MEMBER, 2, limits=Limits(), now=T0)
    assert result.charged
    assert result.usage == Usage(day=T0.date(), images_today=2, last_request_at=T0)
    assert await repo.usage(GUILD, MEMBER, now=T0 + timedelta(hours=1)) == result.usage
    # 0 means no limit: a second charge right away is fine.
    again = await repo.charge(GUILD, MEMBER, 3, limits=Limits(), now=T0)
    assert again.charged and again.usage.images_today == 5


async def test_cooldown(repo: SqliteRepository) -> None:
    limits = Limits(cooldown_seconds=30)
    assert (await repo.charge(GUILD, MEMBER, 1, limits=limits, now=T0)).charged

    refused = await repo.charge(GUILD, MEMBER, 1, limits=limits, now=T0 + timedelta(seconds=12))
    assert not refused.charged
    assert not refused.over_daily_limit
    assert refused.retry_after_seconds == pytest.approx(18.0)
    assert refused.usage == Usage(day=T0.date(), images_today=1, last_request_at=T0)  # refusal changed nothing

    later = await repo.charge(GUILD, MEMBER, 1, limits=limits, now=T0 + timedelta(seconds=30))
    assert later.charged
    assert later.usage.last_request_at == T0 + timedelta(seconds=30)
    assert later.retry_after_seconds is None


async def test_cooldown_with_clock_stepping_back_waits_the_full_cooldown(repo: SqliteRepository) -> None:
    limits = Limits(cooldown_seconds=30)
    await repo.charge(GUILD, MEMBER, 1, limits=limits, now=T0)
    refused = await repo.charge(GUILD, MEMBER, 1, limits=limits, now=T0 - timedelta(seconds=10))
    assert refused.retry_after_seconds == pytest.approx(30.0)


async def test_daily_limit(repo: SqliteRepository) -> None:
    limits = Limits(daily_images=5)
    assert (await repo.charge(GUILD, MEMBER, 4, limits=limits, now=T0)).charged
    refused = await repo.charge(GUILD, MEMBER, 2, limits=limits, now=T0 + timedelta(minutes=1))
    assert not refused.charged
    assert refused.over_daily_limit
    assert refused.retry_after_seconds is None
    assert refused.usage.images_today == 4
    exact = await repo.charge(GUILD, MEMBER, 1, limits=limits, now=T0 + timedelta(minutes=2))
    assert exact.charged and exact.usage.images_today == 5
    assert not (await repo.charge(GUILD, MEMBER, 1, limits=limits, now=T0 + timedelta(minutes=3))).charged


async def test_cooldown_is_checked_before_the_daily_limit(repo: SqliteRepository) -> None:
    limits = Limits(cooldown_seconds=60, daily_images=1)
    await repo.charge(GUILD, MEMBER, 1, limits=limits, now=T0)
    refused = await repo.charge(GUILD, MEMBER, 1, limits=limits, now=T0 + timedelta(seconds=1))
    assert refused.retry_after_seconds == pytest.approx(59.0)
    assert not refused.over_daily_limit


async def test_daily_count_resets_on_a_new_utc_day(repo: SqliteRepository) -> None:
    limits = Limits(daily_images=2)
    late = datetime(2025, 3, 14, 23, 59, tzinfo=UTC)
    assert (await repo.charge(GUILD, MEMBER, 2, limits=limits, now=late)).charged
    assert not (await repo.charge(GUILD, MEMBER, 1, limits=limits, now=late + timedelta(seconds=30))).charged

    after_midnight = late + timedelta(minutes=2)
    result = await repo.charge(GUILD, MEMBER, 2, limits=limits, now=after_midnight)
    assert result.charged
    assert result.usage == Usage(day=date(2025, 3, 15), images_today=2, last_request_at=after_midnight)


async def test_the_day_is_the_utc_day_whatever_the_offset(repo: SqliteRepository) -> None:
    # 01:00 at UTC+02:00 on the 15th is still the 14th in UTC.
    local = datetime(2025, 3, 15, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    result = await repo.charge(GUILD, MEMBER, 1, limits=Limits(), now=local)
    assert result.usage.day == date(2025, 3, 14)
    assert result.usage.last_request_at == datetime(2025, 3, 14, 23, 0, tzinfo=UTC)
    assert (await repo.usage(GUILD, MEMBER, now=datetime(2025, 3, 14, 23, 30, tzinfo=UTC))).images_today == 1
    assert (await repo.usage(GUILD, MEMBER, now=datetime(2025, 3, 15, 0, 30, tzinfo=UTC))).images_today == 0


async def test_usage_on_a_new_day_keeps_the_last_request(repo: SqliteRepository) -> None:
    await repo.charge(GUILD, MEMBER, 3, limits=Limits(), now=T0)
    tomorrow = await repo.usage(GUILD, MEMBER, now=T0 + timedelta(days=1))
    assert tomorrow == Usage(day=T0.date() + timedelta(days=1), images_today=0, last_request_at=T0)


async def test_refund(repo: SqliteRepository) -> None:
    await repo.charge(GUILD, MEMBER, 4, limits=Limits(), now=T0)
    await repo.refund(GUILD, MEMBER, 3, day=T0.date())
    assert (await repo.usage(GUILD, MEMBER, now=T0)).images_today == 1
    await repo.refund(GUILD, MEMBER, 10, day=T0.date())
    usage = await repo.usage(GUILD, MEMBER, now=T0)
    assert usage.images_today == 0
    assert usage.last_request_at == T0  # the cooldown is not given back
    await repo.refund(GUILD, MEMBER + 1, 1, day=T0.date())  # nobody on record: nothing happens
    assert (await repo.usage(GUILD, MEMBER + 1, now=T0)).images_today == 0


async def test_refund_for_a_past_day_leaves_today_alone(repo: SqliteRepository) -> None:
    tomorrow = T0 + timedelta(days=1)
    await repo.charge(GUILD, MEMBER, 2, limits=Limits(), now=T0)
    await repo.charge(GUILD, MEMBER, 3, limits=Limits(), now=tomorrow)
    await repo.refund(GUILD, MEMBER, 2, day=T0.date())
    assert (await repo.usage(GUILD, MEMBER, now=tomorrow)).images_today == 3


async def test_refund_makes_room_under_the_daily_limit(repo: SqliteRepository) -> None:
    limits = Limits(daily_images=2)
    await repo.charge(GUILD, MEMBER, 2, limits=limits, now=T0)
    await repo.refund(GUILD, MEMBER, 2, day=T0.date())
    assert (await repo.charge(GUILD, MEMBER, 2, limits=limits, now=T0)).charged


async def test_concurrent_charges_never_exceed_the_daily_limit(repo: SqliteRepository) -> None:
    limits = Limits(daily_images=5)
    results = await asyncio.gather(*(repo.charge(GUILD, MEMBER, 1, limits=limits, now=T0) for _ in range(20)))
    assert sum(r.charged for r in results) == 5
    assert sum(r.over_daily_limit for r in results) == 15
    assert (await repo.usage(GUILD, MEMBER, now=T0)).images_today == 5


async def test_concurrent_settings_changes_all_land(repo: SqliteRepository) -> None:
    added = await asyncio.gather(*(repo.add_word(GUILD, f"w{n % 10}", actor_id=MOD) for n in range(30)))
    assert sum(added) == 10
    assert len((await repo.guild_config(GUILD)).blocked_words) == 10
    assert len(await repo.audit_log(GUILD, limit=100)) == 10


async def test_bad_usage_arguments_are_refused(repo: SqliteRepository) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await repo.charge(GUILD, MEMBER, 1, limits=Limits(), now=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="images"):
        await repo.charge(GUILD, MEMBER, 0, limits=Limits(), now=T0)
    with pytest.raises(ValueError, match="images"):
        await repo.refund(GUILD, MEMBER, -1, day=T0.date())


# ---------------------------------------------------------------------------- isolation and ids


async def test_guilds_are_isolated(repo: SqliteRepository) -> None:
    await repo.allow_model(GUILD, "a/a", actor_id=MOD)
    await repo.set_default_model(GUILD, "a/a", actor_id=MOD)
    await repo.allow_channel(GUILD, 10, actor_id=MOD)
    await repo.add_word(GUILD, "cat", actor_id=MOD)
    await repo.set_limits(GUILD, actor_id=MOD, cooldown_seconds=30, daily_images=5, concurrent_jobs=1)
    await repo.charge(GUILD, MEMBER, 5, limits=Limits(), now=T0)

    assert await repo.guild_config(OTHER_GUILD) == GuildConfig(guild_id=OTHER_GUILD)
    assert await repo.audit_log(OTHER_GUILD) == []
    assert (await repo.usage(OTHER_GUILD, MEMBER, now=T0)).images_today == 0

    # The other guild's removals find nothing and touch nothing of the first.
    assert await repo.remove_model(OTHER_GUILD, "a/a", actor_id=OTHER_MOD) is False
    assert await repo.remove_channel(OTHER_GUILD, 10, actor_id=OTHER_MOD) is False
    assert await repo.remove_word(OTHER_GUILD, "cat", actor_id=OTHER_MOD) is False
    await repo.refund(OTHER_GUILD, MEMBER, 5, day=T0.date())
    # …and its additions are its own.
    assert await repo.allow_model(OTHER_GUILD, "a/a", actor_id=OTHER_MOD) is True
    assert await repo.add_word(OTHER_GUILD, "CAT", actor_id=OTHER_MOD) is True
    charged = await repo.charge(OTHER_GUILD, MEMBER, 1, limits=Limits(daily_images=1), now=T0)
    assert charged.charged

    first = await repo.guild_config(GUILD)
    assert first == GuildConfig(
        guild_id=GUILD,
        models=("a/a",),
        default_model="a/a",
        channels=frozenset({10}),
        blocked_words=("cat",),
        limits=Limits(30, 5, 1),
    )
    assert (await repo.usage(GUILD, MEMBER, now=T0)).images_today == 5
    assert len(await repo.audit_log(GUILD)) == 5
    assert {e.guild_id for e in await repo.audit_log(OTHER_GUILD)} == {OTHER_GUILD}
    assert len(await repo.audit_log(OTHER_GUILD)) == 2


async def test_snowflakes_round_trip_exactly(repo: SqliteRepository) -> None:
    big = SNOWFLAKE_MAX
    await repo.allow_channel(big, big, actor_id=big)
    await repo.allow_channel(big, big - 1, actor_id=big)
    await repo.charge(big, big, 1, limits=Limits(), now=T0)
    config = await repo.guild_config(big)
    assert config.guild_id == big
    assert config.channels == frozenset({big, big - 1})
    entry = (await repo.audit_log(big))[-1]
    assert (entry.guild_id, entry.actor_id, entry.after) == (big, big, str(big))
    assert (await repo.usage(big, big, now=T0)).images_today == 1
    assert await repo.guild_config(big - 1) == GuildConfig(guild_id=big - 1)


@pytest.mark.parametrize("bad", [2**63, -1])
async def test_ids_outside_sqlite_integers_are_refused(repo: SqliteRepository, bad: int) -> None:
    with pytest.raises(ValueError, match="channel_id"):
        await repo.allow_channel(GUILD, bad, actor_id=MOD)
    with pytest.raises(ValueError, match="guild_id"):
        await repo.guild_config(bad)


# ---------------------------------------------------------------------------- files and lifecycle


async def test_data_survives_close_and_reopen(tmp_path: Path, clock: FakeClock) -> None:
    path = str(tmp_path / "nested" / "dirs" / "imagine.db")  # parents are created
    first = await open_repository(path, clock=clock)
    await first.allow_model(GUILD, "a/a", actor_id=MOD)
    await first.set_default_model(GUILD, "a/a", actor_id=MOD)
    await first.add_word(GUILD, "Cat", actor_id=MOD)
    await first.allow_channel(GUILD, SNOWFLAKE_MAX, actor_id=MOD)
    await first.set_limits(GUILD, actor_id=MOD, daily_images=3)
    await first.charge(GUILD, MEMBER, 2, limits=Limits(), now=T0)
    config = await first.guild_config(GUILD)
    log = await first.audit_log(GUILD)
    await first.close()

    second = await SqliteRepository.open(path, clock=clock)
    try:
        assert await second.guild_config(GUILD) == config
        assert await second.audit_log(GUILD) == log
        assert await second.usage(GUILD, MEMBER, now=T0) == Usage(T0.date(), 2, T0)
    finally:
        await second.close()


async def test_file_database_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = str(tmp_path / "imagine.db")
    repo = await open_repository(path)
    try:
        conn = repo._connection()
        async with conn.execute("PRAGMA journal_mode") as cursor:
            assert (await cursor.fetchone()) == ("wal",)
        async with conn.execute("PRAGMA foreign_keys") as cursor:
            assert (await cursor.fetchone()) == (1,)
        async with conn.execute("PRAGMA busy_timeout") as cursor:
            row = await cursor.fetchone()
            assert row is not None and row[0] > 0
    finally:
        await repo.close()
    # WAL is a property of the file: a plain connection sees it too.
    with sqlite3.connect(path) as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    plain.close()


async def test_use_after_close_fails_clearly(clock: FakeClock) -> None:
    repo = await open_repository(MEMORY, clock=clock)
    await repo.close()
    await repo.close()  # idempotent
    with pytest.raises(RepositoryClosedError, match="closed"):
        await repo.guild_config(GUILD)
    with pytest.raises(RepositoryClosedError):
        await repo.allow_model(GUILD, "a/a", actor_id=MOD)
    with pytest.raises(RepositoryClosedError):
        await repo.charge(GUILD, MEMBER, 1, limits=Limits(), now=T0)


async def test_close_waits_for_a_transaction_in_flight(clock: FakeClock) -> None:
    repo = await open_repository(MEMORY, clock=clock)
    write = asyncio.ensure_future(repo.allow_model(GUILD, "a/a", actor_id=MOD))
    await asyncio.sleep(0)  # let the write take the lock
    await repo.close()
    assert await write is True


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not a database, just some text that is long enough " * 20)
    with pytest.raises(StorageError, match=r"notes\.db"):
        await open_repository(str(path))


# ---------------------------------------------------------------------------- migrations


async def _versions(path: str) -> list[tuple[int, str]]:
    async with (
        aiosqlite.connect(path) as conn,
        conn.execute("SELECT version, applied_at FROM schema_version ORDER BY version") as cursor,
    ):
        return [(int(row[0]), str(row[1])) for row in await cursor.fetchall()]


async def test_fresh_database_reaches_the_latest_version(tmp_path: Path, clock: FakeClock) -> None:
    path = str(tmp_path / "imagine.db")
    repo = await open_repository(path, clock=clock)
    await repo.close()
    versions = await _versions(path)
    assert [v for v, _ in versions] == list(range(1, latest_version() + 1))
    assert versions[0][1] == T0.isoformat()


async def test_reopening_applies_nothing_new(tmp_path: Path, clock: FakeClock) -> None:
    path = str(tmp_path / "imagine.db")
    await (await open_repository(path, clock=clock)).close()
    before = await _versions(path)
    clock.advance(3600)
    await (await open_repository(path, clock=clock)).close()
    assert await _versions(path) == before  # same rows, same applied_at

    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await apply_migrations(conn) == []
        assert await schema_version(conn) == latest_version()


async def test_appending_a_migration_applies_only_that_one(tmp_path: Path, clock: FakeClock) -> None:
    path = str(tmp_path / "imagine.db")
    repo = await open_repository(path, clock=clock)
    await repo.allow_model(GUILD, "a/a", actor_id=MOD)
    await repo.close()

    journal = Migration(
        latest_version() + 1,
        "a test table",
        ("CREATE TABLE test_jobs (job_id TEXT PRIMARY KEY, guild_id INTEGER REFERENCES guilds (guild_id))",),
    )
    repo = await open_repository(path, clock=clock, migrations=(*MIGRATIONS, journal))
    try:
        assert (await repo.guild_config(GUILD)).models == ("a/a",)
        async with repo._connection().execute("SELECT COUNT(*) FROM test_jobs") as cursor:
            assert await cursor.fetchone() == (0,)
    finally:
        await repo.close()
    assert [v for v, _ in await _versions(path)] == list(range(1, journal.version + 1))


async def test_a_failing_migration_is_rolled_back(tmp_path: Path) -> None:
    path = str(tmp_path / "imagine.db")
    await (await open_repository(path)).close()
    broken = Migration(
        latest_version() + 1,
        "half a step",
        ("CREATE TABLE half_done (x INTEGER)", "THIS IS NOT SQL"),
    )
    with pytest.raises(StorageError):
        await open_repository(path, migrations=(*MIGRATIONS, broken))
    async with aiosqlite.connect(path) as conn:
        assert await schema_version(conn) == latest_version()
        async with conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'half_done'") as cursor:
            assert await cursor.fetchone() == (0,)
    # The database is still perfectly usable by the shipped code.
    await (await open_repository(path)).close()


async def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "imagine.db")
    await (await open_repository(path)).close()
    newer = latest_version() + 1
    with sqlite3.connect(path) as plain:
        plain.execute(
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, 'from the future', ?)",
            (newer, T0.isoformat()),
        )
    plain.close()
    with pytest.raises(SchemaVersionError, match=rf"schema version {newer}.*newer imagine-bot"):
        await open_repository(path)
    assert [v for v, _ in await _versions(path)][-1] == newer  # nothing was touched


async def test_a_hole_in_the_version_table_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "imagine.db")
    latest = latest_version()
    extra = (latest + 1, latest + 2)
    three = (*MIGRATIONS, *(Migration(n, f"step {n}", (f"CREATE TABLE t{n} (x)",)) for n in extra))
    await (await open_repository(path, migrations=three)).close()
    with sqlite3.connect(path) as plain:
        plain.execute("DELETE FROM schema_version WHERE version = ?", (extra[0],))
    plain.close()
    with pytest.raises(SchemaVersionError, match="edited by hand"):
        await open_repository(path, migrations=three)


def test_migration_list_must_be_numbered_from_one() -> None:
    check_migrations(MIGRATIONS)
    with pytest.raises(ValueError, match="numbered"):
        check_migrations((*MIGRATIONS, Migration(latest_version() + 2, "gap", ("SELECT 1",))))
    with pytest.raises(ValueError, match="no statements"):
        check_migrations((*MIGRATIONS, Migration(latest_version() + 1, "empty", ())))
