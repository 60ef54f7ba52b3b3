"""Tests of the fake Discord (tests/fakes/discord/) driven by a real discord.py ``commands.Bot``."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from PIL import Image

from tests.fakes.discord import (
    DEFAULT_ATTACHMENT_SIZE_LIMIT,
    CallbackType,
    FakeDiscord,
    FakeGuild,
    MessageEditLimit,
    MessageFlag,
    Perm,
    Routes,
    Upload,
    backdated_snowflake,
    patch_discord_py,
    snowflake,
    snowflake_time,
)

TOKEN = "test-token.abc.def"


def _png(width: int = 64, height: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------- the test cog


class VoteView(discord.ui.View):
    """Two buttons: one updates the message (type 7), one only acknowledges (type 6)."""

    def __init__(self) -> None:
        super().__init__(timeout=60)

    @discord.ui.button(label="Up", custom_id="vote:up")
    async def up(self, interaction: discord.Interaction, button: discord.ui.Button[VoteView]) -> None:
        """Edit the message the button is on."""
        await interaction.response.edit_message(content=f"Voted up by {interaction.user.name}", view=None)

    @discord.ui.button(label="Ack", custom_id="vote:ack")
    async def ack(self, interaction: discord.Interaction, button: discord.ui.Button[VoteView]) -> None:
        """Acknowledge without changing anything, then edit via the component's @original."""
        await interaction.response.defer()
        await interaction.edit_original_response(content="Acknowledged")


class FeedbackModal(discord.ui.Modal, title="Feedback"):
    """A one-field modal."""

    text: discord.ui.TextInput[FeedbackModal] = discord.ui.TextInput(label="Your feedback", custom_id="feedback:text")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        """Thank the user, quoting the field."""
        await interaction.response.send_message(f"thanks: {self.text.value}", ephemeral=True)


