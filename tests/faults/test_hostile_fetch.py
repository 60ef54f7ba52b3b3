"""Hostile fetches through the fakes: output URLs, redirect hops and members' attachments that point at the
bot's own machine (another port on 127.0.0.1), and attachments without a ``content_type``.

The fakes all listen on 127.0.0.1, so they stand in for the internal network: the fake API's own host and
port is allowed (``REPLICATE_BASE_URL``: a gateway serving its own files), every other port is refused
unless ``IMAGINE_FETCH_ALLOW`` lists 127.0.0.1. A separate file server counts every request it gets, so
"refused" means "never touched". The member reads only that the image could not be downloaded; the log
keeps the detail at WARNING (with no signed query string).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.api.modelref import ModelRef
from bot.base.errors import DeliveryError
from bot.core import Core
from bot.media.delivery import Downloader
from bot.media.delivery import _described as described
from bot.media.fetch_guard import FetchGuard, parse_fetch_allow
from bot.media.images import SNIFF_BYTES
from bot.settings import Secret, Settings
from tests.e2e.conftest import Stack, StackFactory, field_of, status_of
from tests.e2e.test_member_images import CREATIVE_MODELS, IMG2IMG, UPSCALER, buttons, refusal_of, reply_to
from tests.fakes import images
from tests.fakes.discord import Routes, StoredMessage, Upload
from tests.fakes.replicate import FakeReplicate
from tests.faults.conftest import UnhandledWatch
from tests.faults.test_malicious_replies import READ_SLACK, QuickClock, recording_session
from tests.helpers import free_port, serving

COULD_NOT = "The image could not be downloaded"
SECRET_QUERY = "X-Amz-Signature=do-not-log-me"
LOOPBACK = parse_fetch_allow("127.0.0.1")


@dataclass
class FileServer:
    """A file host on another port of 127.0.0.1 (an internal service, as far as the bot can tell)."""

    port: int = 0
    hits: list[str] = field(default_factory=list)
    body: bytes = field(default_factory=lambda: images.image_bytes("png", (32, 32), (9, 99, 199)))

    def url(self, path: str = "/out-0.png") -> str:
        return f"http://127.0.0.1:{self.port}{path}?{SECRET_QUERY}"

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return web.Response(body=self.body, content_type="image/png")


@pytest.fixture
async def elsewhere() -> AsyncIterator[FileServer]:
    server = FileServer()
    app = web.Application()
    app.router.add_get("/{tail:.*}", server.handle)
    async with serving(app) as port:
        server.port = port
        yield server


async def run_with_output(stack: Stack, output: str) -> StoredMessage:
    """``/imagine`` whose prediction succeeds with ``output``; its final message."""
    stack.api.push_scenario(start_delay=0.0, duration=0.0, output_override=[output])
    return await stack.final_message(await stack.imagine(), timeout=30)


def assert_not_downloaded(final: StoredMessage, *, port: int) -> None:
    """Failed, saying only that the image could not be downloaded: no address, port or library error."""
    what = field_of(final, "What happened") or ""
    assert "Failed" in status_of(final) and not final.attachments, final.embeds
    assert f"{COULD_NOT} (output 1)." in what, what
    for leak in ("127.0.0.1", str(port), "Errno", "Connect", "refused", "http"):
        assert leak not in what, (leak, what)


def warnings_naming(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("bot.")]
    assert all("do-not-log-me" not in line for line in lines), lines
    return [line for line in lines if text in line]


# --------------------------------------------------------------------------- outputs and redirect hops


async def test_an_output_on_another_local_port_is_refused_untouched(
    make_stack: StackFactory, elsewhere: FileServer, unhandled: UnhandledWatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    stack = await make_stack()
    assert_not_downloaded(await run_with_output(stack, elsewhere.url()), port=elsewhere.port)
    assert elsewhere.hits == []
    assert warnings_naming(caplog, f"127.0.0.1:{elsewhere.port}"), "the log keeps the refused address"
    unhandled.check()


async def test_a_redirect_from_the_api_host_to_another_local_port_is_refused_at_the_hop(
    make_stack: StackFactory, elsewhere: FileServer, unhandled: UnhandledWatch
) -> None:
    stack = await make_stack()
    for status in (302, 307):
        final = await run_with_output(stack, stack.api.redirect_url(elsewhere.url(), status=status))
        assert_not_downloaded(final, port=elsewhere.port)
    hops = [r for r in stack.api.file_requests if r.path == "/evil/redirect"]
    assert len(hops) == 2, "the allowed host is asked once per job: a refused hop is not tried again"
    assert elsewhere.hits == []
    unhandled.check()


async def test_with_the_owners_allow_the_same_files_are_fetched(
    make_stack: StackFactory, elsewhere: FileServer, unhandled: UnhandledWatch
) -> None:
    stack = await make_stack(fetch_allow=LOOPBACK)
    for output in (elsewhere.url(), stack.api.redirect_url(elsewhere.url("/hop.png"), status=302)):
        final = await run_with_output(stack, output)
        assert "Done" in status_of(final), final.embeds
        assert [a.data for a in final.attachments] == [elsewhere.body]
    assert elsewhere.hits == ["/out-0.png", "/hop.png"]
    unhandled.check()


async def test_a_closed_port_reads_the_same_as_a_refused_address(
    make_stack: StackFactory, unhandled: UnhandledWatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Allowed but closed: the member cannot tell a closed port from a refused one (no port scanning)."""
    caplog.set_level(logging.WARNING)
    stack = await make_stack(fetch_allow=LOOPBACK)
    port = free_port()
    assert_not_downloaded(await run_with_output(stack, f"http://127.0.0.1:{port}/x.png?{SECRET_QUERY}"), port=port)
    assert warnings_naming(caplog, f"127.0.0.1:{port}"), "the log keeps the connection error"
    unhandled.check()


