"""The message store behind every route: composing the next version of a message from a request,
storing, editing and deleting messages, and finding channels.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tests.fakes.discord.errors import (
    DiscordError,
    _form_error,
    _unknown_channel,
    _unknown_message,
    _validate_blank_fields,
    _validate_message,
)
from tests.fakes.discord.guild import FakeChannel
from tests.fakes.discord.messages import MessageVersion, StoredMessage, _effective_mentions
from tests.fakes.discord.protocol import _CREATE_FLAGS, _EDITABLE_FLAGS, InteractionType, MessageFlag, snowflake

if TYPE_CHECKING:
    from tests.fakes.discord.guild import FakeGuild, FakeUser
    from tests.fakes.discord.interactions import ChannelLike, InteractionHandle, MessageLike
    from tests.fakes.discord.messages import _Upload
    from tests.fakes.discord.protocol import JSON


class StoreMixin:
    """Part of :class:`FakeDiscord`: the one message store every route reads and writes."""

    def message(self, message: MessageLike) -> StoredMessage:
        """Return a stored message by id."""
        if isinstance(message, StoredMessage):
            return message
        try:
            return self.messages[int(message)]
        except KeyError:
            raise KeyError(f"no message {message}") from None

    def message_of(self, interaction: InteractionHandle) -> StoredMessage | None:
        """The message of an interaction's response (what ``@original`` refers to), if any."""
        return interaction.original_message

    def messages_in(self, channel: ChannelLike, *, include_deleted: bool = False) -> list[StoredMessage]:
        """Messages in a channel, oldest first (ephemeral ones included)."""
        channel_id = channel.id if isinstance(channel, FakeChannel) else int(channel)
        return [m for m in self.messages.values() if m.channel_id == channel_id and (include_deleted or not m.deleted)]

    def followups_of(self, interaction: InteractionHandle) -> list[StoredMessage]:
        """Followup messages of an interaction."""
        return interaction.followups

    def _compose(
        self,
        *,
        base: MessageVersion | None,
        data: JSON,
        uploads: list[_Upload],
        limit: int,
        channel_id: int,
        route: str,
        callback_type: int | None = None,
        loading: bool = False,
        force_ephemeral: bool = False,
    ) -> MessageVersion:
        """Build the next version of a message (or the first one when ``base`` is None)."""
        total = sum(len(upload.data) for upload in uploads)
        too_big = any(len(upload.data) > limit for upload in uploads)
        if too_big or (self.max_request_size is not None and total > self.max_request_size):
            raise DiscordError(413, 40005, "Request entity too large")
        if self.refuse_uploads and uploads:
            raise _form_error([("attachments.0", "ATTACHMENT_INVALID", "The attachment could not be processed.")])
        creating = base is None

        def field(key: str, old: Any, empty: Any) -> Any:
            if key in data:
                return empty if data[key] is None else data[key]
            return old

        content = str(field("content", base.content if base else "", ""))
        embeds = tuple(field("embeds", base.embeds if base else (), ()))
        components = tuple(field("components", base.components if base else (), ()))
        allowed = data.get("allowed_mentions", base.allowed_mentions if base else None)
        if base is None:
            flags = int(data.get("flags") or 0) & _CREATE_FLAGS
            if loading:
                flags |= MessageFlag.LOADING
            if force_ephemeral:
                flags |= MessageFlag.EPHEMERAL
            tts = bool(data.get("tts", False))
        else:
            kept = base.flags & ~(_EDITABLE_FLAGS | MessageFlag.LOADING)
            editable = base.flags & _EDITABLE_FLAGS
            if data.get("flags") is not None:
                editable = int(data["flags"]) & _EDITABLE_FLAGS
            flags = kept | editable
            tts = base.tts
        attachments = self._resolve_attachments(base.attachments if base else (), data, uploads, channel_id)
        mentions, mention_roles, everyone = _effective_mentions(content, allowed)
        version = MessageVersion(
            index=0 if base is None else base.index + 1,
            content=content,
            embeds=embeds,
            components=components,
            attachments=attachments,
            flags=int(flags),
            allowed_mentions=allowed,
            tts=tts,
            mentions=mentions,
            mention_roles=mention_roles,
            mention_everyone=everyone,
            route=route,
            callback_type=callback_type,
        )
        if self.validate_payloads:
            _validate_message(version, allow_empty=loading, creating=creating)
        if self.reject_blank_embed_fields:
            _validate_blank_fields(version)
        return version

    def _plain_version(self, content: str, *, route: str) -> MessageVersion:
        mentions, roles, everyone = _effective_mentions(content, None)
        return MessageVersion(
            index=0, content=content, mentions=mentions, mention_roles=roles, mention_everyone=everyone, route=route
        )

    def _store_message(
        self,
        *,
        channel: FakeChannel,
        guild: FakeGuild | None,
        author: FakeUser,
        message_type: int,
        version: MessageVersion,
        interaction: InteractionHandle | None,
        message_reference: JSON | None = None,
        nonce: str | int | None = None,
        is_followup: bool = False,
    ) -> StoredMessage:
        message = StoredMessage(
            id=snowflake(),
            channel_id=channel.id,
            guild_id=guild.id if guild is not None else None,
            author=author,
            type=message_type,
            first=version,
            user_lookup=self._find_user,
            interaction=interaction,
            application_id=self.application_id if interaction is not None else None,
            message_reference=message_reference,
            nonce=nonce,
            is_followup=is_followup,
        )
        self.messages[message.id] = message
        self._changed()
        return message

    def _store_reply(
        self, handle: InteractionHandle, version: MessageVersion, *, is_followup: bool = False
    ) -> StoredMessage:
        """Store the bot's response (or a followup) to an interaction, in the interaction's channel."""
        return self._store_message(
            channel=handle.channel,
            guild=handle.guild,
            author=self.bot_user,
            message_type=self._message_type_for(handle),
            version=version,
            interaction=handle,
            is_followup=is_followup,
        )

    def _edit(self, message: StoredMessage, version: MessageVersion) -> None:
        if message.deleted:
            raise _unknown_message()
        message.history.append(version)
        self._changed()

    def _mark_deleted(self, message: StoredMessage, *, by: str) -> None:
        if message.deleted:
            raise _unknown_message()
        message.deleted_at = time.monotonic()
        message.deleted_by = by
        self._changed()

    def _message_type_for(self, handle: InteractionHandle) -> int:
        if handle.type in (InteractionType.APPLICATION_COMMAND, InteractionType.AUTOCOMPLETE):
            command_type = int(handle.payload.get("data", {}).get("type", 1))
            return 20 if command_type == 1 else 23
        return 0

    def _find_channel(self, channel_id: int) -> tuple[FakeChannel, FakeGuild | None]:
        for guild in self.guilds.values():
            channel = guild.channels.get(channel_id)
            if channel is not None:
                return channel, guild
        for channel in self._dm_channels.values():
            if channel.id == channel_id:
                return channel, None
        raise _unknown_channel()