class ProbeCog(commands.Cog):
    """Slash commands that exercise the fake's routes and rules."""

    admin = app_commands.Group(name="admin", description="Admin tools")
    queue = app_commands.Group(name="queue", description="Queue tools", parent=admin)

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.outcomes: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.completed: set[int] = set()
        self._completion = asyncio.Condition()

    async def outcome(self, timeout: float = 5.0) -> tuple[str, Any]:
        """Wait for the next thing a command reported."""
        return await asyncio.wait_for(self.outcomes.get(), timeout)

    @commands.Cog.listener()
    async def on_app_command_completion(self, interaction: discord.Interaction, command: object) -> None:
        """Record finished commands (after this, any view they sent is registered)."""
        async with self._completion:
            self.completed.add(interaction.id)
            self._completion.notify_all()

    async def wait_completed(self, interaction_id: int, timeout: float = 5.0) -> None:
        """Wait until the bot finished handling the command ``interaction_id``."""
        async with asyncio.timeout(timeout), self._completion:
            await self._completion.wait_for(lambda: interaction_id in self.completed)

    @app_commands.command(name="draw", description="Defer, two status edits, then an image")
    async def draw(self, interaction: discord.Interaction, prompt: str) -> None:
        """Mimic /imagine."""
        await interaction.response.defer(thinking=True)
        await interaction.edit_original_response(content=f"Queued: {prompt}")
        await interaction.edit_original_response(content="Rendering…")
        await interaction.edit_original_response(
            content="Done", attachments=[discord.File(io.BytesIO(_png()), filename="result.png")]
        )
        self.outcomes.put_nowait(("draw", "ok"))

    @app_commands.command(name="secret", description="Ephemeral reply")
    async def secret(self, interaction: discord.Interaction) -> None:
        """Reply only to the caller."""
        await interaction.response.send_message("psst", ephemeral=True)

    @app_commands.command(name="think", description="Ephemeral defer then two followups")
    async def think(self, interaction: discord.Interaction) -> None:
        """The first followup replaces the thinking message, the second is a new message."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send("first")
        await interaction.followup.send("second")
        self.outcomes.put_nowait(("think", "ok"))

    @queue.command(name="clear", description="Clear the queue")
    async def clear(self, interaction: discord.Interaction, count: int) -> None:
        """A subcommand in a subcommand group."""
        await interaction.response.send_message(f"cleared {count}")

    @app_commands.command(name="style", description="Pick a style")
    async def style(self, interaction: discord.Interaction, style: str) -> None:
        """A command with an autocompleted option."""
        await interaction.response.send_message(f"style {style}")

    @style.autocomplete("style")
    async def style_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """Forty candidates, trimmed to Discord's 25."""
        names = [f"{current}style-{i}" for i in range(40)]
        return [app_commands.Choice(name=n, value=n) for n in names][:25]

    @app_commands.command(name="vote", description="A message with buttons")
    async def vote(self, interaction: discord.Interaction) -> None:
        """Send a view."""
        await interaction.response.send_message("Vote!", view=VoteView())

    @app_commands.command(name="slow", description="Acknowledges only when the test opens the gate")
    async def slow(self, interaction: discord.Interaction) -> None:
        """Late acknowledgement."""
        await self.gate.wait()
        try:
            await interaction.response.defer()
        except discord.HTTPException as exc:
            self.outcomes.put_nowait(("slow", (exc.status, exc.code)))

    @app_commands.command(name="long", description="Outlives its token, then edits via the channel")
    async def long(self, interaction: discord.Interaction) -> None:
        """Fall back to the channel route when the webhook token is gone."""
        response = await interaction.response.defer(thinking=True)
        await self.gate.wait()
        try:
            await interaction.edit_original_response(content="done")
        except discord.HTTPException as exc:
            self.outcomes.put_nowait(("long-webhook", (exc.status, exc.code)))
            assert isinstance(interaction.channel, discord.TextChannel)
            assert response is not None and response.message_id is not None
            await interaction.channel.get_partial_message(response.message_id).edit(content="done via channel")
            self.outcomes.put_nowait(("long-channel", "ok"))

    @app_commands.command(name="big", description="Uploads a file larger than allowed")
    async def big(self, interaction: discord.Interaction) -> None:
        """Hit the attachment size limit."""
        await interaction.response.defer()
        payload = b"x" * (interaction.filesize_limit + 1)
        try:
            await interaction.edit_original_response(attachments=[discord.File(io.BytesIO(payload), "big.bin")])
        except discord.HTTPException as exc:
            self.outcomes.put_nowait(("big", (exc.status, exc.code)))

    @app_commands.command(name="files", description="Edits its response with some small files")
    async def files(self, interaction: discord.Interaction, count: int) -> None:
        """Hit the attachment count limit, or uploads refused altogether."""
        await interaction.response.defer()
        uploads = [discord.File(io.BytesIO(_png()), f"{index}.png") for index in range(count)]
        try:
            # discord.py does not count ``attachments``: all of them reach the fake, as they would reach Discord.
            await interaction.edit_original_response(attachments=uploads)
        except discord.HTTPException as exc:
            self.outcomes.put_nowait(("files", (exc.status, exc.code)))
        else:
            self.outcomes.put_nowait(("files", "ok"))

    @app_commands.command(name="status", description="Edits its response after the test opens the gate")
    async def status(self, interaction: discord.Interaction) -> None:
        """Edit a message someone deleted meanwhile."""
        await interaction.response.send_message("working")
        await self.gate.wait()
        try:
            await interaction.edit_original_response(content="done")
        except discord.HTTPException as exc:
            self.outcomes.put_nowait(("status", (exc.status, exc.code)))

    @app_commands.command(name="burst", description="Replies, then edits its reply as fast as it can")
    async def burst(self, interaction: discord.Interaction, edits: int) -> None:
        """Edit one message more often than Discord allows: discord.py must wait where the headers say."""
        await interaction.response.send_message("0")
        for number in range(1, edits + 1):
            await interaction.edit_original_response(content=str(number))
        self.outcomes.put_nowait(("burst", "ok"))

    @app_commands.command(name="plain", description="Just replies")
    async def plain(self, interaction: discord.Interaction) -> None:
        """Reply; failures are reported."""
        try:
            await interaction.response.send_message("plain")
        except discord.HTTPException as exc:
            self.outcomes.put_nowait(("plain", (exc.status, exc.code)))

    @app_commands.command(name="inspect", description="Typed options")
    async def inspect(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        channel: discord.TextChannel,
        role: discord.Role,
        image: discord.Attachment,
        ratio: float,
    ) -> None:
        """Echo what discord.py resolved, including the uploaded image's bytes."""
        data = await image.read()
        await interaction.response.send_message(
            f"{member.name}|{channel.name}|{channel.is_nsfw()}|{role.name}|{image.filename}|{len(data)}|{ratio}"
        )

    @app_commands.command(name="feedback", description="Opens a modal")
    async def feedback(self, interaction: discord.Interaction) -> None:
        """Answer with a modal."""
        await interaction.response.send_modal(FeedbackModal())

    @app_commands.command(name="announce", description="Reply with a file, then post in the channel")
    async def announce(self, interaction: discord.Interaction) -> None:
        """Exercise the multipart callback and the channel routes."""
        await interaction.response.send_message("posting", file=discord.File(io.BytesIO(_png(8, 8)), "small.png"))
        assert isinstance(interaction.channel, discord.TextChannel)
        posted = await interaction.channel.send(
            f"hello @everyone and {interaction.user.mention}",
            allowed_mentions=discord.AllowedMentions(everyone=False, users=True),
        )
        await posted.edit(content="edited")
        self.outcomes.put_nowait(("announce", posted.id))

    @app_commands.command(name="guarded", description="Needs Manage Server")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def guarded(self, interaction: discord.Interaction) -> None:
        """Moderator-only."""
        await interaction.response.send_message("allowed")

    @guarded.error
    async def guarded_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """Refuse ordinary members."""
        await interaction.response.send_message(f"denied: {type(error).__name__}", ephemeral=True)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """A started fake with one default guild."""
    async with FakeDiscord(token=TOKEN) as fake:
        fake.add_guild("Test Guild")
        yield fake


@pytest.fixture
def guild(fake: FakeDiscord) -> FakeGuild:
    """The default guild."""
    return next(iter(fake.guilds.values()))


@pytest.fixture
def cog() -> ProbeCog:
    """The test cog."""
    return ProbeCog()


@pytest.fixture
async def bot(fake: FakeDiscord, cog: ProbeCog) -> AsyncIterator[commands.Bot]:
    """A real commands.Bot connected to the fake; closed and discord.py un-patched afterwards."""
    with patch_discord_py(fake):
        client = commands.Bot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0)
        await client.add_cog(cog)
        runner = asyncio.create_task(client.start(TOKEN))
        identified = asyncio.create_task(fake.wait_until_identified(5))
        try:
            done, _ = await asyncio.wait({runner, identified}, return_when=asyncio.FIRST_COMPLETED)
            if runner in done:
                runner.result()
                raise AssertionError("bot stopped before identifying")
            await identified
            await asyncio.wait_for(client.wait_until_ready(), 5)
            yield client
        finally:
            identified.cancel()
            await client.close()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(runner, 5)


