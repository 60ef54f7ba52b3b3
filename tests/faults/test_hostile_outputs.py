"""Hostile outputs: more images than asked (or than a message holds), files past the job's byte budget,
decompression bombs, and a final message Discord refuses.

At most what was asked (and 10) is downloaded, shown and booked, with a note when more came back; a job
never holds more than its byte budget; a bomb is refused from its header, never decoded, and nothing is
charged; a final message Discord refuses ends the job with a message saying so, Cancel gone, refunded.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.base.errors import DeliveryError
from bot.jobs.model import JobRequest, JobState
from bot.media.delivery import PARALLEL_DOWNLOADS, Downloader
from bot.media.fetch_guard import FetchGuard
from tests.conftest import Pipeline, RecordingPresenter
from tests.e2e.conftest import LORA_REF, Stack, StackFactory, field_of, status_of
from tests.e2e.test_budget import PRICES
from tests.e2e.test_cli import SECRET_REPLICATE, api_env, cli
from tests.e2e.test_moderation import answer
from tests.fakes import images
from tests.fakes.discord import StoredMessage
from tests.fakes.replicate import FakeReplicate
from tests.faults.conftest import UnhandledWatch
from tests.faults.test_malicious_replies import READ_SLACK, recording_session

MIB = 1024 * 1024
PRICE_PER_IMAGE = 4_000  # micro-dollars: FLUX_SCHNELL in PRICES


async def priced(make_stack: StackFactory) -> Stack:
    return await make_stack(prices=PRICES)  # type: ignore[no-any-return]


def member_id(stack: Stack) -> int:
    return stack.guild.member("member").id


async def charged(stack: Stack) -> tuple[int, int]:
    """The member's images counted today and spend booked this month (micro-dollars)."""
    core = stack.bot.core  # type: ignore[union-attr]
    now = core.clock.now()
    usage = await core.repository.usage(stack.guild.id, member_id(stack), now=now)
    spend = await core.repository.spend(stack.guild.id, member_id(stack), now=now)
    return usage.images_today, spend.month


async def journaled(stack: Stack) -> tuple[str, int | None]:
    """State and images delivered of the member's latest job, as the journal has them."""
    core = stack.bot.core  # type: ignore[union-attr]
    (record,) = await core.repository.member_history(stack.guild.id, member_id(stack), limit=1)
    return record.state, record.images_delivered


def buttons(message: StoredMessage) -> list[str]:
    return [str(component.get("label")) for row in message.components for component in row.get("components", [])]


# --------------------------------------------------------------------------- more outputs than asked


@pytest.mark.parametrize("returned", [11, 12])
async def test_more_outputs_than_asked_shows_and_books_only_those_asked(
    make_stack: StackFactory, unhandled: UnhandledWatch, returned: int
) -> None:
    stack = await priced(make_stack)
    stack.api.set_default_scenario(extra_outputs=returned - 4)
    final = await stack.final_message(await stack.imagine(count=4))

    assert "Done" in status_of(final)
    assert len(final.attachments) == 4
    note = field_of(final, "Note") or ""
    assert f"The model returned {returned} images for the 4 asked; the first 4 are shown." in note
    assert len(stack.api.file_requests) == 4  # the surplus is not even downloaded
    assert await charged(stack) == (4, 4 * PRICE_PER_IMAGE)
    assert await journaled(stack) == ("succeeded", 4)
    unhandled.check()


async def test_a_job_shows_no_more_than_a_message_holds(
    fake_api: FakeReplicate, make_pipeline: Callable[..., Pipeline]
) -> None:
    """Asked for 12 (an extra input a model allows): a Discord message holds 10, so 10 are shown."""
    pipeline = make_pipeline()
    fake_api.set_default_scenario(extra_outputs=13)  # a model without num_outputs: 1 + 13 files
    model = ModelRef.parse(LORA_REF)
    request = JobRequest(model, ImagineOptions(prompt="a fox"), {"prompt": "a fox"}, images_expected=12)
    view = await asyncio.wait_for((await pipeline.engine.submit(request, RecordingPresenter())).wait(), 20)
    assert view.state is JobState.SUCCEEDED, view.error
    assert len(view.images) == 10
    assert "The model returned 14 images; a message holds at most 10, so the first 10 are shown." in [
        str(note) for note in view.notes
    ]
    assert len(fake_api.file_requests) == 10


