"""Output images: what format a file is, how many pixels its header declares, and fitting it under an upload limit.

A file's dimensions are read from its header by hand, never by decoding: a
decompression bomb (a few KB of PNG that declares 13000×13000 pixels) costs
nothing to refuse here, where a decode would cost a gigabyte. Pillow only ever
decodes an image this module has let through, one at a time in the process (:func:`fit_in_turn`).
"""

from __future__ import annotations

import asyncio
import io
import logging
import struct
import weakref
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from bot.base.errors import DeliveryError
from bot.i18n import tr

log = logging.getLogger(__name__)

MAX_IMAGE_PIXELS = 100_000_000
"""Pixels an output image may declare (its canvas; an animation is decoded a frame at a time).

Far above what models make (a 4× upscale of 2048² is 8192² ≈ 67 M), far below a decompression bomb
(13000² ≈ 169 M slips under Pillow's own refusal at 179 M and costs about 1 GB to decode).
"""

# Pillow warns above its limit and refuses above twice that; at the same cap, it never warns about an
# image that passed the header check here (its default, 89.5 M, would warn between that and ours).
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

_WEBP_MAX_SIDE = 16383
"""WEBP cannot encode a side longer than this."""

_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()
"""One turn at a time per event loop for :func:`fit_in_turn`."""

# Magic numbers of the formats image models produce.
_SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "png", "image/png"),
    (b"\xff\xd8\xff", 0, "jpg", "image/jpeg"),
    (b"GIF87a", 0, "gif", "image/gif"),
    (b"GIF89a", 0, "gif", "image/gif"),
    (b"WEBP", 8, "webp", "image/webp"),
)


NOT_AN_IMAGE = tr("The model's output is not an image (its content is not PNG, JPEG, WEBP or GIF)")
"""What the member reads when an output's magic bytes are none of the formats above."""
SNIFF_BYTES = 12
"""Bytes :func:`sniff_image` needs to tell every format (WEBP's tag ends at byte 12)."""


def sniff_image(data: bytes | bytearray) -> tuple[str, str] | None:
    """``(extension, content type)`` from the file's magic bytes, or ``None`` if not an image we know."""
    for magic, offset, ext, mime in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic and (ext != "webp" or data[:4] == b"RIFF"):
            return ext, mime
    return None


@dataclass(frozen=True)
class ImageFile:
    """One downloaded (or re-encoded) image."""

    filename: str
    data: bytes
    content_type: str

    @property
    def size(self) -> int:
        """Bytes."""
        return len(self.data)


