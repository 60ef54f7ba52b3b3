"""The benchmark's progress measures (bench/progress.py, bench/measure.py, bench/report.py): the percentages a job's
Discord message showed, the first one after the prediction began processing, how many different ones, and how a
row reads when none was shown (the bot shows none for a short job today: that must read "none shown", not crash).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import aiohttp
import pytest

from bench.__main__ import chosen_sections
from bench.baselines import Delivery
from bench.details import render
from bench.measure import PhaseResult, analyse
from bench.progress import (
    ShownPercentage,
    distinct_percentages,
    first_logs_webhook_with_percentage,
    first_shown_after,
    logs_percentage,
    percentages_shown,
)
from bench.report import (
    NONE_SHOWN,
    NOT_APPLICABLE,
    distinct_cell,
    first_percentage_cell,
    machine,
    markdown,
    markdown_table,
    webhook_targets,
)
from bench.run import QUICK, SECTIONS, Results, most_running
from tests.fakes.discord import MessageVersion, StoredAttachment
from tests.fakes.replicate import (
    FLUX_SCHNELL,
    FakePrediction,
    FakeReplicate,
    Scenario,
    WebhookDelivery,
    WebhookEvent,
    tqdm_line,
)

T0 = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
IMAGE = StoredAttachment(id=1, filename="out-0.webp", data=b"RIFF", content_type="image/webp", url="http://x/a")


def version(index: int, seconds: float, status: str, *, image: bool = False) -> MessageVersion:
    """A version of a job's message, as the fake Discord stores it, ``seconds`` after :data:`T0`."""
    return MessageVersion(
        index=index,
        content="",
        embeds=({"fields": [{"name": "Model", "value": "`flux`"}, {"name": "Status", "value": status}]},),
        components=(),
        attachments=(IMAGE,) if image else (),
        flags=0,
        allowed_mentions=None,
        tts=False,
        mentions=(),
        mention_roles=(),
        mention_everyone=False,
        timestamp=T0 + dt.timedelta(seconds=seconds),
        at=seconds,
        route="PATCH /webhooks/{application_id}/{token}/messages/@original",
    )


def history(*statuses: str) -> list[MessageVersion]:
    """One version a second, the last one carrying the image."""
    last = len(statuses) - 1
    return [version(i, float(i), status, image=i == last) for i, status in enumerate(statuses)]


def test_percentages_shown_lists_each_version_with_one_until_the_image() -> None:
    shown = percentages_shown(
        history(
            "⏳ Queued",
            "🚀 Starting…",
            "🎨 Processing ▰▰▰▱▱▱▱▱▱▱ 25%",
            "🎨 Processing ▰▰▰▱▱▱▱▱▱▱ 25%",
            "🎨 Processing ▰▰▰▰▰▱▱▱▱▱ 50%",
            "✅ Done",
        )
    )
    began = T0.timestamp()
    assert shown == [
        ShownPercentage(began + 2, 25),
        ShownPercentage(began + 3, 25),
        ShownPercentage(began + 4, 50),
    ]
    assert distinct_percentages(shown) == 2
    assert first_shown_after(shown, began + 1.5) == pytest.approx(0.5)


def test_a_percentage_after_the_image_is_not_progress_shown() -> None:
    versions = history("🚀 Starting…", "✅ Done")
    versions.append(version(2, 2.0, "🎨 Processing 75%"))  # an edit after the image (out of order) is no progress
    assert percentages_shown(versions) == []


def test_a_job_that_showed_no_percentage_reads_as_none() -> None:
    shown = percentages_shown(history("⏳ Queued", "🚀 Starting…", "🎨 Processing…", "✅ Done"))
    assert shown == []
    assert distinct_percentages(shown) == 0
    assert first_shown_after(shown, T0.timestamp()) is None


def test_the_fakes_tqdm_lines_carry_their_percentage() -> None:
    assert logs_percentage(None) is None
    assert logs_percentage("Using seed: 7\n") is None
    logs = "Using seed: 7\n" + "".join(tqdm_line(step, 4, 14.0) + "\n" for step in range(3))
    assert logs_percentage(logs) == 50


def _hook(event: WebhookEvent, logs: str | None, at: float) -> WebhookDelivery:
    """A webhook attempt of the fake API, its payload's ``logs`` as given, made at ``at`` (monotonic)."""
    body = json.dumps({"id": "p1", "status": "processing", "logs": logs}).encode()
    return WebhookDelivery(
        prediction_id="p1",
        event=event,
        webhook_id="msg_1",
        attempt=1,
        url="http://127.0.0.1:1/hook",
        timestamp=0,
        headers={},
        body=body,
        time=at,
    )


def test_the_first_logs_webhook_carrying_a_percentage() -> None:
    hooks = [
        _hook("start", "", 1.0),
        _hook("logs", "Using seed: 7\n", 2.0),
        _hook("logs", "Using seed: 7\n" + tqdm_line(0, 4, 14.0) + "\n", 3.0),
        _hook("logs", "Using seed: 7\n" + tqdm_line(1, 4, 14.0) + "\n", 4.0),
    ]
    found = first_logs_webhook_with_percentage(hooks)
    assert found is not None and found.time == 3.0
    assert first_logs_webhook_with_percentage(hooks[:2]) is None


