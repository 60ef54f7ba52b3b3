"""Attachments and the CDN: files uploaded with a message (multipart parts), stored with their bytes,
kept or replaced on edits, and served back under ``/attachments/...``.
"""

from __future__ import annotations

import dataclasses
import io
import mimetypes
from typing import TYPE_CHECKING
from urllib.parse import quote

from aiohttp import web

from tests.fakes.discord.errors import DiscordError, _form_error
from tests.fakes.discord.http import _int
from tests.fakes.discord.messages import StoredAttachment
from tests.fakes.discord.protocol import snowflake

if TYPE_CHECKING:
    from tests.fakes.discord.messages import _Upload
    from tests.fakes.discord.protocol import JSON


class AttachmentsMixin:
    """Part of :class:`FakeDiscord`: storing uploaded files and serving them."""

    def _store_attachment(
        self, channel_id: int, filename: str, data: bytes, content_type: str | None, description: str | None
    ) -> StoredAttachment:
        attachment_id = snowflake()
        guessed = mimetypes.guess_type(filename)[0]
        if content_type in (None, "application/octet-stream") and guessed:
            content_type = guessed
        if not self.attachment_content_types:
            content_type = None
        width, height = _image_size(data) if (content_type or "").startswith("image/") else (None, None)
        url = f"{self.http_base}/attachments/{channel_id}/{attachment_id}/{quote(filename)}"
        attachment = StoredAttachment(
            id=attachment_id,
            filename=filename,
            data=data,
            content_type=content_type,
            url=url,
            description=description,
            width=width,
            height=height,
        )
        self._attachments[attachment_id] = attachment
        return attachment

    def _resolve_attachments(
        self,
        current: tuple[StoredAttachment, ...],
        data: JSON,
        uploads: list[_Upload],
        channel_id: int,
    ) -> tuple[StoredAttachment, ...]:
        by_index = {u.index: u for u in uploads}
        used: set[int] = set()
        result: list[StoredAttachment] = []
        if "attachments" in data:
            for position, entry in enumerate(data["attachments"] or []):
                try:
                    ref = int(entry["id"])
                except (KeyError, TypeError, ValueError):
                    raise _form_error(
                        [(f"attachments.{position}.id", "BASE_TYPE_REQUIRED", "This field is required")]
                    ) from None
                upload = by_index.get(ref)
                if upload is not None and ref not in used:
                    used.add(ref)
                    result.append(
                        self._store_attachment(
                            channel_id,
                            str(entry.get("filename") or upload.filename),
                            upload.data,
                            upload.content_type,
                            entry.get("description"),
                        )
                    )
                    continue
                kept = next((a for a in current if a.id == ref), None)
                if kept is None:
                    raise _form_error(
                        [(f"attachments.{position}.id", "ATTACHMENT_NOT_FOUND", f"Unknown attachment {ref}")]
                    )
                if "description" in entry and entry["description"] != kept.description:
                    kept = dataclasses.replace(kept, description=entry["description"])
                result.append(kept)
        else:
            result.extend(current)
        for upload in uploads:
            if upload.index not in used:
                result.append(
                    self._store_attachment(channel_id, upload.filename, upload.data, upload.content_type, None)
                )
        return tuple(result)

    async def _h_cdn(self, request: web.Request) -> web.Response:
        attachment = self._attachments.get(_int(request.match_info["attachment_id"], 0))
        if attachment is None:
            raise DiscordError(404, 0, "404: Not Found")
        return web.Response(body=attachment.data, content_type=attachment.content_type or "application/octet-stream")


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        from PIL import Image
    except ImportError:
        return None, None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(image.width), int(image.height)
    except Exception:
        return None, None
