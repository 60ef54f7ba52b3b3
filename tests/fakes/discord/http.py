"""HTTP plumbing: the route table, the middleware that applies holds, faults and chaos and records every
request (:class:`RecordedRequest`), authentication, body parsing and JSON answers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fnmatch
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from aiohttp import BodyPartReader, web

from tests.fakes.discord.errors import DiscordError, _form_error, _missing_access, _unauthorized
from tests.fakes.discord.messages import _Upload
from tests.fakes.discord.protocol import API_PREFIX, Routes, _now
from tests.fakes.tcp import reset_connection

if TYPE_CHECKING:
    from tests.fakes.discord.protocol import JSON


_BODY_KEY: Final = web.RequestKey("fake_discord_body", object)


_FILES_KEY: Final = web.RequestKey("fake_discord_files", tuple)


_LIMIT_KEY: Final = web.RequestKey("fake_discord_rate_limit_headers", dict)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One REST request the fake answered."""

    method: str
    path: str
    #: :class:`Routes` name, or ``"METHOD /path"`` when no route matched.
    route: str
    matched: bool
    query: dict[str, str]
    #: ``0``: the connection was reset with no answer (:meth:`FakeDiscord.reset_next`).
    status: int
    code: int | None
    #: ``time.monotonic()`` when the answer was ready.
    at: float
    timestamp: dt.datetime
    json: Any
    files: tuple[tuple[str, int], ...]
    faulted: bool


