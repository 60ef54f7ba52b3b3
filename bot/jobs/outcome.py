"""How a job ends once its prediction has: the state it ends in, and its images downloaded where it succeeded."""

from __future__ import annotations

from typing import Any

from bot.api.predictions import Prediction
from bot.base.errors import ImagineError
from bot.i18n import Text, tr, tr_n
from bot.jobs.model import JobState, LiveJob
from bot.media.delivery import Downloader

MAX_IMAGES_PER_JOB = 10
"""Images one job shows at most: a Discord message carries at most 10 attachments."""


def ran_too_long(job_timeout: float) -> Text:
    """Why a job that reached its deadline was canceled."""
    seconds = f"{job_timeout:g}"
    return tr("The prediction ran longer than {seconds} seconds, so it was canceled.", seconds=seconds)


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
        return JobState.FAILED, {"error": prediction.error or tr("The prediction failed without saying why.")}
    if prediction.status == "aborted":
        if prediction.error:
            aborted = tr("The API aborted the prediction before it started ({reason}).", reason=prediction.error)
            return JobState.FAILED, {"error": aborted}
        return JobState.FAILED, {"error": tr("The API aborted the prediction before it started.")}
    if job.cancel_event.is_set():
        return JobState.CANCELED, {}
    if timed_out:
        return JobState.TIMED_OUT, {"error": ran_too_long(job_timeout)}
    return JobState.CANCELED, {"error": tr("The prediction was canceled on the API's side.")}


async def _delivered(job: LiveJob, prediction: Prediction, downloader: Downloader) -> tuple[JobState, dict[str, Any]]:
    """The succeeded prediction's images, downloaded (as many as asked, at most a message's worth)."""
    urls = prediction.output_urls
    refused = prediction.refused_outputs
    if not urls:
        error: Text
        if len(refused) > 1:
            error = tr_n(
                "The model's output was refused: {reason} (and {n} more like it).",
                "The model's output was refused: {reason} (and {n} more like it).",
                len(refused) - 1,
                reason=refused[0],
            )
        elif refused:
            error = tr("The model's output was refused: {reason}.", reason=refused[0])
        elif prediction.data_removed:
            error = tr("The prediction's outputs were already deleted by the API.")
        else:
            error = tr("The model finished but returned no image.")
        return JobState.FAILED, {"error": error}
    notes: list[Text | str] = list(job.view.notes)
    expected = job.request.images_expected
    shown = max(1, min(expected, MAX_IMAGES_PER_JOB))
    if len(urls) > shown:  # only what was asked is downloaded, shown and paid for
        notes.append(_surplus_note(len(urls), expected, shown))
        urls = urls[:shown]
    try:
        images = await downloader.fetch_all(urls, stem=f"imagine-{job.id}")
    except ImagineError as exc:
        return JobState.FAILED, {"error": exc.text}
    if refused:
        notes.append(
            tr_n(
                "{n} of the model's outputs was refused: {reason}.",
                "{n} of the model's outputs were refused: {reason}.",
                len(refused),
                reason=refused[0],
            )
        )
    if len(images) < shown and not refused:
        notes.append(
            tr_n(
                "{n} of {expected} images came back; the model's safety checker may have held some back.",
                "{n} of {expected} images came back; the model's safety checker may have held some back.",
                len(images),
                expected=expected,
            )
        )
    return JobState.SUCCEEDED, {"images": tuple(images), "notes": tuple(notes)}


def _surplus_note(returned: int, asked: int, shown: int) -> Text:
    """Why fewer images are shown than the model returned."""
    if shown < asked:
        return tr(
            "The model returned {returned} images; a message holds at most {shown}, so the first {shown} are shown.",
            returned=returned,
            shown=shown,
        )
    return tr_n(
        "The model returned {returned} images for the {asked} asked; the first one is shown.",
        "The model returned {returned} images for the {asked} asked; the first {n} are shown.",
        shown,
        returned=returned,
        asked=asked,
    )