# --------------------------------------------------------------------------- fake-only tests


def test_snowflakes_encode_time_and_can_be_backdated() -> None:
    now = time.time()
    fresh = snowflake()
    assert abs(snowflake_time(fresh).timestamp() - now) < 1
    assert snowflake() != fresh
    old = backdated_snowflake(16 * 60)
    assert abs(snowflake_time(old).timestamp() - (now - 16 * 60)) < 1


async def test_rest_basics_headers_auth_and_faults(fake: FakeDiscord) -> None:
    auth = {"Authorization": f"Bot {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake.api_base}/users/@me", headers={"Authorization": "Bot nope"}) as resp:
            assert resp.status == 401
            assert resp.headers["Content-Type"] == "application/json"
        async with http.get(f"{fake.api_base}/users/@me", headers=auth) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
            assert int(resp.headers["X-RateLimit-Remaining"]) > 0
            assert "X-RateLimit-Bucket" in resp.headers
            assert (await resp.json())["id"] == str(fake.bot_user.id)
        async with http.get(f"{fake.api_base}/gateway") as resp:
            assert (await resp.json())["url"] == fake.gateway_url

        fake.fail_next(Routes.USERS_ME, status=503, code=0, message="upstream")
        async with http.get(f"{fake.api_base}/users/@me", headers=auth) as resp:
            assert resp.status == 503
        fake.rate_limit_next("GET /users/*", retry_after=0.25, via=False, scope="shared")
        async with http.get(f"{fake.api_base}/users/@me", headers=auth) as resp:
            assert resp.status == 429
            assert "Via" not in resp.headers
            assert resp.headers["X-RateLimit-Scope"] == "shared"
            assert (await resp.json())["retry_after"] == 0.25
        async with http.get(f"{fake.api_base}/nothing/here", headers=auth) as resp:
            assert resp.status == 404

    statuses = [r.status for r in fake.requests_for(Routes.USERS_ME)]
    assert statuses == [401, 200, 503, 429]
    assert [r.path for r in fake.unmatched_requests] == ["/nothing/here"]


def with_file() -> aiohttp.FormData:
    """A message with one image attached (multipart), as a result's images are sent."""
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", json.dumps({"content": "with a file"}), content_type="application/json")
    form.add_field("files[0]", _png(), filename="a.png", content_type="image/png")
    return form


async def test_faults_can_hit_only_uploads_and_reset_the_connection(fake: FakeDiscord) -> None:
    channel = fake.add_guild("Faults").channel("general")
    url = f"{fake.api_base}/channels/{channel.id}/messages"
    auth = {"Authorization": f"Bot {TOKEN}"}
    fake.fail_next(Routes.CREATE_MESSAGE, status=503, uploads_only=True)
    reset = fake.reset_next(Routes.CREATE_MESSAGE, uploads_only=True)

    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"content": "plain"}, headers=auth) as resp:
            assert resp.status == 200  # no upload: the faults wait for one
        async with http.post(url, data=with_file(), headers=auth) as resp:
            assert resp.status == 503
        with pytest.raises(aiohttp.ClientError):  # reset: no answer at all
            async with http.post(url, data=with_file(), headers=auth) as resp:
                await resp.read()
        async with http.post(url, data=with_file(), headers=auth) as resp:
            assert resp.status == 200
    assert reset.hits == 1
    assert [r.status for r in fake.requests_for(Routes.CREATE_MESSAGE)] == [200, 503, 0, 200]
    assert [(m.content, len(m.attachments)) for m in fake.messages_in(channel)] == [("plain", 0), ("with a file", 1)]


async def test_faults_can_spare_uploads(fake: FakeDiscord) -> None:
    """``no_uploads``: the edits before a result's images fail, the one with them goes through."""
    channel = fake.add_guild("Faults").channel("general")
    url = f"{fake.api_base}/channels/{channel.id}/messages"
    auth = {"Authorization": f"Bot {TOKEN}"}
    fault = fake.fail_next(Routes.CREATE_MESSAGE, status=500, times=2, no_uploads=True)

    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=with_file(), headers=auth) as resp:
            assert resp.status == 200  # an upload: spared
        async with http.post(url, json={"content": "plain"}, headers=auth) as resp:
            assert resp.status == 500
    assert fault.hits == 1 and fault.times == 1


