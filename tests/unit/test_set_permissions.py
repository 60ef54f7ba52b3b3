"""What a set needs to post its messages, read from the permissions Discord sends with the interaction."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import discord

from bot.discord_app.job_sets import missing_permissions

POSTING = discord.Permissions(
    view_channel=True, send_messages=True, embed_links=True, attach_files=True, read_message_history=True
)


def names(texts: list[object]) -> list[str]:
    """The permissions as an English-speaking member reads them."""
    return [str(text) for text in texts]


def interaction(granted: discord.Permissions, kind: discord.ChannelType) -> discord.Interaction:
    return cast(discord.Interaction, SimpleNamespace(app_permissions=granted, channel=SimpleNamespace(type=kind)))


def test_a_channel_where_the_bot_may_post_lacks_nothing() -> None:
    assert names(missing_permissions(interaction(POSTING, discord.ChannelType.text), reply=True)) == []


def test_a_thread_needs_send_messages_in_threads_and_a_reply_needs_the_history() -> None:
    in_thread = interaction(POSTING, discord.ChannelType.public_thread)
    assert names(missing_permissions(in_thread, reply=False)) == ["Send Messages in Threads"]
    no_history = discord.Permissions(POSTING.value)
    no_history.read_message_history = False
    assert names(missing_permissions(interaction(no_history, discord.ChannelType.text), reply=False)) == []
    assert names(missing_permissions(interaction(no_history, discord.ChannelType.text), reply=True)) == [
        "Read Message History"
    ]
    assert names(
        missing_permissions(interaction(discord.Permissions.none(), discord.ChannelType.text), reply=False)
    ) == [
        "View Channel",
        "Send Messages",
        "Embed Links",
        "Attach Files",
    ]
