"""REST routes of channels and guilds: channel messages (list, create, get, edit, delete), typing,
and the guild and member lookups, with the bot's permissions checked as Discord does.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.discord.errors import DiscordError, _missing_access, _missing_permissions, _unknown_message
from tests.fakes.discord.http import _as_dict, _int, _json_response
from tests.fakes.discord.protocol import DEFAULT_ATTACHMENT_SIZE_LIMIT, MessageFlag, Perm, Routes

if TYPE_CHECKING:
    from tests.fakes.discord.guild import FakeChannel, FakeGuild
    from tests.fakes.discord.messages import StoredMessage

NONCE_WINDOW = 300.0
"""Seconds Discord remembers a message's ``nonce`` for ``enforce_nonce`` ("a few minutes")."""


class ChannelRoutesMixin:
    """Part of :class:`FakeDiscord`: the channel, message, guild and member routes."""

    def _channel_message(self, request: web.Request) -> tuple[FakeChannel, FakeGuild | None, StoredMessage]:
        channel, guild = self._find_channel(_int(request.match_info["channel_id"]))
        message = self.messages.get(_int(request.match_info["message_id"], 0))
        if message is None or message.channel_id != channel.id or message.deleted or message.ephemeral:
            raise _unknown_message()
        return channel, guild, message

    async def _h_get_channel(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        channel, _ = self._find_channel(_int(request.match_info["channel_id"]))
        return _json_response(channel.payload())

    async def _h_list_messages(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        channel, _ = self._find_channel(_int(request.match_info["channel_id"]))
        limit = max(1, min(100, _int(request.query.get("limit", "50"), 50)))
        visible = [m for m in self.messages_in(channel) if not m.ephemeral]
        return _json_response([m.payload() for m in reversed(visible)][:limit])

    async def _h_create_message(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        payload, uploads = await self._read_body(request)
        channel, guild = self._find_channel(_int(request.match_info["channel_id"]))
        if guild is not None:
            perms = guild.permissions_in(guild.bot_member, channel)
            if not perms & Perm.VIEW_CHANNEL:
                raise _missing_access()
            needed = Perm.SEND_MESSAGES | (Perm.ATTACH_FILES if uploads else 0)
            if perms & needed != needed:
                raise _missing_permissions()
        data = _as_dict(payload)
        earlier = self._same_nonce(channel.id, data)
        if earlier is not None:  # Discord creates no second message: it answers with the first
            return _json_response(earlier.payload())
        limit = guild.attachment_size_limit if guild is not None else DEFAULT_ATTACHMENT_SIZE_LIMIT
        data = {k: v for k, v in data.items() if k != "flags"} | {
            "flags": int(data.get("flags") or 0) & ~int(MessageFlag.EPHEMERAL)
        }
        version = self._compose(
            base=None, data=data, uploads=uploads, limit=limit, channel_id=channel.id, route=Routes.CREATE_MESSAGE
        )
        reference = data.get("message_reference")
        message = self._store_message(
            channel=channel,
            guild=guild,
            author=self.bot_user,
            message_type=19 if reference else 0,
            version=version,
            interaction=None,
            message_reference=reference,
            nonce=data.get("nonce"),
        )
        await self._dispatch_message_event("MESSAGE_CREATE", message)
        return _json_response(message.payload())

    def _same_nonce(self, channel_id: int, data: dict[str, Any]) -> StoredMessage | None:
        """With ``enforce_nonce``, the bot's message in the channel posted with the same ``nonce`` within
        :data:`NONCE_WINDOW` seconds, as Discord keeps them (``None`` without, or when there is none)."""
        nonce = data.get("nonce")
        if nonce is None or not data.get("enforce_nonce"):
            return None
        now = time.monotonic()
        for message in self.messages_in(channel_id):
            mine = message.author.id == self.bot_user.id and str(message.nonce) == str(nonce)
            if mine and now - message.history[0].at <= NONCE_WINDOW:
                return message
        return None

    async def _h_get_message(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        _, _, message = self._channel_message(request)
        return _json_response(message.payload())

    async def _h_edit_message(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        payload, uploads = await self._read_body(request)
        _, guild, message = self._channel_message(request)
        if message.author.id != self.bot_user.id:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        self._count_edit(request, message, Routes.EDIT_MESSAGE)
        limit = guild.attachment_size_limit if guild is not None else DEFAULT_ATTACHMENT_SIZE_LIMIT
        version = self._compose(
            base=message.current,
            data=_as_dict(payload),
            uploads=uploads,
            limit=limit,
            channel_id=message.channel_id,
            route=Routes.EDIT_MESSAGE,
        )
        self._edit(message, version)
        await self._dispatch_message_event("MESSAGE_UPDATE", message)
        return _json_response(message.payload())

    async def _h_delete_message(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        channel, guild, message = self._channel_message(request)
        if message.author.id != self.bot_user.id and (
            guild is None or not guild.permissions_in(guild.bot_member, channel) & Perm.MANAGE_MESSAGES
        ):
            raise _missing_permissions()
        self._mark_deleted(message, by="bot")
        await self._dispatch_message_event("MESSAGE_DELETE", message)
        return web.Response(status=204)

    async def _h_typing(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        self._find_channel(_int(request.match_info["channel_id"]))
        return web.Response(status=204)

    async def _h_get_guild(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        guild = self.guilds[self._known_guild(request)]
        data = guild.payload(include_all_members=False, application_id=self.application_id)
        for key in ("members", "channels", "threads", "presences", "voice_states", "joined_at", "large"):
            data.pop(key, None)
        return _json_response(data)

    async def _h_get_member(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        guild = self.guilds[self._known_guild(request)]
        member = guild.members.get(_int(request.match_info["user_id"], 0))
        if member is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return _json_response(member.payload())