async def test_a_message_takes_five_edits_per_window_whichever_route_edits_it(
    fake: FakeDiscord, bot: commands.Bot
) -> None:
    """Discord's limit on one message's edits: every route counts, the answers say what is left, past it 429."""
    fake.edit_limiter = MessageEditLimit(limit=5, window=0.5)
    handle = await fake.slash("plain")
    message = await handle.wait_message()
    webhook = f"{fake.api_base}/webhooks/{fake.application_id}/{handle.token}/messages"
    channel = f"{fake.api_base}/channels/{message.channel_id}/messages/{message.id}"
    auth = {"Authorization": f"Bot {TOKEN}"}
    edits = [f"{webhook}/@original", f"{webhook}/{message.id}", channel, f"{webhook}/@original", channel]
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        for number, url in enumerate(edits, start=1):
            async with http.patch(url, json={"content": str(number)}, headers=auth) as resp:
                assert resp.status == 200
                assert resp.headers["X-RateLimit-Limit"] == "5"
                assert resp.headers["X-RateLimit-Remaining"] == str(5 - number)
                assert 0 < float(resp.headers["X-RateLimit-Reset-After"]) <= 0.5
                assert "X-RateLimit-Bucket" in resp.headers
        async with http.patch(f"{webhook}/@original", json={"content": "sixth"}, headers=auth) as resp:
            assert resp.status == 429
            body = await resp.json()
            assert resp.headers["Via"] and resp.headers["X-RateLimit-Remaining"] == "0"
            assert int(resp.headers["Retry-After"]) >= 1  # whole seconds, rounded up, as Discord sends it
            assert body["global"] is False and 0 < body["retry_after"] <= 0.5
        assert message.content == "5"
        assert [(edit.route, edit.message_id) for edit in fake.rate_limited] == [(Routes.EDIT_ORIGINAL, message.id)]
        posted = f"{fake.api_base}/channels/{message.channel_id}/messages"
        async with http.post(posted, json={"content": "another"}, headers=auth) as resp:
            another = (await resp.json())["id"]
        async with http.patch(f"{posted}/{another}", json={"content": "edited"}, headers=auth) as resp:
            assert (resp.status, resp.headers["X-RateLimit-Remaining"]) == (200, "4")  # each message its own count
        await asyncio.sleep(max(0.0, started + 0.5 - time.monotonic()) + body["retry_after"])
        async with http.patch(channel, json={"content": "later"}, headers=auth) as resp:
            assert resp.status == 200  # the first edits have left the window
    assert message.content == "later"
    assert fake.requests_for(Routes.EDIT_ORIGINAL)[-1].status == 429


async def test_discord_py_waits_where_the_edit_limit_headers_say_and_draws_no_429(
    fake: FakeDiscord, bot: commands.Bot, cog: ProbeCog
) -> None:
    fake.edit_limiter = MessageEditLimit(limit=5, window=0.5)
    handle = await fake.slash("burst", {"edits": 8})
    assert await cog.outcome(timeout=10) == ("burst", "ok")
    message = fake.message_of(handle)
    assert message is not None and message.content == "8"
    assert fake.rate_limited == []
    edits = message.edit_times()
    assert all(sum(1 for later in edits if at <= later < at + 0.5) <= 5 for at in edits)


async def test_the_edit_limit_can_be_lifted() -> None:
    async with FakeDiscord(token=TOKEN, edit_window=None) as fake, aiohttp.ClientSession() as http:
        posted = f"{fake.api_base}/channels/{fake.add_guild('Unlimited').channel('general').id}/messages"
        auth = {"Authorization": f"Bot {TOKEN}"}
        async with http.post(posted, json={"content": "0"}, headers=auth) as resp:
            url = f"{posted}/{(await resp.json())['id']}"
        for number in range(1, 9):
            async with http.patch(url, json={"content": str(number)}, headers=auth) as resp:
                assert resp.status == 200
        assert fake.edit_limiter is None and fake.rate_limited == []


async def test_wait_for_times_out_with_a_description(fake: FakeDiscord) -> None:
    with pytest.raises(TimeoutError, match="never"):
        await fake.wait_for(lambda: False, 0.05, what="never")


async def test_wrong_token_raises_login_failure(fake: FakeDiscord) -> None:
    with patch_discord_py(fake):
        client = commands.Bot(command_prefix="!", intents=discord.Intents.default())
        try:
            with pytest.raises(discord.LoginFailure):
                await client.login("wrong-token")
        finally:
            await client.close()


# --------------------------------------------------------------------------- bot tests


async def test_bot_connects_and_syncs_commands(fake: FakeDiscord, guild: FakeGuild, bot: commands.Bot) -> None:
    assert fake.intents == discord.Intents.default().value
    cached = bot.get_guild(guild.id)
    assert cached is not None
    nsfw = cached.get_channel(guild.channel("nsfw").id)
    assert isinstance(nsfw, discord.TextChannel) and nsfw.is_nsfw()

    synced = await bot.tree.sync()
    assert {c.name for c in synced} == {c["name"] for c in fake.global_commands}
    assert "draw" in {c["name"] for c in fake.global_commands}
    bot.tree.copy_global_to(guild=discord.Object(guild.id))
    guild_synced = await bot.tree.sync(guild=discord.Object(guild.id))
    assert [c.id for c in guild_synced] == [int(c["id"]) for c in fake.guild_commands[guild.id]]
    fetched = await bot.tree.fetch_commands(guild=discord.Object(guild.id))
    assert {c.name for c in fetched} == {c.name for c in guild_synced}

    # Re-syncing keeps ids (an update, not a create).
    creates = fake.command_creates
    await bot.tree.sync()
    assert fake.command_creates == creates

    # Synced to the guild, the interaction carries data.guild_id and the synced command id.
    handle = await fake.slash("admin queue clear", {"count": 3})
    assert handle.payload["data"]["guild_id"] == str(guild.id)
    assert (await handle.wait_callback()).content == "cleared 3"


async def test_slash_defer_edits_and_image(fake: FakeDiscord, bot: commands.Bot, cog: ProbeCog) -> None:
    handle = await fake.slash("draw", {"prompt": "a red square"})
    callback = await handle.wait_callback()
    assert callback.accepted and callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE
    assert await cog.outcome() == ("draw", "ok")

    message = fake.message_of(handle)
    assert message is not None
    assert [v.content for v in message.history] == ["", "Queued: a red square", "Rendering…", "Done"]
    assert message.history[0].loading and not message.current.loading
    assert message.routes == [Routes.CALLBACK] + [Routes.EDIT_ORIGINAL] * 3
    image = message.current.attachment("result.png")
    assert image.data == _png()
    assert (image.size, image.content_type, image.width, image.height) == (len(_png()), "image/png", 64, 32)
    assert len(message.edit_intervals()) == 3
    assert fake.messages_in(handle.channel) == [message]
    edits = fake.requests_for(Routes.EDIT_ORIGINAL)
    assert [r.status for r in edits] == [200, 200, 200]
    assert edits[-1].files == (("result.png", len(_png())),)

    # The CDN URL serves the bytes.
    async with aiohttp.ClientSession() as http, http.get(image.url) as resp:
        assert await resp.read() == image.data


