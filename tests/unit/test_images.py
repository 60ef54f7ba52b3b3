"""Output images' headers: dimensions read without decoding, for every format accepted, and the pixel cap.

(Sniffing and fitting are tested in ``test_delivery_fit.py``.)
"""

from __future__ import annotations

import io
import struct
from typing import Any

import pytest
from PIL import Image

from bot.base.errors import DeliveryError
from bot.media.images import MAX_IMAGE_PIXELS, HeaderCheck, ImageFile, check_pixels, declared_size, fit_image
from tests.fakes import images


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def frames(count: int, size: tuple[int, int] = (40, 30)) -> list[Image.Image]:
    return [Image.new("RGB", size, (40 * index, 90, 200)) for index in range(count)]


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("PNG", {}),
        ("JPEG", {"quality": 80}),
        ("JPEG", {"quality": 80, "progressive": True}),
        ("JPEG", {"quality": 80, "exif": b"Exif\x00\x00" + bytes(3000)}),  # a segment before the frame header
        ("WEBP", {"quality": 80}),
        ("WEBP", {"lossless": True}),
        ("GIF", {}),
    ],
)
def test_declared_size_of_each_format(fmt: str, params: dict[str, Any]) -> None:
    data = encode(Image.new("RGB", (123, 45), (10, 200, 30)), fmt, **params)
    assert declared_size(data) == (123, 45)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_declared_size_of_animations_is_their_canvas(fmt: str) -> None:
    first, *rest = frames(3)
    data = encode(first, fmt, save_all=True, append_images=rest, duration=100, loop=0)
    assert declared_size(data) == (40, 30)


def test_a_gif_frame_past_the_screen_grows_the_canvas() -> None:
    """Decoders grow the canvas to a frame that reaches past the logical screen: so does the count."""
    data = bytearray(encode(Image.new("P", (10, 10)), "GIF"))
    descriptor = data.index(b"\x2c")
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", 20000, 20000)
    assert declared_size(bytes(data)) == (20000, 20000)
    with pytest.raises(DeliveryError, match="20000×20000 pixels"):
        check_pixels(bytes(data))


def webp_vp8x(width: int, height: int) -> bytes:
    """The header of an extended WEBP declaring a ``width``×``height`` canvas (what an animation starts with)."""
    body = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + 8 + len(body)) + b"WEBP" + b"VP8X" + struct.pack("<I", len(body)) + body


def jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (8, 8)), "JPEG"))
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (images.bomb_png(), (13000, 13000)),
        (images.bomb_png(50000, 50000), (50000, 50000)),
        (webp_vp8x(16384, 16384), (16384, 16384)),
        (jpeg_declaring(65000, 65000), (65000, 65000)),
    ],
    ids=["png-13000", "png-50000", "webp-vp8x", "jpeg-sof"],
)
def test_a_bomb_is_refused_from_its_header(data: bytes, size: tuple[int, int]) -> None:
    assert len(data) < 3_000_000  # a few KB (the 50000² PNG: 2.5 G pixels in 300 KB)
    assert declared_size(data) == size
    with pytest.raises(DeliveryError) as refused:
        check_pixels(data)
    assert f"{size[0]}×{size[1]} pixels, more than the 100 megapixels the bot accepts" in refused.value.message


def test_the_check_never_opens_the_image(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("Pillow opened the image")

    monkeypatch.setattr(Image, "open", no_decoding)
    with pytest.raises(DeliveryError, match="megapixels"):
        check_pixels(images.bomb_png())
    check_pixels(images.image_bytes("png", (64, 64)))


def test_the_cap_lets_the_largest_real_outputs_through() -> None:
    side = 8192  # a 4× upscale of 2048²
    assert side * side <= MAX_IMAGE_PIXELS < 13000 * 13000
    check_pixels(images.bomb_png(side, side))
    check_pixels(webp_vp8x(10000, 10000))
    with pytest.raises(DeliveryError):
        check_pixels(webp_vp8x(10000, 10001))


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 20,  # no IHDR
        b"\x89PNG\r\n\x1a\n\x00\x00",  # cut short
        b"\xff\xd8\xff\xe0\x00\x10JFIF",  # no frame header
        b"GIF89a\x01",  # cut short
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",  # no frame
    ],
    ids=["png", "png-short", "jpeg", "gif", "webp"],
)
def test_a_damaged_header_is_refused(data: bytes) -> None:
    assert declared_size(data) is None
    with pytest.raises(DeliveryError, match="damaged"):
        check_pixels(data)


def test_fit_scales_an_image_wider_than_webp_allows() -> None:
    """WEBP takes at most 16383 pixels a side: a wider image is scaled before encoding, not refused."""
    picture = Image.linear_gradient("L").resize((17000, 48))
    data = encode(picture, "PNG")
    fitted = fit_image(ImageFile("wide.png", data, "image/png"), len(data) - 1)
    assert fitted.size < len(data)
    with Image.open(io.BytesIO(fitted.data)) as opened:
        assert opened.format == "WEBP" and opened.width <= 16383


