"""The repository contract, on both backends: settings, audit log, usage accounting, the jobs journal, lifecycle.

Every test runs once on SQLite and once on PostgreSQL (the ``repository`` and
``database_url`` fixtures, parametrized in ``tests/conftest.py``), each on an
empty database, and passes explicit datetimes: nothing sleeps, nothing depends
on the real clock. What only one backend has (SQLite's file and pragmas, each
backend's migrator) is tested in ``test_storage_sqlite.py`` and
``test_storage_postgres.py``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from bot.api.ratelimit import RequestBudget
from bot.base.clock import SystemClock
from bot.jobs.journal import Journal, Unfinished
from bot.ops.cluster import Cluster
from bot.storage import (
    AuditEntry,
    GuildConfig,
    LimitChanges,
    Limits,
    QueuedJobs,
    Repository,
    RepositoryClosedError,
    Usage,
    open_repository,
)
from tests.storage import T0, FakeClock, SkewedClock, make_job, silence

GUILD = 111
OTHER_GUILD = 222
MOD = 900
OTHER_MOD = 901
MEMBER = 500
SNOWFLAKE_MAX = 2**63 - 1


# ---------------------------------------------------------------------------- defaults


async def test_unknown_guild_has_defaults(repository: Repository) -> None:
    assert await repository.guild_config(GUILD) == GuildConfig(guild_id=GUILD)
    assert await repository.audit_log(GUILD) == []
    assert await repository.usage(GUILD, MEMBER, now=T0) == Usage(day=T0.date())


# ---------------------------------------------------------------------------- models


async def test_allow_model_is_audited_and_idempotent(repository: Repository, clock: FakeClock) -> None:
    assert await repository.allow_model(GUILD, "owner/model", actor_id=MOD) is True
    assert (await repository.guild_config(GUILD)).models == ("owner/model",)
    assert await repository.audit_log(GUILD) == [AuditEntry(GUILD, MOD, "models allow", None, "owner/model", T0)]

    clock.advance(60)
    assert await repository.allow_model(GUILD, "owner/model", actor_id=OTHER_MOD) is False
    assert len(await repository.audit_log(GUILD)) == 1


async def test_models_keep_insertion_order(repository: Repository) -> None:
    for model in ("c/c", "a/a", "b/b"):
        await repository.allow_model(GUILD, model, actor_id=MOD)
    assert (await repository.guild_config(GUILD)).models == ("c/c", "a/a", "b/b")

    await repository.remove_model(GUILD, "a/a", actor_id=MOD)
    await repository.allow_model(GUILD, "a/a", actor_id=MOD)
    assert (await repository.guild_config(GUILD)).models == ("c/c", "b/b", "a/a")


async def test_remove_model(repository: Repository, clock: FakeClock) -> None:
    assert await repository.remove_model(GUILD, "x/y", actor_id=MOD) is False
    assert await repository.audit_log(GUILD) == []

    await repository.allow_model(GUILD, "x/y", actor_id=MOD)
    clock.advance(5)
    assert await repository.remove_model(GUILD, "x/y", actor_id=OTHER_MOD) is True
    assert (await repository.guild_config(GUILD)).models == ()
    newest = (await repository.audit_log(GUILD))[0]
    assert newest == AuditEntry(GUILD, OTHER_MOD, "models remove", "x/y", None, T0 + timedelta(seconds=5))


async def test_removing_the_default_model_clears_it(repository: Repository) -> None:
    await repository.allow_model(GUILD, "a/a", actor_id=MOD)
    await repository.allow_model(GUILD, "b/b", actor_id=MOD)
    await repository.set_default_model(GUILD, "b/b", actor_id=MOD)

    await repository.remove_model(GUILD, "a/a", actor_id=MOD)
    assert (await repository.guild_config(GUILD)).default_model == "b/b"

    await repository.remove_model(GUILD, "b/b", actor_id=OTHER_MOD)
    config = await repository.guild_config(GUILD)
    assert config.default_model is None
    assert config.models == ()
    # Two entries from one change, the default's last (newest first).
    log = await repository.audit_log(GUILD, limit=2)
    assert [(e.action, e.actor_id, e.before, e.after) for e in log] == [
        ("models default", OTHER_MOD, "b/b", None),
        ("models remove", OTHER_MOD, "b/b", None),
    ]


async def test_set_default_model(repository: Repository) -> None:
    await repository.set_default_model(GUILD, "a/a", actor_id=MOD)
    assert (await repository.guild_config(GUILD)).default_model == "a/a"
    await repository.set_default_model(GUILD, "a/a", actor_id=MOD)  # unchanged: not audited
    await repository.set_default_model(GUILD, "b/b:abc123", actor_id=MOD)
    await repository.set_default_model(GUILD, None, actor_id=OTHER_MOD)
    await repository.set_default_model(GUILD, None, actor_id=OTHER_MOD)  # unchanged: not audited
    assert (await repository.guild_config(GUILD)).default_model is None
    log = await repository.audit_log(GUILD)
    assert [(e.action, e.actor_id, e.before, e.after) for e in log] == [
        ("models default", OTHER_MOD, "b/b:abc123", None),
        ("models default", MOD, "a/a", "b/b:abc123"),
        ("models default", MOD, None, "a/a"),
    ]


async def test_empty_model_is_refused(repository: Repository) -> None:
    with pytest.raises(ValueError, match="model"):
        await repository.allow_model(GUILD, "   ", actor_id=MOD)


# ---------------------------------------------------------------------------- channels


async def test_channels_allow_and_remove(repository: Repository) -> None:
    assert await repository.allow_channel(GUILD, 10, actor_id=MOD) is True
    assert await repository.allow_channel(GUILD, 20, actor_id=MOD) is True
    assert await repository.allow_channel(GUILD, 10, actor_id=MOD) is False
    assert (await repository.guild_config(GUILD)).channels == frozenset({10, 20})

    assert await repository.remove_channel(GUILD, 10, actor_id=OTHER_MOD) is True
    assert await repository.remove_channel(GUILD, 10, actor_id=OTHER_MOD) is False
    assert (await repository.guild_config(GUILD)).channels == frozenset({20})
    log = await repository.audit_log(GUILD)
    assert [(e.action, e.actor_id, e.before, e.after) for e in log] == [
        ("channels remove", OTHER_MOD, "10", None),
        ("channels allow", MOD, None, "20"),
        ("channels allow", MOD, None, "10"),
    ]


# ---------------------------------------------------------------------------- words


async def test_words_are_stored_as_given_and_unique_in_any_case(repository: Repository) -> None:
    assert await repository.add_word(GUILD, "  Cat ", actor_id=MOD) is True
    assert await repository.add_word(GUILD, "cat", actor_id=MOD) is False
    assert await repository.add_word(GUILD, "CAT", actor_id=MOD) is False
    assert await repository.add_word(GUILD, "dog", actor_id=MOD) is True
    assert (await repository.guild_config(GUILD)).blocked_words == ("Cat", "dog")
    assert [(e.action, e.after) for e in await repository.audit_log(GUILD)] == [
        ("words add", "dog"),
        ("words add", "Cat"),
    ]


async def test_word_case_folding_covers_unicode(repository: Repository) -> None:
    assert await repository.add_word(GUILD, "Straße", actor_id=MOD) is True
    assert await repository.add_word(GUILD, "STRASSE", actor_id=MOD) is False
    assert await repository.remove_word(GUILD, "strasse", actor_id=MOD) is True


async def test_remove_word_is_case_insensitive(repository: Repository) -> None:
    await repository.add_word(GUILD, "Cat", actor_id=MOD)
    assert await repository.remove_word(GUILD, " cAT ", actor_id=OTHER_MOD) is True
    assert await repository.remove_word(GUILD, "cat", actor_id=OTHER_MOD) is False
    assert (await repository.guild_config(GUILD)).blocked_words == ()
    newest = (await repository.audit_log(GUILD))[0]
    assert (newest.action, newest.actor_id, newest.before, newest.after) == ("words remove", OTHER_MOD, "Cat", None)
    assert len(await repository.audit_log(GUILD)) == 2


async def test_empty_word_is_refused(repository: Repository) -> None:
    with pytest.raises(ValueError, match="word"):
        await repository.add_word(GUILD, " \t", actor_id=MOD)


# ---------------------------------------------------------------------------- limits


async def test_limits_partial_updates(repository: Repository) -> None:
    assert await repository.set_limits(GUILD, LimitChanges(cooldown_seconds=30), actor_id=MOD) == Limits(30, 0, 0)
    assert await repository.set_limits(GUILD, LimitChanges(daily_images=5), actor_id=MOD) == Limits(30, 5, 0)
    assert await repository.set_limits(
        GUILD, LimitChanges(concurrent_jobs=2, cooldown_seconds=0), actor_id=MOD
    ) == Limits(0, 5, 2)
    assert (await repository.guild_config(GUILD)).limits == Limits(0, 5, 2)
    log = await repository.audit_log(GUILD)
    assert [(e.action, e.before, e.after) for e in log] == [
        ("limits", "cooldown=30 daily=5 concurrent=0", "cooldown=0 daily=5 concurrent=2"),
        ("limits", "cooldown=30 daily=0 concurrent=0", "cooldown=30 daily=5 concurrent=0"),
        ("limits", "cooldown=0 daily=0 concurrent=0", "cooldown=30 daily=0 concurrent=0"),
    ]


async def test_limits_that_change_nothing_are_not_audited(repository: Repository) -> None:
    assert await repository.set_limits(GUILD, LimitChanges(), actor_id=MOD) == Limits()
    assert await repository.set_limits(GUILD, LimitChanges(daily_images=0), actor_id=MOD) == Limits()
    await repository.set_limits(GUILD, LimitChanges(daily_images=3), actor_id=MOD)
    assert await repository.set_limits(GUILD, LimitChanges(daily_images=3), actor_id=MOD) == Limits(0, 3, 0)
    assert len(await repository.audit_log(GUILD)) == 1


async def test_negative_limits_are_refused(repository: Repository) -> None:
    with pytest.raises(ValueError, match="cooldown_seconds"):
        await repository.set_limits(GUILD, LimitChanges(cooldown_seconds=-1), actor_id=MOD)
    assert await repository.audit_log(GUILD) == []


# ---------------------------------------------------------------------------- audit log


async def test_audit_log_is_newest_first_and_limited(repository: Repository, clock: FakeClock) -> None:
    for n in range(15):
        await repository.allow_model(GUILD, f"o/m{n}", actor_id=MOD + n)
        clock.advance(1)
    log = await repository.audit_log(GUILD)
    assert len(log) == 10
    assert [e.after for e in log] == [f"o/m{n}" for n in range(14, 4, -1)]
    assert log[0].actor_id == MOD + 14
    assert log[0].at == T0 + timedelta(seconds=14)
    assert log[0].at.tzinfo is not None and log[0].at.utcoffset() == timedelta(0)
    assert [e.after for e in await repository.audit_log(GUILD, limit=3)] == ["o/m14", "o/m13", "o/m12"]
    assert await repository.audit_log(GUILD, limit=0) == []
    assert len(await repository.audit_log(GUILD, limit=100)) == 15


async def test_audit_times_are_stored_in_utc(repository: Repository, clock: FakeClock) -> None:
    clock.current = datetime(2025, 6, 1, 2, 30, tzinfo=timezone(timedelta(hours=2)))
    await repository.allow_model(GUILD, "a/a", actor_id=MOD)
    (entry,) = await repository.audit_log(GUILD)
    assert entry.at == datetime(2025, 6, 1, 0, 30, tzinfo=UTC)
    assert entry.at.utcoffset() == timedelta(0)


async def test_change_and_audit_share_one_transaction(repository: Repository, clock: FakeClock) -> None:
    """If writing the audit entry fails, the change itself is rolled back."""

    def broken_now() -> datetime:
        raise RuntimeError("clock exploded")

    clock.now = broken_now  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="clock exploded"):
        await repository.allow_model(GUILD, "a/a", actor_id=MOD)
    with pytest.raises(RuntimeError, match="clock exploded"):
        await repository.set_limits(GUILD, LimitChanges(daily_images=3), actor_id=MOD)
    assert await repository.guild_config(GUILD) == GuildConfig(guild_id=GUILD)
    assert await repository.audit_log(GUILD) == []


# ---------------------------------------------------------------------------- the mod-log channel and change listeners


async def test_log_channel_is_set_cleared_and_audited(repository: Repository, clock: FakeClock) -> None:
    assert (await repository.guild_config(GUILD)).log_channel_id is None
    assert await repository.set_log_channel(GUILD, SNOWFLAKE_MAX, actor_id=MOD) is True
    assert (await repository.guild_config(GUILD)).log_channel_id == SNOWFLAKE_MAX
    assert await repository.set_log_channel(GUILD, SNOWFLAKE_MAX, actor_id=MOD) is False
    assert await repository.set_log_channel(GUILD, 7, actor_id=OTHER_MOD) is True
    assert await repository.set_log_channel(GUILD, None, actor_id=MOD) is True
    assert await repository.set_log_channel(GUILD, None, actor_id=MOD) is False
    assert (await repository.guild_config(GUILD)).log_channel_id is None
    assert (await repository.guild_config(OTHER_GUILD)).log_channel_id is None
    assert [(e.actor_id, e.action, e.before, e.after) for e in await repository.audit_log(GUILD)] == [
        (MOD, "log channel", "7", None),
        (OTHER_MOD, "log channel", str(SNOWFLAKE_MAX), "7"),
        (MOD, "log channel", None, str(SNOWFLAKE_MAX)),
    ]
    with pytest.raises(ValueError, match="channel_id"):
        await repository.set_log_channel(GUILD, -1, actor_id=MOD)


async def test_settings_changes_are_announced_after_they_commit(
    repository: Repository, database_url: str, clock: FakeClock
) -> None:
    """Each listener hears every audited change once, with what was stored; by then another connection sees it."""
    observer = await open_repository(database_url, clock=clock)
    heard: list[AuditEntry] = []
    seen_elsewhere: list[asyncio.Task[list[AuditEntry]]] = []

    def listener(entry: AuditEntry) -> None:
        heard.append(entry)
        seen_elsewhere.append(asyncio.create_task(observer.audit_log(entry.guild_id, limit=10)))

    def broken_listener(entry: AuditEntry) -> None:
        raise RuntimeError("a listener's own bug")

    repository.on_settings_change(broken_listener)
    repository.on_settings_change(listener)
    try:
        await repository.allow_model(GUILD, "a/a", actor_id=MOD)
        await repository.set_default_model(GUILD, "a/a", actor_id=MOD)
        await repository.remove_model(GUILD, "a/a", actor_id=OTHER_MOD)  # two entries in one transaction
        await repository.set_limits(GUILD, LimitChanges(daily_images=3), actor_id=MOD)
        await repository.set_limits(GUILD, LimitChanges(daily_images=3), actor_id=MOD)  # no change: nothing to announce
        await repository.set_log_channel(OTHER_GUILD, 42, actor_id=MOD)
        stored = list(reversed(await repository.audit_log(GUILD, limit=10))) + await repository.audit_log(OTHER_GUILD)
        assert heard == stored
        assert [e.action for e in heard] == [
            "models allow", "models default", "models remove", "models default", "limits", "log channel",
        ]  # fmt: skip
        for entry, task in zip(heard, seen_elsewhere, strict=True):
            assert entry in await task
    finally:
        await observer.close()


async def test_a_rolled_back_change_is_never_announced(repository: Repository, clock: FakeClock) -> None:
    await repository.allow_model(GUILD, "a/a", actor_id=MOD)
    await repository.set_default_model(GUILD, "a/a", actor_id=MOD)
    heard: list[AuditEntry] = []
    repository.on_settings_change(heard.append)
    calls = 0
    real_now = clock.now

    def now_that_fails_second() -> datetime:
        # remove_model audits "models remove", then "models default": the second one fails.
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("clock exploded")
        return real_now()

    clock.now = now_that_fails_second  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="clock exploded"):
        await repository.remove_model(GUILD, "a/a", actor_id=MOD)
    assert heard == []
    assert (await repository.guild_config(GUILD)).models == ("a/a",)
    await repository.add_word(GUILD, "cat", actor_id=MOD)
    assert [e.action for e in heard] == ["words add"]


# ---------------------------------------------------------------------------- usage


async def test_charge_records_usage(repository: Repository) -> None:
    result = await repository.charge(GUILD, MEMBER, 2, limits=Limits(), now=T0)
    assert result.charged
    assert result.usage == Usage(day=T0.date(), images_today=2, last_request_at=T0)
    assert await repository.usage(GUILD, MEMBER, now=T0 + timedelta(hours=1)) == result.usage
    # 0 means no limit: a second charge right away is fine.
    again = await repository.charge(GUILD, MEMBER, 3, limits=Limits(), now=T0)
    assert again.charged and again.usage.images_today == 5


async def test_cooldown(repository: Repository) -> None:
    limits = Limits(cooldown_seconds=30)
    assert (await repository.charge(GUILD, MEMBER, 1, limits=limits, now=T0)).charged

    refused = await repository.charge(GUILD, MEMBER, 1, limits=limits, now=T0 + timedelta(seconds=12))
    assert not refused.charged
    assert not refused.over_daily_limit
    assert refused.retry_after_seconds == pytest.approx(18.0)
    assert refused.usage == Usage(day=T0.date(), images_today=1, last_request_at=T0)  # refusal changed nothing

    later = await repository.charge(GUILD, MEMBER, 1, limits=limits, now=T0 + timedelta(seconds=30))
    assert later.charged
    assert later.usage.last_request_at == T0 + timedelta(seconds=30)
    assert later.retry_after_seconds is None


async def test_cooldown_with_clock_stepping_back_waits_the_full_cooldown(repository: Repository) -> None:
    limits = Limits(cooldown_seconds=30)
    await repository.charge(GUILD, MEMBER, 1, limits=limits, now=T0)
    refused = await repository.charge(GUILD, MEMBER, 1, limits=limits, now=T0 - timedelta(seconds=10))
    assert refused.retry_after_seconds == pytest.approx(30.0)


async def test_daily_limit(repository: Repository) -> None:
    limits = Limits(daily_images=5)
    assert (await repository.charge(GUILD, MEMBER, 4, limits=limits, now=T0)).charged
    refused = await repository.charge(GUILD, MEMBER, 2, limits=limits, now=T0 + timedelta(minutes=1))
    assert not refused.charged
    assert refused.over_daily_limit
    assert refused.retry_after_seconds is None
    assert refused.usage.images_today == 4
    exact = await repository.charge(GUILD, MEMBER, 1, limits=limits, now=T0 + timedelta(minutes=2))
    assert exact.charged and exact.usage.images_today == 5
    assert not (await repository.charge(GUILD, MEMBER, 1, limits=limits, now=T0 + timedelta(minutes=3))).charged


async def test_cooldown_is_checked_before_the_daily_limit(repository: Repository) -> None:
    limits = Limits(cooldown_seconds=60, daily_images=1)
    await repository.charge(GUILD, MEMBER, 1, limits=limits, now=T0)
    refused = await repository.charge(GUILD, MEMBER, 1, limits=limits, now=T0 + timedelta(seconds=1))
    assert refused.retry_after_seconds == pytest.approx(59.0)
    assert not refused.over_daily_limit


async def test_daily_count_resets_on_a_new_utc_day(repository: Repository) -> None:
    limits = Limits(daily_images=2)
    late = datetime(2025, 3, 14, 23, 59, tzinfo=UTC)
    assert (await repository.charge(GUILD, MEMBER, 2, limits=limits, now=late)).charged
    assert not (await repository.charge(GUILD, MEMBER, 1, limits=limits, now=late + timedelta(seconds=30))).charged

    after_midnight = late + timedelta(minutes=2)
    result = await repository.charge(GUILD, MEMBER, 2, limits=limits, now=after_midnight)
    assert result.charged
    assert result.usage == Usage(day=date(2025, 3, 15), images_today=2, last_request_at=after_midnight)


async def test_the_day_is_the_utc_day_whatever_the_offset(repository: Repository) -> None:
    # 01:00 at UTC+02:00 on the 15th is still the 14th in UTC.
    local = datetime(2025, 3, 15, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    result = await repository.charge(GUILD, MEMBER, 1, limits=Limits(), now=local)
    assert result.usage.day == date(2025, 3, 14)
    assert result.usage.last_request_at == datetime(2025, 3, 14, 23, 0, tzinfo=UTC)
    assert (await repository.usage(GUILD, MEMBER, now=datetime(2025, 3, 14, 23, 30, tzinfo=UTC))).images_today == 1
    assert (await repository.usage(GUILD, MEMBER, now=datetime(2025, 3, 15, 0, 30, tzinfo=UTC))).images_today == 0


async def test_usage_on_a_new_day_keeps_the_last_request(repository: Repository) -> None:
    await repository.charge(GUILD, MEMBER, 3, limits=Limits(), now=T0)
    tomorrow = await repository.usage(GUILD, MEMBER, now=T0 + timedelta(days=1))
    assert tomorrow == Usage(day=T0.date() + timedelta(days=1), images_today=0, last_request_at=T0)


async def test_refund(repository: Repository) -> None:
    await repository.charge(GUILD, MEMBER, 4, limits=Limits(), now=T0)
    await repository.refund(GUILD, MEMBER, 3, day=T0.date())
    assert (await repository.usage(GUILD, MEMBER, now=T0)).images_today == 1
    await repository.refund(GUILD, MEMBER, 10, day=T0.date())
    usage = await repository.usage(GUILD, MEMBER, now=T0)
    assert usage.images_today == 0
    assert usage.last_request_at == T0  # the cooldown is not given back
    await repository.refund(GUILD, MEMBER + 1, 1, day=T0.date())  # nobody on record: nothing happens
    assert (await repository.usage(GUILD, MEMBER + 1, now=T0)).images_today == 0


async def test_refund_for_a_past_day_leaves_today_alone(repository: Repository) -> None:
    tomorrow = T0 + timedelta(days=1)
    await repository.charge(GUILD, MEMBER, 2, limits=Limits(), now=T0)
    await repository.charge(GUILD, MEMBER, 3, limits=Limits(), now=tomorrow)
    await repository.refund(GUILD, MEMBER, 2, day=T0.date())
    assert (await repository.usage(GUILD, MEMBER, now=tomorrow)).images_today == 3


async def test_refund_makes_room_under_the_daily_limit(repository: Repository) -> None:
    limits = Limits(daily_images=2)
    await repository.charge(GUILD, MEMBER, 2, limits=limits, now=T0)
    await repository.refund(GUILD, MEMBER, 2, day=T0.date())
    assert (await repository.charge(GUILD, MEMBER, 2, limits=limits, now=T0)).charged


async def test_concurrent_charges_never_exceed_the_daily_limit(repository: Repository) -> None:
    limits = Limits(daily_images=5)
    results = await asyncio.gather(*(repository.charge(GUILD, MEMBER, 1, limits=limits, now=T0) for _ in range(20)))
    assert sum(r.charged for r in results) == 5
    assert sum(r.over_daily_limit for r in results) == 15
    assert (await repository.usage(GUILD, MEMBER, now=T0)).images_today == 5


async def test_concurrent_settings_changes_all_land(repository: Repository) -> None:
    added = await asyncio.gather(*(repository.add_word(GUILD, f"w{n % 10}", actor_id=MOD) for n in range(30)))
    assert sum(added) == 10
    assert len((await repository.guild_config(GUILD)).blocked_words) == 10
    assert len(await repository.audit_log(GUILD, limit=100)) == 10


async def test_bad_usage_arguments_are_refused(repository: Repository) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await repository.charge(GUILD, MEMBER, 1, limits=Limits(), now=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="images"):
        await repository.charge(GUILD, MEMBER, -1, limits=Limits(), now=T0)
    with pytest.raises(ValueError, match="images"):  # no image is charged only where no job is journaled
        await repository.charge(GUILD, MEMBER, 0, limits=Limits(), now=T0, job=make_job("j0", guild_id=GUILD))
    with pytest.raises(ValueError, match="images"):
        await repository.refund(GUILD, MEMBER, -1, day=T0.date())


# ---------------------------------------------------------------------------- isolation and ids


async def test_guilds_are_isolated(repository: Repository) -> None:
    await repository.allow_model(GUILD, "a/a", actor_id=MOD)
    await repository.set_default_model(GUILD, "a/a", actor_id=MOD)
    await repository.allow_channel(GUILD, 10, actor_id=MOD)
    await repository.add_word(GUILD, "cat", actor_id=MOD)
    await repository.set_limits(
        GUILD, LimitChanges(cooldown_seconds=30, daily_images=5, concurrent_jobs=1), actor_id=MOD
    )
    await repository.charge(GUILD, MEMBER, 5, limits=Limits(), now=T0)

    assert await repository.guild_config(OTHER_GUILD) == GuildConfig(guild_id=OTHER_GUILD)
    assert await repository.audit_log(OTHER_GUILD) == []
    assert (await repository.usage(OTHER_GUILD, MEMBER, now=T0)).images_today == 0

    # The other guild's removals find nothing and touch nothing of the first.
    assert await repository.remove_model(OTHER_GUILD, "a/a", actor_id=OTHER_MOD) is False
    assert await repository.remove_channel(OTHER_GUILD, 10, actor_id=OTHER_MOD) is False
    assert await repository.remove_word(OTHER_GUILD, "cat", actor_id=OTHER_MOD) is False
    await repository.refund(OTHER_GUILD, MEMBER, 5, day=T0.date())
    # …and its additions are its own.
    assert await repository.allow_model(OTHER_GUILD, "a/a", actor_id=OTHER_MOD) is True
    assert await repository.add_word(OTHER_GUILD, "CAT", actor_id=OTHER_MOD) is True
    charged = await repository.charge(OTHER_GUILD, MEMBER, 1, limits=Limits(daily_images=1), now=T0)
    assert charged.charged

    first = await repository.guild_config(GUILD)
    assert first == GuildConfig(
        guild_id=GUILD,
        models=("a/a",),
        default_model="a/a",
        channels=frozenset({10}),
        blocked_words=("cat",),
        limits=Limits(30, 5, 1),
    )
    assert (await repository.usage(GUILD, MEMBER, now=T0)).images_today == 5
    assert len(await repository.audit_log(GUILD)) == 5
    assert {e.guild_id for e in await repository.audit_log(OTHER_GUILD)} == {OTHER_GUILD}
    assert len(await repository.audit_log(OTHER_GUILD)) == 2


async def test_snowflakes_round_trip_exactly(repository: Repository) -> None:
    big = SNOWFLAKE_MAX
    await repository.allow_channel(big, big, actor_id=big)
    await repository.allow_channel(big, big - 1, actor_id=big)
    await repository.charge(big, big, 1, limits=Limits(), now=T0)
    config = await repository.guild_config(big)
    assert config.guild_id == big
    assert config.channels == frozenset({big, big - 1})
    entry = (await repository.audit_log(big))[-1]
    assert (entry.guild_id, entry.actor_id, entry.after) == (big, big, str(big))
    assert (await repository.usage(big, big, now=T0)).images_today == 1
    assert await repository.guild_config(big - 1) == GuildConfig(guild_id=big - 1)


@pytest.mark.parametrize("bad", [2**63, -1, None])
async def test_ids_outside_64_bit_integers_are_refused(repository: Repository, bad: Any) -> None:
    with pytest.raises(ValueError, match="channel_id"):
        await repository.allow_channel(GUILD, bad, actor_id=MOD)
    with pytest.raises(ValueError, match="guild_id"):
        await repository.guild_config(bad)
    # Only the ids a change may leave out (a model's role, the mod-log channel) may be None.
    with pytest.raises(ValueError, match="role_id"):
        await repository.clear_role_limits(GUILD, bad, actor_id=MOD)
    with pytest.raises(ValueError, match="actor_id"):
        await repository.set_log_channel(GUILD, None, actor_id=bad)


# ---------------------------------------------------------------------------- the jobs journal


async def test_a_job_round_trips(repository: Repository) -> None:
    record = make_job(
        "job-1",
        guild_id=SNOWFLAKE_MAX,
        channel_id=SNOWFLAKE_MAX - 1,
        requester_id=MEMBER,
        target={"kind": "interaction", "token": "t", "message_id": SNOWFLAKE_MAX},
    )
    await repository.add_job(record)
    assert await repository.get_job("job-1") == record
    assert await repository.get_job("nope") is None


async def test_update_job_changes_only_journal_fields(repository: Repository) -> None:
    await repository.add_job(make_job("job-1", target={"kind": "channel"}))
    started = datetime(2025, 3, 14, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    await repository.update_job("job-1", state="starting", create_started_at=started)
    # A step that need not wait for the disk changes the row all the same (and still checks the owner).
    await repository.update_job("job-1", prediction_id="p-1", seed=2**40, predict_time=1.25, durable=False)
    assert not await repository.update_job("job-1", owner="someone else", state="finishing", durable=False)
    await repository.update_job(
        "job-1", state="succeeded", ended_at=T0 + timedelta(seconds=9), images_delivered=2, target=None
    )
    await repository.update_job("job-1")  # nothing to change
    job = await repository.get_job("job-1")
    assert job is not None
    assert (job.state, job.prediction_id, job.seed, job.predict_time, job.images_delivered, job.target) == (
        "succeeded",
        "p-1",
        2**40,
        1.25,
        2,
        None,
    )
    assert job.create_started_at == started and job.create_started_at.utcoffset() == timedelta(0)
    assert job.ended_at == T0 + timedelta(seconds=9)
    with pytest.raises(ValueError, match="not journal fields: prompt"):
        await repository.update_job("job-1", prompt="changed")
    with pytest.raises(ValueError, match="timezone-aware"):
        await repository.update_job("job-1", ended_at=datetime(2025, 1, 1))


async def test_update_jobs_changes_all_of_a_set_or_none(repository: Repository) -> None:
    for job_id in ("a", "b"):
        await repository.add_job(make_job(job_id, owner="me"))
    await repository.add_job(make_job("theirs", owner="them"))
    placed = {"a": {"target": {"kind": "channel", "n": 1}}, "b": {"target": {"kind": "channel"}, "message_id": 7}}
    # One job another process owns: none of the set is written.
    assert not await repository.update_jobs({**placed, "theirs": {"target": {"kind": "channel"}}}, owner="me")
    assert [(await repository.get_job(j)).target for j in ("a", "b")] == [None, None]  # type: ignore[union-attr]
    assert await repository.update_jobs(placed, owner="me")
    a, b = await repository.get_job("a"), await repository.get_job("b")
    assert a is not None and b is not None
    assert (a.target, b.target, b.message_id) == ({"kind": "channel", "n": 1}, {"kind": "channel"}, 7)


async def test_claimed_jobs_come_unfinished_and_oldest_first(repository: Repository) -> None:
    await repository.add_job(make_job("late", created=T0 + timedelta(seconds=5)))
    await repository.add_job(make_job("first", created=T0))
    await repository.add_job(make_job("second", created=T0))  # same moment: journal order
    await repository.add_job(make_job("done", created=T0 - timedelta(seconds=5)))
    await repository.update_job("done", state="failed", ended_at=T0)
    claimed = await repository.claim_jobs("me", name="host")  # ownerless jobs go to a restart's claim
    assert [job.job_id for job in claimed] == ["first", "second", "late"]


async def test_member_history_is_the_members_latest_jobs_here_newest_first(repository: Repository) -> None:
    for n in range(12):
        await repository.add_job(
            make_job(f"mine-{n}", created=T0 + timedelta(minutes=n), guild_id=GUILD, requester_id=MEMBER)
        )
    await repository.add_job(
        make_job("same-moment", created=T0 + timedelta(minutes=11), guild_id=GUILD, requester_id=MEMBER)
    )
    await repository.add_job(
        make_job("elsewhere", created=T0 + timedelta(hours=1), guild_id=OTHER_GUILD, requester_id=MEMBER)
    )
    await repository.add_job(
        make_job("someone-else", created=T0 + timedelta(hours=1), guild_id=GUILD, requester_id=MOD)
    )
    await repository.add_job(make_job("no-guild", created=T0 + timedelta(hours=1), requester_id=MEMBER))

    history = await repository.member_history(GUILD, MEMBER)
    assert [job.job_id for job in history] == ["same-moment", *(f"mine-{n}" for n in range(11, 2, -1))]
    assert [job.job_id for job in await repository.member_history(GUILD, MEMBER, limit=2)] == ["same-moment", "mine-11"]
    assert [job.job_id for job in await repository.member_history(OTHER_GUILD, MEMBER)] == ["elsewhere"]
    assert await repository.member_history(GUILD, MEMBER + 1) == []
    assert history[0] == await repository.get_job("same-moment")  # whole records, finished or not


@pytest.mark.parametrize("limit", [0, -1, 101, True])
async def test_member_history_refuses_a_silly_limit(repository: Repository, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        await repository.member_history(GUILD, MEMBER, limit=limit)


async def test_a_jobs_message_id_outlives_its_target(repository: Repository) -> None:
    await repository.add_job(make_job("job-1", guild_id=GUILD, channel_id=7, requester_id=MEMBER))
    assert (await repository.get_job("job-1")).message_id is None  # type: ignore[union-attr]
    await repository.update_job("job-1", target={"message_id": SNOWFLAKE_MAX}, message_id=SNOWFLAKE_MAX)
    await repository.update_job("job-1", state="succeeded", ended_at=T0, target=None)
    [job] = await repository.member_history(GUILD, MEMBER)
    assert (job.target, job.message_id, job.channel_id) == (None, SNOWFLAKE_MAX, 7)


async def test_job_with_prediction(repository: Repository) -> None:
    await repository.add_job(make_job("job-1"))
    await repository.add_job(make_job("job-2"))
    assert await repository.job_with_prediction("p-2") is None
    await repository.update_job("job-2", prediction_id="p-2")
    assert await repository.job_with_prediction("p-2") == "job-2"
    assert await repository.job_with_prediction("p-1") is None
    await repository.update_job("job-2", state="succeeded", ended_at=T0)
    assert await repository.job_with_prediction("p-2") == "job-2"  # finished jobs are found too


async def test_refund_job_gives_back_once(repository: Repository) -> None:
    await repository.charge(GUILD, MEMBER, 4, limits=Limits(), now=T0)
    await repository.add_job(make_job("job-1", guild_id=GUILD, requester_id=MEMBER))
    assert await repository.refund_job("job-1", GUILD, MEMBER, 3, day=T0.date()) is True
    assert await repository.refund_job("job-1", GUILD, MEMBER, 3, day=T0.date()) is False
    assert (await repository.usage(GUILD, MEMBER, now=T0)).images_today == 1
    assert await repository.refund_job("no-such-job", GUILD, MEMBER, 1, day=T0.date()) is False
    assert (await repository.usage(GUILD, MEMBER, now=T0)).images_today == 1


async def test_concurrent_refunds_of_one_job_give_back_once(repository: Repository) -> None:
    await repository.charge(GUILD, MEMBER, 4, limits=Limits(), now=T0)
    await repository.add_job(make_job("job-1", guild_id=GUILD, requester_id=MEMBER))
    results = await asyncio.gather(
        *(repository.refund_job("job-1", GUILD, MEMBER, 2, day=T0.date()) for _ in range(10))
    )
    assert sum(results) == 1
    assert (await repository.usage(GUILD, MEMBER, now=T0)).images_today == 2


async def test_a_duplicate_job_id_is_refused(repository: Repository) -> None:
    await repository.add_job(make_job("job-1"))
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await repository.add_job(make_job("job-1"))


# ---------------------------------------------------------------------------- lifecycle


async def test_data_survives_close_and_reopen(database_url: str, clock: FakeClock) -> None:
    first = await open_repository(database_url, clock=clock)
    await first.allow_model(GUILD, "a/a", actor_id=MOD)
    await first.set_default_model(GUILD, "a/a", actor_id=MOD)
    await first.add_word(GUILD, "Cat", actor_id=MOD)
    await first.allow_channel(GUILD, SNOWFLAKE_MAX, actor_id=MOD)
    await first.set_limits(GUILD, LimitChanges(daily_images=3), actor_id=MOD)
    await first.charge(GUILD, MEMBER, 2, limits=Limits(), now=T0)
    await first.add_job(make_job("job-1"))
    config = await first.guild_config(GUILD)
    log = await first.audit_log(GUILD)
    await first.close()

    second = await open_repository(database_url, clock=clock)
    try:
        assert await second.guild_config(GUILD) == config
        assert await second.audit_log(GUILD) == log
        assert await second.usage(GUILD, MEMBER, now=T0) == Usage(T0.date(), 2, T0)
        assert await second.get_job("job-1") == make_job("job-1")
    finally:
        await second.close()


async def test_use_after_close_fails_clearly(database_url: str, clock: FakeClock) -> None:
    repository = await open_repository(database_url, clock=clock)
    await repository.close()
    await repository.close()  # idempotent
    with pytest.raises(RepositoryClosedError, match="closed"):
        await repository.guild_config(GUILD)
    with pytest.raises(RepositoryClosedError):
        await repository.allow_model(GUILD, "a/a", actor_id=MOD)
    with pytest.raises(RepositoryClosedError):
        await repository.charge(GUILD, MEMBER, 1, limits=Limits(), now=T0)
    with pytest.raises(RepositoryClosedError):
        await repository.get_job("job-1")


async def test_close_waits_for_a_transaction_in_flight(database_url: str, clock: FakeClock) -> None:
    repository = await open_repository(database_url, clock=clock)
    write = asyncio.ensure_future(repository.allow_model(GUILD, "a/a", actor_id=MOD))
    await asyncio.sleep(0)  # let the write start
    await repository.close()
    assert await write is True


# ---------------------------------------------------------------------------- processes and takeover


async def test_guarded_updates_apply_only_for_the_owner(repository: Repository) -> None:
    await repository.add_job(make_job("job-1", owner="inc-a"))
    assert await repository.update_job("job-1", owner="inc-a", state="running")
    assert not await repository.update_job("job-1", owner="inc-b", state="stolen")
    assert await repository.update_job("job-1", state="unguarded")
    job = await repository.get_job("job-1")
    assert job is not None and (job.state, job.owner) == ("unguarded", "inc-a")


async def test_a_restart_takes_back_its_own_jobs_and_ownerless_ones(repository: Repository) -> None:
    await repository.register_process("old", "host/shards:all", "all")
    await repository.register_process("other", "host/shards:1", "1")
    await repository.add_job(make_job("mine", owner="old"))
    await repository.add_job(make_job("legacy", owner=None))
    await repository.add_job(make_job("theirs", owner="other"))
    await repository.add_job(make_job("done", owner="old"))
    await repository.update_job("done", state="succeeded", ended_at=T0)
    await repository.register_process("new", "host/shards:all", "all")
    claimed = await repository.claim_jobs("new", name="host/shards:all")
    assert {job.job_id for job in claimed} == {"mine", "legacy"}
    assert all(job.owner == "new" for job in claimed)
    assert await repository.owned_jobs("old", ["mine"]) == set()
    assert await repository.owned_jobs("new", ["mine", "legacy", "theirs"]) == {"mine", "legacy"}


async def test_takeover_claims_only_the_dead_processes_jobs(repository: Repository) -> None:
    await repository.register_process("dead", "a", "0")
    await repository.register_process("alive", "b", "1")
    await repository.register_process("heir", "c", "2")
    await repository.add_job(make_job("orphan", owner="dead"))
    await repository.add_job(make_job("busy", owner="alive"))
    await silence(repository, "dead", 60)
    assert await repository.heartbeat("alive", alive_within=30) == 2  # alive and heir
    assert await repository.heartbeat("heir", alive_within=30) == 2
    taken = await repository.claim_jobs("heir", silent_for=30)
    assert [job.job_id for job in taken] == ["orphan"]
    assert await repository.claim_jobs("heir", silent_for=30) == []


async def test_two_heirs_never_both_win_a_job(repository: Repository, database_url: str, clock: FakeClock) -> None:
    await repository.register_process("dead", "a", "0")
    for number in range(20):
        await repository.add_job(make_job(f"job-{number:02d}", owner="dead"))
    await silence(repository, "dead", 60)
    other = await open_repository(database_url, clock=clock)
    try:
        first, second = await asyncio.gather(
            repository.claim_jobs("heir-1", silent_for=30), other.claim_jobs("heir-2", silent_for=30)
        )
    finally:
        await other.close()
    ids = [job.job_id for job in first] + [job.job_id for job in second]
    assert sorted(ids) == [f"job-{number:02d}" for number in range(20)]  # each exactly once


async def test_a_restarted_name_is_no_longer_counted_alive(repository: Repository) -> None:
    await repository.register_process("old", "host", "all")
    await repository.register_process("new", "host", "all")
    await repository.claim_jobs("new", name="host")  # taking its jobs back retires the earlier incarnation
    assert await repository.heartbeat("new", alive_within=30) == 1


@pytest.mark.parametrize("offset", [30.0, -30.0], ids=["fast", "slow"])
async def test_a_skewed_clock_neither_takes_over_live_jobs_nor_looks_dead(database_url: str, offset: float) -> None:
    """Signs of life are stamped and compared by the database's clock: a process 30 s fast (or slow) is harmless."""
    honest = await open_repository(database_url)
    skewed_repository = await open_repository(database_url)
    clusters = []
    try:
        for name, repository, clock in (
            ("honest", honest, SystemClock()),
            ("skewed", skewed_repository, SkewedClock(offset)),
        ):
            journal = Journal(repository, clock, owner=name)
            cluster = Cluster(repository, journal, clock, RequestBudget(), name=name, shards="all", takeover_after=10.0)
            await cluster.join()
            await repository.add_job(make_job(f"{name}-job", owner=name))
            clusters.append(cluster)
        taken: list[str] = []

        async def resume(jobs: list[Unfinished]) -> None:
            taken.extend(job.job_id for job in jobs)

        async def drop(job_id: str) -> None:
            raise AssertionError(f"{job_id} was taken from its live owner")

        for _ in range(3):
            for cluster in clusters:
                await cluster.beat(resume, lambda: [], drop)
        assert taken == []
        assert [cluster.live_processes for cluster in clusters] == [2, 2]
        assert await honest.owned_jobs("honest", ["honest-job"]) == {"honest-job"}
        assert await honest.owned_jobs("skewed", ["skewed-job"]) == {"skewed-job"}
    finally:
        await honest.close()
        await skewed_repository.close()


