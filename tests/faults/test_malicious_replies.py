"""Malicious API replies: output URLs that are not http(s), point at link-local/metadata addresses, redirect
there, serve something that is not an image, never end or stall.

Each is refused with a clear job error (never the generic "something went wrong"), nothing is read past
the size cap, and no connection to a forbidden address is even attempted. The engine-level tests run the
real client, downloader and engine over an HTTP session wired as ``bot.core.Core.open`` wires it
(:meth:`~bot.media.fetch_guard.FetchGuard.connector`), plus a socket factory that records every address the
session tries to connect to (and refuses all but loopback, so nothing leaves the machine even if the bot let it).
The member reads only that the image could not be downloaded: never the address or the reason.
One test takes the same replies through ``/imagine`` in the fake Discord.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.api.client import ReplicateClient, RetryPolicy
from bot.api.errors import ServerError
from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.api.ratelimit import RequestBudget
from bot.base.clock import SystemClock
from bot.base.errors import DeliveryError, ImagineError
from bot.jobs.engine import JobEngine, JobState, JobView
from bot.media.delivery import MAX_DOWNLOAD_BYTES, Downloader
from bot.media.fetch_guard import FetchGuard, GuardedResolver
from tests.conftest import FAST_POLL, FAST_RETRY, RecordingPresenter
from tests.e2e.conftest import StackFactory, field_of, status_of
from tests.fakes import images
from tests.fakes.replicate import FLUX_SCHNELL, FakeReplicate, Scenario
from tests.faults.conftest import UnhandledWatch
from tests.helpers import serving

FLUX = ModelRef.parse(FLUX_SCHNELL)
GENERIC_FAILURE = "Something went wrong on our side"
METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
CHUNK = 64 * 1024
# What aiohttp may pull off the socket beyond what the downloader consumed: its stream buffer pauses the
# transport at twice its 64 KiB limit, plus one socket read.
READ_SLACK = 4 * CHUNK
COULD_NOT = "the image could not be downloaded"


def off_loopback(address: str) -> bool:
    """Whether a socket to ``address`` would leave the machine (the fakes all listen on loopback)."""
    return not ipaddress.ip_address(address.split("%")[0]).is_loopback


class QuickClock(SystemClock):
    """The real clock, with retry pauses ten times shorter (the downloader's own clock seam)."""

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds / 10)


@dataclass
class Guarded:
    """The real engine behind a guarded session that records where it connects and what it reads."""

    api: FakeReplicate
    engine: JobEngine
    session: aiohttp.ClientSession
    connections: list[str] = field(default_factory=list)
    """Every address the session opened a socket for (before connecting)."""
    responses: list[aiohttp.ClientResponse] = field(default_factory=list)

    @property
    def forbidden_connections(self) -> list[str]:
        return [host for host in self.connections if off_loopback(host)]

    def read_from(self, path: str) -> list[int]:
        """Bytes the session took off the wire for each response to ``path``."""
        return [r.content.total_bytes for r in self.responses if r.url.path == path]

    async def run(self, output: Any, *, timeout: float = 30.0) -> JobView:
        """One job whose prediction succeeds with ``output`` as its ``output``; its final view."""
        self.api.push_scenario(start_delay=0.0, duration=0.0, output_override=output)
        request = await self.engine.prepare(FLUX, ImagineOptions(prompt="a harmless kitten"))
        job = await self.engine.submit(request, RecordingPresenter())
        return await asyncio.wait_for(job.wait(), timeout)


def recording_session(
    guard: FetchGuard, connections: list[str], responses: list[aiohttp.ClientResponse]
) -> aiohttp.ClientSession:
    """A session like ``Core.open``'s (``guard``'s resolver), recording sockets and responses."""

    def socket_factory(addr_info: Any) -> socket.socket:
        family, kind, proto, _, address = addr_info
        connections.append(str(address[0]))
        if off_loopback(str(address[0])):
            raise OSError(f"test: refused to open a socket to {address[0]}")
        return socket.socket(family, kind, proto)

    class Recording(aiohttp.ClientResponse):
        async def start(self, connection: Any) -> aiohttp.ClientResponse:
            responses.append(self)
            return await super().start(connection)

    connector = aiohttp.TCPConnector(resolver=GuardedResolver(guard), limit=100, socket_factory=socket_factory)
    return aiohttp.ClientSession(connector=connector, response_class=Recording)


