"""A job's uploads: the per-image limit, what a 413 does to it, and fitting once per limit from the original."""

from __future__ import annotations

from typing import Any

import pytest

import bot.media.images
from bot.discord_app.uploads import MAX_REQUEST_BYTES, MIN_UPLOAD_LIMIT, REFUSED_AS_TOO_LARGE, JobUploads
from bot.jobs.model import ImagesNotShown
from bot.media.images import ImageFile, fit_image
from tests.fakes import images

MIB = 1024 * 1024


def png(name: str, size: int) -> ImageFile:
    return ImageFile(name, images.noise_png(size), "image/png")


def test_each_image_gets_its_share_of_a_request() -> None:
    uploads = JobUploads(10 * MIB)
    assert uploads.limit(1) == 10 * MIB
    assert uploads.limit(10) == MAX_REQUEST_BYTES // 10


def test_a_413_halves_what_was_sent_whatever_the_limit_was() -> None:
    """Ten images sent at 1 MiB under a 2.4 MiB share: the next try is at 0.5 MiB, never the same bytes."""
    uploads = JobUploads(10 * MIB)
    sent = [ImageFile(f"{i}.png", bytes(MIB), "image/png") for i in range(10)]
    uploads.shrink("job", sent)
    assert uploads.limit(10) == MIB // 2
    uploads.shrink("job", [ImageFile("0.webp", bytes(MIB // 2), "image/webp")])
    assert uploads.limit(10) == MIN_UPLOAD_LIMIT
    with pytest.raises(ImagesNotShown) as refused:
        uploads.shrink("job", [ImageFile("0.webp", bytes(MIN_UPLOAD_LIMIT), "image/webp")])
    assert refused.value.reason == REFUSED_AS_TOO_LARGE and refused.value.kept == ()


async def test_an_image_is_fitted_from_its_original_once_per_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    fitted: list[tuple[str, int]] = []

    def counting_fit(image: ImageFile, limit: int) -> Any:
        fitted.append((image.filename, limit))
        return fit_image(image, limit)

    monkeypatch.setattr(bot.media.images, "fit_image", counting_fit)
    original = png("out.png", MIB)
    uploads = JobUploads(600 * 1024)
    (first,) = await uploads.fit("job", [original])
    assert (first,) == await uploads.fit("job", [original])  # a retry sends the same bytes, fitted once
    uploads.shrink("job", [first])
    (second,) = await uploads.fit("job", [original])
    assert second.size <= max(MIN_UPLOAD_LIMIT, first.size // 2)
    assert fitted == [("out.png", 600 * 1024), ("out.png", max(MIN_UPLOAD_LIMIT, first.size // 2))]
