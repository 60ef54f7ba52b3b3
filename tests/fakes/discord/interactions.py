"""Pushed interactions: the handle a test holds (:class:`InteractionHandle`, its callback attempts
as :class:`CallbackRecord`) and the building of the INTERACTION_CREATE payload that goes out on the gateway.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tests.fakes.discord.guild import FakeChannel, FakeGuild, FakeMember, FakeUser
from tests.fakes.discord.messages import StoredMessage
from tests.fakes.discord.protocol import CallbackType, MessageFlag, Perm, backdated_snowflake, snowflake_time

if TYPE_CHECKING:
    from tests.fakes.discord.fake import FakeDiscord
    from tests.fakes.discord.protocol import JSON, InteractionType


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


@dataclasses.dataclass(kw_only=True, eq=False)
class InteractionHandle:
    """A pushed interaction: await its callback, see its messages, bend its clock."""

    fake: FakeDiscord = dataclasses.field(repr=False)
    """The fake it was pushed to (its store of messages and its waiting)."""
    id: int
    token: str
    type: InteractionType
    guild: FakeGuild | None
    channel: FakeChannel
    user: FakeUser
    member: FakeMember | None
    message: StoredMessage | None
    """The message a component/modal interaction came from."""
    ack_deadline: float
    """Seconds the bot has to send the first callback (from dispatch)."""
    token_lifetime: dataclasses.InitVar[float]
    attachment_size_limit: int
    command_name: str | None
    payload: JSON = dataclasses.field(init=False)
    """The INTERACTION_CREATE payload as sent."""
    token_expires_at: float = dataclasses.field(init=False)
    """``time.time()`` after which the token (webhook routes) is invalid."""
    dispatched_at: float | None = dataclasses.field(default=None, init=False)
    """``time.monotonic()`` of the INTERACTION_CREATE dispatch."""
    shard: tuple[int, int] | None = dataclasses.field(default=None, init=False)
    """``(shard_id, shard_count)`` of the gateway session it went to; ``None`` if no session ran its shard."""
    callbacks: list[CallbackRecord] = dataclasses.field(default_factory=list, init=False)
    """Every callback attempt that reached the handler, in order."""
    original_message_id: int | None = dataclasses.field(default=None, init=False)
    """The message the interaction's ``@original`` refers to, once there is one."""
    followup_ids: list[int] = dataclasses.field(default_factory=list, init=False)
    """Ids of followup messages, in order."""
    _ack_missed: bool = dataclasses.field(default=False, init=False)

    def __post_init__(self, token_lifetime: float) -> None:
        self.token_expires_at = snowflake_time(self.id).timestamp() + token_lifetime

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
        return self.fake.messages.get(self.original_message_id)

    @property
    def followups(self) -> list[StoredMessage]:
        """Followup messages, in order."""
        return [self.fake.messages[i] for i in self.followup_ids]

    def expire_token(self) -> None:
        """Make the token expire now: webhook routes answer 401/50027 from here on."""
        self.token_expires_at = time.time() - 0.001
        self.fake._changed()

    def miss_ack_deadline(self) -> None:
        """Behave as if the 3 s acknowledgement deadline already passed: callbacks answer 404/10062."""
        self._ack_missed = True
        self.fake._changed()

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

        return await self.fake.wait_for(found, timeout, what=f"callback of interaction {self.id}")

    async def wait_message(
        self, predicate: Callable[[StoredMessage], bool] | None = None, timeout: float = 5.0
    ) -> StoredMessage:
        """Wait until the original message exists (and satisfies ``predicate``) and return it."""

        def found() -> StoredMessage | None:
            message = self.original_message
            if message is None or (predicate is not None and not predicate(message)):
                return None
            return message

        return await self.fake.wait_for(found, timeout, what=f"original message of interaction {self.id}")


#: Alias: the handle of a pushed interaction.
Interaction = InteractionHandle


@dataclasses.dataclass(frozen=True)
class _Overrides:
    """What a test may change for one pushed interaction (``None``: the fake's setting)."""

    attachment_size_limit: int | None = None
    ack_deadline: float | None = None
    token_lifetime: float | None = None
    backdate: float | dt.timedelta = 0.0
    app_permissions: int | None = None


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


class InteractionsMixin:
    """Part of :class:`FakeDiscord`: who and where an interaction happens, its payload and its dispatch."""

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

    def _interaction_payload(
        self, handle: InteractionHandle, data: JSON, *, locale: str, app_permissions: int | None
    ) -> JSON:
        payload: JSON = {
            "id": str(handle.id),
            "application_id": str(self.application_id),
            "type": int(handle.type),
            "token": handle.token,
            "version": 1,
            "data": data,
            "channel_id": str(handle.channel.id),
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": handle.attachment_size_limit,
        }
        channel_payload = handle.channel.payload()
        if handle.guild is not None and handle.member is not None:
            guild = handle.guild
            perms = guild.permissions_in(handle.member, handle.channel)
            bot_perms = guild.permissions_in(guild.bot_member, handle.channel)
            channel_payload["permissions"] = str(perms)
            payload.update(
                guild_id=str(guild.id),
                guild={"id": str(guild.id), "locale": guild.locale, "features": []},
                guild_locale=guild.locale,
                member=handle.member.payload(permissions=perms),
                app_permissions=str(app_permissions if app_permissions is not None else bot_perms),
                authorizing_integration_owners={"0": str(guild.id)},
                context=0,
            )
        else:
            default_dm = int(Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES | Perm.EMBED_LINKS | Perm.ATTACH_FILES)
            payload.update(
                user=handle.user.payload(),
                app_permissions=str(app_permissions if app_permissions is not None else default_dm),
                authorizing_integration_owners={"0": "0"},
                context=1,
            )
        payload["channel"] = channel_payload
        if not self.interaction_channels:
            del payload["channel"], payload["channel_id"]
        if handle.message is not None:
            payload["message"] = handle.message.payload()
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
        overrides: _Overrides,
    ) -> InteractionHandle:
        interaction_id = backdated_snowflake(overrides.backdate)
        token = f"aW50ZXJhY3Rpb24.{interaction_id}.{secrets.token_urlsafe(32)}"
        limit = overrides.attachment_size_limit
        if limit is None:
            limit = self.attachment_size_limit
        handle = InteractionHandle(
            fake=self,
            id=interaction_id,
            token=token,
            type=itype,
            guild=ctx.guild,
            channel=ctx.channel,
            user=ctx.user,
            member=ctx.member,
            message=message,
            ack_deadline=overrides.ack_deadline if overrides.ack_deadline is not None else self.ack_deadline,
            token_lifetime=self.token_lifetime if overrides.token_lifetime is None else overrides.token_lifetime,
            attachment_size_limit=limit,
            command_name=command_name,
        )
        handle.payload = self._interaction_payload(
            handle, data, locale=locale, app_permissions=overrides.app_permissions
        )
        self.interactions[interaction_id] = handle
        handle.dispatched_at = time.monotonic()
        session = await self._deliver("INTERACTION_CREATE", handle.payload, ctx.guild.id if ctx.guild else None)
        handle.shard = None if session is None else (session.shard_id, session.shard_count)
        return handle