# --------------------------------------------------------------------------- the job's byte budget


async def test_a_job_holds_no_more_than_its_byte_budget(fake_api: FakeReplicate) -> None:
    """Four endless outputs with an 8 MiB budget: each is cut at its 2 MiB share, so the job never holds more."""
    responses: list[aiohttp.ClientResponse] = []
    guard = FetchGuard.of(fake_api.base_url)  # the fake API serves its files itself, as a gateway does
    async with recording_session(guard, [], responses) as session:
        downloader = Downloader(session, guard, job_bytes=8 * MIB)
        with pytest.raises(DeliveryError, match="larger than 2 MiB"):
            await downloader.fetch_all([fake_api.endless_url() for _ in range(4)], stem="job")
        read = [response.content.total_bytes for response in responses]
        assert read and all(n <= 2 * MIB + READ_SLACK for n in read), read
        assert sum(read) <= 8 * MIB + 4 * READ_SLACK


async def test_downloads_of_one_job_are_bounded_in_number_at_once(
    fake_api: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    running, most = 0, 0
    download = Downloader.download

    async def counting(self: Downloader, url: str, *args: Any, **kwargs: Any) -> bytes:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.01)  # let the others start, if they may
            return await download(self, url, *args, **kwargs)
        finally:
            running -= 1

    monkeypatch.setattr(Downloader, "download", counting)
    async with aiohttp.ClientSession() as session:
        downloader = Downloader(session, FetchGuard.of(fake_api.base_url), job_bytes=10 * 64 * 1024)
        with pytest.raises(DeliveryError, match="larger than"):
            await downloader.fetch_all([fake_api.endless_url() for _ in range(10)], stem="job")
    assert most == PARALLEL_DOWNLOADS


async def test_the_first_refusal_ends_the_jobs_other_downloads(fake_api: FakeReplicate) -> None:
    """Output 1 is not an image: the endless others are cut off then, not read on to their 64 MiB share."""
    responses: list[aiohttp.ClientResponse] = []
    guard = FetchGuard.of(fake_api.base_url)
    async with recording_session(guard, [], responses) as session:
        downloader = Downloader(session, guard)
        endless = [fake_api.endless_url() for _ in range(3)]
        with pytest.raises(DeliveryError, match="not an image"):
            await downloader.fetch_all([fake_api.not_image_url(), *endless], stem="job")
        # While the session is still open: the fake host saw every endless download hang up.
        await fake_api.wait_until(
            lambda: all(r.response_status is not None or r.reset for r in endless_requests(fake_api)),
            timeout=60,
            what="the other downloads to hang up",
        )
        read = [r.content.total_bytes for r in responses if r.url.path == "/evil/endless"]
        assert all(n < 8 * MIB for n in read), read
        assert all(r.body_bytes_sent < 32 * MIB for r in endless_requests(fake_api))


def endless_requests(api: FakeReplicate) -> list[Any]:
    return [r for r in api.requests if r.path == "/evil/endless"]


async def test_a_page_that_is_not_an_image_is_refused_from_its_first_bytes(fake_api: FakeReplicate) -> None:
    """Endless bytes that are no image: refused at the first chunk, not read on to the 64 MiB cap."""
    responses: list[aiohttp.ClientResponse] = []
    guard = FetchGuard.of(fake_api.base_url)
    async with recording_session(guard, [], responses) as session:
        with pytest.raises(DeliveryError, match="not an image"):
            await Downloader(session, guard).fetch(fake_api.endless_url(image_header=False), "output 1")
    (response,) = responses
    assert response.content.total_bytes <= READ_SLACK, response.content.total_bytes


async def test_a_budget_refusal_reaches_the_member_clearly(make_stack: StackFactory, unhandled: UnhandledWatch) -> None:
    stack = await priced(make_stack)
    endless = stack.api.endless_url()
    stack.api.set_default_scenario(output_override=[endless, endless, endless, endless])
    final = await stack.final_message(await stack.imagine(count=4), timeout=60)
    assert "Failed" in status_of(final)
    assert "The image (output 1) is larger than 32 MiB, so it was not downloaded" in (
        field_of(final, "What happened") or ""
    )
    assert await charged(stack) == (0, 0)
    unhandled.check()


