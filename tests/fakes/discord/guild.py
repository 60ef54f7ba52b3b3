"""The guild model: users, roles, channels (with permission overwrites), members and guilds, their
payloads and Discord's permission computation. A little over 400 lines: most of it is the payload literals
Discord sends for these objects, and the six classes refer to each other.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from tests.fakes.discord.protocol import ALL_PERMISSIONS, DEFAULT_EVERYONE_PERMISSIONS, Perm, _iso, _now, snowflake

if TYPE_CHECKING:
    from tests.fakes.discord.protocol import JSON, T


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
    """A thread's channel."""
    owner_id: int | None = None
    """Who started a thread."""
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

    @property
    def is_thread(self) -> bool:
        """A thread (public 11 or private 12): it takes its channel's age restriction."""
        return self.type in THREAD_TYPES

    def payload(self) -> JSON:
        """Return the channel object (a thread's with its metadata, as GUILD_CREATE ``threads`` lists it)."""
        if self.is_thread:
            return self._thread_payload()
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

    def _thread_payload(self) -> JSON:
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "parent_id": str(self.parent_id),
            "owner_id": str(self.owner_id or self.guild_id),
            "name": self.name,
            "nsfw": self.nsfw,
            "last_message_id": None,
            "rate_limit_per_user": self.rate_limit_per_user,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": "2024-01-01T00:00:00+00:00",
                "locked": False,
                "create_timestamp": "2024-01-01T00:00:00+00:00",
            },
        }


THREAD_TYPES = frozenset({11, 12})
"""Channel types of threads."""


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


@dataclasses.dataclass(kw_only=True, eq=False)
class FakeGuild:
    """A guild with roles, text channels and members; build it with :meth:`FakeDiscord.add_guild`."""

    id: int
    name: str
    bot_user: dataclasses.InitVar[FakeUser]
    bot_permissions: dataclasses.InitVar[int]
    locale: str
    premium_tier: int
    attachment_size_limit: int
    """Per-attachment limit for channel-route uploads in this guild."""
    owner_id: int = dataclasses.field(default_factory=snowflake, init=False)
    roles: dict[int, FakeRole] = dataclasses.field(init=False)
    channels: dict[int, FakeChannel] = dataclasses.field(default_factory=dict, init=False)
    members: dict[int, FakeMember] = dataclasses.field(default_factory=dict, init=False)
    bot_member: FakeMember = dataclasses.field(init=False)
    """The bot's own member object (its permissions are the interaction's ``app_permissions``)."""

    def __post_init__(self, bot_user: FakeUser, bot_permissions: int) -> None:
        self.roles = {self.id: FakeRole(id=self.id, name="@everyone", permissions=DEFAULT_EVERYONE_PERMISSIONS)}
        bot_role = self.add_role(bot_user.username, bot_permissions, managed=True, bot_id=bot_user.id)
        self.bot_member = self._add_member(FakeMember(user=bot_user, guild_id=self.id, role_ids=[bot_role.id]))

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

    def add_thread(self, name: str, parent: FakeChannel, *, private: bool = False) -> FakeChannel:
        """Start a thread in ``parent``: like Discord's, its ``nsfw`` is its channel's (an age-restricted
        channel's threads are age-restricted)."""
        thread = FakeChannel(
            id=snowflake(),
            name=name,
            guild_id=self.id,
            type=12 if private else 11,
            nsfw=parent.nsfw,
            parent_id=parent.id,
            owner_id=self.default_member.user.id,
        )
        self.channels[thread.id] = thread
        return thread

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
            "channels": [c.payload() for c in self.channels.values() if not c.is_thread],
            "threads": [c.payload() for c in self.channels.values() if c.is_thread],
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
