"""From what the fakes recorded to figures: delivery overhead and API requests per job.

Every figure is read off the two fakes, which run in the benchmark's own process, and each one subtracts two
stamps of one clock:

* *succeeded*: ``FakePrediction.completed_at``, the wall-clock moment the fake prediction API
  marked the prediction succeeded;
* *file requested*: arrival of the first request for one of its output files at the fake
  (``RecordedRequest.time``, ``time.monotonic()``), compared with *succeeded* moved onto that clock
  (:meth:`FakePrediction.monotonic_of`);
* *delivered*: for the bot, ``MessageVersion.timestamp`` of the first version of its Discord
  message that carries the image, as stored by the fake Discord; for the two library clients,
  ``time.time()`` right after the last output file was read (in their own process: only the wall clock is
  shared, so the overhead, a span of milliseconds, is taken on it).

*Delivery overhead* is delivered - succeeded; *detection lag* is file requested - succeeded (how
long the client took to learn that the prediction was done); for the bot, the *previous-edit gap*
is the time between the message version with the image and the version before it (Discord edits
are paced). *API requests per job* counts every
request the phase sent to the fake prediction API (creates, polls, cancels, model/schema reads,
429-refused attempts included) plus the output-file downloads, divided by the number of jobs that
reached the API (made a prediction); the largest per-job count (requests that name the job's
prediction) is kept as well. *API requests* leave the downloads out (output files are not the API):
the largest number naming one job's prediction (its create included) and those naming none (429-refused
creates, model reads) are kept too. *Webhooks* are the fake's delivery attempts to the bot for the
phase's predictions, by event; a job *polled after its end* got a poll after the fake marked its
prediction finished (a poll, not the push, may have told the bot). For the bot, *first answer* is the
time from the interaction's dispatch by the fake Discord to the bot's first callback (Discord allows 3 s).
*Discord 429s* are the edits the client's fake Discord answered 429 for their message's edit limit (5 per 5 s,
``FakeDiscord.rate_limited``) during the phase: discord.py waits them out quietly, so without this count an edit
pacing that overruns Discord's limit would show only as latency.

For a bot that shows progress (:mod:`bench.progress`), on ``time.monotonic()`` throughout: *first percentage
shown* is from ``FakePrediction.started_at`` (the fake marked the prediction processing; moved onto the monotonic
clock by :meth:`FakePrediction.monotonic_of`) to the first version of the job's message whose Status shows a percentage
(``MessageVersion.at``); with webhooks, also from the first ``logs`` webhook whose logs carry a tqdm percentage
(``WebhookDelivery.time``) to that same version; *distinct percentages* is how many different ones a job's
message showed before the image (a job that showed none counts 0, and in no first-percentage time). A
first-percentage time that comes out negative is reported, not clamped (:func:`progress_figures`). Clients that
show no progress have none of these.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.baselines import Delivery
from bench.clients import Recorded
from bench.progress import (
    ShownPercentage,
    distinct_percentages,
    first_logs_webhook_with_percentage,
    first_shown_after,
)
from tests.fakes.replicate import FakePrediction, FakeReplicate, WebhookDelivery

REQUEST_KINDS = ("create", "poll", "download", "other")
ACK_DEADLINE = 3.0
"""Seconds Discord gives a bot to answer an interaction (then: error 10062, "This interaction failed")."""
_KIND_NAMES = {"create": "create", "get": "poll", "file": "download"}


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, interpolating between the two nearest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def split_negative(lags: Sequence[float]) -> tuple[list[float], int]:
    """The lags that are not negative, and how many were: a negative one is left out and counted, not clamped to 0
    (which would read as a met target for a job the figure says nothing of)."""
    kept = [lag for lag in lags if lag >= 0]
    return kept, len(lags) - len(kept)


@dataclass(frozen=True)
class PhaseStart:
    """How much a client's fakes had recorded when a phase began: the phase's records are the ones after."""

    requests: int = 0
    """Requests the fake API had received (``FakeReplicate.requests``)."""
    throttled: int = 0
    """429s the fake API had sent."""
    discord_429s: int = 0
    """Edits the client's fake Discord had answered 429 (``FakeDiscord.rate_limited``; 0 for a library client)."""

    @classmethod
    def of(cls, client: Recorded) -> PhaseStart:
        """``client``'s fakes' records now."""
        discord = client.discord
        rate_limited = 0 if discord is None else len(discord.rate_limited)
        return cls(len(client.api.requests), client.api.throttled_count, rate_limited)

    def throttled_since(self, client: Recorded) -> int:
        """429s ``client``'s fake API sent since."""
        return client.api.throttled_count - self.throttled

    def discord_429s_since(self, client: Recorded) -> int | None:
        """Edits ``client``'s fake Discord answered 429 since (``None``: a library client, which has no Discord)."""
        discord = client.discord
        return None if discord is None else len(discord.rate_limited) - self.discord_429s