async def test_attachments_may_come_without_a_content_type(fake: FakeDiscord, bot: commands.Bot, cog: ProbeCog) -> None:
    """Discord's ``content_type`` is optional: switched off, it is left out of the payload (never null)."""
    fake.attachment_content_types = False
    handle = await fake.slash("draw", {"prompt": "a red square"})
    await handle.wait_callback()
    assert await cog.outcome() == ("draw", "ok")
    message = fake.message_of(handle)
    assert message is not None
    image = message.current.attachment("result.png")
    assert image.content_type is None and "content_type" not in image.payload()
    async with aiohttp.ClientSession() as http, http.get(image.url) as resp:
        assert await resp.read() == image.data and resp.content_type == "application/octet-stream"


async def test_ephemeral_reply_and_followups(fake: FakeDiscord, bot: commands.Bot, cog: ProbeCog) -> None:
    handle = await fake.slash("secret")
    callback = await handle.wait_callback()
    assert callback.type == CallbackType.CHANNEL_MESSAGE and callback.ephemeral
    message = await handle.wait_message()
    assert message.ephemeral and message.content == "psst"

    # Ephemeral messages are invisible to channel routes.
    url = f"{fake.api_base}/channels/{message.channel_id}/messages/{message.id}"
    async with aiohttp.ClientSession() as http, http.get(url, headers={"Authorization": f"Bot {TOKEN}"}) as resp:
        assert resp.status == 404 and (await resp.json())["code"] == 10008

    thinking = await fake.slash("think")
    assert await cog.outcome() == ("think", "ok")
    original = fake.message_of(thinking)
    assert original is not None and original.ephemeral
    assert [v.content for v in original.history] == ["", "first"]
    assert [m.content for m in thinking.followups] == ["second"]
    assert thinking.followups[0].ephemeral is False


async def test_subcommand_group_dispatch_without_sync(fake: FakeDiscord, bot: commands.Bot) -> None:
    handle = await fake.slash("admin", {"count": 7}, subcommand_group="queue", subcommand="clear")
    option = handle.payload["data"]["options"][0]
    assert (option["type"], option["name"]) == (2, "queue")
    assert option["options"][0]["options"] == [{"name": "count", "type": 4, "value": 7}]
    callback = await handle.wait_callback()
    assert callback.content == "cleared 7"


async def test_autocomplete_returns_at_most_25_choices(fake: FakeDiscord, bot: commands.Bot) -> None:
    handle = await fake.autocomplete("style", {"style": "neo"}, focused="style")
    callback = await handle.wait_callback()
    assert callback.type == CallbackType.AUTOCOMPLETE_RESULT
    assert len(callback.choices) == 25
    assert callback.choices[0] == {"name": "neostyle-0", "value": "neostyle-0"}


async def test_button_click_updates_or_acknowledges(
    fake: FakeDiscord, guild: FakeGuild, bot: commands.Bot, cog: ProbeCog
) -> None:
    handle = await fake.slash("vote")
    message = await handle.wait_message()
    await cog.wait_completed(handle.id)  # the bot registers the view only after its response returned
    assert message.current.custom_ids == ["vote:up", "vote:ack"]

    ack = await fake.click(message, "vote:ack", user=guild.member("moderator"))
    assert (await ack.wait_callback()).type == CallbackType.DEFERRED_UPDATE_MESSAGE
    await fake.wait_for(lambda: message.content == "Acknowledged")
    assert ack.original_message is message

    click = await fake.click(message.id, "vote:up", user=guild.member("moderator"))
    callback = await click.wait_callback()
    assert callback.type == CallbackType.UPDATE_MESSAGE
    assert message.content == "Voted up by moderator"
    assert message.components == ()
    assert message.history[-1].callback_type == CallbackType.UPDATE_MESSAGE
    assert [v.content for v in message.history] == ["Vote!", "Acknowledged", "Voted up by moderator"]


async def test_late_acknowledgement_gets_10062(fake: FakeDiscord, bot: commands.Bot, cog: ProbeCog) -> None:
    handle = await fake.slash("slow")
    handle.miss_ack_deadline()
    cog.gate.set()
    callback = await handle.wait_callback()
    assert (callback.status, callback.code) == (404, 10062)
    assert await cog.outcome() == ("slow", (404, 10062))
    assert not handle.acknowledged and fake.message_of(handle) is None


async def test_expired_token_then_channel_route(fake: FakeDiscord, bot: commands.Bot, cog: ProbeCog) -> None:
    handle = await fake.slash("long")
    await handle.wait_callback(accepted_only=True)
    handle.expire_token()
    cog.gate.set()
    assert await cog.outcome() == ("long-webhook", (401, 50027))
    assert await cog.outcome() == ("long-channel", "ok")
    message = fake.message_of(handle)
    assert message is not None
    assert message.content == "done via channel"
    assert message.routes[-1] == Routes.EDIT_MESSAGE


