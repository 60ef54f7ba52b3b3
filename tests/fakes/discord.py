"""A fake Discord (REST API v10 and the gateway) served by aiohttp on 127.0.0.1.

A real :class:`discord.ext.commands.Bot` connects to it once two class attributes of
discord.py point here (``discord.http.Route.BASE`` and
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``; see :func:`patch_discord_py`).
Tests then push interactions (:meth:`FakeDiscord.slash`, :meth:`FakeDiscord.autocomplete`,
:meth:`FakeDiscord.click`, :meth:`FakeDiscord.submit_modal`) and inspect what the bot did:

* one message store behind every route (:class:`StoredMessage`, each with its full
  :attr:`StoredMessage.history` of :class:`MessageVersion` objects, attachments with bytes);
* the callback attempts of each interaction (:class:`InteractionHandle`, :class:`CallbackRecord`);
* every REST request (:attr:`FakeDiscord.requests`, :class:`RecordedRequest`).

Discord's rules are enforced and can be switched per test: the 3 s acknowledgement deadline
(10062), the interaction token lifetime (50027), scripted 429/5xx faults per route
(:meth:`FakeDiscord.rate_limit_next`, :meth:`FakeDiscord.fail_next`), seeded random 429/5xx
answers on chosen routes (:meth:`FakeDiscord.chaos`, :class:`DiscordChaos`), the per-attachment
size limit (413/40005; the request's total: :attr:`FakeDiscord.max_request_size`), messages deleted by someone else
(10008), payload limits (50035: at most 10 attachments, embed sizes, ...), uploads refused altogether
(:attr:`FakeDiscord.refuse_uploads`), connections reset with no answer (:meth:`FakeDiscord.reset_next`) and
Discord's limit of 5 edits per message per 5 s, sliding, whichever route edits it (:class:`MessageEditLimit`,
``FakeDiscord(edit_limit=, edit_window=)``; :attr:`FakeDiscord.edit_limiter` ``None`` lifts it): the answers
of those routes carry the message's true ``X-RateLimit-*`` headers, and an edit past the limit is answered
429 with ``Retry-After``, ``retry_after`` and ``Via`` (discord.py waits and tries again) and kept in
:attr:`FakeDiscord.rate_limited`.

Shards work as on Discord: ``GET /gateway/bot`` recommends :attr:`FakeDiscord.shard_count`; each
gateway connection is bound to the ``shard: [id, count]`` of its IDENTIFY; a guild belongs to shard
``(guild_id >> 22) % count`` (:meth:`FakeDiscord.shard_of`; :meth:`FakeDiscord.add_guild` takes
``shard=``) and its GUILD_CREATE and interactions go only to that shard's connection (events of no
guild to shard 0); with no connection for the shard they are dropped (:attr:`FakeDiscord.undelivered`).
Discord's identify limit holds across every connection: bucket ``shard_id % max_concurrency`` starts
one session per :attr:`FakeDiscord.identify_window` (5 s); an IDENTIFY past it is answered with an
invalid session (op 9, ``d: false``), as Discord documents, and kept in
:attr:`FakeDiscord.identify_violations` (every IDENTIFY is in :attr:`FakeDiscord.identifies`).

All JSON responses carry ``Content-Type: application/json`` exactly (discord.py only parses
that value) and ``X-RateLimit-*`` headers: generous ones but on message edits. Waiting is event driven:
:meth:`FakeDiscord.wait_for` re-checks a predicate whenever the fake's state changes.

Typical use::

    async with FakeDiscord(token="t") as fake:
        guild = fake.add_guild("Test")  # general + nsfw channels, a moderator and a member
        with patch_discord_py(fake):  # or the bot's DISCORD_API_BASE / DISCORD_GATEWAY_URL
            bot = commands.Bot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0)
            task = asyncio.create_task(bot.start("t"))
            await fake.wait_until_identified()
            await bot.wait_until_ready()
            handle = await fake.slash("imagine", {"prompt": "a cat"}, user=guild.member("member"))
            assert (await handle.wait_callback()).type == CallbackType.DEFERRED_CHANNEL_MESSAGE
            message = await handle.wait_message(lambda m: bool(m.attachments))
            await bot.close()
            await task
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import enum
import fnmatch
import hashlib
import io
import itertools
import json
import math
import mimetypes
import random
import re
import secrets
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, Literal, TypeVar
from urllib.parse import quote

from aiohttp import BodyPartReader, WSMsgType, web

from tests.fakes.tcp import reset_connection

__all__ = [
    "ALL_PERMISSIONS",
    "DEFAULT_ATTACHMENT_SIZE_LIMIT",
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "EDIT_LIMIT",
    "EDIT_WINDOW",
    "IDENTIFY_WINDOW",
    "CallbackRecord",
    "CallbackType",
    "DiscordChaos",
    "DiscordError",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeMember",
    "FakeRole",
    "FakeUser",
    "Fault",
    "IdentifyRecord",
    "Intent",
    "Interaction",
    "InteractionHandle",
    "InteractionType",
    "MessageEditLimit",
    "MessageFlag",
    "MessageVersion",
    "Perm",
    "RateLimitedEdit",
    "RecordedRequest",
    "Routes",
    "StoredAttachment",
    "StoredMessage",
    "Upload",
    "backdated_snowflake",
    "patch_discord_py",
    "snowflake",
    "snowflake_time",
]

JSON = dict[str, Any]
T = TypeVar("T")

API_PREFIX: Final = "/api/v10"
DISCORD_EPOCH_MS: Final = 1_420_070_400_000
MIB: Final = 1024 * 1024
DEFAULT_ATTACHMENT_SIZE_LIMIT: Final = 10 * MIB
DEFAULT_ACK_DEADLINE: Final = 3.0
DEFAULT_TOKEN_LIFETIME: Final = 15 * 60.0
#: Seconds in which one identify bucket may start one session (Discord: 5).
IDENTIFY_WINDOW: Final = 5.0
#: Edits Discord allows one message per :data:`EDIT_WINDOW` seconds, whichever route edits it.
EDIT_LIMIT: Final = 5
EDIT_WINDOW: Final = 5.0
MAX_CONTENT: Final = 2000
MAX_EMBEDS: Final = 10
MAX_EMBED_TOTAL: Final = 6000
MAX_ATTACHMENTS: Final = 10
MAX_CHOICES: Final = 25
MAX_ACTION_ROWS: Final = 5

_SEQUENCE = itertools.count()
_BODY_KEY: Final = web.RequestKey("fake_discord_body", object)
_FILES_KEY: Final = web.RequestKey("fake_discord_files", tuple)
_LIMIT_KEY: Final = web.RequestKey("fake_discord_rate_limit_headers", dict)


# --------------------------------------------------------------------------- enums


class Perm(enum.IntFlag):
    """Discord permission bits (the subset tests usually need)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    CHANGE_NICKNAME = 1 << 26
    MANAGE_ROLES = 1 << 28
    USE_APPLICATION_COMMANDS = 1 << 31
    MODERATE_MEMBERS = 1 << 40


ALL_PERMISSIONS: Final = (1 << 51) - 1
DEFAULT_EVERYONE_PERMISSIONS: Final = int(
    Perm.CREATE_INSTANT_INVITE
    | Perm.ADD_REACTIONS
    | Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.USE_EXTERNAL_EMOJIS
    | Perm.CONNECT
    | Perm.SPEAK
    | Perm.CHANGE_NICKNAME
    | Perm.USE_APPLICATION_COMMANDS
)
DEFAULT_BOT_PERMISSIONS: Final = DEFAULT_EVERYONE_PERMISSIONS


class MessageFlag(enum.IntFlag):
    """Message flag bits."""

    SUPPRESS_EMBEDS = 1 << 2
    EPHEMERAL = 1 << 6
    LOADING = 1 << 7
    SUPPRESS_NOTIFICATIONS = 1 << 12
    IS_COMPONENTS_V2 = 1 << 15


_CREATE_FLAGS: Final = int(
    MessageFlag.SUPPRESS_EMBEDS
    | MessageFlag.EPHEMERAL
    | MessageFlag.SUPPRESS_NOTIFICATIONS
    | MessageFlag.IS_COMPONENTS_V2
)
_EDITABLE_FLAGS: Final = int(MessageFlag.SUPPRESS_EMBEDS | MessageFlag.IS_COMPONENTS_V2)


class Intent(enum.IntFlag):
    """Gateway intent bits the fake looks at."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_MESSAGES = 1 << 9
    DIRECT_MESSAGES = 1 << 12
    MESSAGE_CONTENT = 1 << 15


class InteractionType(enum.IntEnum):
    """Interaction types (``type`` of an INTERACTION_CREATE payload)."""

    PING = 1
    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


class CallbackType(enum.IntEnum):
    """Interaction callback (response) types."""

    PONG = 1
    CHANNEL_MESSAGE = 4
    DEFERRED_CHANNEL_MESSAGE = 5
    DEFERRED_UPDATE_MESSAGE = 6
    UPDATE_MESSAGE = 7
    AUTOCOMPLETE_RESULT = 8
    MODAL = 9
    LAUNCH_ACTIVITY = 12


_ALLOWED_CALLBACKS: Final[dict[int, frozenset[int]]] = {
    InteractionType.APPLICATION_COMMAND: frozenset({4, 5, 9}),
    InteractionType.MESSAGE_COMPONENT: frozenset({4, 5, 6, 7, 9}),
    InteractionType.AUTOCOMPLETE: frozenset({8}),
    InteractionType.MODAL_SUBMIT: frozenset({4, 5, 6, 7}),
}

_OPTION_SUBCOMMAND: Final = 1
_OPTION_GROUP: Final = 2
_SELECT_TYPES: Final = frozenset({3, 5, 6, 7, 8})


class Routes:
    """Canonical ``"METHOD /template"`` names of the routes the fake serves.

    Use them with :meth:`FakeDiscord.fail_next`, :meth:`FakeDiscord.rate_limit_next` and
    :meth:`FakeDiscord.requests_for`; they are also :attr:`RecordedRequest.route` and
    :attr:`MessageVersion.route`.
    """

    USERS_ME: Final = "GET /users/@me"
    GET_USER: Final = "GET /users/{user_id}"
    APP_INFO: Final = "GET /oauth2/applications/@me"
    GATEWAY: Final = "GET /gateway"
    GATEWAY_BOT: Final = "GET /gateway/bot"
    GET_GLOBAL_COMMANDS: Final = "GET /applications/{application_id}/commands"
    PUT_GLOBAL_COMMANDS: Final = "PUT /applications/{application_id}/commands"
    GET_GUILD_COMMANDS: Final = "GET /applications/{application_id}/guilds/{guild_id}/commands"
    PUT_GUILD_COMMANDS: Final = "PUT /applications/{application_id}/guilds/{guild_id}/commands"
    CALLBACK: Final = "POST /interactions/{interaction_id}/{token}/callback"
    GET_ORIGINAL: Final = "GET /webhooks/{application_id}/{token}/messages/@original"
    EDIT_ORIGINAL: Final = "PATCH /webhooks/{application_id}/{token}/messages/@original"
    DELETE_ORIGINAL: Final = "DELETE /webhooks/{application_id}/{token}/messages/@original"
    FOLLOWUP: Final = "POST /webhooks/{application_id}/{token}"
    GET_WEBHOOK_MESSAGE: Final = "GET /webhooks/{application_id}/{token}/messages/{message_id}"
    EDIT_WEBHOOK_MESSAGE: Final = "PATCH /webhooks/{application_id}/{token}/messages/{message_id}"
    DELETE_WEBHOOK_MESSAGE: Final = "DELETE /webhooks/{application_id}/{token}/messages/{message_id}"
    GET_CHANNEL: Final = "GET /channels/{channel_id}"
    LIST_MESSAGES: Final = "GET /channels/{channel_id}/messages"
    CREATE_MESSAGE: Final = "POST /channels/{channel_id}/messages"
    GET_MESSAGE: Final = "GET /channels/{channel_id}/messages/{message_id}"
    EDIT_MESSAGE: Final = "PATCH /channels/{channel_id}/messages/{message_id}"
    DELETE_MESSAGE: Final = "DELETE /channels/{channel_id}/messages/{message_id}"
    TYPING: Final = "POST /channels/{channel_id}/typing"
    GET_GUILD: Final = "GET /guilds/{guild_id}"
    GET_MEMBER: Final = "GET /guilds/{guild_id}/members/{user_id}"
    #: Attachment downloads (served outside the API prefix, like Discord's CDN).
    CDN: Final = "GET /attachments/{channel_id}/{attachment_id}/{filename}"

    #: Routes answered through discord.py's webhook adapter (interaction token routes).
    WEBHOOK_EDITS: Final = (EDIT_ORIGINAL, EDIT_WEBHOOK_MESSAGE)


# --------------------------------------------------------------------------- snowflakes


def snowflake(at: dt.datetime | float | None = None) -> int:
    """Return a unique Discord snowflake whose timestamp is ``at`` (a datetime or UNIX time; default now)."""
    if at is None:
        seconds = time.time()
    elif isinstance(at, dt.datetime):
        seconds = at.timestamp()
    else:
        seconds = float(at)
    millis = int(seconds * 1000) - DISCORD_EPOCH_MS
    if millis < 0:
        raise ValueError("snowflakes cannot predate the Discord epoch (2015-01-01)")
    return (millis << 22) | (1 << 17) | (1 << 12) | (next(_SEQUENCE) & 0xFFF)


def snowflake_time(value: int) -> dt.datetime:
    """Return the creation time encoded in a snowflake."""
    return dt.datetime.fromtimestamp(((int(value) >> 22) + DISCORD_EPOCH_MS) / 1000, tz=dt.UTC)


def backdated_snowflake(age: float | dt.timedelta) -> int:
    """Return a snowflake created ``age`` (seconds or a timedelta) ago."""
    seconds = age.total_seconds() if isinstance(age, dt.timedelta) else float(age)
    return snowflake(time.time() - seconds)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------- errors


class DiscordError(Exception):
    """An API error the fake answers with: HTTP ``status`` and a JSON error body."""

    def __init__(self, status: int, code: int, message: str, errors: JSON | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> JSON:
        """Return the JSON body Discord would send."""
        body: JSON = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


class _EditRateLimited(DiscordError):
    """A message edited past Discord's per-message limit: 429 with ``retry_after`` (headers set apart)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(429, 0, "You are being rate limited.")
        self.retry_after = retry_after

    def body(self) -> JSON:
        """Discord's 429 body: no ``code`` unless global."""
        # Rounded up: a retry after the rounded wait finds the edit's place free.
        return {"message": self.message, "retry_after": math.ceil(self.retry_after * 1000) / 1000, "global": False}


