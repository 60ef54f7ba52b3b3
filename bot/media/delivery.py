"""Downloading output files (and members' attachments) safely, within a byte budget per job.

Outputs expire an hour after a prediction ends, so they are downloaded as soon
as it succeeds. The API token never goes to the file host: these requests
carry no ``Authorization`` header at all. Where files may come from is the
fetch guard's business (:mod:`bot.media.fetch_guard`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from urllib.parse import unquote_to_bytes

import aiohttp
from yarl import URL

from bot.base.clock import Clock, SystemClock
from bot.base.errors import DeliveryError
from bot.i18n import Text, tr
from bot.media.fetch_guard import FetchGuard, FetchRefused, ForbiddenAddress
from bot.media.images import HeaderCheck, ImageFile, check_pixels, sniff_image

log = logging.getLogger(__name__)

MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
"""Largest output file downloaded."""
JOB_DOWNLOAD_BYTES = 128 * 1024 * 1024
"""All of one job's output files together: one upscale of up to 64 MiB, or ten images of 12.8 MiB each."""
PARALLEL_DOWNLOADS = 4
"""Output files of one job downloaded at once."""
_MAX_REDIRECTS = 5
_CHUNK = 64 * 1024
# Why a file the host no longer has (HTTP 403, 404, 410) is missing, as the member reads it.
_GONE = tr("it is no longer there")
_OUTPUT_GONE = tr("it has expired (outputs are kept for an hour after a prediction)")


