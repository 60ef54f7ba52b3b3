"""A member's uploaded image, checked before it becomes a model's image input: its type and its size.

Pure logic: the Discord adapter reads an attachment's declared type and size and asks here.
"""

from __future__ import annotations

from bot.base.errors import InputRejected
from bot.i18n import Text, tr

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
"""What image models read. Other ``image/*`` types (SVG, HEIC, TIFF…) are refused before anything is sent."""
IMAGE_MAX_BYTES = 10 * 1024 * 1024
"""The largest image a member may start from. The image goes to the API as the attachment's CDN URL,
which the API downloads itself; reference/replicate-api.md states no size limit for such URL inputs, so
the bound is Discord's own default upload limit (reference/discord.md §B "Uploads": 10 MiB per file):
anything a member can upload without boosts, and far more than any image model needs."""


def media_type(content_type: str | None) -> str:
    """``image/png`` from ``Image/PNG; charset=x``; ``""`` for none."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_image_upload(content_type: str | None, size: int, filename: str | Text | None = None) -> None:
    """Refuse an uploaded file that cannot be a model's image input: not an image, or too big."""
    kind = media_type(content_type)
    name = tr("the file") if filename is None else filename
    if not kind.startswith("image/"):
        raise InputRejected(
            tr(
                "{file} is not an image ({type}); attach a PNG, JPEG or WebP.",
                file=name,
                type=kind or tr("unknown type"),
            )
        )
    if kind not in IMAGE_TYPES:
        raise InputRejected(
            tr("{file} is a {type} image, which models cannot read; attach a PNG, JPEG or WebP.", file=name, type=kind)
        )
    check_image_size(size, filename)


def check_image_size(size: int, filename: str | Text | None = None) -> None:
    """Refuse an uploaded image larger than :data:`IMAGE_MAX_BYTES`."""
    if size > IMAGE_MAX_BYTES:
        raise InputRejected(
            tr(
                "{file} is {size} MiB; images to start from may be up to {limit} MiB.",
                file=tr("the file") if filename is None else filename,
                size=f"{size / 1024 / 1024:.1f}",
                limit=IMAGE_MAX_BYTES // 1024 // 1024,
            )
        )
