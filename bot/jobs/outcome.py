"""How a job ends once its prediction has: the state it ends in, and its images downloaded where it succeeded."""

from __future__ import annotations

from typing import Any

from bot.api.predictions import Prediction
from bot.base.errors import ImagineError
from bot.jobs.model import JobState, LiveJob
from bot.media.delivery import Downloader

MAX_IMAGES_PER_JOB = 10
"""Images one job shows at most: a Discord message carries at most 10 attachments."""


def ran_too_long(job_timeout: float) -> str:
    """Why a job that reached its deadline was canceled."""
    return f"The prediction ran longer than {job_timeout:g} seconds, so it was canceled."


async def outcome(
    job: LiveJob, prediction: Prediction, downloader: Downloader, *, timed_out: bool, job_timeout: float
) -> tuple[JobState, dict[str, Any]]:
    """The state ``job`` ends in now ``prediction`` has ended, and the changes to its view.

    ``timed_out``: the job's deadline had come when the prediction ended (a cancel it did not ask for
    is then the bot's own, at the deadline).
    """
    if prediction.status == "succeeded":
        return await _delivered(job, prediction, downloader)
    if prediction.status == "failed":
        return JobState.FAILED, {"error": prediction.error or "The prediction failed without saying why."}
    if prediction.status == "aborted":
        reason = f" ({prediction.error})" if prediction.error else ""
        return JobState.FAILED, {"error": f"The API aborted the prediction before it started{reason}."}
    if job.cancel_event.is_set():
        return JobState.CANCELED, {}
    if timed_out:
        return JobState.TIMED_OUT, {"error": ran_too_long(job_timeout)}
    return JobState.CANCELED, {"error": "The prediction was canceled on the API's side."}


async def _delivered(job: LiveJob, prediction: Prediction, downloader: Downloader) -> tuple[JobState, dict[str, Any]]:
    """The succeeded prediction's images, downloaded (as many as asked, at most a message's worth)."""
    urls = prediction.output_urls
    refused = prediction.refused_outputs
    if not urls:
        if refused:
            more = f" (and {len(refused) - 1} more like it)" if len(refused) > 1 else ""
            error = f"The model's output was refused: {refused[0]}{more}."
        elif prediction.data_removed:
            error = "The prediction's outputs were already deleted by the API."
        else:
            error = "The model finished but returned no image."
        return JobState.FAILED, {"error": error}
    notes = list(job.view.notes)
    expected = job.request.images_expected
    shown = max(1, min(expected, MAX_IMAGES_PER_JOB))
    if len(urls) > shown:  # only what was asked is downloaded, shown and paid for
        notes.append(_surplus_note(len(urls), expected, shown))
        urls = urls[:shown]
    try:
        images = await downloader.fetch_all(urls, stem=f"imagine-{job.id}")
    except ImagineError as exc:
        return JobState.FAILED, {"error": exc.message}
    if refused:
        notes.append(f"{len(refused)} of the model's outputs were refused: {refused[0]}.")
    if len(images) < shown and not refused:
        notes.append(
            f"{len(images)} of {expected} images came back; the model's safety checker may have held some back."
        )
    return JobState.SUCCEEDED, {"images": tuple(images), "notes": tuple(notes)}


def _surplus_note(returned: int, asked: int, shown: int) -> str:
    """Why fewer images are shown than the model returned."""
    if shown < asked:
        return f"The model returned {returned} images; a message holds at most {shown}, so the first {shown} are shown."
    return f"The model returned {returned} images for the {asked} asked; the first {shown} are shown."
