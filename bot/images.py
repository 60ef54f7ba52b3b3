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

from bot.errors import DeliveryError

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


def sniff_image(data: bytes) -> tuple[str, str] | None:
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
    """``(width, height)`` as the file's header declares them (for a GIF, the canvas all its frames need).

    ``None`` if the header cannot be read. Reads only headers: nothing is decompressed.
    """
    kind = sniff_image(data)
    try:
        if kind is None:
            return None
        if kind[0] == "png":
            return _png_size(data)
        if kind[0] == "jpg":
            return _jpeg_size(data)
        if kind[0] == "gif":
            return _gif_size(data)
        return _webp_size(data)
    except (struct.error, IndexError):
        return None


def check_pixels(data: bytes) -> None:
    """Refuse an image whose header declares more than :data:`MAX_IMAGE_PIXELS`, or cannot be read, undecoded."""
    size = declared_size(data)
    if size is None:
        raise DeliveryError("The model's output image is damaged (its header cannot be read), so it was not shown.")
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        log.warning("refused an output image of %d×%d pixels without decoding it", width, height)
        raise DeliveryError(
            f"The model's output image is {width}×{height} pixels, more than the "
            f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels the bot accepts, so it was not shown."
        )


def _png_size(data: bytes) -> tuple[int, int] | None:
    # The signature, then IHDR first: length, type, width, height.
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


_MAX_GIF_BLOCKS = 1_000_000
"""Data sub-blocks of a GIF walked at most: four times what a real file under the download cap has; one of
tiny blocks is refused as damaged before it keeps the event loop busy."""
_MAX_JPEG_SEGMENTS = 10_000
"""Segments walked at most before a JPEG's frame header (real files have a handful)."""
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
"""Markers without a length."""

_JPEG_FRAMES = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
"""Start-of-frame markers (not DHT 0xC4, JPG 0xC8 or DAC 0xCC, which share the range)."""


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    position = 2
    for _ in range(_MAX_JPEG_SEGMENTS):
        if position + 4 > len(data) or data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or the scan began without a frame header
            return None
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return int(width), int(height)
        position += 2 + length
    return None


def _gif_size(data: bytes) -> tuple[int, int] | None:
    """The logical screen grown to every frame's extent (Pillow grows its canvas the same way)."""
    width, height, flags = struct.unpack("<HHB", data[6:11])
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    steps = 0
    while position < len(data) and data[position] != 0x3B:  # up to the trailer
        block = data[position]
        if block == 0x21:  # extension: label, then data sub-blocks
            position += 2
        elif block == 0x2C:  # image descriptor, local colour table, LZW code size, then data sub-blocks
            left, top, frame_width, frame_height, frame_flags = struct.unpack(
                "<HHHHB", data[position + 1 : position + 10]
            )
            width, height = max(width, left + frame_width), max(height, top + frame_height)
            position += 11 + (3 << ((frame_flags & 7) + 1) if frame_flags & 0x80 else 0)
        else:
            break
        while position < len(data) and data[position]:
            position += 1 + data[position]
            steps += 1
            if steps > _MAX_GIF_BLOCKS:
                return None
        position += 1
    return int(width), int(height)


def _webp_size(data: bytes) -> tuple[int, int] | None:
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
            opened.load()
            picture = opened.convert("RGBA" if opened.mode in ("RGBA", "LA", "P", "PA") else "RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise DeliveryError("The output image could not be read to make it smaller") from exc
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