@dataclass(frozen=True)
class Summary:
    """p50 / p95 / max (and the mean) of a sample, in milliseconds."""

    n: int
    p50: float | None
    p95: float | None
    max: float | None
    mean: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Summary:
        """Summarise durations given in seconds."""
        if not seconds:
            return cls(0, None, None, None, None)
        ms = [s * 1000 for s in seconds]
        return cls(
            len(ms),
            round(percentile(ms, 0.5), 1),
            round(percentile(ms, 0.95), 1),
            round(max(ms), 1),
            round(sum(ms) / len(ms), 1),
        )


@dataclass
class PhaseResult:
    """One client, one prediction time, one way of sending jobs (one at a time, or all at once)."""

    client: str
    duration: float
    """Seconds from create to succeeded, as the fake API plays it."""
    concurrency: int
    """1: one job at a time; N: N jobs started at once."""
    jobs: int
    delivered: int
    overhead: Summary
    detection: Summary
    previous_edit_gap: Summary
    """The bot only: time between the message version with the image and the one before it."""
    first_answer: Summary
    """The bot only: from the interaction's dispatch to the bot's first answer (Discord allows 3 s)."""
    late_answers: int
    """The bot only: interactions answered after 3 s, or never."""
    reached_api: int
    """Jobs whose prediction was created (requests per job are divided by this)."""
    prefer_headers: dict[str, int]
    """``Prefer`` header of the creates sent, and how many times (``none``: no header)."""
    finished_in_create: int
    """Jobs that never polled: the create call's answer already had the finished prediction."""
    requests_per_job: dict[str, float]
    max_requests_per_job: int
    throttled: int
    """429 answers the fake API sent during the phase."""
    wall_s: float
    errors: dict[str, int] = field(default_factory=dict)
    max_api_requests_per_job: int = 0
    """The largest number of API requests (downloads left out) naming one job's prediction, its create included."""
    unnamed_api_requests: int = 0
    """API requests of the phase that name no prediction (429-refused creates, model reads, lists)."""
    webhooks_per_job: dict[str, float] = field(default_factory=dict)
    """Webhook attempts the fake made per job that reached the API, by event (``refused``: answered non-2xx or
    not at all); empty for a client without webhooks."""
    polled_after_end: int = 0
    """Jobs polled after the fake marked their prediction finished."""
    shows_progress: bool = False
    """The client's messages show the prediction's progress (the figures below are read off them)."""
    first_percentage: Summary = field(default_factory=lambda: Summary.of([]))
    """From the fake marking the prediction processing (``started_at``) to the first percentage shown in Discord,
    over the delivered jobs that showed one (``n``: how many did)."""
    first_percentage_after_logs: Summary = field(default_factory=lambda: Summary.of([]))
    """Webhooks only: from the first ``logs`` webhook whose logs carry a percentage to the first percentage shown,
    over the jobs that showed one after that webhook was sent (``n``: how many)."""
    first_percentage_before_processing: int = 0
    """Jobs whose first percentage was stamped before the fake marked the prediction processing (only a fault of
    the clocks could do that): left out of :attr:`first_percentage`, not clamped to 0."""
    first_percentage_before_logs: int = 0
    """Webhooks only: jobs whose first percentage was shown before the first ``logs`` webhook carrying one was sent
    (a poll showed it first): left out of :attr:`first_percentage_after_logs`, which then speaks of the webhook
    path alone, not clamped to 0 (which would count as a met target)."""
    distinct_percentages_min: int | None = None
    """The fewest different percentages one delivered job showed (``None``: no progress shown by design)."""
    distinct_percentages_p50: float | None = None
    discord_429s: int | None = None
    """Edits the client's fake Discord answered 429 for their message's edit limit, from the phase's start to its
    analysis (discord.py waits them out quietly); ``None``: a library client, which posts to no Discord."""

    def to_json(self) -> dict[str, Any]:
        """JSON-able figures."""
        data = asdict(self)
        data["overhead_ms"] = data.pop("overhead")
        data["detection_lag_ms"] = data.pop("detection")
        data["previous_edit_gap_ms"] = data.pop("previous_edit_gap")
        data["first_answer_ms"] = data.pop("first_answer")
        data["first_percentage_ms"] = data.pop("first_percentage")
        data["first_percentage_after_logs_ms"] = data.pop("first_percentage_after_logs")
        return data


