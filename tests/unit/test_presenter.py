"""The presenter's pump and its final view, driven directly against the fake Discord (no engine, no bot).

A logged-in discord.py client is enough: the job's message is a channel message (a reply's, posted with
:meth:`DiscordPresenter.post_reply`, or one journaled before it was shown), edited through the channel
route. Views are shown as the engine shows them; the fake Discord stalls or fails the requests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import discord
import pytest

from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.api.predictions import Progress
from bot.discord_app.presenter import DiscordPresenter, MessageTarget
from bot.jobs.model import JobRequest, JobState, JobView
from bot.media.images import ImageFile
from tests.fakes.discord import FakeChannel, FakeDiscord, Routes, StoredMessage, patch_discord_py

TOKEN = "presenter-test-token"
BOUND = 10.0
"""Seconds a step may take before the test fails saying what it waited for (far past any wait of its own)."""

REQUEST = JobRequest(
    model=ModelRef("black-forest-labs", "flux-schnell"), options=ImagineOptions("a red fox"), inputs={"prompt": "x"}
)
QUEUED = JobView("job1", REQUEST, JobState.QUEUED)
DONE = replace(QUEUED, state=JobState.SUCCEEDED, images=(ImageFile("imagine-job1-1.png", b"\x89PNG\r\n", "image/png"),))


def at(percent: int) -> JobView:
    """The job running, its bar at ``percent`` (of 100 steps)."""
    return replace(QUEUED, state=JobState.PROCESSING, progress=Progress(percent / 100, percent, 100))


@dataclass
class Setting:
    """The fake Discord, a client logged in to it, and the channel the job's message lives in."""

    discord: FakeDiscord
    client: discord.Client
    channel: FakeChannel

    def target(self) -> MessageTarget:
        """A job's message in the channel, not yet posted, edited through the channel route (no token)."""
        expired = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        return MessageTarget(
            application_id=self.discord.application_id,
            token="",
            token_expires_at=expired,
            channel_id=self.channel.id,
            message_id=None,
            requester_id=1,
            upload_limit=discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES,
        )

    def messages(self) -> list[StoredMessage]:
        """The messages in the channel, oldest first."""
        return self.discord.messages_in(self.channel)


@pytest.fixture
async def setting() -> AsyncIterator[Setting]:
    async with FakeDiscord(token=TOKEN) as fake:
        channel = fake.add_guild("Presenter").channel("general")
        with patch_discord_py(fake):
            client = discord.Client(intents=discord.Intents.none())
            await client.login(TOKEN)
            try:
                yield Setting(fake, client, channel)
            finally:
                await client.close()


def no_buttons(view: JobView, locale: str | None = None) -> None:
    """The job's components: none (the tests look at its embed and files)."""
    return None


async def shown(setting: Setting, presenter: DiscordPresenter, text: str) -> StoredMessage:
    """The job's message, once its embed says ``text``."""

    def showing() -> StoredMessage | None:
        message = next((m for m in setting.messages() if m.id == presenter.target.message_id), None)
        return message if message is not None and text in str(message.embeds) else None

    return await setting.discord.wait_for(showing, BOUND, what=f"the message showing {text!r}")


async def test_the_final_cancels_a_progress_edit_on_its_way(setting: Setting) -> None:
    presenter = await DiscordPresenter.post_reply(
        setting.client, replace(setting.target(), reply_to=1), QUEUED, components=no_buttons
    )
    stalled = setting.discord.hold_next(Routes.EDIT_MESSAGE)  # Discord never answers the edit to 25 %
    await presenter.show(at(25))
    await asyncio.wait_for(stalled.arrived.wait(), BOUND)

    await asyncio.wait_for(presenter.show(DONE), BOUND)  # before: held until the stalled edit's answer

    [message] = setting.messages()
    assert message.attachments and "25%" not in str([version.embeds for version in message.history])
    assert [decision.final for decision in presenter.pacer.decisions] == [False, True]
    stalled.release()


async def test_a_failed_progress_edit_gives_way_to_the_newest_view(setting: Setting) -> None:
    presenter = await DiscordPresenter.post_reply(
        setting.client, replace(setting.target(), reply_to=1), QUEUED, components=no_buttons
    )
    held = setting.discord.hold_next(Routes.EDIT_MESSAGE, drop=False)  # the edit to 25 % waits ...
    failing = setting.discord.fail_next(Routes.EDIT_MESSAGE, status=503)  # ... then fails (discord.py: at once)
    await presenter.show(at(25))
    await asyncio.wait_for(held.arrived.wait(), BOUND)
    await presenter.show(at(50))  # newer than the edit on its way
    held.release()

    message = await shown(setting, presenter, "50%")
    assert failing.hits == 1
    assert "25%" not in str([version.embeds for version in message.history])  # not tried again in place
    failed, then = setting.discord.requests_for(Routes.EDIT_MESSAGE)
    assert (failed.status, then.status) == (503, 200)
    assert then.at - failed.at >= presenter.pacer.gap  # the failed request counted
    await asyncio.wait_for(presenter.show(DONE), BOUND)
    assert message.attachments


async def test_the_final_never_cancels_the_post_of_a_message_never_shown(setting: Setting) -> None:
    """A job journaled before its placeholder went out: the pump posts it, and the journal must hear where."""
    journaled: list[MessageTarget] = []
    journaling, journal_free = asyncio.Event(), asyncio.Event()

    async def journal(target: MessageTarget) -> None:
        journaling.set()
        await journal_free.wait()  # a slow database
        journaled.append(target)

    presenter = DiscordPresenter(setting.client, setting.target(), components=no_buttons, on_target=journal)
    await presenter.show(at(25))
    await asyncio.wait_for(journaling.wait(), BOUND)  # posted; its id on the way to the journal
    final = asyncio.create_task(presenter.show(DONE))
    await asyncio.sleep(0.05)  # the final has asked for its turn
    journal_free.set()
    await asyncio.wait_for(final, BOUND)

    [message] = setting.messages()
    assert [target.message_id for target in journaled] == [message.id]
    assert message.attachments