async def test_active_jobs_count_the_members_unfinished_jobs(repository: Repository) -> None:
    await repository.add_job(make_job("a", guild_id=GUILD, requester_id=MEMBER))
    await repository.add_job(make_job("b", guild_id=GUILD, requester_id=MEMBER, owner="elsewhere"))
    await repository.add_job(make_job("c", guild_id=OTHER_GUILD, requester_id=MEMBER))
    await repository.add_job(make_job("d", guild_id=GUILD, requester_id=MEMBER))
    await repository.update_job("d", state="succeeded", ended_at=T0)
    assert await repository.active_jobs(GUILD, MEMBER) == 2  # on any process
    await repository.update_job("a", state="finishing")  # its outcome is being shown: no longer counted
    assert await repository.active_jobs(GUILD, MEMBER) == 1
    assert await repository.active_jobs(GUILD, MOD) == 0


async def test_queued_jobs_count_every_servers_waiting_jobs_and_the_members(repository: Repository) -> None:
    await repository.add_job(make_job("a", guild_id=GUILD, requester_id=MEMBER))
    await repository.add_job(make_job("b", guild_id=GUILD, requester_id=MEMBER, owner="elsewhere"))
    await repository.add_job(make_job("c", guild_id=OTHER_GUILD, requester_id=MEMBER))  # another server's member
    await repository.add_job(make_job("d", guild_id=GUILD, requester_id=MOD))
    await repository.add_job(make_job("e", guild_id=GUILD, requester_id=MEMBER))
    await repository.add_job(make_job("f", guild_id=GUILD, requester_id=MEMBER))
    await repository.add_job(make_job("cli"))  # the command line's job waits in no bot's queue
    await repository.update_job("e", state="creating")  # started
    await repository.update_job("f", state="failed", ended_at=T0)  # abandoned before it started
    assert await repository.queued_jobs(GUILD, MEMBER) == QueuedJobs(total=4, member=2)
    assert await repository.queued_jobs(OTHER_GUILD, MOD) == QueuedJobs(total=4, member=0)
    # A process counts its own waiting jobs itself: the others', and ownerless ones, from here.
    assert await repository.queued_jobs(GUILD, MEMBER, besides="elsewhere") == QueuedJobs(total=3, member=1)


async def test_a_models_usual_run_time_is_a_moving_average(repository: Repository) -> None:
    assert await repository.model_run_time("owner/model") is None
    await repository.record_run_time("owner/model", 4.0, now=T0)
    assert await repository.model_run_time("owner/model") == pytest.approx(4.0)
    await repository.record_run_time("owner/model", 6.0, now=T0)
    assert await repository.model_run_time("owner/model") == pytest.approx(4.0 + 0.3 * 2.0)
    assert await repository.model_run_time("other/model") is None


async def test_a_restart_does_not_hand_its_jobs_to_others_before_it_takes_them_back(repository: Repository) -> None:
    await repository.register_process("old", "host", "0")
    await repository.add_job(make_job("mine", owner="old"))
    await repository.register_process("new", "host", "0")
    # Another process's takeover runs between the restart's registration and its claim: nothing is stale.
    assert await repository.claim_jobs("other", silent_for=30) == []
    assert [job.job_id for job in await repository.claim_jobs("new", name="host")] == ["mine"]