def analyse(
    client: Recorded,
    deliveries: Sequence[Delivery],
    start: PhaseStart,
    *,
    duration: float,
    concurrency: int,
    wall_s: float,
) -> PhaseResult:
    """Figures for ``deliveries``, counting what ``client``'s fakes recorded since ``start`` (requests, 429s)."""
    api = client.api
    by_prompt = {pred.input.get("prompt"): pred for pred in api.predictions.values()}
    requests = api.requests[start.requests :]
    per_prediction: Counter[str] = Counter(r.prediction_id for r in requests if r.prediction_id)
    polls: Counter[str] = Counter(r.prediction_id for r in requests if r.kind == "get" and r.prediction_id)
    api_per_prediction: Counter[str] = Counter(
        r.prediction_id for r in requests if r.kind != "file" and r.prediction_id
    )
    unnamed = sum(1 for r in requests if r.kind != "file" and not r.prediction_id)
    last_poll: dict[str, float] = {}
    for request in requests:
        if request.kind == "get" and request.prediction_id:
            last_poll[request.prediction_id] = request.time
    prefer: Counter[str] = Counter(r.headers.get("Prefer", "none") for r in requests if r.kind == "create")
    first_file: dict[str, float] = {}
    totals: Counter[str] = Counter()
    for request in requests:
        totals[_KIND_NAMES.get(request.kind, "other")] += 1
        if request.kind == "file" and request.prediction_id and request.prediction_id not in first_file:
            first_file[request.prediction_id] = request.time

    overheads: list[float] = []
    detections: list[float] = []
    gaps = [d.previous_version_gap for d in deliveries if d.previous_version_gap is not None]
    answers = [d.answered_after for d in deliveries if d.answered_after is not None]
    late = sum(1 for d in deliveries if d.answered_after is None or d.answered_after > ACK_DEADLINE)
    if not answers:  # not the bot: no interactions
        late = 0
    errors: Counter[str] = Counter()
    most = most_api = polled_late = 0
    for delivery in deliveries:
        prediction = by_prompt.get(delivery.prompt)
        if prediction is not None:
            most = max(most, per_prediction[prediction.id])
            most_api = max(most_api, api_per_prediction[prediction.id])
            ended = prediction.completed_at
            polled = last_poll.get(prediction.id)
            if ended is not None and polled is not None and polled > prediction.monotonic_of(ended):
                polled_late += 1
        if delivery.delivered_at is None or prediction is None or prediction.completed_at is None:
            errors[delivery.error or "no prediction was made"] += 1
            continue
        overheads.append(delivery.delivered_at - prediction.completed_at.timestamp())
        if prediction.id in first_file:
            detections.append(first_file[prediction.id] - prediction.monotonic_of(prediction.completed_at))

    progress = progress_figures(api, [(d, by_prompt.get(d.prompt)) for d in deliveries])
    jobs = len(deliveries)
    reached = sum(1 for d in deliveries if d.prompt in by_prompt)
    in_create = sum(1 for d in deliveries if d.prompt in by_prompt and not polls[by_prompt[d.prompt].id])
    per_job = {kind: round(totals[kind] / max(1, reached), 2) for kind in REQUEST_KINDS}
    per_job["total"] = round(sum(totals.values()) / max(1, reached), 2)
    ours = {by_prompt[d.prompt].id for d in deliveries if d.prompt in by_prompt}
    hooks = [w for w in api.webhook_deliveries if w.prediction_id in ours]
    webhooks: dict[str, float] = {}
    if hooks:
        events: Counter[str] = Counter(w.event for w in hooks)
        events["refused"] = sum(1 for w in hooks if w.done and not w.ok)
        webhooks = {event: round(n / max(1, reached), 2) for event, n in sorted(events.items())}
    return PhaseResult(
        client=client.name,
        duration=duration,
        concurrency=concurrency,
        jobs=jobs,
        delivered=len(overheads),
        overhead=Summary.of(overheads),
        detection=Summary.of(detections),
        previous_edit_gap=Summary.of(gaps),
        first_answer=Summary.of(answers),
        late_answers=late,
        reached_api=reached,
        prefer_headers=dict(prefer),
        finished_in_create=in_create,
        requests_per_job=per_job,
        max_requests_per_job=most,
        throttled=start.throttled_since(client),
        wall_s=round(wall_s, 1),
        errors=dict(errors),
        max_api_requests_per_job=most_api,
        unnamed_api_requests=unnamed,
        webhooks_per_job=webhooks,
        polled_after_end=polled_late,
        discord_429s=start.discord_429s_since(client),
        **progress,
    )