def declared_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` as the whole file's header declares them (for a GIF, the canvas all its frames need).

    ``None`` if the header cannot be read. Reads only headers: nothing is decompressed.
    """
    kind = sniff_image(data)
    if kind is None:
        return None
    try:
        return _reader(kind[0]).size(data, complete=True)
    except _Truncated:
        return None


def check_pixels(data: bytes) -> None:
    """Refuse a whole file that is not an image, declares more than :data:`MAX_IMAGE_PIXELS` or is unreadable."""
    HeaderCheck().finish(data)


class HeaderCheck:
    """One file's header checked as its bytes arrive, so a download stops as soon as they settle it.

    :meth:`feed` refuses a file whose first bytes are not an image we know, or whose header declares more
    than :data:`MAX_IMAGE_PIXELS`, as soon as the bytes that say so have arrived (a GIF's canvas grows with
    every frame, so it is walked as it comes); :meth:`finish` has the last word on the whole file. Each
    byte is looked at once: a header walk resumes where the bytes ran out.
    """

    def __init__(self) -> None:
        self._reader: _SizeReader | None = None
        self._settled = False

    def feed(self, data: bytes | bytearray) -> None:
        """Check ``data``, the file's first bytes so far; raises :class:`DeliveryError` to refuse it."""
        if not self._settled and len(data) >= SNIFF_BYTES:
            self._look(data, complete=False)

    def finish(self, data: bytes) -> None:
        """Check the whole file ``data``; raises :class:`DeliveryError` to refuse it."""
        self._look(data, complete=True)

    def _look(self, data: bytes | bytearray, *, complete: bool) -> None:
        if self._reader is None:
            kind = sniff_image(data)
            if kind is None:
                raise DeliveryError(NOT_AN_IMAGE)
            self._reader = _reader(kind[0])
        try:
            size = self._reader.size(data, complete=complete)
        except _Truncated:
            if complete:
                size = None
            else:
                _check_area(*self._reader.least_size)
                return
        if size is None:
            raise DeliveryError(
                tr("The model's output image is damaged (its header cannot be read), so it was not shown.")
            )
        _check_area(*size)
        self._settled = True


def _check_area(width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        log.warning("refused an output image of %d×%d pixels without decoding it", width, height)
        raise DeliveryError(
            tr(
                "The model's output image is {width}×{height} pixels, more than the {most} megapixels the bot "
                "accepts, so it was not shown.",
                width=width,
                height=height,
                most=MAX_IMAGE_PIXELS // 1_000_000,
            )
        )


class _Truncated(Exception):
    """The bytes so far end before the header that declares the size."""


class _SizeReader:
    """Reads one format's declared size from a file's first bytes (subclasses keep where a walk got to)."""

    least_size: tuple[int, int] = (0, 0)
    """The least the file needs, from what was read so far (a GIF's canvas only grows)."""

    def size(self, data: bytes | bytearray, *, complete: bool) -> tuple[int, int] | None:
        """The declared size, ``None`` if the header is damaged; :class:`_Truncated` if ``data`` ends too soon."""
        try:
            return self._size(data, complete=complete)
        except (struct.error, IndexError):
            raise _Truncated from None

    def _size(self, data: bytes | bytearray, *, complete: bool) -> tuple[int, int] | None:
        raise NotImplementedError


def _reader(extension: str) -> _SizeReader:
    readers: dict[str, type[_SizeReader]] = {"png": _PngReader, "jpg": _JpegReader, "gif": _GifReader}
    return readers.get(extension, _WebpReader)()


class _PngReader(_SizeReader):
    def _size(self, data: bytes | bytearray, *, complete: bool) -> tuple[int, int] | None:
        # The signature, then IHDR first: length, type, width, height.
        width, height = struct.unpack(">II", data[16:24])
        if data[12:16] != b"IHDR":
            return None
        return int(width), int(height)


class _WebpReader(_SizeReader):
    def _size(self, data: bytes | bytearray, *, complete: bool) -> tuple[int, int] | None:
        if len(data) < 30:
            raise _Truncated
        chunk = data[12:16]
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
            width, height = struct.unpack("<HH", data[26:30])
            return width & 0x3FFF, height & 0x3FFF
        if chunk == b"VP8L" and data[20] == 0x2F:
            (bits,) = struct.unpack("<I", data[21:25])
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
        return None


_MAX_JPEG_SEGMENTS = 10_000
"""Segments walked at most before a JPEG's frame header (real files have a handful)."""
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
"""Markers without a length."""
_JPEG_FRAMES = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
"""Start-of-frame markers (not DHT 0xC4, JPG 0xC8 or DAC 0xCC, which share the range)."""


class _JpegReader(_SizeReader):
    """The first frame header's size (it may come after EXIF, tens of KiB in)."""

    def __init__(self) -> None:
        self._position = 2
        self._segments = 0

    def _size(self, data: bytes | bytearray, *, complete: bool) -> tuple[int, int] | None:
        while self._segments < _MAX_JPEG_SEGMENTS:
            position = self._position
            if position + 4 > len(data):
                raise _Truncated
            if data[position] != 0xFF:
                return None
            marker = data[position + 1]
            if marker in (0xD9, 0xDA):  # end of image, or the scan began without a frame header
                return None
            if marker in _JPEG_FRAMES:
                height, width = struct.unpack(">HH", data[position + 5 : position + 9])
                return int(width), int(height)
            if marker == 0xFF:  # fill byte
                self._position += 1
            elif marker in _JPEG_STANDALONE:
                self._position += 2
            else:
                self._position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
            self._segments += 1
        return None


_MAX_GIF_BLOCKS = 4_096
"""Extension blocks and frames of a GIF walked at most (a model's animation has a few hundred frames, each
with an extension or two); every one costs a pass however little it holds."""
_MAX_GIF_SUB_BLOCKS = 300_000
"""Data sub-blocks walked at most (of up to 255 bytes each: a 64 MiB file has about 263,000), so a file of
tiny ones is refused as damaged after bounded work (about 60 ms of walking, spread over the download)."""


class _GifReader(_SizeReader):
    """The logical screen grown to every frame's extent (Pillow grows its canvas the same way), block by block."""

    def __init__(self) -> None:
        self._position = 0  # 0: the logical screen is not read yet
        self._in_sub_blocks = False
        self._blocks = 0
        self._sub_blocks = 0

    def _size(self, data: bytes | bytearray, *, complete: bool) -> tuple[int, int] | None:
        if not self._position:
            width, height, flags = struct.unpack("<HHB", data[6:11])
            self.least_size = (int(width), int(height))
            self._position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
        while self._position < len(data):
            position = self._position
            if self._in_sub_blocks:
                self._position += 1 + data[position]
                self._in_sub_blocks = data[position] != 0
                self._sub_blocks += 1
                if self._sub_blocks > _MAX_GIF_SUB_BLOCKS:
                    return None
                continue
            block = data[position]
            if block == 0x21:  # extension: label, then data sub-blocks
                if position + 2 > len(data):
                    break
                self._position += 2
            elif block == 0x2C:  # image descriptor, local colour table, LZW code size, then data sub-blocks
                if position + 10 > len(data):
                    break
                left, top, frame_width, frame_height, frame_flags = struct.unpack(
                    "<HHHHB", data[position + 1 : position + 10]
                )
                width, height = self.least_size
                self.least_size = (max(width, left + frame_width), max(height, top + frame_height))
                self._position += 11 + (3 << ((frame_flags & 7) + 1) if frame_flags & 0x80 else 0)
            else:  # the trailer (0x3B), or bytes no decoder reads on from
                return self.least_size
            self._in_sub_blocks = True
            self._blocks += 1
            if self._blocks > _MAX_GIF_BLOCKS:
                return None
        if complete:
            return self.least_size
        raise _Truncated


async def fit_in_turn(image: ImageFile, limit: int) -> ImageFile:
    """:func:`fit_image` in a worker thread, one image at a time in the process.

    Decoding costs up to 10 bytes a pixel (about 1 GB at :data:`MAX_IMAGE_PIXELS`), so images wait their
    turn here, not in the thread pool (where they would hold threads the resolver needs).
    """
    if image.size <= limit:
        return image
    turn = _turns.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(1))
    async with turn:
        return await asyncio.to_thread(fit_image, image, limit)


def fit_image(image: ImageFile, limit: int) -> ImageFile:
    """``image`` if it fits under ``limit`` bytes, else a re-encoded (and if need be smaller) copy.

    Only images that passed :func:`check_pixels` come here. Tries WEBP at falling quality first (it keeps
    detail best per byte), then scales down by what the last try missed by. Never raises for size: as a
    last resort the image gets tiny. CPU-bound and decodes: the bot calls it through :func:`fit_in_turn`.
    """
    if image.size <= limit:
        return image
    try:
        with Image.open(io.BytesIO(image.data)) as opened:
            # Pillow may read another size than the header check did (a JPEG with two frame headers: the
            # check reads the first, Pillow the last): its own is checked before it decodes a pixel.
            _check_area(*opened.size)
            opened.load()
            picture = opened.convert("RGBA" if opened.mode in ("RGBA", "LA", "P", "PA") else "RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise DeliveryError(tr("The output image could not be read to make it smaller")) from exc
    stem = image.filename.rsplit(".", 1)[0]
    scale = min(1.0, _WEBP_MAX_SIDE / max(picture.width, picture.height))
    while True:
        candidate = picture
        if scale < 1.0:
            size = (max(1, int(picture.width * scale)), max(1, int(picture.height * scale)))
            candidate = picture.resize(size, Image.Resampling.LANCZOS)
        for quality in (90, 80, 65):
            buffer = io.BytesIO()
            candidate.save(buffer, format="WEBP", quality=quality, method=4)
            if buffer.tell() <= limit:
                log.info(
                    "re-encoded %s from %d to %d bytes (scale %.2f, q%d)",
                    image.filename,
                    image.size,
                    buffer.tell(),
                    scale,
                    quality,
                )
                return ImageFile(f"{stem}.webp", buffer.getvalue(), "image/webp")
        if candidate.width <= 16 or candidate.height <= 16:
            return ImageFile(f"{stem}.webp", buffer.getvalue(), "image/webp")
        # Bytes go roughly with pixels: aim a little under what the last try missed by, at least 0.7 smaller.
        scale *= min(0.7, 0.9 * (limit / buffer.tell()) ** 0.5)
