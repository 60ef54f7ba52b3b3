"""Output files: magic bytes, ``data:`` URLs and fitting under an upload limit (the guard: test_fetch_guard)."""

from __future__ import annotations

import base64
import io
import random
from urllib.parse import quote_from_bytes

import aiohttp
import pytest
from PIL import Image

from bot.base.errors import DeliveryError
from bot.media.delivery import Downloader, decode_data_url
from bot.media.fetch_guard import FetchGuard
from bot.media.images import ImageFile, fit_image, sniff_image

KIB = 1024
MIB = 1024 * 1024


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def solid(size: tuple[int, int] = (32, 24)) -> Image.Image:
    return Image.new("RGB", size, (200, 30, 90))


def noise(width: int, height: int, seed: int = 7) -> Image.Image:
    """Random pixels: they do not compress, so the encoded file really is big."""
    return Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))


@pytest.fixture(scope="module")
def noisy_png() -> ImageFile:
    # 1024x768 of noise is a 2+ MiB PNG; bigger ones only make the test slower (WEBP encoding dominates).
    data = encode(noise(1024, 768), "PNG", compress_level=1)
    assert len(data) > 2 * MIB
    return ImageFile("imagine-abc-1.png", data, "image/png")


# --------------------------------------------------------------------------- sniff_image


@pytest.mark.parametrize(
    ("fmt", "params", "expected"),
    [
        ("PNG", {}, ("png", "image/png")),
        ("JPEG", {"quality": 80}, ("jpg", "image/jpeg")),
        ("WEBP", {"quality": 80}, ("webp", "image/webp")),
        ("WEBP", {"lossless": True}, ("webp", "image/webp")),
        ("GIF", {}, ("gif", "image/gif")),
    ],
)
def test_sniff_real_images(fmt: str, params: dict[str, object], expected: tuple[str, str]) -> None:
    assert sniff_image(encode(solid(), fmt, **params)) == expected


def test_sniff_gif87a() -> None:
    assert sniff_image(b"GIF87a" + b"\x00" * 20) == ("gif", "image/gif")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
        b'{"detail": "not found"}',
        b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00",
        b"RIFF\x24\x00\x00\x00AVI LIST",
        b"XXXX\x24\x00\x00\x00WEBPVP8 ",
        b"\x89PNG",
        b"\xff\xd8",
        b"GIF8",
        b"%PDF-1.7",
    ],
)
def test_sniff_refuses_non_images(data: bytes) -> None:
    assert sniff_image(data) is None


# --------------------------------------------------------------------------- decode_data_url


def test_decode_base64_data_url() -> None:
    png = encode(solid(), "PNG")
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    assert decode_data_url(url) == png
    assert sniff_image(decode_data_url(url)) == ("png", "image/png")


def test_decode_base64_without_media_type() -> None:
    assert decode_data_url("data:;base64,aGVsbG8=") == b"hello"


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("data:,hello%20world", b"hello world"),
        ("data:text/plain,a%2Cb", b"a,b"),
        ("data:image/png," + quote_from_bytes(b"\x89PNG\r\n\x1a\n\x00\xff"), b"\x89PNG\r\n\x1a\n\x00\xff"),
        ("data:text/plain,comma,inside", b"comma,inside"),
        ("data:,", b""),
    ],
)
def test_decode_percent_encoded_data_url(url: str, data: bytes) -> None:
    assert decode_data_url(url) == data


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64",
        "data:image/png",
        "data:image/png;base64,abc",
        "data:image/png;base64,a",
        "data:image/png;base64,aGVsbG8",
    ],
)
def test_malformed_data_url(url: str) -> None:
    with pytest.raises(DeliveryError):
        decode_data_url(url)


def test_data_url_scheme_and_encoding_are_case_insensitive() -> None:
    png = encode(solid(), "PNG")
    assert decode_data_url("DATA:image/png;BASE64," + base64.b64encode(png).decode()) == png


async def test_an_uppercase_data_url_output_is_delivered() -> None:
    """``DATA:`` is a data: URL (schemes are case-insensitive): decoded, never sent to the fetch guard."""
    png = encode(solid(), "PNG")
    async with aiohttp.ClientSession() as session:
        downloader = Downloader(session, FetchGuard.of("http://127.0.0.1:9"))
        (image,) = await downloader.fetch_all(["DATA:image/png;BASE64," + base64.b64encode(png).decode()], "job")
    assert image.data == png and image.filename == "job-1.png"