def _unknown_interaction() -> DiscordError:
    return DiscordError(404, 10062, "Unknown interaction")


def _invalid_webhook_token() -> DiscordError:
    return DiscordError(401, 50027, "Invalid Webhook Token")


def _unknown_message() -> DiscordError:
    return DiscordError(404, 10008, "Unknown Message")


def _unknown_channel() -> DiscordError:
    return DiscordError(404, 10003, "Unknown Channel")


def _unauthorized() -> DiscordError:
    return DiscordError(401, 0, "401: Unauthorized")


def _missing_permissions() -> DiscordError:
    return DiscordError(403, 50013, "Missing Permissions")


def _missing_access() -> DiscordError:
    return DiscordError(403, 50001, "Missing Access")


def _form_error(problems: Sequence[tuple[str, str, str]]) -> DiscordError:
    """Build a 50035 "Invalid Form Body" error from ``(dotted.path, CODE, message)`` triples."""
    errors: JSON = {}
    for path, code, message in problems:
        node = errors
        for part in path.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return DiscordError(400, 50035, "Invalid Form Body", errors)


# --------------------------------------------------------------------------- guild model


@dataclasses.dataclass
class FakeUser:
    """A Discord user."""

    id: int
    username: str
    global_name: str | None = None
    bot: bool = False

    @property
    def mention(self) -> str:
        """The ``<@id>`` mention string."""
        return f"<@{self.id}>"

    def payload(self) -> JSON:
        """Return the user object."""
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "banner": None,
            "accent_color": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "avatar_decoration_data": None,
        }


@dataclasses.dataclass
class FakeRole:
    """A guild role with a permission bitset."""

    id: int
    name: str
    permissions: int = 0
    position: int = 0
    color: int = 0
    hoist: bool = False
    mentionable: bool = False
    managed: bool = False
    bot_id: int | None = None

    @property
    def mention(self) -> str:
        """The ``<@&id>`` mention string."""
        return f"<@&{self.id}>"

    def payload(self) -> JSON:
        """Return the role object."""
        data: JSON = {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(int(self.permissions)),
            "position": self.position,
            "color": self.color,
            "colors": {"primary_color": self.color, "secondary_color": None, "tertiary_color": None},
            "hoist": self.hoist,
            "managed": self.managed,
            "mentionable": self.mentionable,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data


@dataclasses.dataclass
class Overwrite:
    """A channel permission overwrite for a role (``type`` 0) or a member (``type`` 1)."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0


@dataclasses.dataclass
class FakeChannel:
    """A text channel (``type`` 0) in a guild, or a DM channel (``type`` 1)."""

    id: int
    name: str
    guild_id: int | None
    type: int = 0
    nsfw: bool = False
    position: int = 0
    topic: str | None = None
    parent_id: int | None = None
    rate_limit_per_user: int = 0
    overwrites: dict[int, Overwrite] = dataclasses.field(default_factory=dict)
    recipients: list[FakeUser] = dataclasses.field(default_factory=list)

    @property
    def mention(self) -> str:
        """The ``<#id>`` mention string."""
        return f"<#{self.id}>"

    def overwrite(self, target: FakeRole | FakeMember, *, allow: int = 0, deny: int = 0) -> None:
        """Set a permission overwrite for a role or member in this channel."""
        kind = 0 if isinstance(target, FakeRole) else 1
        self.overwrites[target.id] = Overwrite(target.id, kind, int(allow), int(deny))

    def payload(self) -> JSON:
        """Return the channel object."""
        if self.type == 1:
            return {
                "id": str(self.id),
                "type": 1,
                "recipients": [user.payload() for user in self.recipients],
                "last_message_id": None,
                "flags": 0,
            }
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [
                {"id": str(o.id), "type": o.type, "allow": str(o.allow), "deny": str(o.deny)}
                for o in self.overwrites.values()
            ],
            "nsfw": self.nsfw,
            "topic": self.topic,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "rate_limit_per_user": self.rate_limit_per_user,
            "last_message_id": None,
            "flags": 0,
        }


@dataclasses.dataclass
class FakeMember:
    """A guild member. ``permissions``, when set, overrides the role-based computation."""

    user: FakeUser
    guild_id: int
    role_ids: list[int] = dataclasses.field(default_factory=list)
    nick: str | None = None
    permissions: int | None = None
    joined_at: dt.datetime = dataclasses.field(default_factory=_now)

    @property
    def id(self) -> int:
        """The user id."""
        return self.user.id

    @property
    def mention(self) -> str:
        """The ``<@id>`` mention string."""
        return self.user.mention

    def payload(self, *, permissions: int | None = None, with_user: bool = True) -> JSON:
        """Return the guild member object (with ``permissions`` as interactions carry it)."""
        data: JSON = {
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "roles": [str(role_id) for role_id in self.role_ids],
            "joined_at": _iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
            "avatar_decoration_data": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        if permissions is not None:
            data["permissions"] = str(int(permissions))
        return data


class FakeGuild:
    """A guild with roles, text channels and members; build it with :meth:`FakeDiscord.add_guild`."""

    def __init__(
        self,
        *,
        guild_id: int,
        name: str,
        bot_user: FakeUser,
        bot_permissions: int,
        locale: str,
        premium_tier: int,
        attachment_size_limit: int,
    ) -> None:
        self.id = guild_id
        self.name = name
        self.locale = locale
        self.premium_tier = premium_tier
        #: Per-attachment limit for channel-route uploads in this guild.
        self.attachment_size_limit = attachment_size_limit
        self.owner_id = snowflake()
        self.roles: dict[int, FakeRole] = {
            guild_id: FakeRole(id=guild_id, name="@everyone", permissions=DEFAULT_EVERYONE_PERMISSIONS)
        }
        self.channels: dict[int, FakeChannel] = {}
        self.members: dict[int, FakeMember] = {}
        bot_role = self.add_role(bot_user.username, bot_permissions, managed=True, bot_id=bot_user.id)
        #: The bot's own member object (its permissions are the interaction's ``app_permissions``).
        self.bot_member = self._add_member(FakeMember(user=bot_user, guild_id=guild_id, role_ids=[bot_role.id]))

    def __repr__(self) -> str:
        return f"<FakeGuild id={self.id} name={self.name!r}>"

    @property
    def everyone(self) -> FakeRole:
        """The @everyone role (its id is the guild id)."""
        return self.roles[self.id]

    @property
    def text_channels(self) -> list[FakeChannel]:
        """Text channels in creation order."""
        return [c for c in self.channels.values() if c.type == 0]

    @property
    def default_member(self) -> FakeMember:
        """The first non-bot member added; the default user of interactions."""
        for member in self.members.values():
            if not member.user.bot:
                return member
        raise LookupError(f"guild {self.name!r} has no human members; use add_member()")

    def add_channel(
        self,
        name: str,
        *,
        nsfw: bool = False,
        topic: str | None = None,
        channel_type: int = 0,
        channel_id: int | None = None,
    ) -> FakeChannel:
        """Add a text channel (``nsfw=True`` for an age-restricted one)."""
        channel = FakeChannel(
            id=channel_id or snowflake(),
            name=name,
            guild_id=self.id,
            type=channel_type,
            nsfw=nsfw,
            topic=topic,
            position=len(self.channels),
        )
        self.channels[channel.id] = channel
        return channel

    def add_role(
        self,
        name: str,
        permissions: int = 0,
        *,
        role_id: int | None = None,
        managed: bool = False,
        bot_id: int | None = None,
        mentionable: bool = False,
    ) -> FakeRole:
        """Add a role with a permission bitset (e.g. ``Perm.MANAGE_GUILD | Perm.MANAGE_MESSAGES``)."""
        role = FakeRole(
            id=role_id or snowflake(),
            name=name,
            permissions=int(permissions),
            position=len(self.roles),
            managed=managed,
            bot_id=bot_id,
            mentionable=mentionable,
        )
        self.roles[role.id] = role
        return role

    def add_member(
        self,
        username: str,
        *,
        roles: Iterable[FakeRole | int] = (),
        permissions: int | None = None,
        owner: bool = False,
        global_name: str | None = None,
        nick: str | None = None,
        user_id: int | None = None,
    ) -> FakeMember:
        """Add a member; its permissions come from @everyone and ``roles`` unless ``permissions`` is given."""
        role_ids = [r.id if isinstance(r, FakeRole) else int(r) for r in roles]
        for role_id in role_ids:
            if role_id not in self.roles:
                raise KeyError(f"unknown role {role_id} in guild {self.name!r}")
        user = FakeUser(id=user_id or snowflake(), username=username, global_name=global_name)
        member = self._add_member(
            FakeMember(user=user, guild_id=self.id, role_ids=role_ids, nick=nick, permissions=permissions)
        )
        if owner:
            self.owner_id = user.id
        return member

    def remove_channel(self, key: str | int) -> FakeChannel:
        """Delete a channel: from now on every route that names it answers 404 10003 Unknown Channel."""
        channel = self.channel(key)
        del self.channels[channel.id]
        return channel

    def _add_member(self, member: FakeMember) -> FakeMember:
        self.members[member.id] = member
        return member

    def channel(self, key: str | int) -> FakeChannel:
        """Look a channel up by name or id."""
        return _lookup(self.channels.values(), key, lambda c: c.name, "channel")

    def role(self, key: str | int) -> FakeRole:
        """Look a role up by name or id."""
        return _lookup(self.roles.values(), key, lambda r: r.name, "role")

    def member(self, key: str | int) -> FakeMember:
        """Look a member up by username or id."""
        return _lookup(self.members.values(), key, lambda m: m.user.username, "member")

    def permissions_in(self, member: FakeMember, channel: FakeChannel | None = None) -> int:
        """Compute a member's permissions (roles, then channel overwrites), as Discord does."""
        if member.permissions is not None:
            return int(member.permissions)
        if member.id == self.owner_id:
            return ALL_PERMISSIONS
        perms = self.everyone.permissions
        for role_id in member.role_ids:
            perms |= self.roles[role_id].permissions
        if perms & Perm.ADMINISTRATOR:
            return ALL_PERMISSIONS
        if channel is not None and channel.overwrites:
            everyone = channel.overwrites.get(self.id)
            if everyone is not None:
                perms = (perms & ~everyone.deny) | everyone.allow
            allow = deny = 0
            for role_id in member.role_ids:
                overwrite = channel.overwrites.get(role_id)
                if overwrite is not None:
                    allow |= overwrite.allow
                    deny |= overwrite.deny
            perms = (perms & ~deny) | allow
            own = channel.overwrites.get(member.id)
            if own is not None and own.type == 1:
                perms = (perms & ~own.deny) | own.allow
        return perms

    def payload(self, *, include_all_members: bool, application_id: int) -> JSON:
        """Return the GUILD_CREATE payload."""
        members = list(self.members.values()) if include_all_members else [self.bot_member]
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": [role.payload() for role in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": self.premium_tier,
            "premium_subscription_count": 0,
            "preferred_locale": self.locale,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "joined_at": _iso(self.bot_member.joined_at),
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "members": [m.payload() for m in members],
            "channels": [c.payload() for c in self.channels.values()],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


def _lookup(items: Iterable[T], key: str | int, name_of: Callable[[T], str], kind: str) -> T:
    pool = list(items)
    for item in pool:
        if (isinstance(key, int) and getattr(item, "id", None) == key) or name_of(item) == key:
            return item
    raise KeyError(f"no {kind} {key!r}; have {[name_of(i) for i in pool]}")


# --------------------------------------------------------------------------- message store


@dataclasses.dataclass(frozen=True)
class Upload:
    """A file a user attaches to a slash command option of type ATTACHMENT (11)."""

    filename: str
    data: bytes = dataclasses.field(repr=False)
    content_type: str | None = None


@dataclasses.dataclass(frozen=True)
class StoredAttachment:
    """An attachment of a message, with its bytes."""

    id: int
    filename: str
    data: bytes = dataclasses.field(repr=False)
    content_type: str | None
    url: str
    description: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)

    def payload(self, *, ephemeral: bool = False) -> JSON:
        """Return the attachment object."""
        data: JSON = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
            "flags": 0,
        }
        if self.content_type is not None:  # optional on Discord: left out, never null
            data["content_type"] = self.content_type
        if self.description is not None:
            data["description"] = self.description
        if self.width is not None and self.height is not None:
            data["width"] = self.width
            data["height"] = self.height
        if ephemeral:
            data["ephemeral"] = True
        return data