# --------------------------------------------------------------------------- members' attachments


async def creative_stack(make_stack: StackFactory, **settings: object) -> Stack:
    stack: Stack = await make_stack(
        models=(IMG2IMG,), api_models=CREATIVE_MODELS, upscale_model=ModelRef.parse(UPSCALER), **settings
    )
    stack.discord.attachment_content_types = False  # Discord's field is optional
    return stack


def untyped_png() -> Upload:
    return Upload("start.png", images.image_bytes("png", (64, 64)), None)


async def test_an_attachment_without_a_type_is_not_fetched_from_a_refused_address(
    make_stack: StackFactory, unhandled: UnhandledWatch
) -> None:
    """The fake Discord's CDN is on 127.0.0.1, another port than the API's: refused without the allow."""
    stack = await creative_stack(make_stack)
    answer = await (await stack.imagine(model=IMG2IMG, image=untyped_png())).wait_callback()
    assert answer.ephemeral and answer.content == f"❌ {COULD_NOT} (your attachment).", answer.content
    assert not stack.discord.requests_for(Routes.CDN)
    assert stack.api.count("POST", "create") == 0
    unhandled.check()


async def test_an_attachment_without_a_type_is_told_by_its_bytes(
    make_stack: StackFactory, unhandled: UnhandledWatch
) -> None:
    stack = await creative_stack(make_stack, fetch_allow=LOOPBACK)
    final = await stack.final_message(await stack.imagine(model=IMG2IMG, image=untyped_png()))
    assert "Done" in status_of(final), final.embeds
    (cdn,) = stack.discord.requests_for(Routes.CDN)
    assert stack.api.last_prediction.input["input_image"].endswith(cdn.path)

    answer = await (await stack.imagine(model=IMG2IMG, image=Upload("notes", b"hello", None))).wait_callback()
    assert answer.ephemeral and "not an image" in (answer.content or ""), answer.content
    assert stack.api.count("POST", "create") == 1
    unhandled.check()


async def test_upscale_and_vary_read_a_result_without_a_type_by_its_bytes(
    make_stack: StackFactory, unhandled: UnhandledWatch
) -> None:
    stack = await creative_stack(make_stack, fetch_allow=LOOPBACK)
    final = await stack.final_message(await stack.imagine(model=IMG2IMG, count=2))
    assert final.attachments and all(a.content_type is None for a in final.attachments)

    await (await stack.discord.click(final, buttons(final, "vary")[1])).wait_callback()
    varied = await reply_to(stack, final)
    assert "Done" in status_of(varied), varied.embeds
    assert stack.api.last_prediction.input["input_image"] == final.attachments[1].url

    await (await stack.discord.click(final, buttons(final, "upscale")[0])).wait_callback()
    upscaled = await stack.discord.wait_for(
        lambda: stack.api.count("POST", "create") == 3 or None, 10, what="the upscale job"
    )
    assert upscaled and stack.api.last_prediction.input == {"image": final.attachments[0].url}
    assert len(stack.discord.requests_for(Routes.CDN)) == 2
    unhandled.check()


async def test_upscale_and_vary_on_a_result_without_a_type_refuse_a_refused_address(
    make_stack: StackFactory, unhandled: UnhandledWatch
) -> None:
    stack = await creative_stack(make_stack)
    final = await stack.final_message(await stack.imagine(model=IMG2IMG, count=2))
    for action, number in (("vary", 2), ("upscale", 1)):
        click = await stack.discord.click(final, buttons(final, action)[number - 1])
        assert await refusal_of(stack, click) == f"❌ {COULD_NOT} (image {number}).", action
    assert not stack.discord.requests_for(Routes.CDN)
    assert stack.api.count("POST", "create") == 1
    unhandled.check()