@pytest.mark.parametrize("base64_encoded", [False, True])
def test_a_data_url_holds_no_more_than_the_cap(base64_encoded: bool) -> None:
    """Exactly: a percent-encoded payload of plain characters decodes to one byte each (not 3 per 4)."""
    for size, fits in ((999, True), (1000, True), (1001, False), (1333, False)):
        data = b"a" * size
        url = "data:;base64," + base64.b64encode(data).decode() if base64_encoded else "data:," + data.decode()
        if fits:
            assert decode_data_url(url, max_bytes=1000) == data
        else:
            with pytest.raises(DeliveryError, match="larger than"):
                decode_data_url(url, max_bytes=1000)


# --------------------------------------------------------------------------- fit_image


def test_small_image_returned_unchanged() -> None:
    image = ImageFile("imagine-1.png", encode(solid(), "PNG"), "image/png")
    assert fit_image(image, 10 * MIB) is image
    assert fit_image(image, image.size) is image


def test_fits_large_noisy_png_under_limits(noisy_png: ImageFile) -> None:
    with Image.open(io.BytesIO(noisy_png.data)) as original:
        original_ratio = original.width / original.height
    for limit in (1 * MIB, 200 * KIB):
        fitted = fit_image(noisy_png, limit)
        assert fitted.size <= limit
        assert fitted.content_type == "image/webp"
        assert fitted.filename == "imagine-abc-1.webp"
        assert sniff_image(fitted.data) == ("webp", "image/webp")
        with Image.open(io.BytesIO(fitted.data)) as opened:
            opened.load()
            assert opened.format == "WEBP"
            assert opened.width / opened.height == pytest.approx(original_ratio, rel=0.02)
            assert opened.width <= 1024


@pytest.mark.parametrize("limit", [1, 100, 2000])
def test_never_raises_for_size(limit: int) -> None:
    image = ImageFile("tiny-limit.png", encode(noise(300, 200), "PNG"), "image/png")
    fitted = fit_image(image, limit)
    assert fitted.content_type == "image/webp"
    assert fitted.filename == "tiny-limit.webp"
    with Image.open(io.BytesIO(fitted.data)) as opened:
        opened.load()
        assert opened.format == "WEBP"
        assert opened.width < 300


@pytest.mark.parametrize(
    ("mode", "fmt"), [("RGBA", "PNG"), ("P", "PNG"), ("L", "PNG"), ("RGB", "JPEG"), ("RGB", "GIF")]
)
def test_fit_handles_image_modes(mode: str, fmt: str) -> None:
    picture = noise(256, 256).convert(mode)
    data = encode(picture, fmt, **({"quality": 100} if fmt == "JPEG" else {}))
    image = ImageFile(f"x.{fmt.lower()}", data, "image/png")
    fitted = fit_image(image, len(data) // 3)
    assert fitted.size <= len(data) // 3
    with Image.open(io.BytesIO(fitted.data)) as opened:
        opened.load()
        assert opened.format == "WEBP"


def test_fit_keeps_transparency() -> None:
    picture = noise(256, 256).convert("RGBA")
    picture.paste((0, 0, 0, 0), (0, 0, 128, 256))  # left half fully transparent
    data = encode(picture, "PNG")
    fitted = fit_image(ImageFile("alpha.png", data, "image/png"), len(data) // 3)
    with Image.open(io.BytesIO(fitted.data)) as opened:
        opened.load()
        assert opened.mode == "RGBA"
        alpha = opened.getchannel("A")
        assert alpha.getpixel((10, 10)) == 0
        assert alpha.getpixel((opened.width - 10, 10)) == 255


def test_fit_unreadable_image_is_a_delivery_error() -> None:
    image = ImageFile("x.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 5000, "image/png")
    with pytest.raises(DeliveryError):
        fit_image(image, 100)


def test_image_file_size() -> None:
    assert ImageFile("a.png", b"12345", "image/png").size == 5
