"""The fake itself: :class:`FakeDiscord` (its switches and state, serving, waiting, setting up guilds and
users) put together from the parts of the other modules, and :func:`patch_discord_py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakes.discord.actions import ActionsMixin
from tests.fakes.discord.attachments import AttachmentsMixin
from tests.fakes.discord.faults import FaultsMixin
from tests.fakes.discord.gateway import GatewayMixin
from tests.fakes.discord.guild import FakeChannel, FakeGuild, FakeMember, FakeUser
from tests.fakes.discord.http import HttpMixin
from tests.fakes.discord.interactions import InteractionsMixin
from tests.fakes.discord.options import OptionsMixin
from tests.fakes.discord.protocol import (
    API_PREFIX,
    DEFAULT_ACK_DEADLINE,
    DEFAULT_ATTACHMENT_SIZE_LIMIT,
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_TOKEN_LIFETIME,
    EDIT_LIMIT,
    EDIT_WINDOW,
    IDENTIFY_WINDOW,
    MIB,
    Perm,
    snowflake,
)
from tests.fakes.discord.ratelimits import MessageEditLimit, RateLimitsMixin
from tests.fakes.discord.rest_app import AppRoutesMixin
from tests.fakes.discord.rest_channels import ChannelRoutesMixin
from tests.fakes.discord.rest_interactions import InteractionRoutesMixin
from tests.fakes.discord.store import StoreMixin
from tests.fakes.server import LoopbackServer

if TYPE_CHECKING:
    from tests.fakes.discord.faults import DiscordChaos, Fault, Hold
    from tests.fakes.discord.gateway import IdentifyRecord, _GatewaySession
    from tests.fakes.discord.http import RecordedRequest
    from tests.fakes.discord.interactions import InteractionHandle
    from tests.fakes.discord.messages import StoredAttachment, StoredMessage
    from tests.fakes.discord.protocol import JSON, T
    from tests.fakes.discord.ratelimits import RateLimitedEdit


class FakeDiscord(
    ActionsMixin,
    OptionsMixin,
    InteractionsMixin,
    FaultsMixin,
    GatewayMixin,
    InteractionRoutesMixin,
    ChannelRoutesMixin,
    AppRoutesMixin,
    HttpMixin,
    RateLimitsMixin,
    AttachmentsMixin,
    StoreMixin,
    LoopbackServer,
):
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
        super().__init__()

    def _application(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=512 * MIB)
        self._add_routes(app)
        return app

    async def close(self) -> None:
        """Close gateway connections and stop the server."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001)
        await self._stop_serving()

    @property
    def http_base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.origin

    @property
    def api_base(self) -> str:
        """REST root for ``discord.http.Route.BASE``: ``http://127.0.0.1:PORT/api/v10``."""
        return f"{self.http_base}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """Gateway URL for ``DiscordWebSocket.DEFAULT_GATEWAY``: ``ws://127.0.0.1:PORT/gateway``."""
        return f"ws://127.0.0.1:{self.port}/gateway"

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
            id=guild_id,
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
