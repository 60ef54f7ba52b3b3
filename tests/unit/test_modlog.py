"""The mod-log's queue (order, failure isolation, bound), where entries go, and how the policy feeds it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.base.errors import BlockedWordRefusal
from bot.moderation.modlog import BlockedWordEvent, ModLog, ModLogChannelUnavailable, ModLogEvent
from bot.moderation.policy import Policy, RequestContext
from bot.storage import AuditEntry, GuildConfig
from bot.storage.sqlite import MEMORY, SqliteRepository
from tests.storage import T0, FakeClock

GUILD, QUIET_GUILD, LOG_CHANNEL, MEMBER, MOD = 1, 2, 10, 500, 900


class Settings:
    """The part of a repository the mod-log reads: each guild's settings (only GUILD has a log channel)."""

    def __init__(self) -> None:
        self.configs = {GUILD: GuildConfig(GUILD, log_channel_id=LOG_CHANNEL)}

    async def guild_config(self, guild_id: int) -> GuildConfig:
        return self.configs.get(guild_id, GuildConfig(guild_id))


class RecordingSink:
    """Keeps what it is asked to post; ``failures`` maps an event's word to what posting it raises."""

    def __init__(self) -> None:
        self.posted: list[tuple[int, ModLogEvent]] = []
        self.failures: dict[str, BaseException] = {}
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def post(self, channel_id: int, event: ModLogEvent) -> None:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        failure = self.failures.get(getattr(event, "word", ""))
        if failure is not None:
            raise failure
        self.posted.append((channel_id, event))


def refusal(word: str, guild_id: int = GUILD) -> BlockedWordEvent:
    return BlockedWordEvent(guild_id, MEMBER, 77, word, T0)


def change(action: str, before: str | None = None, after: str | None = None) -> AuditEntry:
    return AuditEntry(GUILD, MOD, action, before, after, T0)


def words(sink: RecordingSink) -> list[str]:
    return [event.word for _, event in sink.posted if isinstance(event, BlockedWordEvent)]


@pytest.fixture
async def settings() -> Settings:
    return Settings()


@pytest.fixture
async def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def modlog(settings: Settings, sink: RecordingSink) -> AsyncIterator[ModLog]:
    log = ModLog(settings, capacity=10, post_timeout=0.2)  # type: ignore[arg-type]
    log.start(sink)
    yield log
    await log.close(grace=0)


async def test_entries_are_posted_in_order_to_the_servers_log_channel(modlog: ModLog, sink: RecordingSink) -> None:
    modlog.submit(refusal("one"))
    modlog.submit(change("limits", "cooldown=0", "cooldown=30"))
    modlog.submit(refusal("two"))
    modlog.submit(refusal("elsewhere", guild_id=QUIET_GUILD))  # no log channel there: not posted
    await modlog.flush()
    assert [(channel, getattr(e, "word", None) or getattr(e, "action", None)) for channel, e in sink.posted] == [
        (LOG_CHANNEL, "one"),
        (LOG_CHANNEL, "limits"),
        (LOG_CHANNEL, "two"),
    ]


async def test_a_failing_post_is_logged_and_skipped_and_the_rest_go_on(
    modlog: ModLog, sink: RecordingSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.moderation.modlog")
    sink.failures = {
        "gone": ModLogChannelUnavailable("the channel no longer exists (10003 Unknown Channel)"),
        "bug": RuntimeError("the sink's own bug"),
    }
    for word in ("gone", "first", "bug", "second"):
        modlog.submit(refusal(word))
    await modlog.flush()
    assert words(sink) == ["first", "second"]
    messages = [record.getMessage() for record in caplog.records]
    assert any("10003" in message and "skipped" in message for message in messages)
    assert any("could not post" in message for message in messages)


async def test_a_post_that_hangs_is_given_up(modlog: ModLog, sink: RecordingSink) -> None:
    sink.gate = asyncio.Event()  # never set: every post hangs past the 0.2 s timeout
    modlog.submit(refusal("stuck"))
    await modlog.flush()
    assert sink.posted == []
    sink.gate = None
    modlog.submit(refusal("next"))
    await modlog.flush()
    assert words(sink) == ["next"]


async def test_a_full_queue_drops_the_oldest_with_a_warning(
    settings: Settings, sink: RecordingSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.moderation.modlog")
    modlog = ModLog(settings, capacity=3)  # type: ignore[arg-type]
    modlog.start(sink)
    sink.gate = asyncio.Event()
    modlog.submit(refusal("posting"))
    await sink.entered.wait()  # the first is being posted; three more fill the queue
    for number in range(6):
        modlog.submit(refusal(f"queued {number}"))
    assert modlog.dropped == 3
    sink.gate.set()
    await modlog.flush()
    assert words(sink) == ["posting", "queued 3", "queued 4", "queued 5"]
    assert len([r for r in caplog.records if "queue full" in r.getMessage()]) == 1
    await modlog.close()


async def test_submitting_never_waits_for_posting(modlog: ModLog, sink: RecordingSink) -> None:
    sink.gate = asyncio.Event()
    modlog.submit(refusal("slow"))
    modlog.submit(refusal("slower"))  # returns at once though nothing has been posted yet
    assert sink.posted == []
    sink.gate.set()
    await modlog.flush()
    assert words(sink) == ["slow", "slower"]


async def test_turning_the_log_off_is_posted_where_it_was_turned_off(
    modlog: ModLog, sink: RecordingSink, settings: Settings
) -> None:
    settings.configs[GUILD] = GuildConfig(GUILD)  # committed: the log is off now
    modlog.submit(change("log channel", str(LOG_CHANNEL), None))
    modlog.submit(refusal("after"))
    await modlog.flush()
    assert [(channel, getattr(event, "action", None)) for channel, event in sink.posted] == [
        (LOG_CHANNEL, "log channel")
    ]


async def test_before_start_and_after_close_nothing_is_posted(settings: Settings, sink: RecordingSink) -> None:
    modlog = ModLog(settings)  # type: ignore[arg-type]
    modlog.submit(refusal("early"))  # the command line never starts it
    await modlog.flush()
    modlog.start(sink)
    modlog.submit(refusal("posted"))
    await modlog.close()
    modlog.submit(refusal("late"))
    await modlog.flush()
    assert words(sink) == ["posted"]


async def test_the_policy_reports_the_word_matched_never_the_prompt(clock: FakeClock) -> None:
    repository = await SqliteRepository.open(MEMORY, clock=clock)
    heard: list[BlockedWordEvent] = []

    async def no_jobs(_guild: int, _member: int) -> int:
        return 0

    policy: Any = Policy(repository, bot_models=(), clock=clock, active_jobs=no_jobs, on_blocked_word=heard.append)
    try:
        await repository.allow_model(GUILD, "a/b", actor_id=MOD)
        await repository.add_word(GUILD, "Weasel", actor_id=MOD)
        clock.advance(timedelta(minutes=1).total_seconds())
        with pytest.raises(BlockedWordRefusal) as refused:
            await policy.admit(RequestContext(GUILD, MEMBER, 77, "a w.3.a.s.e.l in the snow"))
        assert refused.value.word == "Weasel" and "Weasel" not in str(refused.value)
        assert heard == [BlockedWordEvent(GUILD, MEMBER, 77, "Weasel", clock.now())]
        await policy.admit(RequestContext(GUILD, MEMBER, 77, "a fox in the snow"))
        assert len(heard) == 1
    finally:
        await repository.close()
