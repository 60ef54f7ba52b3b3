"""The message model: uploads, stored attachments, every version of a message
(:class:`MessageVersion`) and the message itself (:class:`StoredMessage`), with the mentions it really pings.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from tests.fakes.discord.protocol import MessageFlag, _iso, _now

if TYPE_CHECKING:
    from tests.fakes.discord.guild import FakeUser
    from tests.fakes.discord.interactions import InteractionHandle
    from tests.fakes.discord.protocol import JSON


@dataclasses.dataclass(frozen=True)
class Upload:
    """A file a user attaches to a slash command option of type ATTACHMENT (11)."""

    filename: str
    data: bytes = dataclasses.field(repr=False)
    content_type: str | None = None


@dataclasses.dataclass
class _Upload:
    index: int
    field: str
    filename: str
    data: bytes = dataclasses.field(repr=False)
    content_type: str | None


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


@dataclasses.dataclass(frozen=True, kw_only=True)
class MessageVersion:
    """One state of a message: what it looked like after creation or after one edit."""

    index: int
    content: str
    embeds: tuple[JSON, ...] = ()
    components: tuple[JSON, ...] = ()
    attachments: tuple[StoredAttachment, ...] = ()
    flags: int = 0
    allowed_mentions: JSON | None = None
    tts: bool = False
    mentions: tuple[int, ...]
    mention_roles: tuple[int, ...]
    mention_everyone: bool
    timestamp: dt.datetime = dataclasses.field(default_factory=_now)
    #: ``time.monotonic()`` when this version was made.
    at: float = dataclasses.field(default_factory=time.monotonic)
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


@dataclasses.dataclass(kw_only=True, eq=False)
class StoredMessage:
    """A message in the fake's store, whichever route created or edited it."""

    id: int
    channel_id: int
    guild_id: int | None
    author: FakeUser
    type: int
    first: dataclasses.InitVar[MessageVersion]
    user_lookup: Callable[[int], FakeUser | None]
    """Finds the user a mention names, for the ``mentions`` of the payload."""
    interaction: InteractionHandle | None = None
    """The interaction whose response or followup this message is, if any."""
    application_id: int | None = None
    message_reference: JSON | None = None
    nonce: str | int | None = None
    is_followup: bool = False
    history: list[MessageVersion] = dataclasses.field(init=False)
    """Every version, oldest first; ``history[0]`` is the creation."""
    deleted_at: float | None = dataclasses.field(default=None, init=False)
    """``time.monotonic()`` of the deletion, if deleted."""
    deleted_by: str | None = dataclasses.field(default=None, init=False)
    """``"bot"`` (a DELETE route) or ``"user"`` (:meth:`FakeDiscord.delete_message`)."""

    def __post_init__(self, first: MessageVersion) -> None:
        self.history = [first]

    def __repr__(self) -> str:
        state = " deleted" if self.deleted else ""
        return f"<StoredMessage id={self.id} versions={len(self.history)}{state} content={self.content!r}>"

    @property
    def created_at(self) -> dt.datetime:
        """When the message was created (its first version's timestamp)."""
        return self.history[0].timestamp

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
        mentions = [u.payload() for u in map(self.user_lookup, version.mentions) if u is not None]
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
