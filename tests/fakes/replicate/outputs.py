"""Outputs and hostile hosts: the files of a prediction (:class:`FakeFile`, served outside the API prefix with
no auth), the text of a text model (:data:`CAPTION`, :data:`VISION_ANSWER`, streamed as :func:`llm_pieces`),
stalled downloads, and the redirecting, endless and not-an-image URLs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes import images
from tests.fakes.replicate.http import _RECORD
from tests.fakes.replicate.schemas import ASPECT_RATIOS
from tests.fakes.replicate.vocabulary import _phrase
from tests.fakes.tcp import reset_connection

if TYPE_CHECKING:
    from tests.fakes.replicate.faults import Fault
    from tests.fakes.replicate.http import RecordedRequest
    from tests.fakes.replicate.predictions import FakePrediction
    from tests.fakes.replicate.vocabulary import ModelOutput

CAPTION: Final = "a red fox curled up in fresh snow at dawn, soft pink light, wildlife photograph, 85mm lens"
"""What the captioner returns for any image (unless a scenario's ``output_override`` says otherwise)."""

VISION_ANSWER: Final = (
    "Here are four prompts that would make an image like this one:\n\n"
    "1. A red fox curled up asleep in fresh snow at dawn, soft pink light, wildlife photograph\n"
    "2. **Watercolour painting of a sleeping fox in a snowy forest, muted pastel colours**\n"
    '3. "Close-up of a fox\'s face dusted with snowflakes, shallow depth of field, golden hour"\n'
    "4. Minimalist illustration of an orange fox on white snow, flat colours, Scandinavian poster style\n"
)
"""What the vision-language model answers, as chatty as such models are: an introduction, numbers, emphasis and
quotes around its four prompts."""


def llm_pieces(text: str) -> list[str]:
    """``text`` cut as a language model streams it: each word with the whitespace before it (joined, ``text``)."""
    return re.findall(r"\s*\S+|\s+", text)


@dataclass
class FakeFile:
    """An output file of a prediction, served at :attr:`url` (bytes generated lazily, then cached)."""

    prediction_id: str
    index: int
    name: str
    url: str
    content_type: str
    fmt: str
    size: tuple[int, int]
    colour: images.Rgb
    huge_bytes: int | None = None
    not_image: bool = False
    _data: bytes | None = field(default=None, repr=False)
    """Generated on first use, or given (:attr:`Scenario.file_bytes`)."""

    @property
    def data(self) -> bytes:
        """The exact bytes the file route serves."""
        if self._data is None:
            if self.not_image:
                self._data = images.not_an_image()
            elif self.huge_bytes is not None:
                self._data = images.noise_png(self.huge_bytes)
            else:
                self._data = images.image_bytes(self.fmt, self.size, self.colour)
        return self._data

    def data_url(self) -> str:
        """This file as a ``data:`` URL."""
        return f"data:{self.content_type};base64,{base64.b64encode(self.data).decode()}"


class OutputsMixin:
    """Part of :class:`FakeReplicate`: making output files and serving them."""

    def _dropped(self, pred: FakePrediction) -> int:
        requested = int(pred.effective_input.get("num_outputs", 1))
        return max(0, min(pred.scenario.nsfw_dropped, requested))

    def _make_files(self, pred: FakePrediction) -> list[FakeFile]:
        sc = pred.scenario
        eff = pred.effective_input
        requested = int(eff.get("num_outputs", 1))
        fmt: str = sc.image_format or str(eff.get("output_format") or "png")
        if fmt not in ("png", "jpg", "webp"):
            fmt = "png"
        huge = math.ceil(sc.huge_image_mib * 1024 * 1024) + 1 if sc.huge_image_mib is not None else None
        if huge is not None:
            fmt = "png"
        size = sc.image_size or self._real_size(eff)
        pred.files = [
            FakeFile(
                prediction_id=pred.id,
                index=i,
                name=f"out-{i}.{fmt}",
                url=f"{self.origin}/files/{pred.id}/out-{i}.{fmt}",
                content_type=images.mime_type(fmt),
                fmt=fmt,
                size=size,
                colour=images.distinct_colour(pred.id, i),
                huge_bytes=huge,
                not_image=sc.file_not_image,
                _data=sc.file_bytes,
            )
            for i in range(self._dropped(pred), requested + sc.extra_outputs)
        ]
        return pred.files

    @staticmethod
    def _real_size(eff: Mapping[str, Any]) -> tuple[int, int]:
        if "width" in eff and "height" in eff:
            return int(eff["width"]), int(eff["height"])
        width, height = ASPECT_RATIOS.get(str(eff.get("aspect_ratio", "1:1")), (1024, 1024))
        if str(eff.get("megapixels", "1")) == "0.25":
            width, height = width // 2, height // 2
        return width, height

    def _output_kind(self, pred: FakePrediction) -> ModelOutput:
        model = self.models.get(pred.model)
        return model.output if model is not None else "files"

    def _text_of(self, pred: FakePrediction) -> Any:
        """A text model's whole output: its string, or all its pieces (a scenario's ``output_override`` wins)."""
        override = pred.scenario.output_override
        if override is not None:
            return copy.deepcopy(override)
        return CAPTION if self._output_kind(pred) == "text" else llm_pieces(VISION_ANSWER)

    def _stream_text(self, pred: FakePrediction, step: int) -> None:
        """A streaming model's output at ``step``: that share of its pieces (``None`` before the first)."""
        whole = self._text_of(pred)
        if isinstance(whole, list):
            count = math.ceil(len(whole) * step / pred.total_steps)
            pred.output = whole[:count] if count else None

    def _output_of(self, pred: FakePrediction) -> Any:
        override = pred.scenario.output_override
        return copy.deepcopy(override) if override is not None else self._shape_output(pred)

    def _shape_output(self, pred: FakePrediction) -> Any:
        shape = pred.scenario.output_shape
        if shape == "string":
            return pred.files[0].url
        if shape == "data":
            return [f.data_url() for f in pred.files]
        return [f.url for f in pred.files]

    def redirect_url(self, target: str, *, status: int = 302) -> str:
        """A URL on this fake that answers ``status`` with ``Location: target`` (no auth, like a file host)."""
        return f"{self.origin}/evil/redirect?{urlencode({'to': target, 'status': str(status)})}"

    def endless_url(self, *, declared_length: int | None = None, image_header: bool = True) -> str:
        """A URL on this fake whose body never ends (chunked; or announcing ``declared_length`` bytes).

        The body starts with a PNG's signature and header (``image_header``: 64×64 pixels), so that only a
        size cap stops a reader, however early it checks the header. Bytes
        written are counted in :attr:`RecordedRequest.body_bytes_sent` and :attr:`endless_bytes_sent`.
        """
        query: dict[str, str] = {"header": "1" if image_header else "0"}
        if declared_length is not None:
            query["length"] = str(declared_length)
        return f"{self.origin}/evil/endless?{urlencode(query)}"

    def not_image_url(self) -> str:
        """A URL on this fake serving an HTML page as ``Content-Type: image/png``."""
        return f"{self.origin}/evil/not-image"

    @property
    def endless_bytes_sent(self) -> int:
        """Body bytes written by every request to :meth:`endless_url` so far."""
        return sum(r.body_bytes_sent for r in self.requests if r.path == "/evil/endless")

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        pred = self.predictions.get(request.match_info["id"])
        name = request.match_info["filename"]
        file = next((f for f in pred.files if f.name == name), None) if pred else None
        if pred is None or file is None or pred.data_removed:
            return web.Response(status=404, text="404 page not found\n")
        sc = pred.scenario
        if sc.file_status != 200:
            reason = _phrase(sc.file_status)
            return web.Response(status=sc.file_status, text=f"{sc.file_status} {reason}\n")
        data = await asyncio.to_thread(lambda: file.data) if file.huge_bytes else file.data
        if sc.file_stall:
            response = web.StreamResponse(
                status=200, headers={"Content-Type": file.content_type, "Content-Length": str(len(data))}
            )
            await response.prepare(request)
            if sc.file_stall_after_bytes:
                await response.write(data[: sc.file_stall_after_bytes])
            await self.wait_until(lambda: self._closing, timeout=3600, what="close")
            reset_connection(request)
        return web.Response(body=data, status=200, headers={"Content-Type": file.content_type})

    async def _stall(self, request: web.Request, fault: Fault, record: RecordedRequest) -> web.StreamResponse:
        """Status 200 and headers, a few body bytes, then silence; then a reset (see :class:`Fault`)."""
        data, content_type = b"\x89PNG\r\n\x1a\n" + bytes(1024), "image/png"
        pred = self.predictions.get(request.match_info.get("id", ""))
        file = next((f for f in pred.files if f.name == request.match_info.get("filename")), None) if pred else None
        if file is not None:
            data = await asyncio.to_thread(lambda: file.data) if file.huge_bytes else file.data
            content_type = file.content_type
        response = web.StreamResponse(
            status=200, headers={"Content-Type": content_type, "Content-Length": str(len(data))}
        )
        await response.prepare(request)
        head = data[: max(0, min(fault.stall_after_bytes, len(data) - 1))]
        if head:
            await response.write(head)
            record.body_bytes_sent = len(head)
        with contextlib.suppress(TimeoutError):
            await self.wait_until(
                lambda: self._closing, timeout=fault.stall_seconds if fault.stall_seconds is not None else 3600
            )
        reset_connection(request)

    async def _handle_evil_redirect(self, request: web.Request) -> web.StreamResponse:
        status = int(request.query.get("status", "302"))
        return web.Response(status=status, headers={"Location": request.query.get("to", "/")})

    async def _handle_evil_endless(self, request: web.Request) -> web.StreamResponse:
        record: RecordedRequest = request[_RECORD]
        headers = {"Content-Type": "image/png"}
        declared = request.query.get("length")
        left = int(declared) if declared is not None else None
        if declared is not None:
            headers["Content-Length"] = declared
        response = web.StreamResponse(status=200, headers=headers)
        if declared is None:
            response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = bytes(range(256)) * 256  # 64 KiB
        header = images.png_header((64, 64)) if request.query.get("header", "1") == "1" else b""
        piece = header + chunk[len(header) :]
        try:
            while not self._closing and (left is None or left > 0):
                if left is not None:
                    piece, left = piece[:left], left - len(piece[:left])
                await response.write(piece)
                record.body_bytes_sent += len(piece)
                piece = chunk
                await asyncio.sleep(0)  # let the reader (and everything else) run
        except (ConnectionError, RuntimeError):
            pass  # the reader hung up, as it should
        self._notify()
        return response

    async def _handle_evil_not_image(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=images.not_an_image(), status=200, headers={"Content-Type": "image/png"})