@dataclasses.dataclass(frozen=True)
class MessageVersion:
    """One state of a message: what it looked like after creation or after one edit."""

    index: int
    content: str
    embeds: tuple[JSON, ...]
    components: tuple[JSON, ...]
    attachments: tuple[StoredAttachment, ...]
    flags: int
    allowed_mentions: JSON | None
    tts: bool
    mentions: tuple[int, ...]
    mention_roles: tuple[int, ...]
    mention_everyone: bool
    timestamp: dt.datetime
    #: ``time.monotonic()`` when this version was made.
    at: float
    #: The :class:`Routes` name of the request that made this version.
    route: str
    #: The callback type when the version came from an interaction callback.
    callback_type: int | None = None

    @property
    def ephemeral(self) -> bool:
        """Whether the EPHEMERAL flag is set."""
        return bool(self.flags & MessageFlag.EPHEMERAL)

    @property
    def loading(self) -> bool:
        """Whether this is a deferred "thinking" placeholder."""
        return bool(self.flags & MessageFlag.LOADING)

    @property
    def custom_ids(self) -> list[str]:
        """The custom ids of all components, in order."""
        return [c["custom_id"] for c in _walk_components(self.components) if "custom_id" in c]

    def attachment(self, filename: str) -> StoredAttachment:
        """Return the attachment called ``filename``."""
        for attachment in self.attachments:
            if attachment.filename == filename:
                return attachment
        raise KeyError(f"no attachment {filename!r}; have {[a.filename for a in self.attachments]}")


class StoredMessage:
    """A message in the fake's store, whichever route created or edited it."""

    def __init__(
        self,
        *,
        message_id: int,
        channel_id: int,
        guild_id: int | None,
        author: FakeUser,
        message_type: int,
        first: MessageVersion,
        user_lookup: Callable[[int], FakeUser | None],
        interaction: InteractionHandle | None = None,
        application_id: int | None = None,
        message_reference: JSON | None = None,
        nonce: str | int | None = None,
        is_followup: bool = False,
    ) -> None:
        self.id = message_id
        self.channel_id = channel_id
        self.guild_id = guild_id
        self.author = author
        self.type = message_type
        #: Every version, oldest first; ``history[0]`` is the creation.
        self.history: list[MessageVersion] = [first]
        #: The interaction whose response or followup this message is, if any.
        self.interaction = interaction
        self.application_id = application_id
        self.message_reference = message_reference
        self.nonce = nonce
        self.is_followup = is_followup
        self.created_at = first.timestamp
        #: ``time.monotonic()`` of the deletion, if deleted.
        self.deleted_at: float | None = None
        #: ``"bot"`` (a DELETE route) or ``"user"`` (:meth:`FakeDiscord.delete_message`).
        self.deleted_by: str | None = None
        self._user_lookup = user_lookup

    def __repr__(self) -> str:
        state = " deleted" if self.deleted else ""
        return f"<StoredMessage id={self.id} versions={len(self.history)}{state} content={self.content!r}>"

    @property
    def current(self) -> MessageVersion:
        """The latest version."""
        return self.history[-1]

    @property
    def content(self) -> str:
        """Current content."""
        return self.current.content

    @property
    def embeds(self) -> tuple[JSON, ...]:
        """Current embeds."""
        return self.current.embeds

    @property
    def components(self) -> tuple[JSON, ...]:
        """Current components."""
        return self.current.components

    @property
    def attachments(self) -> tuple[StoredAttachment, ...]:
        """Current attachments."""
        return self.current.attachments

    @property
    def flags(self) -> int:
        """Current flags."""
        return self.current.flags

    @property
    def ephemeral(self) -> bool:
        """Whether the message is ephemeral."""
        return self.current.ephemeral

    @property
    def deleted(self) -> bool:
        """Whether the message was deleted."""
        return self.deleted_at is not None

    @property
    def edit_count(self) -> int:
        """Number of edits after creation."""
        return len(self.history) - 1

    @property
    def routes(self) -> list[str]:
        """The route of every version, oldest first."""
        return [v.route for v in self.history]

    def edit_times(self) -> list[float]:
        """Monotonic times of every edit (versions after the first)."""
        return [v.at for v in self.history[1:]]

    def edit_intervals(self) -> list[float]:
        """Seconds between consecutive versions (creation included)."""
        times = [v.at for v in self.history]
        return [b - a for a, b in itertools.pairwise(times)]

    def payload(self, *, gateway: bool = False) -> JSON:
        """Return the message object discord.py's ``Message`` accepts."""
        version = self.current
        mentions = [u.payload() for u in map(self._user_lookup, version.mentions) if u is not None]
        data: JSON = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": self.author.payload(),
            "content": version.content,
            "timestamp": _iso(self.created_at),
            "edited_timestamp": _iso(version.timestamp) if version.index > 0 else None,
            "tts": version.tts,
            "mention_everyone": version.mention_everyone,
            "mentions": mentions,
            "mention_roles": [str(r) for r in version.mention_roles],
            "mention_channels": [],
            "attachments": [a.payload(ephemeral=version.ephemeral) for a in version.attachments],
            "embeds": [dict(e) for e in version.embeds],
            "reactions": [],
            "pinned": False,
            "type": self.type,
            "flags": version.flags,
            "components": [dict(c) for c in version.components],
        }
        if self.nonce is not None:
            data["nonce"] = self.nonce
        if gateway and self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        if self.application_id is not None:
            data["application_id"] = str(self.application_id)
            data["webhook_id"] = str(self.application_id)
        if self.message_reference is not None:
            data["message_reference"] = self.message_reference
        handle = self.interaction
        if handle is not None:
            metadata: JSON = {
                "id": str(handle.id),
                "type": int(handle.type),
                "user": handle.user.payload(),
                "authorizing_integration_owners": handle.payload.get("authorizing_integration_owners", {}),
            }
            if handle.command_name is not None:
                metadata["name"] = handle.command_name
                metadata["command_type"] = int(handle.payload.get("data", {}).get("type", 1))
            if self.is_followup and handle.original_message_id is not None:
                metadata["original_response_message_id"] = str(handle.original_message_id)
            if handle.message is not None:
                metadata["interacted_message_id"] = str(handle.message.id)
            data["interaction_metadata"] = metadata
            data["interaction"] = {
                "id": str(handle.id),
                "type": int(handle.type),
                "name": handle.command_name or "",
                "user": handle.user.payload(),
            }
        return data


def _walk_components(components: Iterable[Any]) -> Iterator[JSON]:
    for component in components:
        if not isinstance(component, dict):
            continue
        yield component
        yield from _walk_components(component.get("components") or [])
        for key in ("accessory", "component"):
            child = component.get(key)
            if isinstance(child, dict):
                yield from _walk_components([child])


_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")


def _effective_mentions(content: str, allowed: JSON | None) -> tuple[tuple[int, ...], tuple[int, ...], bool]:
    """Return (user ids, role ids, everyone) that ``content`` would really ping under ``allowed``."""
    users = list(dict.fromkeys(int(m) for m in _USER_MENTION.findall(content)))
    roles = list(dict.fromkeys(int(m) for m in _ROLE_MENTION.findall(content)))
    everyone = "@everyone" in content or "@here" in content
    if allowed is not None:
        parse = set(allowed.get("parse") or [])
        allowed_users = {int(u) for u in allowed.get("users") or []}
        allowed_roles = {int(r) for r in allowed.get("roles") or []}
        users = [u for u in users if "users" in parse or u in allowed_users]
        roles = [r for r in roles if "roles" in parse or r in allowed_roles]
        everyone = everyone and "everyone" in parse
    return tuple(users), tuple(roles), everyone


# --------------------------------------------------------------------------- interactions


