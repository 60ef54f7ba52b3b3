"""A prediction's timeline and its progress output: tqdm lines in ``logs`` (:func:`tqdm_line`) or a text
model's pieces streamed into ``output``, the scenario-driven timeline, and the manual drivers a test calls
(start, progress, output, finish).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tests.fakes.replicate.vocabulary import DEFAULT_FAILURE_ERROR, NSFW_ERROR

if TYPE_CHECKING:
    from tests.fakes.replicate.predictions import FakePrediction
    from tests.fakes.replicate.vocabulary import FinalStatus


def _mmss(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


def tqdm_line(n: int, total: int, rate: float) -> str:
    """Format one tqdm progress line as flux's logs show it.

    Example: ``' 50%|█████     | 2/4 [00:00<00:00, 14.02it/s]'`` (10-cell bar, ``0/N`` has ``[00:00<?, ?it/s]``;
    under one step a second tqdm prints seconds per step: ``7.50s/it``).
    """
    frac = n / total if total else 1.0
    full, part = divmod(int(frac * 10 * 8), 8)
    bar = "█" * full
    if full < 10:
        bar += " ▏▎▍▌▋▊▉"[part] + " " * (10 - full - 1)
    head = f"{frac * 100:3.0f}%|{bar}| {n}/{total}"
    if n == 0:
        return f"{head} [00:00<?, ?it/s]"
    # Like tqdm: below one step a second the rate is printed inverted, which keeps its precision.
    shown = f"{rate:5.2f}it/s" if rate >= 1 else f"{1 / rate:5.2f}s/it"
    return f"{head} [{_mmss(n / rate)}<{_mmss((total - n) / rate)}, {shown}]"


class TimelineMixin:
    """Part of :class:`FakeReplicate`: moving predictions along and writing their logs."""

    def start_processing(self, prediction_id: str) -> FakePrediction:
        """Move a ``starting`` prediction to ``processing`` (``started_at``, seed line, 0% progress)."""
        pred = self._live(prediction_id)
        if pred.status == "starting":
            pred.status = "processing"
            pred.started_at = datetime.now(UTC)
            pred._header = f"Using seed: {pred.seed}\n"
            pred._progress = [tqdm_line(0, pred.total_steps, pred._rate)]
            pred.step = 0
            self._render_logs(pred)
            self._touch(pred)
            self._notify()
        return pred

    def set_progress(self, prediction_id: str, step: int) -> FakePrediction:
        """Set the denoising step (0..total_steps), starting the prediction if needed; logs grow."""
        pred = self.start_processing(prediction_id)
        step = max(0, min(step, pred.total_steps))
        pred._progress = [tqdm_line(i, pred.total_steps, pred._rate) for i in range(step + 1)]
        pred.step = step
        if self._output_kind(pred) == "text_stream":
            self._stream_text(pred, step)
        self._render_logs(pred)
        self._touch(pred)
        self._notify()
        return pred

    def emit_output(self, prediction_id: str) -> FakePrediction:
        """Publish the output while the prediction is still ``processing`` (sync-mode early output).

        If every image is NSFW-dropped nothing is published."""
        pred = self.set_progress(prediction_id, self.predictions[prediction_id].total_steps)
        if pred.output is None and self._output_kind(pred) != "files":
            pred.output = self._text_of(pred)
            self._touch(pred)
            self._notify()
        elif pred.output is None:
            kept = self._make_files(pred)
            if kept:
                pred.output = self._output_of(pred)
                self._touch(pred)
                self._notify()
        return pred

    def finish(
        self, prediction_id: str, status: FinalStatus | None = None, *, error: str | None = None
    ) -> FakePrediction:
        """Drive a prediction to a terminal status now (default: its scenario's ``final_status``).

        ``succeeded`` produces the outputs (and fails with :data:`NSFW_ERROR` if all are dropped);
        ``failed`` uses ``error`` or the scenario's; ``aborted`` only makes sense from ``starting``. A
        terminal prediction is returned unchanged.
        """
        pred = self.predictions[prediction_id]
        if pred.terminal:
            return pred
        final = status or pred.scenario.final_status
        if final == "aborted":
            self._complete(pred, "aborted")
            return pred
        self.set_progress(prediction_id, pred.total_steps if final == "succeeded" else pred.step)
        if final == "succeeded" and self._output_kind(pred) != "files":
            pred.output = self._text_of(pred)
            self._complete(pred, "succeeded")
        elif final == "succeeded":
            files = pred.files or self._make_files(pred)
            dropped = self._dropped(pred)
            notes = "".join(f"NSFW content detected in image {i}\n" for i in range(dropped))
            if not files:
                pred._footer = notes
                self._complete(pred, "failed", error=NSFW_ERROR)
                return pred
            pred._footer = notes + f"Total safe images: {len(files)} out of {len(files) + dropped}\n"
            if pred.output is None:
                pred.output = self._output_of(pred)
            self._complete(pred, "succeeded")
        elif final == "failed":
            self._complete(pred, "failed", error=error or pred.scenario.error or DEFAULT_FAILURE_ERROR)
        else:
            self._complete(pred, "canceled")
        return pred

    def remove_data(self, prediction_id: str) -> FakePrediction:
        """Expire the prediction's data now: ``output`` null, ``data_removed`` true, files 404."""
        pred = self.predictions[prediction_id]
        pred.output = None
        pred.data_removed = True
        self._notify()
        return pred

    def _render_logs(self, pred: FakePrediction) -> None:
        # A text model prints no progress bar (its output, growing, is its progress).
        style = pred.scenario.progress_style if self._output_kind(pred) == "files" else "none"
        lines = pred._progress if style != "none" else []
        if style == "carriage_return":
            done = pred.step >= pred.total_steps
            progress = "\r".join(lines) + ("\n" if lines and done else "")
        else:
            progress = "".join(line + "\n" for line in lines)
        pred.logs = pred._header + progress + pred._footer

    async def _timeline(self, pred: FakePrediction) -> None:
        sc = pred.scenario
        if sc.start_delay is None:
            return
        await asyncio.sleep(sc.start_delay)
        if pred.terminal:
            return
        if sc.final_status == "aborted":
            self._complete(pred, "aborted")
            return
        self.start_processing(pred.id)
        if sc.setup > 0:
            pred._progress = []  # the bar has not started yet
            self._render_logs(pred)
            await asyncio.sleep(sc.setup)
            if pred.terminal:
                return
            self.set_progress(pred.id, 0)
        if sc.duration is None:
            return
        for step in range(1, pred.total_steps + 1):
            await asyncio.sleep(sc.duration / pred.total_steps)
            if pred.terminal:
                return
            self.set_progress(pred.id, step)
        if sc.wrap_up > 0:
            await asyncio.sleep(sc.wrap_up)
            if pred.terminal:
                return
        if sc.output_lead > 0 and sc.final_status == "succeeded":
            self.emit_output(pred.id)
            await asyncio.sleep(sc.output_lead)
            if pred.terminal:
                return
        self.finish(pred.id)