@dataclass(frozen=True, eq=False)
class Downloader:
    """Fetches files over the shared session through the fetch guard: streamed, capped, timed out and retried.

    Every URL, and every redirect hop, passes :meth:`FetchGuard.check_url`; the session's resolver
    should be the same guard's (:meth:`FetchGuard.connector`), so names are checked as they connect.
    A refused or failed download reaches the member as "the image could not be downloaded"; the
    reason, with the host, goes to the log at WARNING.
    """

    session: aiohttp.ClientSession
    guard: FetchGuard
    _: KW_ONLY
    max_bytes: int = MAX_DOWNLOAD_BYTES
    """Largest file read (each of a job's outputs reads at most its share of :attr:`job_bytes`)."""
    job_bytes: int = JOB_DOWNLOAD_BYTES
    timeout: float = 60.0
    """Seconds each request for a file (each attempt, each redirect hop) may take."""
    attempts: int = 3
    clock: Clock = field(default_factory=SystemClock)
    rng: random.Random = field(default_factory=random.Random)

    async def fetch_all(self, urls: Sequence[str], stem: str) -> list[ImageFile]:
        """Download one job's outputs, named ``{stem}-{n}.{ext}``, in output order.

        They share :data:`JOB_DOWNLOAD_BYTES`: each may be at most its share of it (and
        :data:`MAX_DOWNLOAD_BYTES`), so a job never holds more, whatever the model returns;
        :data:`PARALLEL_DOWNLOADS` at a time. Every image's header is checked before anything decodes it.
        The first refusal ends the others' downloads too: the job has failed, and it holds nothing more.
        """
        if not urls:
            return []
        share = replace(self, max_bytes=min(self.max_bytes, self.job_bytes // len(urls)))
        slots = asyncio.Semaphore(PARALLEL_DOWNLOADS)

        async def fetch_one(url: str, where: Text) -> bytes:
            async with slots:
                return await share.fetch(url, where)

        try:
            async with asyncio.TaskGroup() as downloads:
                tasks = [downloads.create_task(fetch_one(url, tr("output {n}", n=n))) for n, url in enumerate(urls, 1)]
        except BaseExceptionGroup as group:
            raise _first_of(group) from None
        files = []
        for index, task in enumerate(tasks):
            data = task.result()
            kind = sniff_image(data)
            if kind is None:  # fetch() already checked; keeps the type checker honest
                raise DeliveryError(tr("Output {n} is not an image", n=index + 1))
            files.append(ImageFile(f"{stem}-{index + 1}.{kind[0]}", data, kind[1]))
        return files

    async def fetch(self, url: str, where: Text | str | None = None) -> bytes:
        """The bytes of one output: an image by its magic bytes (not its Content-Type), within the pixel cap.

        ``where`` names the output for the member ("output 2").
        """
        if is_data_url(url):
            data = decode_data_url(url, self.max_bytes)
        else:  # refused as soon as its first bytes show it is not an image, or declare too many pixels
            data = await self.download(url, where, gone=_OUTPUT_GONE, watch=lambda: HeaderCheck().feed)
        check_pixels(data)
        return data

    async def download(
        self,
        url: str,
        where: Text | str | None = None,
        *,
        max_bytes: int | None = None,
        gone: Text | str = _GONE,
        prefix: int | None = None,
        watch: Callable[[], Callable[[bytearray], None]] | None = None,
    ) -> bytes:
        """The bytes at an http(s) ``url``, read no further than ``max_bytes`` (default: the downloader's cap).

        Raises :class:`DeliveryError` fit for the member: ``where`` names the file ("output 2", "image 1
        of this message"); ``gone`` says why a file the host no longer has (HTTP 403, 404, 410) is missing.
        With ``prefix``, reading stops once that many bytes have come (the file's first bytes are returned).
        ``watch`` makes, for each attempt (a host may send other bytes when asked again), what sees the
        bytes so far after each chunk and raises :class:`DeliveryError` to stop reading.
        """
        limit = min(max_bytes, self.max_bytes) if max_bytes is not None else self.max_bytes
        reading = _Reading(limit, where, gone, prefix, watch)
        last = "no attempt"
        for attempt in range(1, self.attempts + 1):
            try:
                return await self._follow(url, reading)
            except _Retryable as exc:
                last = str(exc)
                if attempt < self.attempts:
                    await self.clock.sleep(0.5 * 2 ** (attempt - 1) * self.rng.uniform(0.8, 1.2))
            except _Refused as exc:
                last = str(exc)
                break
        log.warning("could not download %s from %s: %s", where or "a file", _for_log(url), _scrubbed(last))
        raise DeliveryError(
            tr("The image could not be downloaded ({where}).", where=where)
            if where
            else tr("The image could not be downloaded.")
        )

    async def _follow(self, url: str, reading: _Reading) -> bytes:
        """GET with redirects followed by hand, so the guard checks every hop."""
        limit, where = reading.limit, reading.where
        hop: str | URL = url
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                target = self.guard.check_url(hop)
            except FetchRefused as exc:
                raise _Refused(f"{_for_log(hop)} refused: {exc}") from None
            try:
                async with self.session.get(
                    target,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self.timeout, sock_read=min(self.timeout, 20)),
                ) as response:
                    status = response.status
                    if status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                        try:
                            hop = target.join(URL(response.headers["Location"]))
                        except ValueError:
                            raise _Refused(f"{_for_log(target)} redirected to a malformed URL") from None
                        continue
                    if status >= 500 or status == 429:
                        raise _Retryable(f"{_for_log(target)} answered HTTP {status}")
                    if status in (403, 404, 410):
                        log.warning("%s answered HTTP %d for %s", _for_log(target), status, where or "a file")
                        raise DeliveryError(
                            tr(
                                "The image could not be downloaded ({where}): {reason}.",
                                where=where,
                                reason=reading.gone,
                            )
                            if where
                            else tr("The image could not be downloaded: {reason}.", reason=reading.gone)
                        )
                    if status != 200:
                        raise _Refused(f"{_for_log(target)} answered HTTP {status}")
                    declared = response.content_length
                    if declared is not None and declared > limit:
                        raise DeliveryError(_too_big(limit, where))
                    return await reading.body(response)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, ForbiddenAddress):
                    raise _Refused(f"{_for_log(target)} refused: {exc.os_error}") from exc
                raise _Retryable(f"{_for_log(target)}: {_described(exc)}") from exc
            except ValueError as exc:  # aiohttp.InvalidURL among them: a URL aiohttp will not request as it is
                raise _Refused(f"{_for_log(target)}: {_described(exc)}") from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _Retryable(f"{_for_log(target)}: {_described(exc)}") from exc
        raise _Refused(f"more than {_MAX_REDIRECTS} redirects from {_for_log(url)}")


