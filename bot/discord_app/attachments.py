"""Members' attachments as images to start from: ``/imagine image:``, and U/V on a result's images.

Discord's attachment ``content_type`` is optional. Where it is missing, or says no more than
"some bytes", the file's first bytes are downloaded through the fetch guard (no more than its
magic bytes need: the rest is never read) and it is told by them, as outputs are. A declared
type is taken at its word, with no download: the API fetches the file itself.
"""

from __future__ import annotations

from typing import Any, cast

import discord

from bot.api.inputs import IMAGE_MAX_BYTES, check_image_size, check_image_upload, media_type
from bot.i18n import Text
from bot.media.delivery import Downloader
from bot.media.images import SNIFF_BYTES, sniff_image

_UNDECLARED = frozenset({"", "application/octet-stream", "binary/octet-stream"})


async def check_image_attachment(
    downloader: Downloader, attachment: discord.Attachment, label: str | Text, where: str | Text | None = None
) -> None:
    """Refuse an attachment that cannot be a model's image input, with a reason fit for the member.

    ``label`` starts the member's sentence ("Image 2", a file name); ``where`` names the file in
    "the image could not be downloaded (…)" (default: ``label``). Either may be a text to translate: it goes
    into the refusal's text as a value, rendered in the member's language with it. Raises
    :class:`~bot.base.errors.InputRejected` or :class:`~bot.base.errors.DeliveryError`.
    """
    # The checks below take the names as strings in their signatures; a text passes through to their messages.
    named: Any = cast(Any, label)
    declared = media_type(attachment.content_type)
    if declared in _UNDECLARED:
        check_image_size(attachment.size, named)  # before the download: Discord states the size
        magic = await downloader.download(
            attachment.url, cast(Any, where) or named, max_bytes=IMAGE_MAX_BYTES, prefix=SNIFF_BYTES
        )
        sniffed = sniff_image(magic)
        declared = sniffed[1] if sniffed is not None else ""
    check_image_upload(declared, attachment.size, named)
