"""Discord's numbers as the fake speaks them: limits, permission/flag/intent bits, interaction and
callback types, the :class:`Routes` names, snowflakes and timestamps.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import time
from typing import Any, Final, TypeVar

JSON = dict[str, Any]
T = TypeVar("T")

API_PREFIX: Final = "/api/v10"
DISCORD_EPOCH_MS: Final = 1_420_070_400_000
MIB: Final = 1024 * 1024

# The fake's defaults for what a test may change per fake, guild or interaction.
DEFAULT_ATTACHMENT_SIZE_LIMIT: Final = 10 * MIB
DEFAULT_ACK_DEADLINE: Final = 3.0
DEFAULT_TOKEN_LIFETIME: Final = 15 * 60.0

# Pacing Discord enforces.
#: Seconds in which one identify bucket may start one session (Discord: 5).
IDENTIFY_WINDOW: Final = 5.0
#: Edits Discord allows one message per :data:`EDIT_WINDOW` seconds, whichever route edits it.
EDIT_LIMIT: Final = 5
EDIT_WINDOW: Final = 5.0

# Sizes past which a payload answers 400/50035 "Invalid Form Body".
MAX_CONTENT: Final = 2000
MAX_EMBEDS: Final = 10
MAX_EMBED_TOTAL: Final = 6000
MAX_ATTACHMENTS: Final = 10
MAX_CHOICES: Final = 25
MAX_ACTION_ROWS: Final = 5

_SEQUENCE = itertools.count()


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
