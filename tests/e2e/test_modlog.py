"""The mod-log through the fake Discord: blocked-word refusals and settings changes reach the log channel."""

from __future__ import annotations

import logging

import pytest

from tests.e2e.conftest import Stack, status_of
from tests.e2e.test_moderation import answer, refusal
from tests.fakes.discord import FakeChannel, Perm, StoredMessage

BLOCKED_PROMPT = "a w.3.a.s.e.l in the snow"


async def log_channel(stack: Stack) -> FakeChannel:
    """A #mod-log channel the bot knows of, made the server's mod-log; its first entry is that change."""
    channel = stack.guild.add_channel("mod-log")
    await stack.discord.dispatch_guild_create(stack.guild)
    text = await answer(stack, "log channel", channel=channel)
    assert "mod-log goes to" in text and "can't post" not in text
    first = await entry_in(stack, channel, "log channel")
    assert f"<#{channel.id}>" in text_of(first)
    return channel


def text_of(message: StoredMessage) -> str:
    """A log message's content and embeds, flattened."""
    return message.content + str(message.embeds)


async def entry_in(stack: Stack, channel: FakeChannel, needle: str) -> StoredMessage:
    """The first message in ``channel`` that mentions ``needle`` (waited for)."""
    return await stack.discord.wait_for(
        lambda: next((m for m in stack.discord.messages_in(channel) if needle in text_of(m)), None),
        5,
        what=f"a mod-log entry with {needle!r}",
    )


async def settled(stack: Stack) -> None:
    """Wait until the mod-log has posted (or skipped) everything submitted so far."""
    assert stack.bot is not None
    await stack.bot.core.modlog.flush()


async def test_blocked_word_refusal_is_logged_with_the_word_not_the_prompt(stack: Stack) -> None:
    channel = await log_channel(stack)
    await answer(stack, "words add", word="weasel")
    text = await refusal(stack, prompt=BLOCKED_PROMPT)
    assert "blocked" in text and "weasel" not in text.lower()

    assert "||weasel||" in text_of(await entry_in(stack, channel, "words add"))
    entry = await entry_in(stack, channel, "Prompt refused")
    logged = text_of(entry)
    assert "||weasel||" in logged
    member, general = stack.guild.member("member"), stack.guild.channel("general")
    assert f"<@{member.id}>" in logged and f"<#{general.id}>" in logged
    assert "snow" not in logged and "w.3.a" not in logged
    assert entry.current.mentions == () and entry.current.allowed_mentions == {"parse": []}
    assert stack.api.count("POST", "create") == 0


async def test_settings_changes_are_logged_with_who_and_old_to_new(stack: Stack) -> None:
    channel = await log_channel(stack)
    moderator = stack.guild.member("moderator")
    await answer(stack, "limits", cooldown=30)
    entry = await entry_in(stack, channel, "limits")
    logged = text_of(entry)
    assert f"<@{moderator.id}>" in logged and "Cooldown: none" in logged and "Cooldown: 30 s" in logged
    assert entry.current.mentions == ()

    await answer(stack, "channels allow", channel="general")
    general = stack.guild.channel("general")
    assert f"<#{general.id}>" in text_of(await entry_in(stack, channel, "channels allow"))
    shown = await answer(stack, "show")
    assert "Mod-log" in shown and f"<#{channel.id}>" in shown


async def test_log_off_stops_posting(stack: Stack) -> None:
    channel = await log_channel(stack)
    assert "mod-log is off" in await answer(stack, "log off")
    await entry_in(stack, channel, "→ —")  # the last entry says why the log went quiet
    await answer(stack, "log off")
    await answer(stack, "words add", word="weasel")
    await refusal(stack, prompt=BLOCKED_PROMPT)
    await settled(stack)
    assert not any("weasel" in text_of(m) for m in stack.discord.messages_in(channel))
    assert "off" in await answer(stack, "show")


@pytest.mark.parametrize("trouble", ["deleted", "hidden", "read-only"])
async def test_a_broken_log_channel_never_breaks_imagine(
    stack: Stack, caplog: pytest.LogCaptureFixture, trouble: str
) -> None:
    channel = await log_channel(stack)
    await answer(stack, "words add", word="weasel")
    await settled(stack)
    if trouble == "deleted":  # 404 10003 Unknown Channel
        stack.guild.remove_channel(channel.id)
    else:  # 403 50001 Missing Access, 403 50013 Missing Permissions
        channel.overwrite(stack.guild.bot_member, deny=Perm.VIEW_CHANNEL if trouble == "hidden" else Perm.SEND_MESSAGES)
    posted = len(stack.discord.messages_in(channel))
    caplog.set_level(logging.WARNING, logger="bot.moderation.modlog")

    assert "blocked" in await refusal(stack, prompt=BLOCKED_PROMPT)
    await answer(stack, "limits", daily=5)
    final = await stack.final_message(await stack.imagine())
    assert "Done" in status_of(final)
    await settled(stack)

    assert len(stack.discord.messages_in(channel)) == posted
    reason = "no longer exists" if trouble == "deleted" else "may not post"
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.moderation.modlog"]
    assert len([w for w in warnings if reason in w]) == 2, warnings  # the refusal and the change, once each


async def test_setting_a_channel_the_bot_cannot_post_in_warns_the_moderator(stack: Stack) -> None:
    closed = stack.guild.add_channel("closed")
    closed.overwrite(stack.guild.bot_member, deny=Perm.SEND_MESSAGES)
    await stack.discord.dispatch_guild_create(stack.guild)
    text = await answer(stack, "log channel", channel=closed)
    assert "mod-log goes to" in text and "can't post there" in text and "Send Messages" in text
    assert stack.bot is not None
    assert (await stack.bot.core.repository.guild_config(stack.guild.id)).log_channel_id == closed.id