@dataclass(frozen=True)
class _Reading:
    """How one download reads its body: how far, and who looks at the bytes as they come."""

    limit: int
    where: Text | str | None
    gone: Text | str
    prefix: int | None
    watch: Callable[[], Callable[[bytearray], None]] | None

    async def body(self, response: aiohttp.ClientResponse) -> bytes:
        """The response's body, or its first :attr:`prefix` bytes; refused past :attr:`limit`."""
        buffer = bytearray()
        watch = self.watch() if self.watch is not None else None
        async for chunk in response.content.iter_chunked(_CHUNK):
            buffer += chunk
            if self.prefix is not None and len(buffer) >= self.prefix:
                return bytes(buffer[: self.prefix])
            if len(buffer) > self.limit:
                raise DeliveryError(_too_big(self.limit, self.where))
            if watch is not None:
                watch(buffer)
        return bytes(buffer)


class _Retryable(Exception):
    """A download failure that may pass if tried again (the message is for the log)."""


class _Refused(Exception):
    """A download the guard refused, or that trying again cannot mend (the message is for the log)."""


def _first_of(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception that ended a task group (the others are the cancellations it caused, or peers)."""
    first = group.exceptions[0]
    return _first_of(first) if isinstance(first, BaseExceptionGroup) else first


def _described(exc: Exception) -> str:
    """``exc`` for the log, never with a URL's secrets (aiohttp's errors print the URL they were about)."""
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ClientResponseError):
        return _scrubbed(f"{name}: {exc.status}, message={exc.message!r}")
    if isinstance(exc, aiohttp.InvalidURL):  # its text is the whole URL, which may not even parse
        return f"{name}: {_scrubbed(exc.description)}" if exc.description else name
    return _scrubbed(f"{name}: {exc}") if str(exc) else name


_URL_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*")


def _scrubbed(text: str) -> str:
    """``text`` with every URL in it cut to what :func:`_for_log` keeps."""
    return _URL_TEXT.sub(lambda match: _for_log(match.group()), text)


def _for_log(url: str | URL) -> str:
    """``url`` without its user name, password, query and fragment (where signed links keep their secrets)."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        return str(parsed.with_user(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        return "a malformed URL"


def _too_big(limit: int, where: Text | str | None = None) -> Text:
    size = f"{limit / (1024 * 1024):.3g}"
    if where:
        return tr("The image ({where}) is larger than {size} MiB, so it was not downloaded", where=where, size=size)
    return tr("The image is larger than {size} MiB, so it was not downloaded", size=size)


def is_data_url(url: str) -> bool:
    """Whether ``url`` is a ``data:`` URL (schemes are case-insensitive: ``DATA:`` is one too)."""
    return url[:5].lower() == "data:"


def decode_data_url(url: str, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
    """The bytes of a ``data:[<mime>][;base64],<payload>`` URL, refused past ``max_bytes``."""
    header, sep, payload = url.partition(",")
    if not sep:
        raise DeliveryError(tr("The model returned a malformed data: URL"))
    base64_encoded = header.lower().endswith(";base64")
    # Before decoding, what the payload holds at least (padding aside): 3 bytes per 4 characters, or 1 per 3
    # ("%41"); the decoded bytes are measured exactly after.
    if (len(payload) * 3 // 4 - 2 if base64_encoded else len(payload) // 3) > max_bytes:
        raise DeliveryError(_too_big(max_bytes))
    if base64_encoded:
        try:
            data = base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise DeliveryError(tr("The model returned a data: URL with broken base64")) from exc
    else:
        data = unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise DeliveryError(_too_big(max_bytes))
    return data