# --------------------------------------------------------------------------- decompression bombs


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The sizes of every image Pillow opened to decode (the bot never opens one only to read its size)."""
    opened: list[tuple[int, int]] = []
    real_open = Image.open

    def recording_open(*args: Any, **kwargs: Any) -> Any:
        image = real_open(*args, **kwargs)
        opened.append(image.size)
        return image

    monkeypatch.setattr(Image, "open", recording_open)
    return opened


@pytest.mark.parametrize(
    ("shape", "pad_to"),
    [("list", 11 * MIB), ("data", 0)],  # a file past the 10 MiB upload limit would have to be fitted
)
async def test_a_decompression_bomb_is_refused_undecoded_and_not_charged(
    make_stack: StackFactory, unhandled: UnhandledWatch, decodes: list[tuple[int, int]], shape: str, pad_to: int
) -> None:
    stack = await priced(make_stack)
    bomb = images.bomb_png(pad_to=pad_to)
    stack.api.set_default_scenario(file_bytes=bomb, output_shape=shape)
    final = await stack.final_message(await stack.imagine(count=2))

    assert "Failed" in status_of(final)
    error = field_of(final, "What happened") or ""
    assert "13000×13000 pixels, more than the 100 megapixels the bot accepts" in error, error
    assert not final.attachments
    assert decodes == []
    assert await charged(stack) == (0, 0)
    assert await journaled(stack) == ("failed", 0)
    unhandled.check()


# --------------------------------------------------------------------------- a final message Discord refuses


async def test_a_refused_final_message_ends_the_job_saying_so_and_refunds(
    make_stack: StackFactory, unhandled: UnhandledWatch
) -> None:
    stack = await priced(make_stack)
    await answer(stack, "limits", daily=2)
    stack.discord.refuse_uploads = True
    handle = await stack.imagine(count=2)
    final = await stack.final_message(handle)

    assert "Failed" in status_of(final)
    error = field_of(final, "What happened") or ""
    assert "Discord refused the message with the finished images" in error and "nothing is charged" in error
    assert not final.attachments
    assert "Cancel" not in buttons(final)
    assert await charged(stack) == (0, 0)
    assert await journaled(stack) == ("failed", 0)

    stack.discord.refuse_uploads = False  # the whole day's images are there again
    final = await stack.final_message(await stack.imagine(count=2))
    assert "Done" in status_of(final) and len(final.attachments) == 2
    assert await charged(stack) == (2, 2 * PRICE_PER_IMAGE)
    unhandled.check()


async def test_an_image_that_cannot_be_fitted_is_left_out_and_not_charged(
    make_stack: StackFactory, unhandled: UnhandledWatch
) -> None:
    stack = await priced(make_stack)
    stack.discord.attachment_size_limit = 64 * 1024  # both images must be made smaller
    good = images.noise_png(100 * 1024)
    broken = images.image_bytes("png")[:33] + bytes(100 * 1024)  # signature and header, then no image data
    outputs = [f"data:image/png;base64,{base64.b64encode(data).decode()}" for data in (good, broken)]
    stack.api.set_default_scenario(output_override=outputs)
    final = await stack.final_message(await stack.imagine(count=2), timeout=30)

    assert "Done" in status_of(final)
    assert len(final.attachments) == 1
    note = field_of(final, "Note") or ""
    assert "1 of the 2 images could not be made small enough to upload: not shown, and not charged." in note
    assert await charged(stack) == (1, PRICE_PER_IMAGE)
    assert await journaled(stack) == ("succeeded", 1)
    unhandled.check()


# --------------------------------------------------------------------------- the command line, same pipeline


async def test_the_command_line_saves_only_what_was_asked_and_refuses_a_bomb(tmp_path: Path) -> None:
    async with FakeReplicate(token=SECRET_REPLICATE, seed=3) as api:
        api.set_default_scenario(extra_outputs=9)
        result = await cli("imagine", "a red fox", "--count", "2", "--out", "out", env=api_env(api), cwd=tmp_path)
        assert result.code == 0, result.err
        assert "succeeded: 2 images" in result.out
        assert len([line for line in result.out.splitlines() if line.startswith("saved ")]) == 2

        api.set_default_scenario(file_bytes=images.bomb_png())
        result = await cli("imagine", "a red fox", "--out", "bombed", env=api_env(api), cwd=tmp_path)
        assert result.code == 1
        assert "13000×13000 pixels, more than the 100 megapixels the bot accepts" in result.out + result.err
        assert not (tmp_path / "bombed").exists() or not any((tmp_path / "bombed").iterdir())