@pytest.fixture
async def guarded(fake_api: FakeReplicate, unhandled: UnhandledWatch) -> AsyncIterator[Guarded]:
    connections: list[str] = []
    responses: list[aiohttp.ClientResponse] = []
    guard = FetchGuard.of(fake_api.base_url)  # the fake API serves its files itself, as a gateway does
    async with recording_session(guard, connections, responses) as session:
        client = ReplicateClient(session, fake_api.base_url, fake_api.token, budget=RequestBudget(), retry=FAST_RETRY)
        # The production cap, timeout and number of attempts; only the pauses between attempts are shorter.
        engine = JobEngine(client, Downloader(session, guard, clock=QuickClock()), poll=FAST_POLL, prefer_wait=0)
        harness = Guarded(fake_api, engine, session, connections, responses)
        yield harness
        await engine.close()
    assert not fake_api.file_requests_with_auth, "the API token went to a file host"


def assert_refused(view: JobView, *phrases: str) -> None:
    """The job failed with a clear message (one of ``phrases``, case-insensitive) and delivered nothing."""
    assert view.state is JobState.FAILED, view
    assert not view.images
    error = str(view.error or "")
    assert error and GENERIC_FAILURE not in error, error
    assert any(phrase.lower() in error.lower() for phrase in phrases), error


# --------------------------------------------------------------------------- not http(s)


@pytest.mark.parametrize(
    "output",
    [
        "ftp://files.example.com/out-0.png",
        "file:///etc/passwd",
        "gopher://169.254.169.254:80/_GET%20/latest/meta-data",
        "javascript:alert(1)",
        ["ftp://files.example.com/out-0.png"],
    ],
)
async def test_an_output_that_is_not_http_is_refused(guarded: Guarded, unhandled: UnhandledWatch, output: Any) -> None:
    view = await guarded.run(output)
    assert_refused(view, "output was refused")
    assert view.error and "only downloads http, https and data: urls" in str(view.error).lower(), view.error
    assert guarded.api.file_requests == [] and guarded.connections.count("169.254.169.254") == 0
    unhandled.check()


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("a lighthouse, as words", "returned text instead of a link to a file (“a lighthouse, as words”)"),
        ([{"image": "https://example.com/x.png"}], "returned a JSON object instead of a link"),
        ([42], "returned a number instead of a link"),
    ],
)
async def test_an_output_that_is_no_link_says_what_came_back(
    guarded: Guarded, unhandled: UnhandledWatch, output: Any, words: str
) -> None:
    view = await guarded.run(output)
    assert_refused(view, "output was refused")
    assert view.error and words in str(view.error), view.error
    unhandled.check()


# --------------------------------------------------------------------------- link-local and metadata


@pytest.mark.parametrize(
    "output",
    [
        METADATA,
        "https://169.254.169.254/latest/meta-data",
        "http://169.254.170.2/v2/credentials",  # ECS task metadata
        "http://169.254.169.254./latest/meta-data",
        "http://[::ffff:169.254.169.254]/latest/meta-data",
        "http://[fe80::a9fe:a9fe]/latest/meta-data",
        "http://0.0.0.0/latest/meta-data",
        "http://user:pass@169.254.169.254/latest/meta-data",
        [METADATA, "http://127.0.0.1:1/fine.png"],  # a job asking for one image fetches only the first
    ],
)
async def test_a_metadata_address_is_refused_before_connecting(
    guarded: Guarded, unhandled: UnhandledWatch, output: Any
) -> None:
    view = await guarded.run(output)
    assert_refused(view, COULD_NOT)
    assert "169.254" not in str(view.error or "") and "0.0.0.0" not in str(view.error or "")
    assert guarded.forbidden_connections == []
    unhandled.check()