@dataclasses.dataclass(frozen=True)
class CallbackRecord:
    """One ``POST /interactions/{id}/{token}/callback`` attempt that reached the fake's handler."""

    type: int | None
    data: JSON
    status: int
    code: int | None
    at: float
    files: tuple[tuple[str, int], ...] = ()

    @property
    def accepted(self) -> bool:
        """Whether the fake answered 2xx."""
        return 200 <= self.status < 300

    @property
    def flags(self) -> int:
        """``data.flags``."""
        return int(self.data.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        """Whether ``data.flags`` has EPHEMERAL (64)."""
        return bool(self.flags & MessageFlag.EPHEMERAL)

    @property
    def content(self) -> str | None:
        """``data.content``."""
        content = self.data.get("content")
        return None if content is None else str(content)

    @property
    def choices(self) -> list[JSON]:
        """Autocomplete choices (type 8)."""
        return list(self.data.get("choices") or [])


class InteractionHandle:
    """A pushed interaction: await its callback, see its messages, bend its clock."""

    def __init__(
        self,
        fake: FakeDiscord,
        *,
        interaction_id: int,
        token: str,
        interaction_type: InteractionType,
        payload: JSON,
        guild: FakeGuild | None,
        channel: FakeChannel,
        user: FakeUser,
        member: FakeMember | None,
        message: StoredMessage | None,
        ack_deadline: float,
        token_lifetime: float,
        attachment_size_limit: int,
        command_name: str | None,
    ) -> None:
        self._fake = fake
        self.id = interaction_id
        self.token = token
        self.type = interaction_type
        #: The INTERACTION_CREATE payload as sent.
        self.payload = payload
        self.guild = guild
        self.channel = channel
        self.user = user
        self.member = member
        #: The message a component/modal interaction came from.
        self.message = message
        #: Seconds the bot has to send the first callback (from dispatch).
        self.ack_deadline = ack_deadline
        self.attachment_size_limit = attachment_size_limit
        self.command_name = command_name
        #: ``time.time()`` after which the token (webhook routes) is invalid.
        self.token_expires_at = snowflake_time(interaction_id).timestamp() + token_lifetime
        #: ``time.monotonic()`` of the INTERACTION_CREATE dispatch.
        self.dispatched_at: float | None = None
        #: ``(shard_id, shard_count)`` of the gateway session it went to; ``None`` if no session ran its shard.
        self.shard: tuple[int, int] | None = None
        #: Every callback attempt that reached the handler, in order.
        self.callbacks: list[CallbackRecord] = []
        #: The message the interaction's ``@original`` refers to, once there is one.
        self.original_message_id: int | None = None
        #: Ids of followup messages, in order.
        self.followup_ids: list[int] = []
        self._ack_missed = False

    def __repr__(self) -> str:
        return f"<InteractionHandle id={self.id} type={self.type.name} response={self.response_type}>"

    @property
    def created_at(self) -> dt.datetime:
        """Creation time from the snowflake id."""
        return snowflake_time(self.id)

    @property
    def response(self) -> CallbackRecord | None:
        """The accepted callback, if any."""
        return next((c for c in self.callbacks if c.accepted), None)

    @property
    def acknowledged(self) -> bool:
        """Whether a callback was accepted."""
        return self.response is not None

    @property
    def response_type(self) -> int | None:
        """Type of the accepted callback (4, 5, 6, 7, 8 or 9)."""
        response = self.response
        return None if response is None else response.type

    @property
    def choices(self) -> list[JSON]:
        """Choices of an accepted autocomplete result."""
        response = self.response
        return [] if response is None else response.choices

    @property
    def modal(self) -> JSON | None:
        """Data of an accepted modal callback (type 9)."""
        response = self.response
        return response.data if response is not None and response.type == CallbackType.MODAL else None

    @property
    def token_expired(self) -> bool:
        """Whether the webhook token has expired."""
        return time.time() >= self.token_expires_at

    @property
    def original_message(self) -> StoredMessage | None:
        """The message ``@original`` refers to (the response message), if any."""
        if self.original_message_id is None:
            return None
        return self._fake.messages.get(self.original_message_id)

    @property
    def followups(self) -> list[StoredMessage]:
        """Followup messages, in order."""
        return [self._fake.messages[i] for i in self.followup_ids]

    def expire_token(self) -> None:
        """Make the token expire now: webhook routes answer 401/50027 from here on."""
        self.token_expires_at = time.time() - 0.001
        self._fake._changed()

    def miss_ack_deadline(self) -> None:
        """Behave as if the 3 s acknowledgement deadline already passed: callbacks answer 404/10062."""
        self._ack_missed = True
        self._fake._changed()

    def _ack_too_late(self, now: float) -> bool:
        if self._ack_missed:
            return True
        return self.dispatched_at is not None and now - self.dispatched_at > self.ack_deadline

    async def wait_callback(self, timeout: float = 5.0, *, accepted_only: bool = False) -> CallbackRecord:
        """Wait for the first callback attempt (or the first accepted one) and return it."""

        def found() -> CallbackRecord | None:
            if accepted_only:
                return self.response
            return self.callbacks[0] if self.callbacks else None

        return await self._fake.wait_for(found, timeout, what=f"callback of interaction {self.id}")

    async def wait_message(
        self, predicate: Callable[[StoredMessage], bool] | None = None, timeout: float = 5.0
    ) -> StoredMessage:
        """Wait until the original message exists (and satisfies ``predicate``) and return it."""

        def found() -> StoredMessage | None:
            message = self.original_message
            if message is None or (predicate is not None and not predicate(message)):
                return None
            return message

        return await self._fake.wait_for(found, timeout, what=f"original message of interaction {self.id}")


#: Alias: the handle of a pushed interaction.
Interaction = InteractionHandle


# --------------------------------------------------------------------------- requests & faults


@dataclasses.dataclass(frozen=True)
class RateLimitedEdit:
    """An edit the fake answered 429 because its message had used up its edits (see :class:`MessageEditLimit`)."""

    #: :class:`Routes` name of the edit.
    route: str
    message_id: int
    #: ``time.monotonic()`` when it arrived.
    at: float


class MessageEditLimit:
    """Discord's limit on edits of one message: ``limit`` requests in any ``window`` seconds (sliding).

    Every edit request that reaches a message counts, whichever route it came by (the interaction's
    ``@original``, the webhook message by id, the channel message), even one refused afterwards for its
    payload; one answered 429 does not. A request made exactly ``window`` seconds after an earlier one no
    longer counts that one.
    """

    def __init__(self, limit: int = EDIT_LIMIT, window: float = EDIT_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._times: dict[int, collections.deque[float]] = {}

    def _recent(self, message_id: int, now: float) -> collections.deque[float]:
        times = self._times.setdefault(message_id, collections.deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def take(self, message_id: int, now: float) -> float | None:
        """Count an edit of ``message_id`` at ``now``; ``None`` if it fits, else the seconds until one would."""
        times = self._recent(message_id, now)
        if len(times) >= self.limit:
            return times[len(times) - self.limit] + self.window - now
        times.append(now)
        return None

    def headers(self, message_id: int, now: float) -> dict[str, str]:
        """``X-RateLimit-*`` as Discord sends them, true to this message's window at ``now``.

        ``Reset-After`` is the time until the oldest counted edit leaves the window (the next edit fits
        then, when ``Remaining`` is 0): discord.py sleeps it out after an answer with ``Remaining: 0``.
        """
        times = self._recent(message_id, now)
        reset_after = times[0] + self.window - now if times else 0.0
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - len(times))),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        }


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
class Fault:
    """A scripted failure: the next ``times`` requests matching ``route`` get ``status`` (or, with ``reset``,
    their connection reset and no answer)."""

    route: str | Callable[[str, str, str], bool]
    status: int
    times: int
    body: JSON
    headers: dict[str, str]
    #: How many requests this fault answered so far.
    hits: int = 0
    #: Only requests that upload files (multipart) match: a message's images, not its other edits.
    uploads_only: bool = False
    #: Only requests that upload no files match: a message's progress edits, not the one with its images.
    no_uploads: bool = False
    #: Reset the TCP connection instead of answering (the request is never handled).
    reset: bool = False

    def matches(self, method: str, path: str, template: str, *, uploading: bool = False) -> bool:
        """Match a :class:`Routes` name exactly, or a ``"METHOD /glob*"`` pattern against the real path."""
        if (self.uploads_only and not uploading) or (self.no_uploads and uploading):
            return False
        if callable(self.route):
            return self.route(method, path, template)
        return self.route == template or fnmatch.fnmatchcase(f"{method} {path}", self.route)


@dataclasses.dataclass
class Hold:
    """Holds the next request matching ``route`` before it is handled (see :meth:`FakeDiscord.hold_next`)."""

    route: str | Callable[[str, str, str], bool]
    arrived: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    released: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    drop: bool = True
    """On release, answer 503 without handling the request (it never reached Discord)."""
    taken: bool = False

    def matches(self, method: str, path: str, template: str) -> bool:
        """Like :meth:`Fault.matches`."""
        if callable(self.route):
            return self.route(method, path, template)
        return self.route == template or fnmatch.fnmatchcase(f"{method} {path}", self.route)

    def release(self) -> None:
        """Let the held request go on (or be dropped)."""
        self.released.set()


