"""Image bytes for tests, generated with Pillow at run time (no binary fixtures in the repository).

Every helper returns ``bytes`` ready to be served over HTTP or handed to code under test:

* :func:`image_bytes` — a small, real PNG/JPEG/WEBP image of one solid colour with a contrasting
  marker square, so two images with different colours are distinguishable after lossy encoding.
* :func:`distinct_colour` — a deterministic colour for output ``index`` of some ``key`` (e.g. a
  prediction id); consecutive indices differ strongly in hue.
* :func:`noise_png` — a PNG made of random noise whose size is at least ``min_bytes`` (noise does not
  compress, so the file really is that large).
* :func:`bomb_png` — a decompression bomb: a few KB of PNG declaring a huge canvas, optionally padded
  past an upload limit (built row by row with zlib, never held decoded).
* :func:`not_an_image` — an HTML error page, for servers that lie about ``Content-Type``.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import os
import struct
import zlib
from typing import Literal

from PIL import Image, ImageDraw

ImageFormat = Literal["png", "jpg", "webp"]
"""Output formats Replicate image models produce (``jpg`` is the name models use for JPEG)."""

Rgb = tuple[int, int, int]

_PIL_FORMAT: dict[str, str] = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}
_MIME: dict[str, str] = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}

__all__ = [
    "ImageFormat",
    "Rgb",
    "bomb_png",
    "distinct_colour",
    "image_bytes",
    "mime_type",
    "noise_png",
    "not_an_image",
]


def mime_type(fmt: str) -> str:
    """Return the MIME type for an image format name (``png``, ``jpg``/``jpeg``, ``webp``)."""
    try:
        return _MIME[fmt.lower()]
    except KeyError:
        raise ValueError(f"unsupported image format: {fmt!r}") from None


def distinct_colour(key: str, index: int) -> Rgb:
    """Return a saturated colour that depends on ``key`` and ``index``.

    Colours for indices 0..7 of the same key are at least 45° apart in hue, so tests can tell the
    outputs of one prediction apart by sampling the centre pixel of a decoded image.
    """
    base = int.from_bytes(hashlib.sha256(key.encode()).digest()[:2], "big") / 65535.0
    hue = (base + index * 0.125) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.9)
    return (round(r * 255), round(g * 255), round(b * 255))


def image_bytes(
    fmt: str = "png",
    size: tuple[int, int] = (64, 64),
    colour: Rgb = (200, 40, 40),
    *,
    quality: int = 90,
) -> bytes:
    """Encode a real image of ``size`` filled with ``colour`` (plus a small inverse-colour marker).

    ``fmt`` is ``png``, ``jpg``/``jpeg`` or ``webp``. The centre pixel keeps ``colour`` (within lossy
    encoding error), the top-left ``size/8`` square holds the inverse colour.
    """
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {size!r}")
    try:
        pil_format = _PIL_FORMAT[fmt.lower()]
    except KeyError:
        raise ValueError(f"unsupported image format: {fmt!r}") from None
    img = Image.new("RGB", (width, height), colour)
    marker = (max(1, width // 8), max(1, height // 8))
    inverse = (255 - colour[0], 255 - colour[1], 255 - colour[2])
    ImageDraw.Draw(img).rectangle((0, 0, marker[0] - 1, marker[1] - 1), fill=inverse)
    buf = io.BytesIO()
    if pil_format == "PNG":
        img.save(buf, format="PNG")
    else:
        img.save(buf, format=pil_format, quality=quality)
    return buf.getvalue()


def noise_png(min_bytes: int) -> bytes:
    """Return a valid RGB PNG of random noise that is at least ``min_bytes`` long.

    Random pixels are incompressible, so the PNG is about ``3 * width * height`` bytes; the side is
    chosen with a small margin over ``min_bytes``.
    """
    if min_bytes < 0:
        raise ValueError("min_bytes must be >= 0")
    side = max(8, math.ceil(math.sqrt(min_bytes / 3 * 1.02)) + 1)
    img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    data = buf.getvalue()
    assert len(data) >= min_bytes, (len(data), min_bytes)
    return data


def png_header(size: tuple[int, int]) -> bytes:
    """A PNG's signature and header chunk declaring ``size`` (8-bit RGB): what comes before its pixels."""
    body = struct.pack(">IIBBBBB", *size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(body))
        + b"IHDR"
        + body
        + struct.pack(">I", zlib.crc32(b"IHDR" + body))
    )


def bomb_png(width: int = 13000, height: int = 13000, *, bits: Literal[1, 8] = 1, pad_to: int = 0) -> bytes:
    """A PNG declaring ``width``×``height`` pixels of one colour: grey at 1 bit, or a palette at 8 bits.

    All-zero rows compress about a thousandfold, so 13000×13000 takes some 20 KB (1 bit) or 170 KB (8 bits);
    decoded, Pillow would hold 169 MB in mode 1 or P, and four times that once converted to RGBA. ``pad_to``
    grows the file to at least that many bytes with a text chunk (decoders skip it).
    """

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    colour_type = 0 if bits == 1 else 3
    header = struct.pack(">IIBBBBB", width, height, bits, colour_type, 0, 0, 0)
    row = bytes(1 + (width * bits + 7) // 8)  # filter byte 0, then zeros
    packer = zlib.compressobj(9)
    compressed = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header)]
    if colour_type == 3:
        parts.append(chunk(b"PLTE", bytes(3)))
    parts.append(chunk(b"IDAT", compressed))
    padding = pad_to - sum(map(len, parts)) - 12 * 2
    if padding > 0:
        parts.append(chunk(b"tEXt", b"padding\x00" + bytes(padding)))
    parts.append(chunk(b"IEND", b""))
    return b"".join(parts)


def not_an_image() -> bytes:
    """Return an HTML error page (what a misconfigured CDN sends instead of an image)."""
    return (
        b"<!DOCTYPE html>\n<html><head><title>Error</title></head>"
        b"<body><h1>Something went wrong</h1><p>This is not an image.</p></body></html>\n"
    )