@pytest.mark.parametrize(
    "host", ["2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "169.254.43518", "0"], ids=lambda h: f"host={h}"
)
async def test_a_name_that_resolves_to_link_local_is_refused(
    guarded: Guarded, unhandled: UnhandledWatch, host: str
) -> None:
    """Shorthand IPv4 forms are names to a URL parser, but the system resolver turns them into 169.254.x.x.

    The guard refuses the non-canonical form before resolving it (and its resolver would refuse the address);
    what matters here is that no socket is opened to it, and the member reads no address.
    """
    view = await guarded.run(f"http://{host}/latest/meta-data")
    assert_refused(view, COULD_NOT)
    assert guarded.forbidden_connections == []
    unhandled.check()


class StaticResolver(AbstractResolver):
    """Resolves every name to one address (a DNS name pointing at the metadata service); counts lookups."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.lookups = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups += 1
        return [
            ResolveResult(hostname=host, host=self.address, port=port, family=family, proto=0, flags=0),
        ]

    async def close(self) -> None:
        """Nothing to release."""


async def test_a_dns_name_pointing_at_metadata_is_refused() -> None:
    """``metadata.example`` → 169.254.169.254, as a DNS rebinding attacker would arrange."""
    inner = StaticResolver("169.254.169.254")
    sockets: list[Any] = []

    def socket_factory(addr_info: Any) -> socket.socket:
        sockets.append(addr_info)
        raise OSError("test: no socket may be opened")

    guard = FetchGuard()
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(guard, inner), socket_factory=socket_factory)
    async with aiohttp.ClientSession(connector=connector) as session:
        downloader = Downloader(session, guard, clock=QuickClock())
        with pytest.raises(DeliveryError):
            await downloader.fetch("http://metadata.example/latest/meta-data")
    assert inner.lookups >= 1 and sockets == []


@pytest.mark.parametrize(("name", "lookups"), [("metadata.example", 1), ("0xa9fea9fe", 0)])
async def test_a_refused_name_is_not_retried_and_not_explained(name: str, lookups: int) -> None:
    """A name is looked up once and refused; a hex spelling of an address is refused before any lookup."""
    inner = StaticResolver("169.254.169.254")
    guard = FetchGuard()
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(guard, inner))
    async with aiohttp.ClientSession(connector=connector) as session:
        downloader = Downloader(session, guard, clock=QuickClock())
        with pytest.raises(DeliveryError) as refused:
            await downloader.fetch(f"http://{name}/latest/meta-data", "output 1")
    assert refused.value.message == "The image could not be downloaded (output 1).", refused.value.message
    assert inner.lookups == lookups, f"a refused address was looked up {inner.lookups} times"


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize(
    ("target", "status"),
    [
        *((METADATA, status) for status in (301, 302, 303, 307, 308)),
        ("http://[::ffff:a9fe:a9fe]/latest/meta-data", 302),
        ("http://2852039166/latest/meta-data", 302),
        ("http://0xa9fea9fe/latest/meta-data", 302),
    ],
)
async def test_a_redirect_to_metadata_is_refused(
    guarded: Guarded, unhandled: UnhandledWatch, status: int, target: str
) -> None:
    view = await guarded.run([guarded.api.redirect_url(target, status=status)])
    assert_refused(view, COULD_NOT)
    assert guarded.forbidden_connections == []
    hops = [r for r in guarded.api.file_requests if r.path == "/evil/redirect"]
    assert hops and all(r.response_status == status for r in hops)
    unhandled.check()


async def test_a_redirect_to_another_scheme_is_refused(guarded: Guarded, unhandled: UnhandledWatch) -> None:
    view = await guarded.run(guarded.api.redirect_url("file:///etc/passwd"))
    assert_refused(view, COULD_NOT)
    assert len([r for r in guarded.api.file_requests if r.path == "/evil/redirect"]) == 1
    unhandled.check()


async def test_an_endless_chain_of_redirects_ends(guarded: Guarded, unhandled: UnhandledWatch) -> None:
    fake = guarded.api
    url = fake.not_image_url()
    for _ in range(20):
        url = fake.redirect_url(url)
    view = await guarded.run(url)
    assert_refused(view, COULD_NOT)
    assert len([r for r in fake.file_requests if r.path == "/evil/redirect"]) <= 6
    unhandled.check()


async def test_a_redirect_to_a_real_image_is_followed(guarded: Guarded, unhandled: UnhandledWatch) -> None:
    """The guard does not get in the way of ordinary redirects (CDNs use them)."""
    fake = guarded.api
    fake.push_scenario(start_delay=0.0, duration=0.0)
    request = await guarded.engine.prepare(FLUX, ImagineOptions(prompt="a kitten"))
    first = await (await guarded.engine.submit(request, RecordingPresenter())).wait()
    assert first.state is JobState.SUCCEEDED
    image = fake.last_prediction.files[0]
    view = await guarded.run(fake.redirect_url(image.url, status=307))
    assert view.state is JobState.SUCCEEDED, view.error
    assert [i.data for i in view.images] == [image.data]
    unhandled.check()


# --------------------------------------------------------------------------- not an image, endless, stalled


@pytest.mark.parametrize("kind", ["html-as-png", "data-html", "data-text"])
async def test_a_non_image_is_refused(guarded: Guarded, unhandled: UnhandledWatch, kind: str) -> None:
    page = images.not_an_image()
    output = {
        "html-as-png": guarded.api.not_image_url(),
        "data-html": f"data:text/html;base64,{base64.b64encode(page).decode()}",
        "data-text": "data:image/png,hello%20world",
    }[kind]
    view = await guarded.run([output])
    assert_refused(view, "not an image")
    unhandled.check()


async def test_an_endless_body_is_cut_at_the_cap(guarded: Guarded, unhandled: UnhandledWatch) -> None:
    view = await guarded.run([guarded.api.endless_url()])
    assert_refused(view, "larger than")
    read = guarded.read_from("/evil/endless")
    assert read and all(MAX_DOWNLOAD_BYTES < n <= MAX_DOWNLOAD_BYTES + READ_SLACK for n in read), read
    # One attempt only: an oversized file is not fetched again.
    assert len(read) == 1
    unhandled.check()


async def test_an_announced_huge_body_is_not_read_at_all(guarded: Guarded, unhandled: UnhandledWatch) -> None:
    view = await guarded.run([guarded.api.endless_url(declared_length=50 * 1024**3)])
    assert_refused(view, "larger than")
    assert all(n <= READ_SLACK for n in guarded.read_from("/evil/endless")), guarded.read_from("/evil/endless")
    unhandled.check()


@pytest.mark.parametrize("cap", [1, 100_000, 1024 * 1024])
async def test_the_downloader_reads_no_further_than_its_cap(fake_api: FakeReplicate, cap: int) -> None:
    connections: list[str] = []
    responses: list[aiohttp.ClientResponse] = []
    guard = FetchGuard.of(fake_api.base_url)
    async with recording_session(guard, connections, responses) as session:
        downloader = Downloader(session, guard, max_bytes=cap)
        with pytest.raises(DeliveryError, match="larger than"):
            await downloader.fetch(fake_api.endless_url())
        (response,) = responses
        assert cap < response.content.total_bytes <= cap + READ_SLACK


async def test_a_download_stalled_forever_is_given_up_and_tried_again(fake_api: FakeReplicate) -> None:
    fake_api.push_scenario(start_delay=0.0, duration=0.0)
    async with aiohttp.ClientSession() as session:
        client = ReplicateClient(session, fake_api.base_url, fake_api.token, retry=FAST_RETRY)
        downloader = Downloader(session, FetchGuard.of(fake_api.base_url), timeout=0.5, attempts=2, clock=QuickClock())
        engine = JobEngine(client, downloader, poll=FAST_POLL, prefer_wait=0)
        fake_api.stall_next("file")
        request = await engine.prepare(FLUX, ImagineOptions(prompt="a kitten"))
        view = await asyncio.wait_for((await engine.submit(request, RecordingPresenter())).wait(), 10)
        assert view.state is JobState.SUCCEEDED, view.error
        assert [r.body_bytes_sent for r in fake_api.file_requests] == [8, 0]

        fake_api.stall_next("file", count=2)
        request = await engine.prepare(FLUX, ImagineOptions(prompt="a kitten"))
        view = await asyncio.wait_for((await engine.submit(request, RecordingPresenter())).wait(), 10)
        assert_refused(view, COULD_NOT)
        await engine.close()


async def test_a_data_url_is_held_to_the_downloaders_cap() -> None:
    png = images.image_bytes("png", (8, 8), (1, 2, 3))
    huge = png + bytes(2 * 1024 * 1024)
    async with aiohttp.ClientSession() as session:
        downloader = Downloader(session, FetchGuard(), max_bytes=1024 * 1024)
        with pytest.raises(DeliveryError, match="larger than"):
            await downloader.fetch(f"data:image/png;base64,{base64.b64encode(huge).decode()}")


@pytest.mark.parametrize("where", ["output", "redirect"])
async def test_a_malformed_url_is_refused_clearly(guarded: Guarded, unhandled: UnhandledWatch, where: str) -> None:
    broken = "http://[169.254.169.254/latest/meta-data"
    view = await guarded.run([broken if where == "output" else guarded.api.redirect_url(broken)])
    assert_refused(view, COULD_NOT)
    assert guarded.forbidden_connections == []
    unhandled.check()


async def test_a_malformed_url_never_escapes_as_anything_but_a_delivery_error() -> None:
    """Whatever the URL, the downloader answers with bytes or a :class:`DeliveryError` (a person-fit message)."""
    async with aiohttp.ClientSession() as session:
        downloader = Downloader(session, FetchGuard(), attempts=1, timeout=0.5)
        for url in ("", "http://", "https:///x", "http://:80/", "http://host:99999/", "mailto:a@b.c", "//x/y"):
            with pytest.raises(ImagineError):
                await downloader.fetch(url)


# --------------------------------------------------------------------------- the API's own replies


async def test_a_deeply_nested_api_reply_is_a_server_error() -> None:
    async def nested(request: web.Request) -> web.Response:
        depth = 100_000
        return web.Response(body=b"[" * depth + b"]" * depth, content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/predictions/{id}", nested)
    async with serving(app) as port, aiohttp.ClientSession() as session:
        client = ReplicateClient(session, f"http://127.0.0.1:{port}", "token", retry=RetryPolicy(attempts=1))
        with pytest.raises(ServerError):
            await client.get("p")


# --------------------------------------------------------------------------- through /imagine


async def test_malicious_outputs_end_in_a_clear_message_in_discord(
    make_stack: StackFactory, unhandled: UnhandledWatch
) -> None:
    stack = await make_stack()
    fake = stack.api
    cases: list[tuple[str, tuple[str, ...]]] = [
        ("ftp://files.example.com/out-0.png", ("output was refused: the model returned a ftp: link",)),
        (METADATA, (COULD_NOT,)),
        (fake.redirect_url(METADATA), (COULD_NOT,)),
        (fake.not_image_url(), ("not an image",)),
        (fake.endless_url(), ("larger than",)),
    ]

    def choose(inputs: dict[str, Any]) -> Scenario:
        output, _ = cases[int(str(inputs["prompt"]).rsplit(" ", 1)[-1])]
        return Scenario(start_delay=0.0, duration=0.05, output_override=[output])

    fake.scenario_chooser = choose

    async def one(number: int) -> None:
        stack.guild.add_member(f"victim-{number}")
        handle = await stack.imagine(f"victim-{number}", prompt=f"malicious case {number}")
        final = await stack.final_message(handle, timeout=30)
        output, phrases = cases[number]
        what = field_of(final, "What happened") or ""
        assert "Failed" in status_of(final), (output, final.embeds)
        assert any(p in what.lower() for p in phrases) and GENERIC_FAILURE not in what, (output, what)
        assert not final.attachments

    await asyncio.gather(*(one(number) for number in range(len(cases))))
    assert fake.endless_bytes_sent < MAX_DOWNLOAD_BYTES + 64 * 1024 * 1024
    unhandled.check()


# --------------------------------------------------------------------------- endless API replies


@pytest.mark.parametrize("declared", [True, False])
async def test_an_api_reply_larger_than_the_cap_is_refused_clearly_and_not_retried(declared: bool) -> None:

    from bot.api.client import MAX_REPLY_BYTES, ReplicateClient
    from bot.api.errors import ReplyTooLarge
    from tests.conftest import FAST_RETRY

    hits = 0

    async def huge(request: web.Request) -> web.StreamResponse:
        nonlocal hits
        hits += 1
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if declared:
            response.content_length = MAX_REPLY_BYTES * 4
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b'{"id": "p", "status": "processing", "logs": "')
        chunk = b"x" * 1024 * 1024
        with contextlib.suppress(ConnectionError, RuntimeError):
            for _ in range(MAX_REPLY_BYTES // len(chunk) + 4):
                await response.write(chunk)
        return response

    app = web.Application()
    app.router.add_get("/v1/predictions/{id}", huge)
    async with serving(app) as port, aiohttp.ClientSession() as session:
        client = ReplicateClient(session, f"http://127.0.0.1:{port}", "r8_token", retry=FAST_RETRY)
        with pytest.raises(ReplyTooLarge, match="larger than 16 MiB"):
            await client.get("p")
    assert hits == 1
