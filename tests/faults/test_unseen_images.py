"""Images nobody saw are never charged: however the final message fails, the job ends, saying so.

Every way Discord can fail the message with a job's images (a 413 past shrinking, answers that reach the
bot after discord.py's own retries, a connection reset, no route left to the message) ends the job
failed with a message that says what happened (if any route is left), nothing charged for the images,
and the journal's entry ended. Faults hit only the requests that upload the images (``uploads_only``),
so the message without them goes through as it would on Discord.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import bot.media.images
from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.jobs.model import JobRequest, JobState, JobView
from bot.jobs.showing import IMAGES_LOST
from bot.media.images import fit_image
from tests.conftest import Pipeline, RecordingPresenter
from tests.e2e.conftest import Stack, StackFactory, field_of, status_of
from tests.fakes.discord import Routes, StoredMessage
from tests.fakes.replicate import FLUX_SCHNELL, FakeReplicate, Scenario
from tests.faults.conftest import UnhandledWatch
from tests.faults.test_hostile_outputs import MIB, buttons, charged, journaled, priced

KIB = 1024
EDITS_WITH_IMAGES = "PATCH /webhooks/*"


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """``(file type, limit)`` of every image the bot fitted under a limit."""
    calls: list[tuple[str, int]] = []

    def counting_fit(image: Any, limit: int) -> Any:
        calls.append((image.filename.rsplit(".", 1)[1], limit))
        return fit_image(image, limit)

    monkeypatch.setattr(bot.media.images, "fit_image", counting_fit)
    return calls


def failed_saying(message: StoredMessage, text: str) -> None:
    assert "Failed" in status_of(message), status_of(message)
    error = field_of(message, "What happened") or ""
    assert text in error and "nothing is charged for them" in error, error
    assert not message.attachments
    assert "Cancel" not in buttons(message)


async def nothing_charged(stack: Stack) -> None:
    assert await charged(stack) == (0, 0)
    assert await journaled(stack) == ("failed", 0)


def uploads_answered(stack: Stack, status: int) -> int:
    return sum(1 for r in stack.discord.requests if r.files and r.status == status)


# --------------------------------------------------------------------------- the final edit


async def test_an_image_is_fitted_once_however_often_the_final_edit_is_tried(
    make_stack: StackFactory, unhandled: UnhandledWatch, fits: list[tuple[str, int]]
) -> None:
    stack = await priced(make_stack)
    stack.discord.attachment_size_limit = 256 * KIB
    stack.api.set_default_scenario(huge_image_mib=0.5)
    # Answers discord.py hands to the bot at once (it retries a 429 with Via, and a webhook's 5xx, itself).
    refused = stack.discord.rate_limit_next(EDITS_WITH_IMAGES, times=3, via=False, uploads_only=True)
    final = await stack.final_message(await stack.imagine(), timeout=30)

    assert "Done" in status_of(final)
    assert [a.filename.rsplit(".", 1)[1] for a in final.attachments] == ["webp"]
    assert refused.hits == 3  # the presenter itself tried four times
    assert fits == [("png", 256 * KIB)]
    unhandled.check()


async def test_after_a_413_what_was_sent_is_halved_and_fitted_from_the_original(
    make_stack: StackFactory, unhandled: UnhandledWatch, fits: list[tuple[str, int]]
) -> None:
    """Four images Discord takes one by one but not together: one 413, then all four at half the size."""
    stack = await priced(make_stack)
    stack.discord.max_request_size = 3 * MIB // 2
    stack.api.set_default_scenario(huge_image_mib=0.5)
    final = await stack.final_message(await stack.imagine(count=4), timeout=30)

    assert "Done" in status_of(final), field_of(final, "What happened")
    assert [a.filename.rsplit(".", 1)[1] for a in final.attachments] == ["webp"] * 4
    assert uploads_answered(stack, 413) == 1
    # Each image fitted once, from its original, to half the largest sent (about 0.5 MiB).
    assert [kind for kind, _ in fits] == ["png"] * 4
    assert len({limit for _, limit in fits}) == 1 and 256 * KIB <= fits[0][1] <= 300 * KIB
    assert await charged(stack) == (4, 4 * 4_000)
    unhandled.check()


async def test_images_discord_refuses_as_too_large_even_shrunk_are_not_charged(
    make_stack: StackFactory, unhandled: UnhandledWatch, fits: list[tuple[str, int]]
) -> None:
    stack = await priced(make_stack)
    stack.discord.attachment_size_limit = 400 * KIB
    stack.discord.max_request_size = 100 * KIB  # less than any image is shrunk to
    stack.api.set_default_scenario(huge_image_mib=1.0)
    final = await stack.final_message(await stack.imagine(), timeout=30)

    failed_saying(final, "Discord refused the finished images as too large even after shrinking them")
    assert uploads_answered(stack, 413) == 2
    # Each fit starts from the original, never from the lossy copy an earlier limit made.
    assert fits == [("png", 400 * KIB), ("png", 256 * KIB)]
    await nothing_charged(stack)
    unhandled.check()


async def test_images_discord_never_takes_are_not_charged(make_stack: StackFactory, unhandled: UnhandledWatch) -> None:
    stack = await priced(make_stack)
    stack.discord.rate_limit_next(EDITS_WITH_IMAGES, times=5, via=False, uploads_only=True)
    final = await stack.final_message(await stack.imagine(), timeout=30)

    failed_saying(final, "Discord did not take the finished images after several tries")
    await nothing_charged(stack)
    unhandled.check()


async def test_images_with_no_route_left_to_their_message_are_not_charged(
    make_stack: StackFactory, unhandled: UnhandledWatch
) -> None:
    """No channel in the interaction and the token dead before the end: nothing can be shown, the job ends."""
    stack = await priced(make_stack)
    stack.discord.interaction_channels = False
    stack.api.set_default_scenario(Scenario.manual())
    handle = await stack.imagine()
    placeholder = await handle.wait_message()
    prediction = await stack.api.wait_for_prediction()
    assert stack.bot is not None
    engine = stack.bot.core.engine
    (job_id,) = engine.live_job_ids()
    job = engine.job(job_id)
    assert job is not None
    handle.expire_token()
    stack.api.finish(prediction.id)

    view = await asyncio.wait_for(job.wait(), 30)
    assert view.state is JobState.FAILED and not view.images
    assert any(r.files for r in stack.discord.requests)  # the images were tried
    await nothing_charged(stack)
    assert not placeholder.attachments
    unhandled.check()


# --------------------------------------------------------------------------- the message posted anew


async def posted_anew(stack: Stack) -> StoredMessage:
    channel = stack.guild.channel("general")
    return await stack.discord.wait_for(
        lambda: next((m for m in stack.discord.messages_in(channel) if "Failed" in status_of(m)), None),
        30,
        what="the result posted anew",
    )


@pytest.mark.parametrize("fault", ["5xx", "reset"])
async def test_images_posted_anew_that_discord_does_not_take_are_not_charged(
    make_stack: StackFactory, unhandled: UnhandledWatch, fault: str
) -> None:
    stack = await priced(make_stack)
    if fault == "5xx":
        # A 503 reaches the bot at once on a bot route (discord.py retries 500, 502, 504 and 524 itself).
        stack.discord.fail_next(Routes.CREATE_MESSAGE, status=503, uploads_only=True)
    else:
        stack.discord.reset_next(Routes.CREATE_MESSAGE, uploads_only=True)
    await stack.imagine_deleted_before_the_end()
    message = await posted_anew(stack)

    failed_saying(message, "Discord did not take the finished images when they were posted anew")
    assert f"<@{stack.guild.member('member').id}>" in message.content
    await nothing_charged(stack)
    unhandled.check()


# --------------------------------------------------------------------------- a presenter failing unforeseen


@dataclass
class UnforeseenFailure(RecordingPresenter):
    """Fails final views as no presenter foresees (not :class:`ImagesNotShown`): once, or every time."""

    always: bool = False
    failures: int = 0

    async def show(self, view: JobView) -> None:
        if view.terminal and (self.always or view.images):
            self.failures += 1
            raise OSError("connection reset by peer")
        await super().show(view)


@pytest.mark.parametrize("always", [False, True])
async def test_images_a_presenter_fails_on_unforeseen_are_booked_as_not_shown(
    fake_api: FakeReplicate, make_pipeline: Callable[..., Pipeline], always: bool
) -> None:
    booked: list[JobView] = []

    async def book(view: JobView) -> None:
        booked.append(view)

    pipeline = make_pipeline(on_end=book)
    presenter = UnforeseenFailure(always=always)
    request = JobRequest(
        ModelRef.parse(FLUX_SCHNELL), ImagineOptions(prompt="a fox"), {"prompt": "a fox"}, images_expected=1
    )
    view = await asyncio.wait_for((await pipeline.engine.submit(request, presenter)).wait(), 20)

    assert (view.state, view.error, view.images) == (JobState.FAILED, IMAGES_LOST, ())
    assert [len(ended.images) for ended in booked] == [1, 0]  # booked again for nothing seen
    # Shown without the images; when even that fails, the job ends all the same.
    assert presenter.failures == (2 if always else 1)
    assert [v for v in presenter.views if v.terminal] == ([] if always else [view])