async def test_backdated_interaction_expires_by_its_id(fake: FakeDiscord, bot: commands.Bot) -> None:
    handle = await fake.slash("plain", backdate=15 * 60 + 1)
    assert handle.token_expired
    callback = await handle.wait_callback()
    assert (callback.status, callback.code) == (404, 10062)


async def test_rate_limit_with_via_is_retried(fake: FakeDiscord, bot: commands.Bot, cog: ProbeCog) -> None:
    fault = fake.rate_limit_next(Routes.EDIT_ORIGINAL, times=2, retry_after=0.01)
    handle = await fake.slash("draw", {"prompt": "p"})
    assert await cog.outcome() == ("draw", "ok")
    assert fault.hits == 2
    statuses = [r.status for r in fake.requests_for(Routes.EDIT_ORIGINAL)]
    assert statuses == [429, 429, 200, 200, 200]
    message = fake.message_of(handle)
    assert message is not None and message.edit_count == 3


async def test_rate_limit_without_via_surfaces(fake: FakeDiscord, bot: commands.Bot, cog: ProbeCog) -> None:
    fake.rate_limit_next(Routes.CALLBACK, via=False)
    await fake.slash("plain")
    assert await cog.outcome() == ("plain", (429, 0))


async def test_oversized_attachment_gets_413(fake: FakeDiscord, bot: commands.Bot, cog: ProbeCog) -> None:
    handle = await fake.slash("big", attachment_size_limit=1024)
    assert handle.payload["attachment_size_limit"] == 1024
    assert await cog.outcome() == ("big", (413, 40005))
    message = fake.message_of(handle)
    assert message is not None and message.edit_count == 0
    assert fake.attachment_size_limit == DEFAULT_ATTACHMENT_SIZE_LIMIT


async def test_more_than_ten_attachments_or_refused_uploads_get_50035(
    fake: FakeDiscord, bot: commands.Bot, cog: ProbeCog
) -> None:
    await fake.slash("files", {"count": 11})
    assert await cog.outcome() == ("files", (400, 50035))
    await fake.slash("files", {"count": 10})
    assert await cog.outcome() == ("files", "ok")
    fake.refuse_uploads = True
    handle = await fake.slash("files", {"count": 1})
    assert await cog.outcome() == ("files", (400, 50035))
    message = fake.message_of(handle)
    assert message is not None and not message.attachments


async def test_deleted_message_gets_10008(fake: FakeDiscord, bot: commands.Bot, cog: ProbeCog) -> None:
    handle = await fake.slash("status")
    message = await handle.wait_message()
    await fake.delete_message(message)
    cog.gate.set()
    assert await cog.outcome() == ("status", (404, 10008))
    assert message.deleted and message.deleted_by == "user"
    assert fake.messages_in(handle.channel) == []


async def test_member_permissions_reach_checks(fake: FakeDiscord, guild: FakeGuild, bot: commands.Bot) -> None:
    moderator = guild.member("moderator")
    assert guild.permissions_in(moderator) & (Perm.MANAGE_GUILD | Perm.MANAGE_MESSAGES)
    allowed = await fake.slash("guarded", user=moderator)
    assert (await allowed.wait_callback()).content == "allowed"
    denied = await fake.slash("guarded", user=guild.member("member"))
    callback = await denied.wait_callback()
    assert callback.content == "denied: MissingPermissions"
    assert callback.flags & MessageFlag.EPHEMERAL


async def test_gateway_resume_after_disconnect(fake: FakeDiscord, bot: commands.Bot) -> None:
    await fake.disconnect_gateway()
    await fake.wait_for(lambda: fake.resume_count == 1)
    handle = await fake.slash("plain")
    assert (await handle.wait_callback()).content == "plain"
    assert len(fake.identify_payloads) == 1


async def test_typed_options_resolve_in_discord_py(fake: FakeDiscord, guild: FakeGuild, bot: commands.Bot) -> None:
    options = {
        "member": guild.member("moderator"),
        "channel": guild.channel("nsfw"),
        "role": guild.role("Moderator"),
        "image": Upload("input.png", _png(16, 16)),
        "ratio": 1.5,
    }
    handle = await fake.slash("inspect", options)
    resolved = handle.payload["data"]["resolved"]
    assert set(resolved) == {"users", "members", "channels", "roles", "attachments"}
    callback = await handle.wait_callback()
    assert callback.content == f"moderator|nsfw|True|Moderator|input.png|{len(_png(16, 16))}|1.5"


async def test_modal_round_trip(fake: FakeDiscord, bot: commands.Bot) -> None:
    handle = await fake.slash("feedback")
    callback = await handle.wait_callback()
    assert callback.type == CallbackType.MODAL
    assert handle.modal is not None and handle.modal["title"] == "Feedback"
    submit = await fake.submit_modal(handle, {"feedback:text": "nice"})
    answer = await submit.wait_callback()
    assert answer.content == "thanks: nice" and answer.ephemeral


async def test_dm_interaction(fake: FakeDiscord, guild: FakeGuild, bot: commands.Bot) -> None:
    user = guild.member("member")
    handle = await fake.slash("plain", dm=True, user=user)
    assert "member" not in handle.payload and handle.payload["context"] == 1
    message = await handle.wait_message()
    assert message.channel_id == fake.dm_channel(user).id and message.guild_id is None


