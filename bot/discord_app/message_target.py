"""Where a job's message lives and how to reach it: everything a restarted bot needs to keep showing the job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

import discord

TOKEN_LIFETIME = timedelta(minutes=15)
_LOCALE_MAX = 16  # Discord's locales are 2 to 6 characters: anything longer is no locale


def server_locale(interaction: discord.Interaction) -> str | None:
    """The server's locale (``de``, ``pt-BR``): the language of what the whole channel reads. ``None``: not known
    (a DM, or a server Discord sent none for), English."""
    locale = interaction.guild_locale
    if locale is None and interaction.guild is not None:
        locale = interaction.guild.preferred_locale
    value = None if locale is None else str(locale.value)
    return value if value and len(value) <= _LOCALE_MAX else None


@dataclass(frozen=True)
class MessageTarget:
    """Where a job's message lives and how to reach it (JSON round-trips through the journal)."""

    application_id: int
    token: str = field(repr=False)
    """The interaction token: edits through the webhook route until it expires. Never logged."""
    token_expires_at: datetime
    channel_id: int | None
    message_id: int | None
    """``None`` for a job journaled before its placeholder was sent: it is looked for, or posted anew."""
    requester_id: int
    upload_limit: int
    reply_to: int | None = None
    """The message this job's message replies to (an upscale or variation replies to its original)."""
    locale: str | None = None
    """The server's locale when the job was asked for: the job's message is written in it, after a restart too.
    ``None`` (English) for jobs journaled before it was kept."""

    @classmethod
    def of(cls, interaction: discord.Interaction, message_id: int | None) -> MessageTarget:
        """The target of the message that answers (or will answer) ``interaction``."""
        return cls(
            application_id=interaction.application_id,
            token=interaction.token,
            token_expires_at=interaction.created_at + TOKEN_LIFETIME,
            channel_id=interaction.channel_id,
            message_id=message_id,
            requester_id=interaction.user.id,
            upload_limit=interaction.filesize_limit or discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES,
            locale=server_locale(interaction),
        )

    @classmethod
    def channel_message(cls, interaction: discord.Interaction) -> MessageTarget:
        """The target of a bot message of its own in the interaction's channel, not yet posted (each job of a
        set has one: the interaction has a single answer).

        It is edited through the channel route from the start: no token is kept, and one already expired
        stands in for it. After a restart it is edited (or, never posted, posted) alike.
        """
        return replace(cls.of(interaction, None), token="", token_expires_at=interaction.created_at)

    @classmethod
    def reply(cls, interaction: discord.Interaction, reply_to: int) -> MessageTarget:
        """The target of a bot message, not yet posted, that replies to ``reply_to`` in the interaction's channel.

        Only a channel message can reply to another (an interaction's own answer cannot carry a message
        reference), so it is one of the bot's own channel messages (:meth:`channel_message`).
        """
        return replace(cls.channel_message(interaction), reply_to=reply_to)

    def to_json(self) -> dict[str, Any]:
        """JSON-able data for the journal."""
        data = asdict(self)
        data["token_expires_at"] = self.token_expires_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MessageTarget:
        """The inverse of :meth:`to_json`; keys it does not know (a later version's) are left aside."""
        known = {item.name for item in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        locale = values.get("locale")
        if not (isinstance(locale, str) and len(locale) <= _LOCALE_MAX):
            values["locale"] = None
        return cls(**{**values, "token_expires_at": datetime.fromisoformat(data["token_expires_at"])})

    def reply_arguments(self) -> dict[str, Any]:
        """``send`` arguments making a reply to the target's original message, if it has one.

        No error if that message is gone, and no ping of its author (the requester is named in the embed).
        """
        if self.reply_to is None or self.channel_id is None:
            return {}
        reference = discord.MessageReference(
            message_id=self.reply_to, channel_id=self.channel_id, fail_if_not_exists=False
        )
        return {"reference": reference, "mention_author": False}
