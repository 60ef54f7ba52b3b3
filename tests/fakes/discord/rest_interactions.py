"""REST routes of interactions: the callback (with the acknowledgement deadline and token
lifetime) and the interaction webhooks (``@original``, followups, webhook messages by id).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakes.discord.errors import (
    DiscordError,
    _form_error,
    _invalid_webhook_token,
    _unknown_interaction,
    _unknown_message,
    _validate_choices,
    _validate_modal,
)
from tests.fakes.discord.http import _as_dict, _int, _json_response
from tests.fakes.discord.interactions import CallbackRecord
from tests.fakes.discord.protocol import _ALLOWED_CALLBACKS, CallbackType, Routes

if TYPE_CHECKING:
    from tests.fakes.discord.interactions import InteractionHandle
    from tests.fakes.discord.messages import MessageVersion, StoredMessage, _Upload
    from tests.fakes.discord.protocol import JSON


class InteractionRoutesMixin:
    """Part of :class:`FakeDiscord`: the interaction callback and webhook routes."""

    async def _h_callback(self, request: web.Request) -> web.Response:
        payload, uploads = await self._read_body(request)
        handle = self.interactions.get(_int(request.match_info["interaction_id"], 0))
        if handle is None or handle.token != request.match_info["token"]:
            raise _unknown_interaction()
        body = payload if isinstance(payload, dict) else {}
        raw_data = body.get("data")
        data: JSON = raw_data if isinstance(raw_data, dict) else {}
        files = tuple((u.filename, len(u.data)) for u in uploads)

        def record(status: int, code: int | None) -> None:
            handle.callbacks.append(CallbackRecord(body.get("type"), data, status, code, time.monotonic(), files))

        try:
            result, event = self._process_callback(handle, body, uploads, record)
        except DiscordError as exc:
            record(exc.status, exc.code)
            self._changed()
            raise
        self._changed()
        if event is not None:
            await self._dispatch_message_event(*event)
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        return _json_response(result)

    def _process_callback(
        self,
        handle: InteractionHandle,
        body: JSON,
        uploads: list[_Upload],
        accept: Callable[[int, int | None], None],
    ) -> tuple[JSON, tuple[str, StoredMessage] | None]:
        """Check and apply a callback; ``accept`` records it just before the store changes."""
        if handle.token_expired:
            raise _unknown_interaction()
        if handle.acknowledged:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        if handle._ack_too_late(time.monotonic()):
            raise _unknown_interaction()
        try:
            callback_type = int(body["type"])
        except (KeyError, TypeError, ValueError):
            raise _form_error([("type", "BASE_TYPE_REQUIRED", "This field is required")]) from None
        if callback_type not in _ALLOWED_CALLBACKS.get(handle.type, frozenset()):
            raise _form_error([("type", "INTERACTION_RESPONSE_TYPE_INVALID", f"Invalid response type {callback_type}")])
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise _form_error([("data", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")])
        route = Routes.CALLBACK
        message: StoredMessage | None = None
        event: tuple[str, StoredMessage] | None = None
        if callback_type in (CallbackType.CHANNEL_MESSAGE, CallbackType.DEFERRED_CHANNEL_MESSAGE):
            loading = callback_type == CallbackType.DEFERRED_CHANNEL_MESSAGE
            version = self._compose(
                base=None,
                data={"flags": data.get("flags")} if loading else data,
                uploads=[] if loading else uploads,
                limit=handle.attachment_size_limit,
                channel_id=handle.channel.id,
                route=route,
                callback_type=callback_type,
                loading=loading,
            )
            accept(200, None)
            message = self._store_reply(handle, version)
            handle.original_message_id = message.id
            event = ("MESSAGE_CREATE", message)
        elif callback_type in (CallbackType.DEFERRED_UPDATE_MESSAGE, CallbackType.UPDATE_MESSAGE):
            message = handle.message
            if message is None:
                raise _form_error(
                    [("type", "INTERACTION_RESPONSE_TYPE_INVALID", "This interaction has no message to update")]
                )
            if message.deleted:
                raise _unknown_message()
            if callback_type == CallbackType.UPDATE_MESSAGE:
                version = self._compose_edit(handle, message, data, uploads, route, callback_type=callback_type)
                accept(200, None)
                self._edit(message, version)
                event = ("MESSAGE_UPDATE", message)
            else:
                accept(200, None)
            handle.original_message_id = message.id
        else:
            if callback_type == CallbackType.AUTOCOMPLETE_RESULT and self.validate_payloads:
                _validate_choices(data.get("choices"))
            elif callback_type == CallbackType.MODAL and self.validate_payloads:
                _validate_modal(data)
            accept(200, None)
        interaction_info: JSON = {"id": str(handle.id), "type": int(handle.type)}
        resource: JSON = {"type": callback_type}
        if message is not None:
            interaction_info.update(
                response_message_id=str(message.id),
                response_message_loading=message.current.loading,
                response_message_ephemeral=message.ephemeral,
            )
            if callback_type in (CallbackType.CHANNEL_MESSAGE, CallbackType.UPDATE_MESSAGE):
                resource["message"] = message.payload()
        return {"interaction": interaction_info, "resource": resource}, event

    def _compose_edit(
        self,
        handle: InteractionHandle,
        message: StoredMessage,
        data: JSON,
        uploads: list[_Upload],
        route: str,
        *,
        callback_type: int | None = None,
    ) -> MessageVersion:
        """The next version of ``message`` from an interaction's request, within the interaction's upload limit."""
        return self._compose(
            base=message.current,
            data=data,
            uploads=uploads,
            limit=handle.attachment_size_limit,
            channel_id=message.channel_id,
            route=route,
            callback_type=callback_type,
        )

    def _webhook_interaction(self, request: web.Request) -> InteractionHandle:
        if request.match_info["application_id"] != str(self.application_id):
            raise DiscordError(404, 10015, "Unknown Webhook")
        token = request.match_info["token"]
        handle = next((h for h in self.interactions.values() if h.token == token), None)
        if handle is None or handle.token_expired:
            raise _invalid_webhook_token()
        return handle

    def _webhook_message(self, handle: InteractionHandle, key: str) -> StoredMessage:
        if key == "@original":
            message_id = handle.original_message_id
        else:
            message_id = _int(key, 0)
            allowed = {handle.original_message_id, *handle.followup_ids}
            if message_id not in allowed:
                raise _unknown_message()
        message = self.messages.get(message_id) if message_id is not None else None
        if message is None or message.deleted:
            raise _unknown_message()
        return message

    async def _h_get_original(self, request: web.Request) -> web.Response:
        handle = self._webhook_interaction(request)
        return _json_response(self._webhook_message(handle, "@original").payload())

    async def _h_get_webhook_message(self, request: web.Request) -> web.Response:
        handle = self._webhook_interaction(request)
        return _json_response(self._webhook_message(handle, request.match_info["message_id"]).payload())

    async def _h_edit_original(self, request: web.Request) -> web.Response:
        return await self._webhook_edit(request, "@original", Routes.EDIT_ORIGINAL)

    async def _h_edit_webhook_message(self, request: web.Request) -> web.Response:
        return await self._webhook_edit(request, request.match_info["message_id"], Routes.EDIT_WEBHOOK_MESSAGE)

    async def _webhook_edit(self, request: web.Request, key: str, route: str) -> web.Response:
        payload, uploads = await self._read_body(request)
        handle = self._webhook_interaction(request)
        message = self._webhook_message(handle, key)
        self._count_edit(request, message, route)
        version = self._compose_edit(handle, message, _as_dict(payload), uploads, route)
        self._edit(message, version)
        await self._dispatch_message_event("MESSAGE_UPDATE", message)
        return _json_response(message.payload())

    async def _h_delete_original(self, request: web.Request) -> web.Response:
        handle = self._webhook_interaction(request)
        return await self._webhook_delete(self._webhook_message(handle, "@original"))

    async def _h_delete_webhook_message(self, request: web.Request) -> web.Response:
        handle = self._webhook_interaction(request)
        return await self._webhook_delete(self._webhook_message(handle, request.match_info["message_id"]))

    async def _webhook_delete(self, message: StoredMessage) -> web.Response:
        self._mark_deleted(message, by="bot")
        await self._dispatch_message_event("MESSAGE_DELETE", message)
        return web.Response(status=204)

    async def _h_followup(self, request: web.Request) -> web.Response:
        payload, uploads = await self._read_body(request)
        handle = self._webhook_interaction(request)
        if not handle.acknowledged:
            raise DiscordError(404, 10015, "Unknown Webhook")
        data = _as_dict(payload)
        original = handle.original_message
        wait = request.query.get("wait", "false").lower() in ("1", "true")
        if (
            self.followup_edits_deferred
            and original is not None
            and not original.deleted
            and original.current.loading
            and original.edit_count == 0
        ):
            version = self._compose_edit(handle, original, data, uploads, Routes.FOLLOWUP)
            self._edit(original, version)
            message = original
            await self._dispatch_message_event("MESSAGE_UPDATE", message)
        else:
            version = self._compose(
                base=None,
                data=data,
                uploads=uploads,
                limit=handle.attachment_size_limit,
                channel_id=handle.channel.id,
                route=Routes.FOLLOWUP,
            )
            message = self._store_reply(handle, version, is_followup=True)
            handle.followup_ids.append(message.id)
            self._changed()
            await self._dispatch_message_event("MESSAGE_CREATE", message)
        if not wait:
            return web.Response(status=204)
        return _json_response(message.payload())