def test_a_header_of_endless_tiny_blocks_is_refused_as_damaged() -> None:
    """A GIF of 1-byte data blocks or a JPEG of empty segments would keep the event loop busy: refused."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 10, 10, 0, 0, 0)
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 10, 10, 0) + b"\x02"
    gif = screen + frame + b"\x01\x00" * 1_100_000 + b"\x00\x3b"
    jpeg = b"\xff\xd8" + b"\xff\xe1\x00\x02" * 11_000 + b"\xff\xc0\x00\x11\x08\x00\x10\x00\x10"
    for data in (gif, jpeg):
        with pytest.raises(DeliveryError, match="damaged"):
            check_pixels(data)
    assert declared_size(screen + frame + b"\x01\x00" * 1000 + b"\x00\x3b") == (10, 10)


GIF_SCREEN = b"GIF89a" + struct.pack("<HHBBB", 100, 100, 0, 0, 0)
EMPTY_EXTENSION = b"\x21\xf9\x00"  # a graphic control extension whose data ends at once


def test_a_gif_of_endless_empty_extensions_is_refused_after_a_bounded_walk() -> None:
    """64 MiB of extensions that hold nothing: each was a free pass of the walk (5.5 s on the event loop)."""
    data = GIF_SCREEN + EMPTY_EXTENSION * (64 * 1024 * 1024 // 3)
    with pytest.raises(DeliveryError, match="damaged"):
        check_pixels(data)
    # The verdict needs only the first few thousand blocks: a download is refused after 16 KiB of them.
    with pytest.raises(DeliveryError, match="damaged"):
        HeaderCheck().feed(data[: 16 * 1024])
    empty_frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 10, 10, 0) + b"\x02\x00"
    with pytest.raises(DeliveryError, match="damaged"):
        HeaderCheck().feed(GIF_SCREEN + empty_frame * 5000)


def test_a_real_animation_of_hundreds_of_frames_passes() -> None:
    first, *rest = frames(300, (16, 16))
    data = encode(first, "GIF", save_all=True, append_images=rest, duration=40, loop=0)
    assert declared_size(data) == (16, 16)
    check_pixels(data)


def fed_in_pieces(data: bytes, piece: int = 1000) -> int:
    """How many bytes of ``data`` a :class:`HeaderCheck` took to refuse it, fed as a download arrives."""
    check = HeaderCheck()
    for end in range(piece, len(data) + piece, piece):
        try:
            check.feed(data[:end])
        except DeliveryError:
            return min(end, len(data))
    raise AssertionError("never refused while arriving")


def test_the_header_is_checked_as_the_bytes_arrive() -> None:
    """Refused from its first bytes: a page that is not an image, a padded bomb, a GIF frame past the cap."""
    assert fed_in_pieces(b"<!DOCTYPE html>" + bytes(1_000_000)) == 1000
    assert fed_in_pieces(images.bomb_png(pad_to=1_000_000)) == 1000
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 20000, 20000, 0) + b"\x02"
    assert fed_in_pieces(GIF_SCREEN + EMPTY_EXTENSION * 500 + frame + b"\xff" + bytes(255) * 4000) < 3000


def test_a_real_image_passes_whatever_the_pieces_it_arrives_in() -> None:
    exif = b"Exif\x00\x00" + bytes(40_000)  # the frame header 40 KB in
    first, *rest = frames(5)
    for data in (
        encode(Image.new("RGB", (123, 45)), "JPEG", exif=exif),
        encode(first, "GIF", save_all=True, append_images=rest, duration=40),
        encode(Image.new("RGB", (123, 45)), "WEBP"),
    ):
        check = HeaderCheck()
        for end in range(1, len(data) + 1, 7):
            check.feed(data[:end])
        check.finish(data)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_fitting_refuses_the_size_pillow_reads_not_only_the_header_checks() -> None:
    """Two frame headers in a JPEG: the check reads the first (8×8), Pillow the last; refused before decoding."""
    data = encode(Image.new("L", (8, 8)), "JPEG")
    frame = data.index(b"\xff\xc0")
    length = int.from_bytes(data[frame + 2 : frame + 4], "big")
    second = bytearray(data[frame : frame + 2 + length])
    second[5:9] = struct.pack(">HH", 10_000, 11_000)
    twice = data[: frame + 2 + length] + bytes(second) + data[frame + 2 + length :]
    check_pixels(twice)  # the first frame header: 8×8
    with Image.open(io.BytesIO(twice)) as opened:
        assert opened.size == (11_000, 10_000)
    with pytest.raises(DeliveryError, match="11000×10000 pixels, more than the 100 megapixels"):
        fit_image(ImageFile("twice.jpg", twice, "image/jpeg"), len(twice) - 1)