class HttpMixin:
    """Part of :class:`FakeDiscord`: serving and recording the REST requests."""

    def requests_for(self, route: str, *, method: str | None = None) -> list[RecordedRequest]:
        """Requests whose :class:`Routes` name equals ``route`` or whose ``"METHOD /path"`` matches it as a glob."""
        return [
            r
            for r in self.requests
            if (r.route == route or fnmatch.fnmatchcase(f"{r.method} {r.path}", route))
            and (method is None or r.method == method)
        ]

    @property
    def unmatched_requests(self) -> list[RecordedRequest]:
        """Requests to routes the fake does not implement (answered 404)."""
        return [r for r in self.requests if not r.matched]

    async def wait_for_request(
        self, route: str, *, status: int | None = None, count: int = 1, timeout: float = 5.0
    ) -> RecordedRequest:
        """Wait until ``count`` requests matched ``route`` (and ``status``); return the last of them."""

        def found() -> RecordedRequest | None:
            hits = [r for r in self.requests_for(route) if status is None or r.status == status]
            return hits[count - 1] if len(hits) >= count else None

        return await self.wait_for(found, timeout, what=f"{count} request(s) to {route} status={status}")

    def _add_routes(self, app: web.Application) -> None:
        table: list[tuple[str, Handler]] = [
            (Routes.USERS_ME, self._h_users_me),
            (Routes.GET_USER, self._h_get_user),
            (Routes.APP_INFO, self._h_app_info),
            (Routes.GATEWAY, self._h_gateway),
            (Routes.GATEWAY_BOT, self._h_gateway_bot),
            (Routes.GET_GLOBAL_COMMANDS, self._h_get_global_commands),
            (Routes.PUT_GLOBAL_COMMANDS, self._h_put_global_commands),
            (Routes.GET_GUILD_COMMANDS, self._h_get_guild_commands),
            (Routes.PUT_GUILD_COMMANDS, self._h_put_guild_commands),
            (Routes.CALLBACK, self._h_callback),
            (Routes.GET_ORIGINAL, self._h_get_original),
            (Routes.EDIT_ORIGINAL, self._h_edit_original),
            (Routes.DELETE_ORIGINAL, self._h_delete_original),
            (Routes.FOLLOWUP, self._h_followup),
            (Routes.GET_WEBHOOK_MESSAGE, self._h_get_webhook_message),
            (Routes.EDIT_WEBHOOK_MESSAGE, self._h_edit_webhook_message),
            (Routes.DELETE_WEBHOOK_MESSAGE, self._h_delete_webhook_message),
            (Routes.GET_CHANNEL, self._h_get_channel),
            (Routes.LIST_MESSAGES, self._h_list_messages),
            (Routes.CREATE_MESSAGE, self._h_create_message),
            (Routes.GET_MESSAGE, self._h_get_message),
            (Routes.EDIT_MESSAGE, self._h_edit_message),
            (Routes.DELETE_MESSAGE, self._h_delete_message),
            (Routes.TYPING, self._h_typing),
            (Routes.GET_GUILD, self._h_get_guild),
            (Routes.GET_MEMBER, self._h_get_member),
        ]
        for name, handler in table:
            method, path = name.split(" ", 1)
            app.router.add_route(method, API_PREFIX + path, handler)
        method, path = Routes.CDN.split(" ", 1)
        app.router.add_route(method, path, self._h_cdn)
        app.router.add_get("/gateway", self._h_gateway_ws)

    @staticmethod
    def _template_of(request: web.Request) -> tuple[str, str, bool]:
        """Return (route name, API path, matched)."""
        path = request.path.removeprefix(API_PREFIX)
        resource = request.match_info.route.resource
        if resource is None:
            return f"{request.method} {path}", path, False
        return f"{request.method} {resource.canonical.removeprefix(API_PREFIX)}", path, True

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/gateway":
            return await handler(request)
        template, path, matched = self._template_of(request)
        hold = next((h for h in self.holds if not h.taken and h.matches(request.method, path, template)), None)
        if hold is not None:
            hold.taken = True
            hold.arrived.set()
            await hold.released.wait()
            if hold.drop:
                await _drain(request)
                return _json_response({"message": "503: dropped by the fake", "code": 0}, status=503)
        fault = self._take_fault(
            request.method, path, template, uploading=request.content_type.startswith("multipart/")
        )
        if fault is None and self.active_chaos is not None:
            fault = self.active_chaos.draw(request.method, path, template)
        code: int | None = None
        if fault is not None and fault.reset:
            self._record(request, path, template, matched, status=0, code=None, faulted=True)
            reset_connection(request)
        if fault is not None:
            await _drain(request)
            if request.content_type == "application/json":
                with contextlib.suppress(ValueError, DiscordError):
                    request[_BODY_KEY] = _parse_json(await request.read())
            response: web.StreamResponse = _json_response(fault.body, status=fault.status, headers=fault.headers)
            code = fault.body.get("code") if isinstance(fault.body.get("code"), int) else None
        else:
            try:
                response = await handler(request)
            except DiscordError as exc:
                await _drain(request)
                response = _json_response(exc.body(), status=exc.status)
                code = exc.code
            except web.HTTPException as exc:
                await _drain(request)
                response = _json_response({"message": f"{exc.status}: {exc.reason}", "code": 0}, status=exc.status)
            response.headers.update(request.get(_LIMIT_KEY, {}))  # a message's own edit limit, on any answer
            self._add_ratelimit_headers(response, template)
        self._record(request, path, template, matched, status=response.status, code=code, faulted=fault is not None)
        return response

    def _record(
        self,
        request: web.Request,
        path: str,
        template: str,
        matched: bool,
        *,
        status: int,
        code: int | None,
        faulted: bool,
    ) -> None:
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=path,
                route=template,
                matched=matched,
                query=dict(request.query),
                status=status,
                code=code,
                at=time.monotonic(),
                timestamp=_now(),
                json=request.get(_BODY_KEY),
                files=request.get(_FILES_KEY, ()),
                faulted=faulted,
            )
        )
        self._changed()

    def _require_bot_auth(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bot {self.token}":
            raise _unauthorized()

    def _require_application(self, request: web.Request) -> None:
        if request.match_info.get("application_id") != str(self.application_id):
            raise _missing_access()

    async def _read_body(self, request: web.Request) -> tuple[Any, list[_Upload]]:
        payload: Any = None
        uploads: list[_Upload] = []
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    continue
                raw = bytes(await part.read(decode=True))
                field = part.name or ""
                if field == "payload_json":
                    payload = _parse_json(raw)
                    continue
                match = re.fullmatch(r"files?\[(\d+)\]", field)
                if match is None and not field.startswith("file"):
                    continue
                index = int(match.group(1)) if match else len(uploads)
                uploads.append(
                    _Upload(
                        index=index,
                        field=field,
                        filename=part.filename or f"file{index}",
                        data=raw,
                        content_type=part.headers.get("Content-Type"),
                    )
                )
        else:
            raw = await request.read()
            payload = _parse_json(raw) if raw.strip() else None
        request[_BODY_KEY] = payload
        request[_FILES_KEY] = tuple((u.filename, len(u.data)) for u in uploads)
        return payload, uploads


def _json_response(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response with ``Content-Type`` exactly ``application/json`` (no charset)."""
    response = web.Response(status=status, body=json.dumps(data).encode())
    response.headers["Content-Type"] = "application/json"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


async def _drain(request: web.Request) -> None:
    with contextlib.suppress(Exception):
        await request.read()


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None


def _as_dict(payload: Any) -> JSON:
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise _form_error([("_root", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")])
    return payload


def _int(value: str, default: int | None = None) -> int:
    try:
        return int(value)
    except ValueError:
        if default is None:
            raise DiscordError(404, 0, "404: Not Found") from None
        return default
