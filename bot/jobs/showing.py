"""How a job's views reach its presenter: in order with the newest winning, and the final one booked first.

A final view whose images the presenter cannot show is booked again for what will be seen, then shown
with fewer images, or none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.i18n import tr
from bot.jobs.model import ImagesNotShown, JobView, LiveJob

log = logging.getLogger(__name__)

IMAGES_LOST = tr("The finished images could not be delivered, and nothing is charged for them.")
"""Said when a presenter failed to show a job's images in a way it did not foresee (it logged why)."""


def show(job: LiveJob, view: JobView) -> None:
    """Record a non-terminal view and hand it to the presenter without waiting on it.

    One pump per job delivers views in order; a view superseded before the
    presenter took it is skipped (the newest state wins).
    """
    job.view = view
    job.pending = view
    if job.pump is None or job.pump.done():
        job.pump = asyncio.create_task(_pump(job), name=f"show-{job.id}")


async def _pump(job: LiveJob) -> None:
    while job.pending is not None:
        view, job.pending = job.pending, None
        try:
            await job.presenter.show(view)
        except Exception:
            log.exception("presenter failed to show job %s (%s)", job.id, view.state)


async def settle_and_show(job: LiveJob, view: JobView, book: Callable[[LiveJob, JobView], Awaitable[None]]) -> JobView:
    """Book the job's end, then show its final view; the view the member sees (with what was delivered).

    Bookkeeping (refunds) comes first, so a member who reads the outcome can act on it at once. If the
    presenter cannot show the view's images (it says so, or fails in a way it did not foresee), the job is
    booked again for what will be seen (booking only ever moves towards the member, and is idempotent: a
    job resumed after a crash here ends again) before the view with fewer images, or none, is shown. A
    view without images that cannot be shown either is given up on: the job still ends.
    """
    await book(job, view)
    while True:
        try:
            await job.presenter.show(view)
            return view
        except ImagesNotShown as refused:
            log.warning("job %s: images not shown (%s)", job.id, refused.reason)
            not_shown = refused
        except Exception:
            log.exception("presenter failed to show job %s (%s)", job.id, view.state)
            not_shown = ImagesNotShown(IMAGES_LOST)
        if not view.images:
            return view
        amended = not_shown.amend(view)
        if len(amended.images) >= len(view.images):  # nothing less to show: show none
            amended = ImagesNotShown(not_shown.reason).amend(view)
        view = job.view = amended
        await book(job, view)