# --------------------------------------------------------------------------- through the fake API


@dataclass
class _Client:
    """A client of the benchmark as :func:`bench.measure.analyse` sees one: a name and its fake API."""

    name: str
    api: FakeReplicate


@pytest.fixture
async def api() -> AsyncIterator[FakeReplicate]:
    fake = FakeReplicate(seed=1)
    await fake.start()
    fake.set_default_scenario(Scenario(start_delay=0.0, duration=0.05))
    try:
        yield fake
    finally:
        await fake.close()


async def _predictions(api: FakeReplicate, prompts: Sequence[str]) -> list[FakePrediction]:
    """One finished prediction per prompt, created over HTTP."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {api.token}"}) as session:
        for prompt in prompts:
            url = f"{api.base_url}/v1/models/{FLUX_SCHNELL}/predictions"
            async with session.post(url, json={"input": {"prompt": prompt}}) as response:
                assert response.status == 201
    found = [next(p for p in api.predictions.values() if p.input["prompt"] == prompt) for prompt in prompts]
    for prediction in found:
        await api.wait_for_status(prediction.id, "succeeded")
    return found


def _delivered(prediction: FakePrediction, shown_after: Sequence[tuple[float, int]] | None) -> Delivery:
    """The delivery of ``prediction``'s job, its percentages shown ``(seconds after it began, percent)``."""
    assert prediction.started_at is not None and prediction.completed_at is not None
    began = prediction.started_at.timestamp()
    shown = None if shown_after is None else [(began + after, percent) for after, percent in shown_after]
    return Delivery(str(prediction.input["prompt"]), prediction.completed_at.timestamp() + 0.01, percentages=shown)


def _phase(api: FakeReplicate, name: str, deliveries: list[Delivery], duration: float = 4.0) -> PhaseResult:
    return analyse(_Client(name, api), deliveries, 0, duration=duration, concurrency=1, wall_s=1.0, throttled=0)


async def test_first_percentage_and_distinct_percentages_over_jobs(api: FakeReplicate) -> None:
    showed, silent = await _predictions(api, ["fox 1", "fox 2"])
    phase = _phase(api, "imagine-bot", [_delivered(showed, [(0.5, 25), (1.5, 50), (2.0, 50)]), _delivered(silent, [])])
    assert phase.shows_progress
    assert phase.first_percentage.n == 1
    assert phase.first_percentage.p50 == pytest.approx(500.0, abs=1.0)
    assert (phase.distinct_percentages_min, phase.distinct_percentages_p50) == (0, 1.0)
    assert first_percentage_cell(phase, phase.first_percentage) == "500 (1 of 2 jobs)"
    assert distinct_cell(phase) == "0 / 1"


async def test_a_row_with_no_percentage_shown_reads_none_shown_and_misses_its_target(api: FakeReplicate) -> None:
    jobs = await _predictions(api, ["fox 3", "fox 4"])
    hooked = _phase(api, "imagine-bot (webhooks)", [_delivered(job, []) for job in jobs])
    peer = _phase(api, "official client bot", [_delivered(job, None) for job in jobs])
    assert first_percentage_cell(hooked, hooked.first_percentage) == NONE_SHOWN
    assert distinct_cell(hooked) == "0 / 0"
    assert first_percentage_cell(peer, peer.first_percentage) == NOT_APPLICABLE
    assert distinct_cell(peer) == NOT_APPLICABLE
    verdicts = {target.name: target.passed for target in webhook_targets([hooked, peer])}
    assert verdicts["webhooks: first % after its logs event"] is False
    assert verdicts["webhooks: distinct percentages shown (fewest)"] is False
    table = markdown_table([hooked, peer])
    assert len(table) == 4 and NONE_SHOWN in table[2] and NOT_APPLICABLE in table[3]
    # The whole report of a run with only these rows (no scale, sustained or scale-out section) prints too.
    results = Results(QUICK, ("overhead",), 1.0, phases=[hooked, peer])
    info = machine()
    assert "| 4 s | 2, one at a time | imagine-bot (webhooks) |" in markdown(results, info)
    assert "none shown" in markdown(results, info) and "Targets" in render(results, info)


async def test_most_running_counts_predictions_that_overlap(api: FakeReplicate) -> None:
    jobs = await _predictions(api, ["fox 5", "fox 6", "fox 7"])
    for prediction, (start, end) in zip(jobs, ((0, 10), (5, 12), (10, 11)), strict=True):
        prediction.created_at = T0 + dt.timedelta(seconds=start)
        prediction.completed_at = T0 + dt.timedelta(seconds=end)
    # The first ends as the third begins (an end counts before a create at the same instant): two at once.
    assert most_running(jobs) == 2


def test_sections_only_and_skip() -> None:
    assert chosen_sections(None, []) == SECTIONS
    assert chosen_sections(["sustained"], []) == ("sustained",)
    assert chosen_sections(None, ["scale-out"]) == ("overhead", "scale", "sustained")
    assert chosen_sections(["scale-out", "overhead"], ["scale-out"]) == ("overhead",)