async def test_multipart_callback_and_channel_routes(
    fake: FakeDiscord, guild: FakeGuild, bot: commands.Bot, cog: ProbeCog
) -> None:
    handle = await fake.slash("announce", user=guild.member("member"))
    kind, posted_id = await cog.outcome()
    assert kind == "announce"
    callback = handle.callbacks[0]
    assert callback.files == (("small.png", len(_png(8, 8))),)
    reply = fake.message_of(handle)
    assert reply is not None and reply.current.attachment("small.png").data == _png(8, 8)

    posted = fake.message(posted_id)
    assert posted.routes == [Routes.CREATE_MESSAGE, Routes.EDIT_MESSAGE]
    first = posted.history[0]
    assert first.mentions == (guild.member("member").id,) and not first.mention_everyone
    assert posted.content == "edited"
    assert fake.messages_in(guild.channel("general")) == [reply, posted]
    # Default intents include guild messages, so the bot got (and parsed) the gateway events.
    events = [event for event, _ in fake.dispatched]
    assert events.count("MESSAGE_CREATE") == 2 and "MESSAGE_UPDATE" in events


async def test_user_messages_are_blank_without_the_content_intent(
    fake: FakeDiscord, guild: FakeGuild, bot: commands.Bot
) -> None:
    member = guild.member("member")
    await fake.send_user_message(guild.channel("general"), member, "!hello")
    await fake.send_user_message(guild.channel("general"), member, f"{fake.bot_user.mention} hi")
    contents = [data["content"] for event, data in fake.dispatched if event == "MESSAGE_CREATE"]
    assert contents == ["", f"{fake.bot_user.mention} hi"]
    # The bot survived parsing them.
    assert (await (await fake.slash("plain")).wait_callback()).content == "plain"


async def test_request_size_limit(fake: FakeDiscord, bot: commands.Bot, cog: ProbeCog) -> None:
    fake.max_request_size = len(_png()) - 1
    await fake.slash("draw", {"prompt": "x"})
    statuses = await fake.wait_for(lambda: [r.status for r in fake.requests_for(Routes.EDIT_ORIGINAL)][2:])
    assert statuses == [413]


# --------------------------------------------------------------------------- shards


