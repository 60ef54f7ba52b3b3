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

Modules (lowest first; each owns one responsibility, :class:`FakeDiscord` in ``fake`` puts the parts together):

* ``protocol``: limits, permission/flag/intent bits, interaction and callback types, :class:`Routes`, snowflakes.
* ``components``: the rules for action rows, buttons, modals and text inputs, and what a submitted modal sends.
* ``errors``: :class:`DiscordError`, the named errors, and the payload checks that answer 400/50035.
* ``guild``: users, roles, channels, members and guilds, and the permission computation.
* ``messages``: uploads, attachments, message versions and stored messages.
* ``interactions``: :class:`InteractionHandle`, :class:`CallbackRecord` and the INTERACTION_CREATE payload.
* ``options``: slash-command options given by a test, turned into Discord's option objects.
* ``actions``: what a test makes users do (slash, autocomplete, click, submit_modal, messages).
* ``faults``: scripted faults, holds and :class:`DiscordChaos`.
* ``ratelimits``: the per-message edit limit (:class:`MessageEditLimit`) and rate-limit headers.
* ``attachments``: uploaded files stored with their bytes and served from the CDN route.
* ``store``: the one message store every route reads and writes.
* ``http``: the route table, the recording middleware, authentication and JSON answers.
* ``rest_app``, ``rest_interactions``, ``rest_channels``: the REST routes, by what they serve.
* ``gateway``: the websocket, sessions bound to shards, the identify limit and dispatches.
* ``fake``: :class:`FakeDiscord` and :func:`patch_discord_py`.
"""

from tests.fakes.discord.errors import DiscordError
from tests.fakes.discord.fake import FakeDiscord, patch_discord_py
from tests.fakes.discord.faults import DiscordChaos, Fault
from tests.fakes.discord.gateway import IdentifyRecord
from tests.fakes.discord.guild import FakeChannel, FakeGuild, FakeMember, FakeRole, FakeUser
from tests.fakes.discord.http import RecordedRequest
from tests.fakes.discord.interactions import CallbackRecord, Interaction, InteractionHandle
from tests.fakes.discord.messages import MessageVersion, StoredAttachment, StoredMessage, Upload
from tests.fakes.discord.protocol import (
    ALL_PERMISSIONS,
    DEFAULT_ATTACHMENT_SIZE_LIMIT,
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    EDIT_LIMIT,
    EDIT_WINDOW,
    IDENTIFY_WINDOW,
    CallbackType,
    Intent,
    InteractionType,
    MessageFlag,
    Perm,
    Routes,
    backdated_snowflake,
    snowflake,
    snowflake_time,
)
from tests.fakes.discord.ratelimits import MessageEditLimit, RateLimitedEdit

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
