"""The benchmark's progress measures (bench/progress.py, bench/measure.py, bench/report.py): the percentages a job's
Discord message showed, the first one after the prediction began processing and after its first ``logs`` webhook
(on the monotonic clock, a percentage a poll showed before that webhook reported, not counted as met), how many
different ones, and how a row reads when none was shown (that must read "none shown", not crash); and the 429s the
fake Discord answered edits with, per phase, in the table, the sustained and scale lines and the targets.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import aiohttp
import pytest

from bench.__main__ import chosen_sections
from bench.baselines import Delivery
from bench.clients import DISCORD_TOKEN, WEBHOOKS_NAME
from bench.details import render
from bench.machine import machine
from bench.measure import PhaseResult, PhaseStart, Summary, analyse
from bench.plan import QUICK, SECTIONS
from bench.progress import (
    ShownPercentage,
    distinct_percentages,
    first_logs_webhook_with_percentage,
    first_shown_after,
    logs_percentage,
    percentages_shown,
)
from bench.report import (
    NONE_AFTER,
    NONE_SHOWN,
    NOT_APPLICABLE,
    distinct_cell,
    first_percentage_cell,
    markdown,
    markdown_table,
    scale_line,
    sustained_line,
)
from bench.results import Results, ScaleResult, SustainedResult
from bench.run import most_running
from bench.targets import polling_targets, sustained_targets, webhook_targets
from tests.fakes.discord import FakeDiscord, MessageVersion, StoredAttachment
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


def version(index: int, seconds: float, status: str, *, image: bool = False, wall_step: float = 0.0) -> MessageVersion:
    """A version of a job's message, as the fake Discord stores it, at ``seconds`` on the monotonic clock; on the
    wall clock ``seconds`` after :data:`T0`, moved by ``wall_step`` (a step of the wall clock, as NTP makes)."""
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
        timestamp=T0 + dt.timedelta(seconds=seconds + wall_step),
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
    assert shown == [ShownPercentage(2.0, 25), ShownPercentage(3.0, 25), ShownPercentage(4.0, 50)]
    assert distinct_percentages(shown) == 2
    assert first_shown_after(shown, 1.5) == pytest.approx(0.5)
    assert first_shown_after(shown, 2.5) == pytest.approx(-0.5)  # shown before: the caller reports it


def test_the_percentages_shown_keep_the_monotonic_clock_through_a_wall_clock_step() -> None:
    stepped = [
        version(0, 0.0, "🚀 Starting…"),
        version(1, 1.0, "🎨 Processing 25%", wall_step=-3600.0),
        version(2, 2.0, "✅ Done", image=True, wall_step=-3600.0),
    ]
    assert percentages_shown(stepped) == [ShownPercentage(1.0, 25)]


def test_a_percentage_after_the_image_is_not_progress_shown() -> None:
    versions = history("🚀 Starting…", "✅ Done")
    versions.append(version(2, 2.0, "🎨 Processing 75%"))  # an edit after the image (out of order) is no progress
    assert percentages_shown(versions) == []


def test_a_job_that_showed_no_percentage_reads_as_none() -> None:
    shown = percentages_shown(history("⏳ Queued", "🚀 Starting…", "🎨 Processing…", "✅ Done"))
    assert shown == []
    assert distinct_percentages(shown) == 0
    assert first_shown_after(shown, 0.0) is None


def test_the_fakes_tqdm_lines_carry_their_percentage() -> None:
    assert logs_percentage(None) is None
    assert logs_percentage("Using seed: 7\n") is None
    logs = "Using seed: 7\n" + "".join(tqdm_line(step, 4, 14.0) + "\n" for step in range(3))
    assert logs_percentage(logs) == 50


def _hook(event: WebhookEvent, logs: str | None, at: float, prediction_id: str = "p1") -> WebhookDelivery:
    """A webhook attempt of the fake API, its payload's ``logs`` as given, made at ``at`` (monotonic)."""
    body = json.dumps({"id": prediction_id, "status": "processing", "logs": logs}).encode()
    return WebhookDelivery(
        prediction_id=prediction_id,
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
    """A client of the benchmark as :func:`bench.measure.analyse` sees one: a name, its fake API and its fake
    Discord (``None``: a library client)."""

    name: str
    api: FakeReplicate
    discord: FakeDiscord | None = None


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
    began = prediction.monotonic_of(prediction.started_at)
    shown = None if shown_after is None else [(began + after, percent) for after, percent in shown_after]
    return Delivery(str(prediction.input["prompt"]), prediction.completed_at.timestamp() + 0.01, percentages=shown)


def _phase(api: FakeReplicate, name: str, deliveries: list[Delivery], duration: float = 4.0) -> PhaseResult:
    return analyse(_Client(name, api), deliveries, PhaseStart(), duration=duration, concurrency=1, wall_s=1.0)


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


async def test_processing_began_is_read_on_the_monotonic_clock_whatever_the_wall_clock_did(
    api: FakeReplicate,
) -> None:
    (job,) = await _predictions(api, ["fox 8"])
    assert job.started_at is not None
    began = job.monotonic_of(job.started_at)
    assert job.created_mono <= began <= time.monotonic()
    # A step of the wall clock before the create moves every wall-clock stamp of the prediction alike: nothing else.
    job.created_at -= dt.timedelta(hours=1)
    job.started_at -= dt.timedelta(hours=1)
    assert job.monotonic_of(job.started_at) == pytest.approx(began)
    phase = _phase(api, "imagine-bot", [_delivered(job, [(0.25, 25)])])
    assert phase.first_percentage.p50 == pytest.approx(250.0, abs=1.0)


def _logs_hook(prediction: FakePrediction, after_began: float) -> WebhookDelivery:
    """The first ``logs`` webhook carrying a percentage of ``prediction``, sent ``after_began`` s after it began."""
    assert prediction.started_at is not None
    logs = "Using seed: 7\n" + tqdm_line(1, 4, 14.0) + "\n"
    return _hook("logs", logs, prediction.monotonic_of(prediction.started_at) + after_began, prediction.id)


async def test_a_percentage_a_poll_showed_before_its_logs_webhook_is_reported_not_met(api: FakeReplicate) -> None:
    webhook_first, poll_first = await _predictions(api, ["fox 9", "fox 10"])
    api.webhook_deliveries += [_logs_hook(webhook_first, 0.2), _logs_hook(poll_first, 1.0)]
    both = _phase(
        api, WEBHOOKS_NAME, [_delivered(webhook_first, [(0.5, 25)]), _delivered(poll_first, [(0.5, 25), (1.2, 50)])]
    )
    # One clock: shown 0.5 s after it began, the webhook 0.2 s after: 300 ms; the other job is left out, counted.
    assert both.first_percentage_after_logs.n == 1
    assert both.first_percentage_after_logs.p50 == pytest.approx(300.0, abs=1.0)
    assert (both.first_percentage_before_logs, both.first_percentage_before_processing) == (1, 0)
    cell = first_percentage_cell(both, both.first_percentage_after_logs, both.first_percentage_before_logs)
    assert cell == "300 (1 of 2 jobs; 1 shown before it, left out)"
    (target,) = [t for t in webhook_targets([both]) if t.name == "webhooks: first % after its logs event"]
    assert target.passed is True and target.note is not None and "1 of 2 jobs" in target.note
    assert target.note in markdown(Results(QUICK, ("overhead",), 1.0, phases=[both]), machine())

    # Every job shown its percentage before the webhook: the webhook path was not measured (no verdict, not met).
    only_polled = _phase(api, WEBHOOKS_NAME, [_delivered(poll_first, [(0.5, 25)])])
    assert only_polled.first_percentage_after_logs.n == 0 and only_polled.first_percentage_before_logs == 1
    after_logs = first_percentage_cell(
        only_polled, only_polled.first_percentage_after_logs, only_polled.first_percentage_before_logs
    )
    assert after_logs == f"{NONE_AFTER} (1 shown before it)"
    (target,) = [t for t in webhook_targets([only_polled]) if t.name == "webhooks: first % after its logs event"]
    assert target.passed is None and "before its logs webhook" in target.margin


async def _edit_past_the_limit(discord: FakeDiscord, message_url: str, edits: int) -> None:
    """``edits`` edits of one message at once (Discord allows 5 per 5 s: the rest are answered 429)."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {DISCORD_TOKEN}"}) as http:
        for number in range(edits):
            async with http.patch(message_url, json={"content": str(number)}) as response:
                assert response.status in (200, 429)


async def test_discord_429s_are_counted_per_phase_and_miss_their_target(api: FakeReplicate) -> None:
    (job,) = await _predictions(api, ["fox 11"])
    async with FakeDiscord(token=DISCORD_TOKEN) as discord, aiohttp.ClientSession() as http:
        posted = f"{discord.api_base}/channels/{discord.add_guild('Bench').channel('general').id}/messages"
        auth = {"Authorization": f"Bot {DISCORD_TOKEN}"}
        async with http.post(posted, json={"content": "0"}, headers=auth) as response:
            message_url = f"{posted}/{(await response.json())['id']}"
        await _edit_past_the_limit(discord, message_url, 6)  # one 429 before the phase: not the phase's
        bot = _Client("imagine-bot", api, discord)
        start = PhaseStart.of(bot)
        await _edit_past_the_limit(discord, message_url, 2)
    assert len(discord.rate_limited) == 3
    phase = analyse(bot, [_delivered(job, [])], start, duration=5.0, concurrency=1, wall_s=1.0)
    library = analyse(
        _Client("naive 1 s loop", api), [_delivered(job, None)], PhaseStart(), duration=5.0, concurrency=1, wall_s=1.0
    )
    assert (phase.discord_429s, library.discord_429s) == (2, None)
    assert phase.to_json()["discord_429s"] == 2
    verdicts = {target.name: target.passed for target in polling_targets([phase, library])}
    assert verdicts["429s from Discord edits"] is False
    table = markdown_table([phase, library])
    assert table[0].endswith("| 429s API / Discord |")
    assert table[2].endswith("| 0 / 2 |") and table[3].endswith(f"| 0 / {NOT_APPLICABLE} |")


def test_the_sustained_phase_matches_the_creates_budget_and_reports_discord_429s() -> None:
    sustained = SustainedResult(
        seconds=45.0,
        rate=9.0,
        duration=5.0,
        jobs=405,
        members=900,
        delivered=405,
        throttled=0,
        discord_429s=3,
        most_running=50,
        last_delivery_s=52.0,
        overhead=Summary.of([0.2, 0.3]),
        first_percentage=Summary.of([0.9]),
        first_answer=Summary.of([0.05]),
        late_answers=0,
        requests_per_job={"create": 1.0, "poll": 2.0, "download": 1.0, "other": 0.0, "total": 4.0},
        api_requests_per_job=3.0,
        peak_rss_mb=120.0,
        max_stall_ms=40.0,
    )
    verdicts = {target.name: target.passed for target in sustained_targets(sustained)}
    assert verdicts["sustained: 429s received"] is True
    assert verdicts["sustained: 429s from Discord edits"] is False
    line = sustained_line(sustained)
    assert "matched, not exceeded" in line
    assert "0 × 429 from the API, 3 × 429 from Discord edits" in line
    assert sustained.to_json()["discord_429s"] == 3


def test_the_scale_line_reports_discord_429s() -> None:
    scale = ScaleResult(
        jobs=200,
        duration=0.5,
        members=200,
        max_running=200,
        push_rate=None,
        delivered=200,
        completion_s=30.0,
        push_s=1.0,
        idle_rss_mb=80.0,
        peak_rss_mb=120.0,
        rss_at_end_mb=110.0,
        max_stall_ms=50.0,
        p99_stall_ms=20.0,
        stalls_over_100ms=0,
        max_stall_at_s=3.0,
        max_gc_pause_ms=5.0,
        throttled=0,
        discord_429s=1,
        first_answer=Summary.of([0.05]),
        late_answers=0,
        reached_api=200,
        overhead=Summary.of([0.1]),
        requests_per_job={"create": 1.0, "poll": 0.0, "download": 1.0, "other": 0.0, "total": 2.0},
        max_requests_per_job=2,
    )
    assert "0 × 429 from the API, 1 × 429 from Discord edits" in scale_line(scale)


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
