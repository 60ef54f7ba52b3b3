"""The gateway: the websocket (HELLO, heartbeats, IDENTIFY, RESUME, member requests), sessions bound to
shards, Discord's identify limit, and dispatching events to the session of a guild's shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from tests.fakes.discord.guild import FakeGuild
from tests.fakes.discord.http import _int
from tests.fakes.discord.protocol import Intent, snowflake

if TYPE_CHECKING:
    from tests.fakes.discord.interactions import GuildLike
    from tests.fakes.discord.messages import StoredMessage
    from tests.fakes.discord.protocol import JSON


@dataclasses.dataclass(frozen=True)
class IdentifyRecord:
    """One IDENTIFY with the right token and a possible shard, accepted or refused."""

    shard_id: int
    shard_count: int
    #: ``shard_id % max_concurrency``: the identify-limit bucket it counted against.
    bucket: int
    #: ``time.monotonic()`` when it arrived.
    at: float
    #: Refused with an invalid session: its bucket had started a session within the window.
    refused: bool


@dataclasses.dataclass
class _GatewaySession:
    session_id: str
    identify: JSON
    ws: web.WebSocketResponse | None
    #: The shard this connection identified as (``shard: [id, count]``; ``[0, 1]`` when it named none).
    shard_id: int = 0
    shard_count: int = 1
    seq: int = 0
    ready: bool = False
    frames: list[JSON] = dataclasses.field(default_factory=list)
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)


class GatewayMixin:
    """Part of :class:`FakeDiscord`: gateway sessions, shards and dispatches."""

    async def wait_until_identified(self, timeout: float = 5.0, *, shards: Iterable[int] | None = None) -> None:
        """Wait until a bot identified and READY plus the GUILD_CREATEs were sent.

        ``shards``: wait until each of these shard ids has such a session (default: any one shard).
        """
        wanted = None if shards is None else set(shards)

        def identified() -> bool:
            ready = {session.shard_id for session in self._live.values() if session.ready}
            return bool(ready) if wanted is None else wanted <= ready

        what = "gateway IDENTIFY" if wanted is None else f"gateway IDENTIFY of shards {sorted(wanted)}"
        await self.wait_for(identified, timeout, what=what)

    @property
    def identify_violations(self) -> list[IdentifyRecord]:
        """IDENTIFYs refused because their bucket had started a session within :attr:`identify_window`."""
        return [record for record in self.identifies if record.refused]

    def identify_times(self, bucket: int) -> list[float]:
        """``time.monotonic()`` of each session the bucket started (accepted IDENTIFYs), in order."""
        return [record.at for record in self.identifies if record.bucket == bucket and not record.refused]

    @property
    def identified_shards(self) -> list[tuple[int, int]]:
        """``(shard_id, shard_count)`` of every IDENTIFY so far, in order (``(0, 1)`` for one that named no shard)."""
        return [_shard_of_identify(payload) for payload in self.identify_payloads]

    def shard_of(self, guild: GuildLike, shard_count: int | None = None) -> int:
        """The shard a guild belongs to: ``(guild_id >> 22) % shard_count`` (default :attr:`shard_count`)."""
        guild_id = guild.id if isinstance(guild, FakeGuild) else int(guild)
        return (guild_id >> 22) % (shard_count or self.shard_count)

    def _snowflake_on_shard(self, shard: int) -> int:
        """A fresh snowflake on guild shard ``shard``: its timestamp moved back by under ``shard_count`` ms."""
        value = snowflake()
        millis = value >> 22
        millis -= (millis - shard) % self.shard_count
        return (millis << 22) | (value & ((1 << 22) - 1))

    async def dispatch_guild_create(self, guild: FakeGuild) -> None:
        """Send GUILD_CREATE for a guild added after the bot connected (to the connection of its shard)."""
        await self.dispatch("GUILD_CREATE", self._guild_create_payload(guild), guild_id=guild.id)

    @property
    def intents(self) -> int | None:
        """Intents of the latest IDENTIFY."""
        return int(self.identify_payloads[-1].get("intents", 0)) if self.identify_payloads else None

    async def dispatch(self, event: str, data: JSON, *, guild_id: int | None = None) -> None:
        """Send a DISPATCH (op 0) event to the connected bot (buffered for RESUME if disconnected).

        As on Discord, it goes to the session of one shard: that of ``guild_id`` (default: the
        payload's ``guild_id``), or shard 0 for an event of no guild (DMs). Where no session runs
        that shard the event is dropped and kept in :attr:`undelivered`.
        """
        if guild_id is None and data.get("guild_id") is not None:
            guild_id = int(data["guild_id"])
        await self._deliver(event, data, guild_id)

    async def _deliver(self, event: str, data: JSON, guild_id: int | None) -> _GatewaySession | None:
        """Send to the session of ``guild_id``'s shard; the session, or ``None`` if it was dropped."""
        if not self._live:
            raise RuntimeError("no gateway session; start the bot and await wait_until_identified()")
        session = self._session_for(guild_id)
        if session is None:
            self.undelivered.append((event, data))
            self._changed()
            return None
        await self._send_dispatch(session, event, data)
        return session

    def _session_for(self, guild_id: int | None) -> _GatewaySession | None:
        """The latest session whose shard owns ``guild_id`` (shard 0 for ``None``), by that session's own count."""
        for session in reversed(self._live.values()):
            shard = 0 if guild_id is None else self.shard_of(guild_id, session.shard_count)
            if shard == session.shard_id:
                return session
        return None

    async def disconnect_gateway(self, code: int = 4000, *, shard: int | None = None) -> None:
        """Close the bot's gateway socket (every shard's, or one); with a resumable code discord.py RESUMEs."""
        closing = [s for s in self._live.values() if s.ws is not None and shard in (None, s.shard_id)]
        for session in closing:
            ws, session.ws = session.ws, None
            assert ws is not None
            await ws.close(code=code)
        if closing:
            self._changed()

    async def _dispatch_message_event(self, event: str, message: StoredMessage) -> None:
        session = self._session_for(message.guild_id)
        if not self.dispatch_message_events or message.ephemeral or session is None:
            return
        intents = int(session.identify.get("intents", 0))
        needed = Intent.GUILD_MESSAGES if message.guild_id is not None else Intent.DIRECT_MESSAGES
        if not intents & needed:
            return
        if event == "MESSAGE_DELETE":
            data: JSON = {"id": str(message.id), "channel_id": str(message.channel_id)}
            if message.guild_id is not None:
                data["guild_id"] = str(message.guild_id)
        else:
            data = message.payload(gateway=True)
            guild = self.guilds.get(message.guild_id) if message.guild_id is not None else None
            member = guild.members.get(message.author.id) if guild is not None else None
            if member is not None:
                data["member"] = member.payload(with_user=False)
            mentions_bot = self.bot_user.id in message.current.mentions
            private = message.guild_id is None
            if (
                message.author.id != self.bot_user.id
                and not intents & Intent.MESSAGE_CONTENT
                and not mentions_bot
                and not private
            ):
                data.update(content="", embeds=[], attachments=[], components=[])
        await self._send_dispatch(session, event, data)

    def _guild_create_payload(self, guild: FakeGuild) -> JSON:
        include_members = bool((self.intents or 0) & Intent.GUILD_MEMBERS)
        return guild.payload(include_all_members=include_members, application_id=self.application_id)

    async def _send_frame(self, session: _GatewaySession, frame: JSON) -> None:
        ws = session.ws
        if ws is None or ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(json.dumps(frame))

    async def _send_dispatch(self, session: _GatewaySession, event: str, data: JSON) -> None:
        async with session.lock:
            session.seq += 1
            frame = {"op": 0, "t": event, "s": session.seq, "d": data}
            session.frames.append(frame)
            del session.frames[:-1000]
            self.dispatched.append((event, data))
            await self._send_frame(session, frame)
        self._changed()

    async def _h_gateway_ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            hello = {"op": 10, "d": {"heartbeat_interval": int(self.heartbeat_interval * 1000)}, "s": None, "t": None}
            await ws.send_str(json.dumps(hello))
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op = frame.get("op")
                data = frame.get("d")
                if op == 1:
                    self.heartbeats += 1
                    await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
                    continue
                self.gateway_frames.append(frame)
                self._changed()
                if op == 2:
                    await self._on_identify(ws, data or {})
                elif op == 6:
                    await self._on_resume(ws, data or {})
                elif op == 8:
                    await self._on_request_members(data or {})
        finally:
            self._sockets.discard(ws)
            for session in self._sessions.values():
                if session.ws is ws:
                    session.ws = None
            self._changed()
        return ws

    async def _on_identify(self, ws: web.WebSocketResponse, data: JSON) -> None:
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        try:
            shard_id, shard_count = _shard_of_identify(data)
        except (TypeError, ValueError):
            await ws.close(code=4010, message=b"Invalid shard.")
            return
        if not self._identify_allowed(shard_id, shard_count):
            # Discord: "If your app exceeds this limit, Discord will respond with an Invalid Session (opcode 9)".
            await ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
            self._changed()
            return
        # A new session of the same shard replaces the old one (a bot that restarted, or a second process
        # started with the same shard), which Discord disconnects.
        previous = self._live.pop((shard_id, shard_count), None)
        if previous is not None and previous.ws is not None and previous.ws is not ws:
            await previous.ws.close(code=4000)
        session = _GatewaySession(
            session_id=uuid.uuid4().hex, identify=data, ws=ws, shard_id=shard_id, shard_count=shard_count
        )
        self._sessions[session.session_id] = session
        self._live[(shard_id, shard_count)] = session
        self.identify_payloads.append(data)
        guilds = [g for g in self.guilds.values() if self.shard_of(g, shard_count) == shard_id]
        ready: JSON = {
            "v": 10,
            "user": self.bot_user.payload() | {"verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "_trace": ["fake-discord"],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._send_dispatch(session, "READY", ready)
        for guild in guilds:
            await self._send_dispatch(session, "GUILD_CREATE", self._guild_create_payload(guild))
        session.ready = True
        self._changed()

    def _identify_allowed(self, shard_id: int, shard_count: int) -> bool:
        """Count an IDENTIFY against its bucket: refused if the bucket started a session within the window.

        Only accepted IDENTIFYs start a session, so only they fill the window; a RESUME counts for nothing.
        """
        now = time.monotonic()
        bucket = shard_id % max(1, self.max_concurrency)
        refused = any(now - at < self.identify_window for at in self.identify_times(bucket))
        self.identifies.append(IdentifyRecord(shard_id, shard_count, bucket, now, refused))
        return not refused

    async def _on_resume(self, ws: web.WebSocketResponse, data: JSON) -> None:
        session = self._sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.token:
            await ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
            return
        session.ws = ws
        key = (session.shard_id, session.shard_count)
        self._live.pop(key, None)
        self._live[key] = session  # the latest of its shard again
        last = int(data.get("seq") or 0)
        async with session.lock:
            for frame in [f for f in session.frames if f["s"] > last]:
                await self._send_frame(session, frame)
        await self._send_dispatch(session, "RESUMED", {})
        self.resume_count += 1
        self._changed()

    async def _on_request_members(self, data: JSON) -> None:
        guild = self.guilds.get(_int(str(data.get("guild_id")), 0))
        if guild is None:
            return
        query = str(data.get("query") or "").lower()
        user_ids = {int(u) for u in data.get("user_ids") or []}
        members = [
            m
            for m in guild.members.values()
            if (not user_ids or m.id in user_ids) and m.user.username.lower().startswith(query)
        ]
        chunk: JSON = {
            "guild_id": str(guild.id),
            "members": [m.payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self.dispatch("GUILD_MEMBERS_CHUNK", chunk, guild_id=guild.id)


def _shard_of_identify(data: JSON) -> tuple[int, int]:
    """``(shard_id, shard_count)`` an IDENTIFY names (``(0, 1)`` if none); ``ValueError`` for an impossible one."""
    shard = data.get("shard")
    if shard is None:
        return 0, 1
    shard_id, shard_count = (int(part) for part in shard)
    if shard_count < 1 or not 0 <= shard_id < shard_count:
        raise ValueError(f"shard {shard_id} of {shard_count}")
    return shard_id, shard_count
