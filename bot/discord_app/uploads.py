"""A job's finished images as uploads Discord takes: each fitted once per size limit, smaller after a 413.

Discord caps each attachment (the interaction says how much) and each request (25 MiB), and may
still answer 413 for less. The first limit is the smaller of the two shares; after a 413 it is half
of what was just sent, so no retry sends the same bytes again, down to a floor where shrinking
stops (Discord refuses the images whatever their size). Each image is fitted from its original
(never from an earlier, already lossy copy), and only once per limit, so a retried edit costs no CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.base.errors import DeliveryError
from bot.i18n import Text, tr, tr_n
from bot.jobs.model import ImagesNotShown
from bot.media.images import ImageFile, fit_in_turn

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 24 * 1024 * 1024  # Discord refuses requests over 25 MiB; keep a margin for JSON.
MIN_UPLOAD_LIMIT = 256 * 1024
"""Bytes per image below which a 413 no longer shrinks the images: Discord refuses them whatever their size."""
REFUSED_AS_TOO_LARGE = tr(
    "Discord refused the finished images as too large even after shrinking them, so they are not shown here, and "
    "nothing is charged for them."
)


class JobUploads:
    """The uploads of one job's images and the per-image limit they are fitted to."""

    def __init__(self, upload_limit: int) -> None:
        """``upload_limit``: the bytes per attachment Discord allows where the job is shown."""
        self._upload_limit = upload_limit
        self._fitted: dict[str, tuple[int, ImageFile]] = {}  # by image name: the limit fitted to, and the upload

    def limit(self, count: int) -> int:
        """Bytes each of ``count`` images may have in one message."""
        return min(self._upload_limit, MAX_REQUEST_BYTES // max(1, count))

    async def fit(self, job_id: str, images: Sequence[ImageFile]) -> tuple[ImageFile, ...]:
        """``images`` as uploads within :meth:`limit`, in order (an image that fits is sent as it is).

        Raises :class:`ImagesNotShown`, with the originals of those that can be sent, if some cannot be made
        to fit.
        """
        if not images:
            return ()
        limit = self.limit(len(images))
        kept: list[tuple[ImageFile, ImageFile]] = []
        for image in images:
            cached = self._fitted.get(image.filename)
            if cached is not None and cached[0] == limit:
                kept.append((image, cached[1]))
                continue
            try:
                upload = await fit_in_turn(image, limit)
            except DeliveryError as exc:
                log.warning("job %s: %s could not be fitted: %s", job_id, image.filename, exc)
                continue
            except Exception:
                log.exception("job %s: fitting %s failed unexpectedly", job_id, image.filename)
                continue
            self._fitted[image.filename] = (limit, upload)
            kept.append((image, upload))
        if len(kept) < len(images):
            raise ImagesNotShown(_unfit_text(len(images) - len(kept), len(images)), tuple(i for i, _ in kept))
        return tuple(upload for _, upload in kept)

    def shrink(self, job_id: str, sent: Sequence[ImageFile]) -> None:
        """Discord answered 413 to ``sent``: fit to half the largest of them from now on.

        Raises :class:`ImagesNotShown` once they were already at the floor (:data:`MIN_UPLOAD_LIMIT`).
        """
        largest = min(self.limit(len(sent)), max(upload.size for upload in sent))
        if largest <= MIN_UPLOAD_LIMIT:
            raise ImagesNotShown(REFUSED_AS_TOO_LARGE)
        self._upload_limit = max(MIN_UPLOAD_LIMIT, largest // 2)
        log.info("job %s: Discord said 413; fitting images to %d bytes", job_id, self._upload_limit)


def _unfit_text(unfit: int, total: int) -> Text:
    if unfit == total:
        return tr(
            "The finished images could not be made small enough to upload, so they are not shown here, and nothing "
            "is charged for them."
        )
    return tr_n(
        "{n} of the {total} images could not be made small enough to upload: not shown, and not charged.",
        "{n} of the {total} images could not be made small enough to upload: not shown, and not charged.",
        unfit,
        total=total,
    )