class RawShard:
    """One gateway connection driven by hand: IDENTIFY as ``shard``, then read what the fake dispatches."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[tuple[str, dict[str, Any]]] = []

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, fake: FakeDiscord, shard: list[int] | None) -> RawShard:
        """Connect, wait for HELLO and identify (as ``shard``, or naming none)."""
        ws = await session.ws_connect(fake.gateway_url)
        hello = await ws.receive_json()
        assert hello["op"] == 10
        identify: dict[str, Any] = {"token": TOKEN, "intents": 1, "properties": {}}
        if shard is not None:
            identify["shard"] = shard
        await ws.send_json({"op": 2, "d": identify})
        return cls(ws)

    async def until(self, event: str) -> dict[str, Any]:
        """Read frames up to the next dispatch of ``event``; return its data."""
        while True:
            message = await asyncio.wait_for(self.ws.receive(), 5)
            assert message.type is aiohttp.WSMsgType.TEXT, message
            frame = message.json()
            self.events.append((frame["t"], frame["d"]))
            if frame["t"] == event:
                return frame["d"]  # type: ignore[no-any-return]

    async def close_code(self) -> int:
        """Read frames until the fake closes the connection; its close code."""
        while True:
            message = await asyncio.wait_for(self.ws.receive(), 5)
            if message.type is aiohttp.WSMsgType.CLOSE:
                return int(message.data)
            assert message.type is aiohttp.WSMsgType.TEXT, message

    def guild_ids(self) -> list[int]:
        """Ids of the guilds this connection got a GUILD_CREATE for so far."""
        return [int(data["id"]) for event, data in self.events if event == "GUILD_CREATE"]


@dataclass
class TwoShards:
    """A fake recommending two shards, with one guild on each, and the session its connections use."""

    fake: FakeDiscord
    zero: FakeGuild
    one: FakeGuild
    session: aiohttp.ClientSession

    async def connect(self, shard: int) -> RawShard:
        """A connection identifying as ``shard`` of the two."""
        return await RawShard.connect(self.session, self.fake, [shard, 2])


@pytest.fixture
async def sharded(http: aiohttp.ClientSession) -> AsyncIterator[TwoShards]:
    async with FakeDiscord(token=TOKEN, shard_count=2) as fake:
        yield TwoShards(fake, fake.add_guild("Zero", shard=0), fake.add_guild("One", shard=1), http)


async def test_gateway_bot_recommends_the_shard_count_and_tells_the_identify_concurrency() -> None:
    async with FakeDiscord(token=TOKEN, shard_count=3, max_concurrency=2) as fake, aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bot {TOKEN}"}
        async with session.get(f"{fake.api_base}/gateway/bot", headers=headers) as response:
            body = await response.json()
        assert body["shards"] == 3 and body["url"] == fake.gateway_url
        assert body["session_start_limit"]["max_concurrency"] == 2


async def test_each_identify_bucket_starts_one_session_per_window_across_connections() -> None:
    async with FakeDiscord(token=TOKEN, shard_count=4, max_concurrency=2) as fake, aiohttp.ClientSession() as session:
        fake.identify_window = 0.5
        zero = await RawShard.connect(session, fake, [0, 4])
        one = await RawShard.connect(session, fake, [1, 4])  # bucket 1: free
        await zero.until("READY")
        await one.until("READY")
        # Shard 2 is in shard 0's bucket, on another connection: an invalid session, not resumable.
        two = await RawShard.connect(session, fake, [2, 4])
        refused = await asyncio.wait_for(two.ws.receive_json(), 5)
        assert refused == {"op": 9, "d": False, "s": None, "t": None}
        assert [(r.shard_id, r.bucket) for r in fake.identify_violations] == [(2, 0)]
        assert fake.identified_shards == [(0, 4), (1, 4)]
        # Once the bucket's window is over (the refused IDENTIFY started nothing), shard 2 identifies.
        await asyncio.sleep(fake.identify_window)
        await two.ws.send_json({"op": 2, "d": {"token": TOKEN, "intents": 1, "properties": {}, "shard": [2, 4]}})
        await two.until("READY")
        assert [r.refused for r in fake.identifies] == [False, False, True, False]
        assert len(fake.identify_times(0)) == 2 and len(fake.identify_times(1)) == 1
        for shard in (zero, one, two):
            await shard.ws.close()


async def test_guilds_are_created_on_the_shard_asked_for() -> None:
    fake = FakeDiscord(token=TOKEN, shard_count=4)
    for shard in (0, 1, 2, 3, 3, 1):
        guild = fake.add_guild(f"on {shard}", shard=shard)
        assert (guild.id >> 22) % 4 == shard == fake.shard_of(guild)
    assert len(fake.guilds) == 6
    with pytest.raises(ValueError, match="shard 4 does not exist"):
        fake.add_guild("nowhere", shard=4)
    wrong = next(g for g in fake.guilds.values() if fake.shard_of(g) == 0)
    with pytest.raises(ValueError, match="belongs to shard 0"):
        fake.add_guild("clash", guild_id=wrong.id + (1 << 22) * 4, shard=1)


async def test_each_shard_gets_only_its_guilds_and_their_interactions(sharded: TwoShards) -> None:
    fake, zero, one = sharded.fake, sharded.zero, sharded.one
    first = await sharded.connect(0)
    second = await sharded.connect(1)
    ready_first, ready_second = await first.until("READY"), await second.until("READY")
    assert [int(g["id"]) for g in ready_first["guilds"]] == [zero.id]
    assert [int(g["id"]) for g in ready_second["guilds"]] == [one.id]
    assert ready_first["shard"] == [0, 2] and ready_second["shard"] == [1, 2]
    await fake.wait_until_identified(shards=[0, 1])
    assert fake.identified_shards == [(0, 2), (1, 2)]

    assert (await fake.slash("imagine", {"prompt": "x"}, guild=one)).shard == (1, 2)
    assert (await fake.slash("imagine", {"prompt": "y"}, guild=zero)).shard == (0, 2)
    to_second, to_first = await second.until("INTERACTION_CREATE"), await first.until("INTERACTION_CREATE")
    assert int(to_second["guild_id"]) == one.id and int(to_first["guild_id"]) == zero.id
    assert first.guild_ids() == [zero.id] and second.guild_ids() == [one.id]
    # Events of no guild (DMs) go to shard 0, as on Discord.
    await fake.slash("imagine", {"prompt": "z"}, user=fake.add_user("loner"), dm=True)
    assert "guild_id" not in await first.until("INTERACTION_CREATE")
    assert [event for event, _ in second.events].count("INTERACTION_CREATE") == 1
    assert fake.undelivered == []
    await first.ws.close()
    await second.ws.close()


async def test_an_interaction_for_a_shard_nobody_runs_is_not_delivered(sharded: TwoShards) -> None:
    fake, one = sharded.fake, sharded.one
    only = await sharded.connect(0)
    await only.until("READY")
    await fake.wait_until_identified()
    handle = await fake.slash("imagine", {"prompt": "x"}, guild=one)
    assert [event for event, _ in fake.undelivered] == ["INTERACTION_CREATE"] and handle.shard is None
    with pytest.raises(TimeoutError):
        await handle.wait_callback(timeout=0.1)
    # A guild added later reaches only the connection of its shard: none here.
    late = fake.add_guild("Late", shard=1)
    await fake.dispatch_guild_create(late)
    assert [event for event, _ in fake.undelivered] == ["INTERACTION_CREATE", "GUILD_CREATE"]
    await only.ws.close()


async def test_a_connection_without_shard_runs_everything_and_a_bad_shard_is_refused() -> None:
    async with FakeDiscord(token=TOKEN) as fake, aiohttp.ClientSession() as session:
        guilds = [fake.add_guild("A"), fake.add_guild("B")]
        plain = await RawShard.connect(session, fake, None)
        ready = await plain.until("READY")
        assert "shard" not in ready and len(ready["guilds"]) == 2
        await plain.until("GUILD_CREATE")
        await plain.until("GUILD_CREATE")
        assert sorted(plain.guild_ids()) == sorted(g.id for g in guilds)
        assert fake.identified_shards == [(0, 1)]
        bad = await RawShard.connect(session, fake, [2, 2])
        assert await bad.close_code() == 4010
        await plain.ws.close()


async def test_a_new_session_of_a_shard_replaces_only_that_shard(sharded: TwoShards) -> None:
    fake, zero, one = sharded.fake, sharded.zero, sharded.one
    fake.identify_window = 0  # shard 1 identifies twice at once: the identify limit has a test of its own
    first = await sharded.connect(0)
    second = await sharded.connect(1)
    await first.until("READY")
    await second.until("READY")
    again = await sharded.connect(1)
    await again.until("READY")
    assert await second.close_code() == 4000
    await fake.slash("imagine", {"prompt": "x"}, guild=one)
    assert int((await again.until("INTERACTION_CREATE"))["guild_id"]) == one.id
    await fake.slash("imagine", {"prompt": "y"}, guild=zero)
    assert int((await first.until("INTERACTION_CREATE"))["guild_id"]) == zero.id
    await fake.disconnect_gateway(shard=1)
    assert await again.close_code() == 4000
    await first.ws.close()