# --------------------------------------------------------------------------- what a download reads, and logs


async def test_a_padded_bomb_is_refused_from_its_header_not_read_to_the_end(elsewhere: FileServer) -> None:
    elsewhere.body = images.bomb_png(pad_to=32 * 1024 * 1024)
    responses: list[aiohttp.ClientResponse] = []
    guard = FetchGuard.of("http://127.0.0.1:9", LOOPBACK)
    async with recording_session(guard, [], responses) as session:
        with pytest.raises(DeliveryError, match="13000×13000 pixels"):
            await Downloader(session, guard).fetch(elsewhere.url(), "output 1")
    (response,) = responses
    assert response.content.total_bytes <= READ_SLACK, response.content.total_bytes


async def test_an_attachment_is_read_no_further_than_its_magic_bytes(fake_api: FakeReplicate) -> None:
    """What an attachment without a type is downloaded for: its first bytes; the rest is never read."""
    responses: list[aiohttp.ClientResponse] = []
    guard = FetchGuard.of(fake_api.base_url)
    async with recording_session(guard, [], responses) as session:
        first = await Downloader(session, guard).download(fake_api.endless_url(), prefix=SNIFF_BYTES)
    assert first == images.png_header((64, 64))[:SNIFF_BYTES]
    (response,) = responses
    assert response.content.total_bytes <= READ_SLACK, response.content.total_bytes


async def test_a_host_that_sends_other_bytes_when_asked_again_is_checked_afresh(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A harmless GIF cut short, then, asked again, one whose first frame is a bomb: refused from its header."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 10, 10, 0, 0, 0)
    harmless = screen + b"\x21\xf9\x00" * 1000
    bomb = screen + b"\x2c" + struct.pack("<HHHHB", 0, 0, 20000, 20000, 0) + b"\x02" + b"\x01\x00" * (2 * 1024 * 1024)
    bodies = [harmless, bomb]

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = bodies.pop(0)
        length = len(body) + 1 if body is harmless else len(body)  # the first is cut short: tried again
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % length + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    responses: list[aiohttp.ClientResponse] = []
    guard = FetchGuard.of("http://127.0.0.1:9", LOOPBACK)
    try:
        async with recording_session(guard, [], responses) as session:
            with pytest.raises(DeliveryError, match="20000×20000 pixels"):
                await Downloader(session, guard, clock=QuickClock()).fetch(f"http://127.0.0.1:{port}/a.gif", "output 1")
    finally:
        server.close()
        await server.wait_closed()
    assert len(responses) == 2 and not bodies
    assert responses[1].content.total_bytes <= READ_SLACK, responses[1].content.total_bytes


@pytest.fixture
async def bad_length_host() -> AsyncIterator[int]:
    """A file host answering ``Content-Length: abc`` (aiohttp's error about it prints the URL it asked)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: abc\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


async def test_a_failed_download_logs_no_query_fragment_or_password(
    bad_length_host: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    url = f"http://someone:hunter2@127.0.0.1:{bad_length_host}/out.png?{SECRET_QUERY}#do-not-log-me-either"
    guard = FetchGuard.of("http://127.0.0.1:9", LOOPBACK)
    async with aiohttp.ClientSession(connector=guard.connector()) as session:
        with pytest.raises(DeliveryError, match=COULD_NOT):
            await Downloader(session, guard, attempts=1).download(url, "output 1")
    (line,) = warnings_naming(caplog, f"127.0.0.1:{bad_length_host}")
    assert "ClientResponseError" in line and "hunter2" not in line and "do-not-log-me" not in line, line


def test_an_invalid_url_error_is_logged_without_its_url() -> None:
    """aiohttp's InvalidURL prints the whole URL (the guard refuses such URLs first; the log is safe anyway)."""
    for exc in (
        aiohttp.InvalidURL(f"http://u:hunter2@exa mple/x?{SECRET_QUERY}#frag"),
        aiohttp.InvalidURL(f"http://h/x?{SECRET_QUERY}", "no host"),
        OSError(f"failed for 'https://u:hunter2@h.example/x?{SECRET_QUERY}#frag'"),
    ):
        text = described(exc)
        assert type(exc).__name__ in text and "hunter2" not in text and "do-not-log-me" not in text, text


async def test_the_core_builds_one_guard_for_the_session_and_the_downloader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[FetchGuard] = []
    from_settings = FetchGuard.from_settings

    def recording(settings: Settings) -> FetchGuard:
        built.append(from_settings(settings))
        return built[-1]

    monkeypatch.setattr(FetchGuard, "from_settings", recording)
    settings = Settings(
        replicate_api_token=Secret("r8_test"),
        replicate_base_url="http://127.0.0.1:9",
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
    )
    core = await Core.open(settings)
    try:
        assert len(built) == 1, built
    finally:
        await core.close()
