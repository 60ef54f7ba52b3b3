"""Downloading output files safely, within a byte budget per job.

Outputs expire an hour after a prediction ends, so they are downloaded as soon
as it succeeds. The API token never goes to the file host: these requests
carry no ``Authorization`` header at all.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import errno
import ipaddress
import logging
import random
import socket
from collections.abc import Sequence
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from bot.clock import Clock, SystemClock
from bot.errors import DeliveryError
from bot.images import ImageFile, check_pixels, sniff_image

log = logging.getLogger(__name__)

MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
"""Largest output file downloaded."""
JOB_DOWNLOAD_BYTES = 128 * 1024 * 1024
"""All of one job's output files together: one upscale of up to 64 MiB, or ten images of 12.8 MiB each."""
PARALLEL_DOWNLOADS = 4
"""Output files of one job downloaded at once."""
_MAX_REDIRECTS = 5
_CHUNK = 64 * 1024


class Downloader:
    """Fetches output files over the shared session: streamed, capped, timed out and retried."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        max_bytes: int = MAX_DOWNLOAD_BYTES,
        job_bytes: int = JOB_DOWNLOAD_BYTES,
        timeout: float = 60.0,
        attempts: int = 3,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._session = session
        self._max_bytes = max_bytes
        self._job_bytes = job_bytes
        self._timeout = timeout
        self._attempts = attempts
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()

    async def fetch_all(self, urls: Sequence[str], stem: str) -> list[ImageFile]:
        """Download one job's outputs, named ``{stem}-{n}.{ext}``, in output order.

        They share :data:`JOB_DOWNLOAD_BYTES`: each may be at most its share of it (and
        :data:`MAX_DOWNLOAD_BYTES`), so a job never holds more, whatever the model returns;
        :data:`PARALLEL_DOWNLOADS` at a time. Every image's header is checked before anything decodes it.
        """
        if not urls:
            return []
        share = self._for_job(min(self._max_bytes, self._job_bytes // len(urls)))
        slots = asyncio.Semaphore(PARALLEL_DOWNLOADS)

        async def fetch_one(url: str) -> bytes:
            async with slots:
                return await share.fetch(url)

        results = await asyncio.gather(*(fetch_one(url) for url in urls))
        files = []
        for index, data in enumerate(results):
            kind = sniff_image(data)
            if kind is None:  # fetch() already checked; keeps the type checker honest
                raise DeliveryError(f"Output {index + 1} is not an image")
            files.append(ImageFile(f"{stem}-{index + 1}.{kind[0]}", data, kind[1]))
        return files

    def _for_job(self, max_bytes: int) -> Downloader:
        """This downloader with a smaller cap per file (a copy: the session and settings are shared)."""
        limited = copy.copy(self)
        limited._max_bytes = max_bytes
        return limited

    async def fetch(self, url: str) -> bytes:
        """The bytes of one output: an image by its magic bytes (not its Content-Type), within the pixel cap."""
        if url.startswith("data:"):
            data = decode_data_url(url, self._max_bytes)
        else:
            data = await self._fetch_remote(url)
        if sniff_image(data) is None:
            raise DeliveryError("The model's output is not an image (its content is not PNG, JPEG, WEBP or GIF)")
        check_pixels(data)
        return data

    async def _fetch_remote(self, url: str) -> bytes:
        last: Exception | None = None
        for attempt in range(1, self._attempts + 1):
            try:
                return await self._follow(url)
            except _Retryable as exc:
                last = exc
                if attempt < self._attempts:
                    await self._clock.sleep(0.5 * 2 ** (attempt - 1) * self._rng.uniform(0.8, 1.2))
        raise DeliveryError(f"Could not download the output image: {last}")

    async def _follow(self, url: str) -> bytes:
        """GET with redirects followed by hand, so every hop is checked."""
        for _ in range(_MAX_REDIRECTS + 1):
            check_output_url(url)
            try:
                async with self._session.get(
                    url,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self._timeout, sock_read=min(self._timeout, 20)),
                ) as response:
                    if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                        try:
                            url = urljoin(url, response.headers["Location"])
                        except ValueError:
                            raise DeliveryError("The file host redirected to a malformed URL; refused") from None
                        continue
                    if response.status >= 500 or response.status == 429:
                        raise _Retryable(f"the file host answered HTTP {response.status}")
                    if response.status != 200:
                        raise DeliveryError(
                            f"Could not download the output image: the file host answered HTTP {response.status}"
                            + (
                                " (outputs expire an hour after a prediction)"
                                if response.status in (403, 404, 410)
                                else ""
                            )
                        )
                    declared = response.content_length
                    if declared is not None and declared > self._max_bytes:
                        raise DeliveryError(_too_big(self._max_bytes))
                    buffer = bytearray()
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        buffer += chunk
                        if len(buffer) > self._max_bytes:
                            raise DeliveryError(_too_big(self._max_bytes))
                    return bytes(buffer)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, ForbiddenAddress):
                    raise DeliveryError(f"The output URL {exc.os_error}") from exc
                raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _Retryable(type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}") from exc
        raise DeliveryError("Could not download the output image: too many redirects")


class _Retryable(Exception):
    """A download failure that may pass if tried again."""


def _too_big(limit: int) -> str:
    return f"The output file is larger than {limit / (1024 * 1024):.3g} MiB, so it was not downloaded"


def forbidden_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Link-local (cloud metadata lives at 169.254.169.254), multicast, unspecified or reserved."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_link_local or address.is_multicast or address.is_unspecified or address.is_reserved


def check_output_url(url: str) -> None:
    """Refuse output URLs that are not http(s) or name a forbidden address literally.

    Names that *resolve* to such addresses (including shorthand forms like
    ``http://2852039166/``) are stopped by :class:`GuardedResolver` at connect time.
    """
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        raise DeliveryError("The model returned a malformed output URL; refused") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise DeliveryError(f"The model returned an output that is not an http(s) URL ({parts.scheme or 'none'}:)")
    try:
        address = ipaddress.ip_address(hostname.rstrip("."))
    except ValueError:
        return
    if forbidden_address(address):
        raise DeliveryError("The model returned an output URL pointing at a link-local or reserved address; refused")


class ForbiddenAddress(OSError):
    """A host name that resolves only to addresses the bot never connects to."""

    def __str__(self) -> str:
        return str(self.strerror)


class GuardedResolver(AbstractResolver):
    """A resolver that never hands out forbidden addresses, whatever a name resolves to."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [result for result in results if not forbidden_address(ipaddress.ip_address(result["host"]))]
        if not allowed:
            raise ForbiddenAddress(
                errno.EACCES, f"points at {host}, which resolves only to link-local or reserved addresses; refused"
            )
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def decode_data_url(url: str, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
    """The bytes of a ``data:[<mime>][;base64],<payload>`` URL, refused past ``max_bytes``."""
    header, sep, payload = url.partition(",")
    if not sep:
        raise DeliveryError("The model returned a malformed data: URL")
    if len(payload) * 3 // 4 > max_bytes:
        raise DeliveryError(_too_big(max_bytes))
    if header.endswith(";base64"):
        try:
            return base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise DeliveryError("The model returned a data: URL with broken base64") from exc
    return unquote_to_bytes(payload)
