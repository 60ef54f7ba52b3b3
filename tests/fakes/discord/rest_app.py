"""REST routes of the application: login (``/users/@me``), application info, gateway discovery and the
bulk sync of application commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.discord.commands import validate_commands
from tests.fakes.discord.errors import DiscordError, _form_error
from tests.fakes.discord.http import _int, _json_response
from tests.fakes.discord.protocol import snowflake

if TYPE_CHECKING:
    from tests.fakes.discord.protocol import JSON


class AppRoutesMixin:
    """Part of :class:`FakeDiscord`: the application, gateway-info and command routes."""

    async def _h_users_me(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        data = self.bot_user.payload()
        data.update(verified=True, mfa_enabled=False, flags=0, locale="en-US", email=None)
        return _json_response(data)

    async def _h_get_user(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        user = self._find_user(_int(request.match_info["user_id"]))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return _json_response(user.payload())

    async def _h_app_info(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        return _json_response(
            {
                "id": str(self.application_id),
                "name": self.bot_user.username,
                "icon": None,
                "description": "Fake application",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.owner.payload(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": 0,
                "bot": self.bot_user.payload(),
                "rpc_origins": [],
                "tags": [],
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "approximate_guild_count": len(self.guilds),
                "integration_types_config": {"0": {}},
            }
        )

    async def _h_gateway(self, request: web.Request) -> web.Response:
        return _json_response({"url": self.gateway_url})

    async def _h_gateway_bot(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        return _json_response(
            {
                "url": self.gateway_url,
                "shards": self.shard_count,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": self.max_concurrency,
                },
            }
        )

    async def _h_get_global_commands(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        self._require_application(request)
        return _json_response(self.global_commands)

    async def _h_put_global_commands(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        self._require_application(request)
        payload, _ = await self._read_body(request)
        self.global_commands = self._bulk_upsert(self.global_commands, payload, guild_id=None)
        self._changed()
        return _json_response(self.global_commands)

    async def _h_get_guild_commands(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        self._require_application(request)
        guild_id = self._known_guild(request)
        return _json_response(self.guild_commands.get(guild_id, []))

    async def _h_put_guild_commands(self, request: web.Request) -> web.Response:
        self._require_bot_auth(request)
        self._require_application(request)
        guild_id = self._known_guild(request)
        payload, _ = await self._read_body(request)
        stored = self._bulk_upsert(self.guild_commands.get(guild_id, []), payload, guild_id=guild_id)
        self.guild_commands[guild_id] = stored
        self._changed()
        return _json_response(stored)

    def _known_guild(self, request: web.Request) -> int:
        guild_id = _int(request.match_info["guild_id"])
        if guild_id not in self.guilds:
            raise DiscordError(404, 10004, "Unknown Guild")
        return guild_id

    def _bulk_upsert(self, previous: list[JSON], payload: Any, *, guild_id: int | None) -> list[JSON]:
        if not isinstance(payload, list):
            raise _form_error([("_root", "LIST_TYPE_CONVERT", "Must be an array")])
        if self.validate_payloads:
            validate_commands(payload)
        by_key = {(c["name"], int(c.get("type", 1))): c for c in previous}
        stored: list[JSON] = []
        for command in payload:
            command_type = int(command.get("type", 1))
            old = by_key.get((command["name"], command_type))
            if old is None:
                self.command_creates += 1
            permissions = command.get("default_member_permissions")
            entry: JSON = {
                "description": "",
                "options": [],
                "nsfw": False,
                "dm_permission": True,
                "contexts": None,
                "integration_types": [0],
                **command,
                "id": old["id"] if old is not None else str(snowflake()),
                "application_id": str(self.application_id),
                "version": str(snowflake()),
                "type": command_type,
                "default_member_permissions": None if permissions is None else str(permissions),
            }
            if guild_id is not None:
                entry["guild_id"] = str(guild_id)
            stored.append(entry)
        return stored