def progress_figures(api: FakeReplicate, jobs: Sequence[tuple[Delivery, FakePrediction | None]]) -> dict[str, Any]:
    """The :class:`PhaseResult` fields on progress shown, from each delivered job and its prediction.

    A client that shows no progress (its deliveries list no percentages) gets none of them; a job that showed no
    percentage counts in the distinct percentages (as 0) and not in the first-percentage times. Every time is on
    ``time.monotonic()`` (:meth:`FakePrediction.monotonic_of` for ``started_at``). A negative time is reported, not
    clamped:
    it is left out of its figure and its job counted (:func:`split_negative`), in ``first_percentage_before_logs``
    when a poll showed the percentage before the ``logs`` webhook carrying one was sent, in
    ``first_percentage_before_processing`` when a percentage was stamped before the prediction began (a fault of
    the clocks).
    """
    shown_by_job = [
        ([ShownPercentage(*item) for item in delivery.percentages], prediction)
        for delivery, prediction in jobs
        if delivery.delivered_at is not None and delivery.percentages is not None and prediction is not None
    ]
    if not shown_by_job:
        return {}
    hooks: dict[str, list[WebhookDelivery]] = {}
    for hook in api.webhook_deliveries:
        hooks.setdefault(hook.prediction_id, []).append(hook)
    first: list[float] = []
    after_logs: list[float] = []
    distinct: list[int] = []
    for shown, prediction in shown_by_job:
        distinct.append(distinct_percentages(shown))
        began = prediction.started_at
        lag = None if began is None else first_shown_after(shown, prediction.monotonic_of(began))
        if lag is not None:
            first.append(lag)
        logs = first_logs_webhook_with_percentage(hooks.get(prediction.id, []))
        after = None if logs is None else first_shown_after(shown, logs.time)
        if after is not None:
            after_logs.append(after)
    first, before_processing = split_negative(first)
    after_logs, before_logs = split_negative(after_logs)
    return {
        "shows_progress": True,
        "first_percentage": Summary.of(first),
        "first_percentage_after_logs": Summary.of(after_logs),
        "first_percentage_before_processing": before_processing,
        "first_percentage_before_logs": before_logs,
        "distinct_percentages_min": min(distinct),
        "distinct_percentages_p50": percentile(distinct, 0.5),
    }