class DiscordChaos:
    """Seeded random 429/5xx answers for a share of the requests to some routes (see :meth:`FakeDiscord.chaos`).

    Every request to a chaotic route consumes the same number of draws from the seeded generator, so the
    sequence of faults is the same on every run for the same sequence of requests.
    """

    def __init__(
        self,
        rate: float,
        *,
        seed: int,
        routes: Sequence[str],
        statuses: Sequence[int],
        retry_after: float,
        via_share: float,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1: {rate!r}")
        if not statuses or any(status != 429 and not 500 <= status <= 599 for status in statuses):
            raise ValueError(f"statuses must be 429 or 5xx: {statuses!r}")
        self.rate = rate
        self.seed = seed
        self.routes = tuple(routes)
        self.statuses = tuple(statuses)
        self.retry_after = retry_after
        self.via_share = via_share
        #: ``(route, status, via)`` of every fault injected, in order (``via``: the 429 carried ``Via``).
        self.hits: list[tuple[str, int, bool]] = []
        #: Requests to chaotic routes that were considered (hit or not).
        self.requests_seen = 0
        self._rng = random.Random(seed)

    def draw(self, method: str, path: str, template: str) -> Fault | None:
        """The fault for this request, or ``None``."""
        if not any(route == template or fnmatch.fnmatchcase(f"{method} {path}", route) for route in self.routes):
            return None
        self.requests_seen += 1
        roll, pick, via_roll = self._rng.random(), self._rng.random(), self._rng.random()
        if roll >= self.rate:
            return None
        status = self.statuses[min(len(self.statuses) - 1, int(pick * len(self.statuses)))]
        via = status == 429 and via_roll < self.via_share
        self.hits.append((template, status, via))
        if status == 429:
            headers = {
                "Retry-After": str(max(1, int(self.retry_after + 0.999))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + self.retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{self.retry_after:.3f}",
                "X-RateLimit-Scope": "user",
            }
            if via:
                headers["Via"] = "1.1 google"
            body: JSON = {"message": "You are being rate limited.", "retry_after": self.retry_after, "global": False}
            return Fault(route=template, status=429, times=1, body=body, headers=headers, hits=1)
        body = {"message": f"{status}: chaos", "code": 0}
        return Fault(route=template, status=status, times=1, body=body, headers={}, hits=1)


@dataclasses.dataclass
class _Upload:
    index: int
    field: str
    filename: str
    data: bytes = dataclasses.field(repr=False)
    content_type: str | None


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


@dataclasses.dataclass
class _Context:
    guild: FakeGuild | None
    channel: FakeChannel
    user: FakeUser
    member: FakeMember | None


UserLike = FakeMember | FakeUser | int
GuildLike = FakeGuild | int
ChannelLike = FakeChannel | int
MessageLike = StoredMessage | int
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --------------------------------------------------------------------------- the fake


class FakeDiscord:
    """A fake Discord API v10 + gateway on 127.0.0.1 that a real discord.py bot can use.

    Args:
        token: the bot token it accepts (``Authorization: Bot <token>`` and gateway IDENTIFY).
        application_id: the application id (default: a fresh snowflake).
        bot_user_id: the bot user's id (default: the application id, as on Discord).
        bot_name: the bot user's username and the application's name.
        owner_id: the application owner's user id.
        edit_limit: edits of one message allowed per ``edit_window`` seconds (Discord: 5 per 5 s).
        edit_window: the sliding window of that limit; ``0`` or ``None`` lifts it.
    """

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        application_id: int | None = None,
        bot_user_id: int | None = None,
        bot_name: str = "imagine-bot",
        owner_id: int | None = None,
        shard_count: int = 1,
        max_concurrency: int = 16,
        edit_limit: int = EDIT_LIMIT,
        edit_window: float | None = EDIT_WINDOW,
    ) -> None:
        self.token = token
        self.application_id = application_id or snowflake()
        self.bot_user = FakeUser(id=bot_user_id or self.application_id, username=bot_name, bot=True)
        self.owner = FakeUser(id=owner_id or snowflake(), username="app-owner")

        # ---- switches (change them per test)
        #: Seconds allowed between dispatch and the first callback (Discord: 3).
        self.ack_deadline: float = DEFAULT_ACK_DEADLINE
        #: Token lifetime in seconds, counted from the interaction id's time (Discord: 15 min).
        self.token_lifetime: float = DEFAULT_TOKEN_LIFETIME
        #: Default ``attachment_size_limit`` of interactions.
        self.attachment_size_limit: int = DEFAULT_ATTACHMENT_SIZE_LIMIT
        #: Give stored attachments a ``content_type`` (the upload's, else guessed from the file name). The field
        #: is optional on Discord: ``False`` stores them without one (left out of their payload).
        self.attachment_content_types: bool = True
        #: Send MESSAGE_CREATE/UPDATE/DELETE on the gateway (if the intents ask for them).
        self.dispatch_message_events: bool = True
        #: Enforce content/embed/component/choice limits (400/50035, 50006).
        self.validate_payloads: bool = True
        #: Refuse embed fields whose name or value is empty or only whitespace (400/50035), as Discord does.
        self.reject_blank_embed_fields: bool = False
        #: A followup right after a deferred response edits the "thinking" message (Discord's behaviour).
        self.followup_edits_deferred: bool = True
        #: Refuse (ValueError) to push commands that were never synced.
        self.require_synced_commands: bool = False
        #: Refuse every message create or edit that uploads files (400/50035 on ``attachments``), as Discord does
        #: with files it will not take; the same message without files goes through.
        self.refuse_uploads: bool = False
        #: Send ``channel_id`` and ``channel`` in interactions: both optional in Discord's documentation, so a bot
        #: may have no channel to post in (its messages then go to the channel all the same).
        self.interaction_channels: bool = True
        #: Largest total upload per request (Discord: 25 MiB); ``None`` disables the check.
        self.max_request_size: int | None = 25 * MIB
        #: HELLO heartbeat interval in seconds.
        self.heartbeat_interval: float = 41.25
        #: Shards ``GET /gateway/bot`` recommends, and the count :meth:`add_guild` picks ``shard=`` ids for.
        self.shard_count: int = shard_count
        #: ``session_start_limit.max_concurrency`` of ``GET /gateway/bot``, and the number of identify buckets.
        self.max_concurrency: int = max_concurrency
        #: Seconds in which one bucket may start one session (Discord: 5); 0 lifts the limit.
        self.identify_window: float = IDENTIFY_WINDOW
        #: Discord's limit on edits per message (:class:`MessageEditLimit`); ``None`` lifts it.
        self.edit_limiter: MessageEditLimit | None = MessageEditLimit(edit_limit, edit_window) if edit_window else None

        # ---- state
        self.guilds: dict[int, FakeGuild] = {}
        self.users: dict[int, FakeUser] = {self.bot_user.id: self.bot_user, self.owner.id: self.owner}
        self.messages: dict[int, StoredMessage] = {}
        self.interactions: dict[int, InteractionHandle] = {}
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        #: Requests to hold before handling (:meth:`hold_next`).
        self.holds: list[Hold] = []
        #: The running :meth:`chaos` mode, if any.
        self.active_chaos: DiscordChaos | None = None
        self.global_commands: list[JSON] = []
        self.guild_commands: dict[int, list[JSON]] = {}
        #: Number of commands created (not updated) by bulk syncs; Discord allows 200/day/guild.
        self.command_creates: int = 0
        #: IDENTIFY payloads that started a session.
        self.identify_payloads: list[JSON] = []
        #: Every IDENTIFY with the right token and a possible shard, in order (see :attr:`identify_violations`).
        self.identifies: list[IdentifyRecord] = []
        #: Non-heartbeat frames the bot sent on the gateway (IDENTIFY, RESUME, presence, ...).
        self.gateway_frames: list[JSON] = []
        self.heartbeats: int = 0
        self.resume_count: int = 0
        #: ``(event, data)`` of every dispatch sent.
        self.dispatched: list[tuple[str, JSON]] = []
        #: Every edit answered 429 for its message's edit limit, in order.
        self.rate_limited: list[RateLimitedEdit] = []
        #: ``(event, data)`` of dispatches dropped because no connection runs the guild's shard (on Discord an
        #: interaction lost this way ends as "This interaction failed").
        self.undelivered: list[tuple[str, JSON]] = []
        self._dm_channels: dict[int, FakeChannel] = {}
        self._attachments: dict[int, StoredAttachment] = {}
        self._sessions: dict[str, _GatewaySession] = {}
        #: The current session of each shard, by ``(shard_id, shard_count)``, the latest identified or resumed last.
        self._live: dict[tuple[int, int], _GatewaySession] = {}
        self._sockets: set[web.WebSocketResponse] = set()
        self._change_event = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start serving on 127.0.0.1 on a free port."""
        if self._runner is not None:
            raise RuntimeError("FakeDiscord already started")
        app = web.Application(middlewares=[self._middleware], client_max_size=512 * MIB)
        self._add_routes(app)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = int(sock.getsockname()[1])
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def close(self) -> None:
        """Close gateway connections and stop the server."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The TCP port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("FakeDiscord not started")
        return self._port

    @property
    def http_base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """REST root for ``discord.http.Route.BASE``: ``http://127.0.0.1:PORT/api/v10``."""
        return f"{self.http_base}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """Gateway URL for ``DiscordWebSocket.DEFAULT_GATEWAY``: ``ws://127.0.0.1:PORT/gateway``."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    # ------------------------------------------------------------------ change notification

    def _changed(self) -> None:
        event, self._change_event = self._change_event, asyncio.Event()
        event.set()

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0, *, what: str | None = None) -> T:
        """Return ``predicate()`` once truthy, re-checking whenever the fake's state changes.

        Raises:
            TimeoutError: if it stays falsy for ``timeout`` seconds.
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = self._change_event
                    result = predicate()
                    if result:
                        return result
                    await event.wait()
        except TimeoutError:
            label = what or getattr(predicate, "__qualname__", repr(predicate))
            raise TimeoutError(f"FakeDiscord.wait_for timed out after {timeout}s waiting for {label}") from None

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

    async def wait_for_request(
        self, route: str, *, status: int | None = None, count: int = 1, timeout: float = 5.0
    ) -> RecordedRequest:
        """Wait until ``count`` requests matched ``route`` (and ``status``); return the last of them."""

        def found() -> RecordedRequest | None:
            hits = [r for r in self.requests_for(route) if status is None or r.status == status]
            return hits[count - 1] if len(hits) >= count else None

        return await self.wait_for(found, timeout, what=f"{count} request(s) to {route} status={status}")

    # ------------------------------------------------------------------ set-up helpers

    def add_guild(
        self,
        name: str = "Test Guild",
        *,
        guild_id: int | None = None,
        defaults: bool = True,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        locale: str = "en-US",
        premium_tier: int = 0,
        attachment_size_limit: int = DEFAULT_ATTACHMENT_SIZE_LIMIT,
        shard: int | None = None,
    ) -> FakeGuild:
        """Add a guild the bot is in; returns it (``.id``, ``.channel(name)``, ``.member(name)``...).

        With ``defaults`` it gets text channels ``general`` and ``nsfw`` (age-restricted), a
        ``Moderator`` role (Manage Server 0x20 + Manage Messages 0x2000), a member ``moderator``
        with that role and an ordinary member ``member``. Add guilds before the bot connects
        (or call :meth:`dispatch_guild_create` afterwards). ``shard``: give it an id that belongs to
        that shard of :attr:`shard_count` shards.
        """
        if shard is not None and not 0 <= shard < self.shard_count:
            raise ValueError(f"shard {shard} does not exist with shard_count={self.shard_count}")
        if guild_id is None:
            guild_id = snowflake() if shard is None else self._snowflake_on_shard(shard)
        elif shard is not None and self.shard_of(guild_id) != shard:
            raise ValueError(f"guild id {guild_id} belongs to shard {self.shard_of(guild_id)}, not {shard}")
        guild = FakeGuild(
            guild_id=guild_id,
            name=name,
            bot_user=self.bot_user,
            bot_permissions=bot_permissions,
            locale=locale,
            premium_tier=premium_tier,
            attachment_size_limit=attachment_size_limit,
        )
        if defaults:
            guild.add_channel("general")
            guild.add_channel("nsfw", nsfw=True)
            moderator = guild.add_role("Moderator", Perm.MANAGE_GUILD | Perm.MANAGE_MESSAGES)
            guild.add_member("member")
            guild.add_member("moderator", roles=[moderator])
        self.guilds[guild.id] = guild
        self._changed()
        return guild

    def _snowflake_on_shard(self, shard: int) -> int:
        """A fresh snowflake on guild shard ``shard``: its timestamp moved back by under ``shard_count`` ms."""
        value = snowflake()
        millis = value >> 22
        millis -= (millis - shard) % self.shard_count
        return (millis << 22) | (value & ((1 << 22) - 1))

    async def dispatch_guild_create(self, guild: FakeGuild) -> None:
        """Send GUILD_CREATE for a guild added after the bot connected (to the connection of its shard)."""
        await self.dispatch("GUILD_CREATE", self._guild_create_payload(guild), guild_id=guild.id)

    def add_user(self, username: str, *, user_id: int | None = None, global_name: str | None = None) -> FakeUser:
        """Add a user who is in no guild (e.g. for DMs)."""
        user = FakeUser(id=user_id or snowflake(), username=username, global_name=global_name)
        self.users[user.id] = user
        return user

    def dm_channel(self, user: FakeUser | FakeMember) -> FakeChannel:
        """Return (creating it) the DM channel between the bot and ``user``."""
        fake_user = user.user if isinstance(user, FakeMember) else user
        channel = self._dm_channels.get(fake_user.id)
        if channel is None:
            channel = FakeChannel(id=snowflake(), name="", guild_id=None, type=1, recipients=[fake_user])
            self._dm_channels[fake_user.id] = channel
        return channel

    @staticmethod
    def snowflake(at: dt.datetime | float | None = None) -> int:
        """Shortcut for :func:`snowflake`."""
        return snowflake(at)

    @property
    def intents(self) -> int | None:
        """Intents of the latest IDENTIFY."""
        return int(self.identify_payloads[-1].get("intents", 0)) if self.identify_payloads else None

    # ------------------------------------------------------------------ store accessors

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

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        route: str | Callable[[str, str, str], bool],
        *,
        times: int = 1,
        status: int = 500,
        code: int = 0,
        message: str | None = None,
        body: JSON | None = None,
        headers: Mapping[str, str] | None = None,
        uploads_only: bool = False,
        no_uploads: bool = False,
    ) -> Fault:
        """Answer the next ``times`` requests matching ``route`` with ``status`` and a JSON error body.

        ``route`` is a :class:`Routes` name, a ``"METHOD /api-path-glob"`` pattern (e.g.
        ``"PATCH /channels/*/messages/*"``; paths without the ``/api/v10`` prefix) or a
        predicate ``(method, path, route) -> bool``. With ``uploads_only`` only requests that
        upload files count (a result's images, not the edits before it); with ``no_uploads`` only
        those that upload none (the edits before a result's images, not the one with them).

        discord.py retries some answers itself before its caller sees them: a 429 with ``Via`` (see
        :meth:`rate_limit_next`), and on its bot routes 500, 502, 504 and 524 (five tries), on webhook
        routes every 5xx (five tries, 25 s of sleeps). A 503 on a bot route, or a 429 without ``Via``,
        reaches the caller at once.
        """
        fault = Fault(
            route=route,
            status=status,
            times=times,
            body=body if body is not None else {"message": message or f"{status}: fault", "code": code},
            headers=dict(headers or {}),
            uploads_only=uploads_only,
            no_uploads=no_uploads,
        )
        self.faults.append(fault)
        return fault

    def reset_next(
        self, route: str | Callable[[str, str, str], bool], *, times: int = 1, uploads_only: bool = False
    ) -> Fault:
        """Reset the TCP connection of the next ``times`` requests matching ``route`` (as :meth:`fail_next`),
        with no answer: the request is never handled. They are recorded with status ``0``."""
        fault = self.fail_next(route, times=times, status=0, uploads_only=uploads_only)
        fault.reset = True
        return fault

    def rate_limit_next(
        self,
        route: str | Callable[[str, str, str], bool],
        *,
        times: int = 1,
        retry_after: float = 0.05,
        via: bool = True,
        scope: Literal["user", "global", "shared"] = "user",
        is_global: bool = False,
        uploads_only: bool = False,
    ) -> Fault:
        """Answer the next ``times`` requests matching ``route`` with 429.

        The body has ``retry_after``/``global``; headers ``Retry-After``, ``X-RateLimit-*``
        (remaining 0), ``X-RateLimit-Scope`` and, when ``via`` (default), ``Via`` — discord.py
        retries a 429 only if ``Via`` is present and raises ``HTTPException`` otherwise.
        """
        headers = {
            "Retry-After": str(max(1, int(retry_after + 0.999))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Scope": scope,
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        if via:
            headers["Via"] = "1.1 google"
        body: JSON = {"message": "You are being rate limited.", "retry_after": retry_after, "global": is_global}
        if is_global:
            body["code"] = 0
        return self.fail_next(route, times=times, status=429, body=body, headers=headers, uploads_only=uploads_only)

    def clear_faults(self) -> None:
        """Drop all pending faults."""
        self.faults.clear()

    def chaos(
        self,
        rate: float = 0.1,
        *,
        seed: int = 0,
        routes: Sequence[str] = (*Routes.WEBHOOK_EDITS, Routes.EDIT_MESSAGE),
        statuses: Sequence[int] = (429, 500),
        retry_after: float = 0.05,
        via_share: float = 0.5,
    ) -> DiscordChaos:
        """Answer a share ``rate`` of the requests to ``routes`` with one of ``statuses``, drawn from a
        generator seeded with ``seed``.

        ``routes`` are :class:`Routes` names or ``"METHOD /api-path-glob"`` patterns (default: every message
        edit). A 429 looks like :meth:`rate_limit_next`'s; a share ``via_share`` of them carry ``Via`` (which
        discord.py retries by itself), the others do not (discord.py raises them to the caller). Scripted
        faults take precedence. Replaces any earlier chaos; returns the :class:`DiscordChaos`.
        """
        self.active_chaos = DiscordChaos(
            rate, seed=seed, routes=routes, statuses=statuses, retry_after=retry_after, via_share=via_share
        )
        return self.active_chaos

    def stop_chaos(self) -> DiscordChaos | None:
        """End :meth:`chaos` mode; returns it (its hits stay readable)."""
        chaos, self.active_chaos = self.active_chaos, None
        return chaos

    def hold_next(self, route: str | Callable[[str, str, str], bool], *, drop: bool = True) -> Hold:
        """Hold the next request matching ``route`` until :meth:`Hold.release` (for crashes mid-request).

        With ``drop`` (default) the released request is answered 503 and never handled, as if it never
        reached Discord (the client that sent it is usually dead by then).
        """
        hold = Hold(route=route, drop=drop)
        self.holds.append(hold)
        return hold

    def _take_fault(self, method: str, path: str, template: str, *, uploading: bool) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.matches(method, path, template, uploading=uploading):
                fault.times -= 1
                fault.hits += 1
                return fault
        return None

    # ------------------------------------------------------------------ interactions

    async def slash(
        self,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
        *,
        subcommand_group: str | None = None,
        subcommand: str | None = None,
        user: UserLike | None = None,
        guild: GuildLike | None = None,
        channel: ChannelLike | None = None,
        dm: bool = False,
        scope: Literal["auto", "global", "guild"] = "auto",
        locale: str = "en-US",
        attachment_size_limit: int | None = None,
        ack_deadline: float | None = None,
        token_lifetime: float | None = None,
        backdate: float | dt.timedelta = 0.0,
        app_permissions: int | None = None,
    ) -> InteractionHandle:
        """Push a slash command (INTERACTION_CREATE type 2) and return its handle.

        ``name`` may hold the whole path (``"admin queue clear"``) instead of
        ``subcommand_group``/``subcommand``. ``options`` maps option names to values (str, int,
        float, bool, :class:`FakeMember`/:class:`FakeUser`, :class:`FakeChannel`,
        :class:`FakeRole`, :class:`Upload`) or is a raw list of option objects. Option types
        come from the synced command when there is one, else from the Python value.
        ``scope``: ``"auto"`` marks it a guild command if it was synced to that guild.
        ``backdate`` moves the interaction id (and so discord.py's ``expires_at`` and the token
        expiry) into the past; the acknowledgement deadline still counts from dispatch.
        """
        return await self._push_command(
            InteractionType.APPLICATION_COMMAND,
            name,
            options,
            subcommand_group=subcommand_group,
            subcommand=subcommand,
            focused=None,
            user=user,
            guild=guild,
            channel=channel,
            dm=dm,
            scope=scope,
            locale=locale,
            attachment_size_limit=attachment_size_limit,
            ack_deadline=ack_deadline,
            token_lifetime=token_lifetime,
            backdate=backdate,
            app_permissions=app_permissions,
        )

    async def autocomplete(
        self,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None = None,
        *,
        focused: str | None = None,
        subcommand_group: str | None = None,
        subcommand: str | None = None,
        user: UserLike | None = None,
        guild: GuildLike | None = None,
        channel: ChannelLike | None = None,
        dm: bool = False,
        scope: Literal["auto", "global", "guild"] = "auto",
        locale: str = "en-US",
    ) -> InteractionHandle:
        """Push an autocomplete interaction (type 4); ``focused`` names the option being typed.

        The focused value is sent as the raw string typed so far. Without ``focused`` the
        last option is focused (or pass raw option dicts with ``"focused": True``).
        """
        if focused is None and isinstance(options, Mapping) and options:
            focused = list(options)[-1]
        return await self._push_command(
            InteractionType.AUTOCOMPLETE,
            name,
            options,
            subcommand_group=subcommand_group,
            subcommand=subcommand,
            focused=focused,
            user=user,
            guild=guild,
            channel=channel,
            dm=dm,
            scope=scope,
            locale=locale,
            attachment_size_limit=None,
            ack_deadline=None,
            token_lifetime=None,
            backdate=0.0,
            app_permissions=None,
        )

    async def click(
        self,
        message: MessageLike,
        custom_id: str,
        *,
        user: UserLike | None = None,
        values: Sequence[str] | None = None,
        locale: str = "en-US",
        attachment_size_limit: int | None = None,
        ack_deadline: float | None = None,
        token_lifetime: float | None = None,
        backdate: float | dt.timedelta = 0.0,
    ) -> InteractionHandle:
        """Push a component interaction (type 3) for the component ``custom_id`` of a stored message.

        The component type comes from the message (2 button, 3/5/6/7/8 selects; pass
        ``values`` for selects). The default user is the one who ran the message's command.
        discord.py registers a view only after its response request returned, so wait for a
        bot-side signal (e.g. the ``app_command_completion`` event) before clicking a fresh message.

        Raises:
            LookupError: the message is deleted or has no such component.
            ValueError: the component is disabled.
        """
        stored = self.message(message)
        if stored.deleted:
            raise LookupError(f"message {stored.id} was deleted")
        component = next((c for c in _walk_components(stored.components) if c.get("custom_id") == custom_id), None)
        if component is None:
            raise LookupError(f"message {stored.id} has no component {custom_id!r}; has {stored.current.custom_ids}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        component_type = int(component.get("type", 2))
        if user is None and stored.interaction is not None:
            user = stored.interaction.member or stored.interaction.user
        ctx = self._context(user=user, guild=stored.guild_id, channel=stored.channel_id, dm=stored.guild_id is None)
        data: JSON = {"custom_id": custom_id, "component_type": component_type}
        if component_type in _SELECT_TYPES:
            data["values"] = list(values or [])
        return await self._push(
            InteractionType.MESSAGE_COMPONENT,
            data,
            ctx,
            message=stored,
            command_name=None,
            locale=locale,
            attachment_size_limit=attachment_size_limit,
            ack_deadline=ack_deadline,
            token_lifetime=token_lifetime,
            backdate=backdate,
            app_permissions=None,
        )

    async def submit_modal(
        self,
        source: InteractionHandle,
        values: Mapping[str, str],
        *,
        locale: str = "en-US",
        ack_deadline: float | None = None,
    ) -> InteractionHandle:
        """Submit the modal the bot opened in answer to ``source`` (type 5), with text ``values`` by custom id."""
        modal = source.modal
        if modal is None:
            raise LookupError(f"interaction {source.id} did not open a modal")
        inputs = {c["custom_id"] for c in _walk_components(modal.get("components") or []) if c.get("type") == 4}
        unknown = set(values) - inputs
        if unknown:
            raise LookupError(f"modal {modal.get('custom_id')!r} has no inputs {sorted(unknown)}; has {sorted(inputs)}")
        submitted: list[JSON] = []
        for top in modal.get("components") or []:
            if top.get("type") == 18 and isinstance(top.get("component"), dict):
                inner = top["component"]
                if inner.get("custom_id") in values:
                    submitted.append(
                        {
                            "type": 18,
                            "component": {
                                "type": 4,
                                "custom_id": inner["custom_id"],
                                "value": values[inner["custom_id"]],
                            },
                        }
                    )
            else:
                row = [
                    {"type": 4, "custom_id": c["custom_id"], "value": values[c["custom_id"]]}
                    for c in top.get("components") or []
                    if c.get("custom_id") in values
                ]
                if row:
                    submitted.append({"type": 1, "components": row})
        ctx = _Context(guild=source.guild, channel=source.channel, user=source.user, member=source.member)
        data: JSON = {"custom_id": modal.get("custom_id"), "components": submitted}
        return await self._push(
            InteractionType.MODAL_SUBMIT,
            data,
            ctx,
            message=source.message,
            command_name=source.command_name,
            locale=locale,
            attachment_size_limit=None,
            ack_deadline=ack_deadline,
            token_lifetime=None,
            backdate=0.0,
            app_permissions=None,
        )

    async def send_user_message(
        self, channel: ChannelLike, author: FakeMember | FakeUser, content: str
    ) -> StoredMessage:
        """Post a message as a user and dispatch MESSAGE_CREATE.

        As on Discord, the event's content is blank unless the bot has the message content
        intent, is mentioned, or the message is a DM.
        """
        fake_channel, guild = self._find_channel(channel.id if isinstance(channel, FakeChannel) else int(channel))
        user = author.user if isinstance(author, FakeMember) else author
        version = self._plain_version(content, route="user")
        message = self._store_message(
            channel=fake_channel, guild=guild, author=user, message_type=0, version=version, interaction=None
        )
        await self._dispatch_message_event("MESSAGE_CREATE", message)
        return message

    async def delete_message(self, message: MessageLike, *, by: str = "user") -> StoredMessage:
        """Delete a message as someone else would: later reads and edits answer 404/10008."""
        stored = self.message(message)
        self._mark_deleted(stored, by=by)
        await self._dispatch_message_event("MESSAGE_DELETE", stored)
        return stored

    # ------------------------------------------------------------------ gateway (public)

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

    # ------------------------------------------------------------------ internals: interactions

    def _context(
        self, *, user: UserLike | None, guild: GuildLike | None, channel: ChannelLike | None, dm: bool
    ) -> _Context:
        if dm:
            if user is None:
                raise ValueError("a DM interaction needs user=")
            fake_user = self._user_of(user)
            return _Context(guild=None, channel=self.dm_channel(fake_user), user=fake_user, member=None)
        if guild is None:
            if not self.guilds:
                raise LookupError("no guilds; call add_guild() first")
            fake_guild = next(iter(self.guilds.values()))
        else:
            fake_guild = guild if isinstance(guild, FakeGuild) else self.guilds[int(guild)]
        if channel is None:
            if not fake_guild.text_channels:
                raise LookupError(f"guild {fake_guild.name!r} has no text channels")
            fake_channel = fake_guild.text_channels[0]
        else:
            channel_id = channel.id if isinstance(channel, FakeChannel) else int(channel)
            fake_channel = fake_guild.channels[channel_id]
        if user is None:
            member = fake_guild.default_member
        elif isinstance(user, FakeMember):
            member = user
        else:
            member = fake_guild.members[user.id if isinstance(user, FakeUser) else int(user)]
        return _Context(guild=fake_guild, channel=fake_channel, user=member.user, member=member)

    def _user_of(self, user: UserLike) -> FakeUser:
        if isinstance(user, FakeMember):
            return user.user
        if isinstance(user, FakeUser):
            return user
        found = self._find_user(int(user))
        if found is None:
            raise KeyError(f"unknown user {user}")
        return found

    def _find_user(self, user_id: int) -> FakeUser | None:
        if user_id in self.users:
            return self.users[user_id]
        for guild in self.guilds.values():
            member = guild.members.get(user_id)
            if member is not None:
                return member.user
        return None

    def _find_command(
        self, name: str, command_type: int, guild: FakeGuild | None, scope: str
    ) -> tuple[JSON | None, int | None]:
        def match(commands: Iterable[JSON]) -> JSON | None:
            return next((c for c in commands if c["name"] == name and int(c.get("type", 1)) == command_type), None)

        if guild is not None and scope in ("auto", "guild"):
            found = match(self.guild_commands.get(guild.id, []))
            if found is not None:
                return found, guild.id
            if scope == "guild":
                return None, guild.id
        if scope in ("auto", "global"):
            found = match(self.global_commands)
            if found is not None:
                return found, None
        return None, None

    async def _push_command(
        self,
        itype: InteractionType,
        name: str,
        options: Mapping[str, Any] | Sequence[JSON] | None,
        *,
        subcommand_group: str | None,
        subcommand: str | None,
        focused: str | None,
        user: UserLike | None,
        guild: GuildLike | None,
        channel: ChannelLike | None,
        dm: bool,
        scope: str,
        locale: str,
        attachment_size_limit: int | None,
        ack_deadline: float | None,
        token_lifetime: float | None,
        backdate: float | dt.timedelta,
        app_permissions: int | None,
    ) -> InteractionHandle:
        parts = name.split()
        if len(parts) > 1:
            if subcommand_group or subcommand or len(parts) > 3:
                raise ValueError(f"bad command path {name!r}")
            name = parts[0]
            subcommand_group, subcommand = (parts[1], parts[2]) if len(parts) == 3 else (None, parts[1])
        if subcommand_group and not subcommand:
            raise ValueError("subcommand_group needs a subcommand")
        ctx = self._context(user=user, guild=guild, channel=channel, dm=dm)
        command, command_guild_id = self._find_command(name, 1, ctx.guild, scope)
        if command is None and self.require_synced_commands:
            raise ValueError(f"command {name!r} was never synced (require_synced_commands is on)")
        schema: list[JSON] | None = None
        if command is not None:
            schema = list(command.get("options") or [])
            for part in (subcommand_group, subcommand):
                if part is None:
                    continue
                node = next((o for o in schema if o.get("name") == part), None)
                if node is None:
                    raise ValueError(f"command {name!r} has no subcommand (group) {part!r}")
                schema = list(node.get("options") or [])
        resolved: JSON = {}
        built = self._build_options(
            options, schema, focused, ctx, resolved, partial=itype == InteractionType.AUTOCOMPLETE
        )
        if subcommand is not None:
            built = [{"type": _OPTION_SUBCOMMAND, "name": subcommand, "options": built}]
            if subcommand_group is not None:
                built = [{"type": _OPTION_GROUP, "name": subcommand_group, "options": built}]
        data: JSON = {
            "id": str(command["id"]) if command is not None else str(snowflake()),
            "name": name,
            "type": 1,
            "options": built,
        }
        if resolved:
            data["resolved"] = resolved
        if command_guild_id is not None:
            data["guild_id"] = str(command_guild_id)
        return await self._push(
            itype,
            data,
            ctx,
            message=None,
            command_name=" ".join(p for p in (name, subcommand_group, subcommand) if p),
            locale=locale,
            attachment_size_limit=attachment_size_limit,
            ack_deadline=ack_deadline,
            token_lifetime=token_lifetime,
            backdate=backdate,
            app_permissions=app_permissions,
        )

    def _build_options(
        self,
        options: Mapping[str, Any] | Sequence[JSON] | None,
        schema: list[JSON] | None,
        focused: str | None,
        ctx: _Context,
        resolved: JSON,
        *,
        partial: bool,
    ) -> list[JSON]:
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            return [dict(o) for o in options]
        built: list[JSON] = []
        specs = {o["name"]: o for o in schema or []}
        for opt_name, value in options.items():
            spec = specs.get(opt_name)
            if schema is not None and spec is None:
                raise ValueError(f"synced command has no option {opt_name!r}; has {sorted(specs)}")
            opt_type = int(spec["type"]) if spec is not None else _infer_option_type(value)
            option: JSON = {"name": opt_name, "type": opt_type}
            if opt_name == focused:
                option["value"] = str(value)
                option["focused"] = True
            else:
                option["value"] = self._option_value(opt_type, value, ctx, resolved)
            built.append(option)
        if focused is not None and focused not in options:
            raise ValueError(f"focused option {focused!r} is not among the options")
        if schema is not None and not partial:
            missing = [o["name"] for o in schema if o.get("required") and o["name"] not in options]
            if missing:
                raise ValueError(f"missing required options {missing}")
        return built

    def _option_value(self, opt_type: int, value: Any, ctx: _Context, resolved: JSON) -> Any:
        if opt_type == 6 or (opt_type == 9 and isinstance(value, FakeMember | FakeUser)):
            user = value.user if isinstance(value, FakeMember) else self._user_of(value)
            resolved.setdefault("users", {})[str(user.id)] = user.payload()
            member = ctx.guild.members.get(user.id) if ctx.guild is not None else None
            if member is not None and ctx.guild is not None:
                perms = ctx.guild.permissions_in(member, ctx.channel)
                resolved.setdefault("members", {})[str(user.id)] = member.payload(permissions=perms, with_user=False)
            return str(user.id)
        if opt_type == 7:
            channel = value if isinstance(value, FakeChannel) else self._find_channel(int(value))[0]
            channel_data = channel.payload()
            keys = ("id", "type", "name", "nsfw", "parent_id")
            entry: JSON = {k: channel_data[k] for k in keys if k in channel_data}
            if ctx.member is not None and ctx.guild is not None:
                entry["permissions"] = str(ctx.guild.permissions_in(ctx.member, channel))
            resolved.setdefault("channels", {})[str(channel.id)] = entry
            return str(channel.id)
        if opt_type in (8, 9):
            if ctx.guild is None:
                raise ValueError("role options need a guild")
            role = value if isinstance(value, FakeRole) else ctx.guild.roles[int(value)]
            resolved.setdefault("roles", {})[str(role.id)] = role.payload()
            return str(role.id)
        if opt_type == 11:
            if not isinstance(value, Upload):
                raise TypeError("attachment options take an Upload")
            attachment = self._store_attachment(ctx.channel.id, value.filename, value.data, value.content_type, None)
            self._attachments[attachment.id] = attachment
            resolved.setdefault("attachments", {})[str(attachment.id)] = attachment.payload(ephemeral=True)
            return str(attachment.id)
        if isinstance(value, FakeMember | FakeUser | FakeChannel | FakeRole):
            return str(value.id)
        return value

    def _interaction_payload(
        self,
        *,
        interaction_id: int,
        token: str,
        itype: InteractionType,
        data: JSON,
        ctx: _Context,
        locale: str,
        attachment_size_limit: int,
        app_permissions: int | None,
        message: StoredMessage | None,
    ) -> JSON:
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": int(itype),
            "token": token,
            "version": 1,
            "data": data,
            "channel_id": str(ctx.channel.id),
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": attachment_size_limit,
        }
        channel_payload = ctx.channel.payload()
        if ctx.guild is not None and ctx.member is not None:
            guild = ctx.guild
            perms = guild.permissions_in(ctx.member, ctx.channel)
            bot_perms = guild.permissions_in(guild.bot_member, ctx.channel)
            channel_payload["permissions"] = str(perms)
            payload.update(
                guild_id=str(guild.id),
                guild={"id": str(guild.id), "locale": guild.locale, "features": []},
                guild_locale=guild.locale,
                member=ctx.member.payload(permissions=perms),
                app_permissions=str(app_permissions if app_permissions is not None else bot_perms),
                authorizing_integration_owners={"0": str(guild.id)},
                context=0,
            )
        else:
            default_dm = int(Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES | Perm.EMBED_LINKS | Perm.ATTACH_FILES)
            payload.update(
                user=ctx.user.payload(),
                app_permissions=str(app_permissions if app_permissions is not None else default_dm),
                authorizing_integration_owners={"0": "0"},
                context=1,
            )
        payload["channel"] = channel_payload
        if not self.interaction_channels:
            del payload["channel"], payload["channel_id"]
        if message is not None:
            payload["message"] = message.payload()
        return payload

    async def _push(
        self,
        itype: InteractionType,
        data: JSON,
        ctx: _Context,
        *,
        message: StoredMessage | None,
        command_name: str | None,
        locale: str,
        attachment_size_limit: int | None,
        ack_deadline: float | None,
        token_lifetime: float | None,
        backdate: float | dt.timedelta,
        app_permissions: int | None,
    ) -> InteractionHandle:
        interaction_id = backdated_snowflake(backdate)
        token = f"aW50ZXJhY3Rpb24.{interaction_id}.{secrets.token_urlsafe(32)}"
        limit = attachment_size_limit if attachment_size_limit is not None else self.attachment_size_limit
        payload = self._interaction_payload(
            interaction_id=interaction_id,
            token=token,
            itype=itype,
            data=data,
            ctx=ctx,
            locale=locale,
            attachment_size_limit=limit,
            app_permissions=app_permissions,
            message=message,
        )
        handle = InteractionHandle(
            self,
            interaction_id=interaction_id,
            token=token,
            interaction_type=itype,
            payload=payload,
            guild=ctx.guild,
            channel=ctx.channel,
            user=ctx.user,
            member=ctx.member,
            message=message,
            ack_deadline=ack_deadline if ack_deadline is not None else self.ack_deadline,
            token_lifetime=token_lifetime if token_lifetime is not None else self.token_lifetime,
            attachment_size_limit=limit,
            command_name=command_name,
        )
        self.interactions[interaction_id] = handle
        handle.dispatched_at = time.monotonic()
        session = await self._deliver("INTERACTION_CREATE", payload, ctx.guild.id if ctx.guild else None)
        handle.shard = None if session is None else (session.shard_id, session.shard_count)
        return handle

    # ------------------------------------------------------------------ internals: messages

    def _store_attachment(
        self, channel_id: int, filename: str, data: bytes, content_type: str | None, description: str | None
    ) -> StoredAttachment:
        attachment_id = snowflake()
        guessed = mimetypes.guess_type(filename)[0]
        if content_type in (None, "application/octet-stream") and guessed:
            content_type = guessed
        if not self.attachment_content_types:
            content_type = None
        width, height = _image_size(data) if (content_type or "").startswith("image/") else (None, None)
        url = f"{self.http_base}/attachments/{channel_id}/{attachment_id}/{quote(filename)}"
        attachment = StoredAttachment(
            id=attachment_id,
            filename=filename,
            data=data,
            content_type=content_type,
            url=url,
            description=description,
            width=width,
            height=height,
        )
        self._attachments[attachment_id] = attachment
        return attachment

    def _resolve_attachments(
        self,
        current: tuple[StoredAttachment, ...],
        data: JSON,
        uploads: list[_Upload],
        channel_id: int,
    ) -> tuple[StoredAttachment, ...]:
        by_index = {u.index: u for u in uploads}
        used: set[int] = set()
        result: list[StoredAttachment] = []
        if "attachments" in data:
            for position, entry in enumerate(data["attachments"] or []):
                try:
                    ref = int(entry["id"])
                except (KeyError, TypeError, ValueError):
                    raise _form_error(
                        [(f"attachments.{position}.id", "BASE_TYPE_REQUIRED", "This field is required")]
                    ) from None
                upload = by_index.get(ref)
                if upload is not None and ref not in used:
                    used.add(ref)
                    result.append(
                        self._store_attachment(
                            channel_id,
                            str(entry.get("filename") or upload.filename),
                            upload.data,
                            upload.content_type,
                            entry.get("description"),
                        )
                    )
                    continue
                kept = next((a for a in current if a.id == ref), None)
                if kept is None:
                    raise _form_error(
                        [(f"attachments.{position}.id", "ATTACHMENT_NOT_FOUND", f"Unknown attachment {ref}")]
                    )
                if "description" in entry and entry["description"] != kept.description:
                    kept = dataclasses.replace(kept, description=entry["description"])
                result.append(kept)
        else:
            result.extend(current)
        for upload in uploads:
            if upload.index not in used:
                result.append(
                    self._store_attachment(channel_id, upload.filename, upload.data, upload.content_type, None)
                )
        return tuple(result)

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
            timestamp=_now(),
            at=time.monotonic(),
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
            index=0,
            content=content,
            embeds=(),
            components=(),
            attachments=(),
            flags=0,
            allowed_mentions=None,
            tts=False,
            mentions=mentions,
            mention_roles=roles,
            mention_everyone=everyone,
            timestamp=_now(),
            at=time.monotonic(),
            route=route,
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
            message_id=snowflake(),
            channel_id=channel.id,
            guild_id=guild.id if guild is not None else None,
            author=author,
            message_type=message_type,
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

    # ------------------------------------------------------------------ HTTP plumbing

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

    @staticmethod
    def _add_ratelimit_headers(response: web.StreamResponse, template: str) -> None:
        bucket = hashlib.sha1(template.encode(), usedforsecurity=False).hexdigest()[:32]
        response.headers.setdefault("X-RateLimit-Limit", "50")
        response.headers.setdefault("X-RateLimit-Remaining", "49")
        response.headers.setdefault("X-RateLimit-Reset", f"{time.time() + 1:.3f}")
        response.headers.setdefault("X-RateLimit-Reset-After", "1.000")
        response.headers.setdefault("X-RateLimit-Bucket", bucket)

    def _count_edit(self, request: web.Request, message: StoredMessage, route: str) -> None:
        """Count an edit of ``message`` under its edit limit: its answer tells how much is left, or it is 429'd.

        The 429 carries ``Via`` like Discord's own, so discord.py waits ``retry_after`` and tries again.
        """
        limit = self.edit_limiter
        if limit is None:
            return
        now = time.monotonic()
        retry_after = limit.take(message.id, now)
        headers = limit.headers(message.id, now)
        if retry_after is not None:
            headers |= {
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                "X-RateLimit-Scope": "user",
                "Retry-After": str(max(1, int(retry_after + 0.999))),
                "Via": "1.1 google",
            }
        request[_LIMIT_KEY] = headers
        if retry_after is not None:
            self.rate_limited.append(RateLimitedEdit(route, message.id, now))
            raise _EditRateLimited(retry_after)

    def _require_bot_auth(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bot {self.token}":
            raise _unauthorized()

    def _require_application(self, request: web.Request) -> None:
        if request.match_info.get("application_id") != str(self.application_id):
            raise DiscordError(403, 50001, "Missing Access")

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

    # ------------------------------------------------------------------ handlers: login, gateway info

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

    # ------------------------------------------------------------------ handlers: commands

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
            _validate_commands(payload)
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

    # ------------------------------------------------------------------ handlers: interaction callback

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
            message = self._store_message(
                channel=handle.channel,
                guild=handle.guild,
                author=self.bot_user,
                message_type=self._message_type_for(handle),
                version=version,
                interaction=handle,
            )
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
                version = self._compose(
                    base=message.current,
                    data=data,
                    uploads=uploads,
                    limit=handle.attachment_size_limit,
                    channel_id=message.channel_id,
                    route=route,
                    callback_type=callback_type,
                )
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

    # ------------------------------------------------------------------ handlers: interaction webhooks

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
        version = self._compose(
            base=message.current,
            data=_as_dict(payload),
            uploads=uploads,
            limit=handle.attachment_size_limit,
            channel_id=message.channel_id,
            route=route,
        )
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
            version = self._compose(
                base=original.current,
                data=data,
                uploads=uploads,
                limit=handle.attachment_size_limit,
                channel_id=original.channel_id,
                route=Routes.FOLLOWUP,
            )
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
            message = self._store_message(
                channel=handle.channel,
                guild=handle.guild,
                author=self.bot_user,
                message_type=self._message_type_for(handle),
                version=version,
                interaction=handle,
                is_followup=True,
            )
            handle.followup_ids.append(message.id)
            self._changed()
            await self._dispatch_message_event("MESSAGE_CREATE", message)
        if not wait:
            return web.Response(status=204)
        return _json_response(message.payload())

    # ------------------------------------------------------------------ handlers: channels

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

    async def _h_cdn(self, request: web.Request) -> web.Response:
        attachment = self._attachments.get(_int(request.match_info["attachment_id"], 0))
        if attachment is None:
            raise DiscordError(404, 0, "404: Not Found")
        return web.Response(body=attachment.data, content_type=attachment.content_type or "application/octet-stream")

    # ------------------------------------------------------------------ gateway internals

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


# --------------------------------------------------------------------------- helpers


def _shard_of_identify(data: JSON) -> tuple[int, int]:
    """``(shard_id, shard_count)`` an IDENTIFY names (``(0, 1)`` if none); ``ValueError`` for an impossible one."""
    shard = data.get("shard")
    if shard is None:
        return 0, 1
    shard_id, shard_count = (int(part) for part in shard)
    if shard_count < 1 or not 0 <= shard_id < shard_count:
        raise ValueError(f"shard {shard_id} of {shard_count}")
    return shard_id, shard_count


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


def _infer_option_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    if isinstance(value, FakeMember | FakeUser):
        return 6
    if isinstance(value, FakeChannel):
        return 7
    if isinstance(value, FakeRole):
        return 8
    if isinstance(value, Upload):
        return 11
    return 3


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        from PIL import Image
    except ImportError:
        return None, None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(image.width), int(image.height)
    except Exception:
        return None, None


def _validate_message(version: MessageVersion, *, allow_empty: bool, creating: bool) -> None:
    problems: list[tuple[str, str, str]] = []
    if len(version.content) > MAX_CONTENT:
        problems.append(("content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."))
    if len(version.embeds) > MAX_EMBEDS:
        problems.append(("embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length."))
    total = 0
    for index, embed in enumerate(version.embeds):
        limits = {"title": 256, "description": 4096}
        for key, limit in limits.items():
            text = str(embed.get(key) or "")
            total += len(text)
            if len(text) > limit:
                problems.append(
                    (f"embeds.{index}.{key}", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
                )
        footer = str((embed.get("footer") or {}).get("text") or "")
        author = str((embed.get("author") or {}).get("name") or "")
        total += len(footer) + len(author)
        if len(footer) > 2048:
            problems.append((f"embeds.{index}.footer.text", "BASE_TYPE_MAX_LENGTH", "Must be 2048 or fewer in length."))
        if len(author) > 256:
            problems.append((f"embeds.{index}.author.name", "BASE_TYPE_MAX_LENGTH", "Must be 256 or fewer in length."))
        fields = embed.get("fields") or []
        if len(fields) > 25:
            problems.append((f"embeds.{index}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."))
        for position, item in enumerate(fields):
            name, value = str(item.get("name") or ""), str(item.get("value") or "")
            total += len(name) + len(value)
            if len(name) > 256:
                problems.append(
                    (
                        f"embeds.{index}.fields.{position}.name",
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 256 or fewer in length.",
                    )
                )
            if len(value) > 1024:
                problems.append(
                    (
                        f"embeds.{index}.fields.{position}.value",
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 1024 or fewer in length.",
                    )
                )
    if total > MAX_EMBED_TOTAL:
        problems.append(("embeds", "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}"))
    if len(version.attachments) > MAX_ATTACHMENTS:
        problems.append(("attachments", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ATTACHMENTS} or fewer in length."))
    if not version.flags & MessageFlag.IS_COMPONENTS_V2 and len(version.components) > MAX_ACTION_ROWS:
        problems.append(("components", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ACTION_ROWS} or fewer in length."))
    if problems:
        raise _form_error(problems)
    empty = not (version.content or version.embeds or version.attachments or version.components)
    if empty and not allow_empty and creating:
        raise DiscordError(400, 50006, "Cannot send an empty message")


def _validate_blank_fields(version: MessageVersion) -> None:
    problems = [
        (f"embeds.{index}.fields.{position}.{key}", "BASE_TYPE_REQUIRED", "This field is required")
        for index, embed in enumerate(version.embeds)
        for position, item in enumerate(embed.get("fields") or [])
        for key in ("name", "value")
        if not str(item.get(key) or "").strip()
    ]
    if problems:
        raise _form_error(problems)


def _validate_choices(choices: Any) -> None:
    if not isinstance(choices, list):
        raise _form_error([("data.choices", "BASE_TYPE_REQUIRED", "This field is required")])
    problems: list[tuple[str, str, str]] = []
    if len(choices) > MAX_CHOICES:
        problems.append(("data.choices", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length."))
    for index, choice in enumerate(choices):
        name = str(choice.get("name") or "")
        if not 1 <= len(name) <= 100:
            problems.append(
                (f"data.choices.{index}.name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            )
        value = choice.get("value")
        if isinstance(value, str) and len(value) > 100:
            problems.append((f"data.choices.{index}.value", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length."))
    if problems:
        raise _form_error(problems)


def _validate_modal(data: JSON) -> None:
    problems: list[tuple[str, str, str]] = []
    if not data.get("custom_id"):
        problems.append(("data.custom_id", "BASE_TYPE_REQUIRED", "This field is required"))
    if not 1 <= len(str(data.get("title") or "")) <= 45:
        problems.append(("data.title", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length."))
    if not 1 <= len(data.get("components") or []) <= 5:
        problems.append(("data.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."))
    if problems:
        raise _form_error(problems)


_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")


def _validate_commands(commands: list[Any]) -> None:
    problems: list[tuple[str, str, str]] = []
    seen: set[tuple[str, int]] = set()
    chat_input = 0
    for index, command in enumerate(commands):
        if not isinstance(command, dict) or "name" not in command:
            problems.append((f"{index}.name", "BASE_TYPE_REQUIRED", "This field is required"))
            continue
        command_type = int(command.get("type", 1))
        key = (command["name"], command_type)
        if key in seen:
            problems.append((f"{index}.name", "APPLICATION_COMMANDS_DUPLICATE_NAME", "Duplicate command name"))
        seen.add(key)
        if command_type == 1:
            chat_input += 1
            if not _COMMAND_NAME.match(command["name"]) or command["name"] != command["name"].lower():
                problems.append((f"{index}.name", "APPLICATION_COMMAND_INVALID_NAME", "Invalid command name"))
            if not 1 <= len(str(command.get("description") or "")) <= 100:
                problems.append(
                    (f"{index}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
                )
        problems.extend(_option_problems(command.get("options") or [], f"{index}.options"))
    if chat_input > 100:
        problems.append(("_root", "APPLICATION_COMMANDS_TOO_MANY", "Maximum number of commands reached (100)"))
    if problems:
        raise _form_error(problems)


def _option_problems(options: list[JSON], path: str) -> list[tuple[str, str, str]]:
    problems: list[tuple[str, str, str]] = []
    if len(options) > 25:
        problems.append((path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."))
    for index, option in enumerate(options):
        here = f"{path}.{index}"
        if not 1 <= len(str(option.get("description") or "")) <= 100:
            problems.append((f"{here}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."))
        choices = option.get("choices") or []
        if len(choices) > MAX_CHOICES:
            problems.append((f"{here}.choices", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length."))
        if choices and option.get("autocomplete"):
            problems.append(
                (f"{here}.autocomplete", "AUTOCOMPLETE_AND_CHOICES", "Autocomplete cannot be set with choices")
            )
        if option.get("type") in (_OPTION_SUBCOMMAND, _OPTION_GROUP):
            problems.extend(_option_problems(option.get("options") or [], f"{here}.options"))
    return problems


@contextlib.contextmanager
def patch_discord_py(fake: FakeDiscord) -> Iterator[None]:
    """Point discord.py's REST base and default gateway at ``fake`` for the duration, then restore them."""
    import discord.gateway
    import discord.http
    import yarl

    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway
