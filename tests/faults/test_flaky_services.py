"""200 jobs through a flaky prediction API and a flaky Discord: every job ends, none is paid twice.

The fake API fails 10 % of the requests at random (seeded): 500, 503, 429 with ``Retry-After``, a reset
connection, a truncated JSON body, and for output files a download that stalls after a few bytes (until the
host drops it after 2 s; a download stalled for good, which the bot's own read timeout ends, is in
``test_malicious_replies``). The fake Discord answers 10 % of the message edits with 429 (with and without
``Via``) or 500. The in-process bot runs with the production request budget and retry policies; only
polling and the edit interval are shortened.

"No exception escapes to the log as unhandled": see ``tests/faults/conftest.py`` (no ERROR record, no
event-loop exception report; handled WARNINGs such as a retried poll are fine).

What "no prediction is created twice" means here. A 429 says nothing was done, so the bot may ask again.
Any other failure of a create (5xx, reset, broken body) may have come *after* the API made the prediction
(the fake does so for half of them, and always for a broken body): the bot looks the prediction up in the
list of predictions and carries on with it; only when the list proves that nothing was made does it ask
again. So per job: at most one prediction, and nearly every job delivers its image.

What each job must end with (read from the fake's record of which request got which fault):

* ``Done`` with exactly its prediction's images, unless one of the reasons below applies;
* ``Failed`` with the API's own error text when its prediction failed on the API's side (a scripted share
  of the prompts), or with a clear message when its create's answer was lost and its lookup failed too, or
  when every download of one of its files (or its last polls) failed. Never the generic "Something went
  wrong on our side".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bot.api.client import RetryPolicy
from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.core import Tuning
from bot.jobs.engine import Backoff, JobState, PollPolicy
from tests.conftest import FAST_LOOKUP, Pipeline, RecordingPresenter
from tests.e2e.conftest import Stack, StackFactory, field_of, imagine_in, is_terminal, status_of
from tests.fakes.discord import InteractionHandle, StoredMessage
from tests.fakes.replicate import FLUX_SCHNELL, NSFW_ERROR, FakePrediction, FakeReplicate, RecordedRequest, Scenario
from tests.faults.conftest import UnhandledWatch

FLUX = ModelRef.parse(FLUX_SCHNELL)
JOBS = 200
MEMBERS = 20
API_SEED = 20240611
DISCORD_SEED = 7
CHAOS_TUNING = Tuning(
    poll=PollPolicy(blind=Backoff(first=0.05, growth=1.5, ceiling=0.3)),
    prefer_wait=0,
    edit_window=0.8,
    lookup_delays=FAST_LOOKUP,
)
GENERIC_FAILURE = "Something went wrong on our side"
POLL_ATTEMPTS = RetryPolicy().attempts  # the product's: a poll gives up after this many failures in a row
STALL_SECONDS = 2.0  # a stalled download is dropped by the host after this; the bot must try it again


def prompt_of(index: int) -> str:
    """A prompt that names its job, so predictions can be counted per job."""
    return f"chaos job {index:03d}: a lighthouse in a storm"


def api_error_of(index: int) -> str:
    return f"CUDA out of memory (injected for job {index:03d})"


def scripted_failure(index: int) -> str | None:
    """The error the API itself reports for this job's prediction, if it is one of the failing ones."""
    if index % 25 == 7:
        return api_error_of(index)
    if index % 25 == 19:
        return NSFW_ERROR
    return None


def choose_scenario(inputs: dict[str, object]) -> Scenario | None:
    prompt = str(inputs.get("prompt", ""))
    index = int(prompt[len("chaos job ") : len("chaos job ") + 3])
    if index % 25 == 7:
        return Scenario(duration=0.2, final_status="failed", error=api_error_of(index))
    if index % 25 == 19:
        return Scenario(duration=0.2, nsfw_dropped=4)
    return Scenario(start_delay=0.05, duration=0.2 + (index % 5) * 0.05)


@dataclass
class Outcome:
    index: int
    handle: InteractionHandle
    final: StoredMessage | None = None


async def run_member(stack: Stack, member: str, indices: list[int], outcomes: dict[int, Outcome]) -> None:
    """One member's jobs, one after another (a member's next /imagine waits for the previous answer)."""
    for index in indices:
        options = {"prompt": prompt_of(index), **({"count": 2} if index % 10 == 3 else {})}
        handle = await imagine_in(stack.discord, stack.guild, options, member)
        outcomes[index] = Outcome(index, handle)
        await handle.wait_callback(timeout=10)


def explain_failure(
    index: int, what: str, creates: list[RecordedRequest], prediction: FakePrediction | None, stack: Stack
) -> str | None:
    """Why job ``index`` may legitimately have failed with ``what``; ``None`` if nothing justifies it."""
    expected = scripted_failure(index)
    if prediction is not None and expected is not None:
        return "api" if what == expected else None
    if creates and creates[-1].chaos not in (None, "429"):
        return "create answer lost, and the lookup failed"
    if prediction is None:
        return None
    gets = [r for r in stack.api.requests if r.kind == "get" and r.prediction_id == prediction.id]
    if len(gets) >= POLL_ATTEMPTS and all(r.chaos for r in gets[-POLL_ATTEMPTS:]):
        return "polls exhausted"
    for file in prediction.files:
        downloads = [r for r in stack.api.file_requests if r.path.endswith(f"/{prediction.id}/{file.name}")]
        if downloads and all(r.chaos for r in downloads):
            return "downloads exhausted"
    return None


@pytest.mark.slow  # a chaos run: `pytest -m slow`
async def test_200_jobs_through_a_flaky_api_and_a_flaky_discord(
    make_stack: StackFactory, unhandled: UnhandledWatch
) -> None:
    # Each member queues ten jobs: the queue caps are off here (tests/faults/test_hostile_queue.py has them).
    stack: Stack = await make_stack(
        tuning=CHAOS_TUNING, max_running=48, max_running_per_server=48, max_queued=0, max_queued_per_member=0
    )
    for number in range(MEMBERS):
        stack.guild.add_member(f"artist-{number}")
    stack.api.scenario_chooser = choose_scenario
    api_chaos = stack.api.chaos(0.1, seed=API_SEED, retry_after=1, stall_seconds=STALL_SECONDS)
    # Chaos stalls only file downloads, a quarter of the requests: make sure at least one download stalls.
    stack.api.stall_next("file", seconds=STALL_SECONDS)
    discord_chaos = stack.discord.chaos(0.1, seed=DISCORD_SEED, statuses=(429, 500))
    started = time.monotonic()

    outcomes: dict[int, Outcome] = {}
    await asyncio.gather(
        *(
            run_member(stack, f"artist-{member}", list(range(member, JOBS, MEMBERS)), outcomes)
            for member in range(MEMBERS)
        )
    )
    assert len(outcomes) == JOBS

    async def final(outcome: Outcome) -> None:
        outcome.final = await outcome.handle.wait_message(is_terminal, timeout=100)

    await asyncio.gather(*(final(outcome) for outcome in outcomes.values()))
    elapsed = time.monotonic() - started

    problems: list[str] = []
    reasons: dict[str, int] = {}
    expected_api_failures = 0
    for index, outcome in sorted(outcomes.items()):
        message = outcome.final
        assert message is not None
        prompt = prompt_of(index)
        creates = [r for r in stack.api.creates if isinstance(r.json, dict) and r.json["input"]["prompt"] == prompt]
        predictions = [p for p in stack.api.predictions.values() if p.input.get("prompt") == prompt]
        prediction = predictions[0] if predictions else None
        if len(predictions) > 1:
            problems.append(f"job {index}: {len(predictions)} predictions")
        if scripted_failure(index) is not None and predictions:
            expected_api_failures += 1
        status = status_of(message)
        if "Done" in status:
            if prediction is None or scripted_failure(index) is not None:
                problems.append(f"job {index}: Done without a good prediction")
            elif [a.data for a in message.attachments] != [f.data for f in prediction.files]:
                problems.append(f"job {index}: attachments are not the prediction's images")
            reasons["done"] = reasons.get("done", 0) + 1
        elif "Failed" in status:
            what = field_of(message, "What happened") or ""
            reason = explain_failure(index, what, creates, prediction, stack)
            if not what or GENERIC_FAILURE in what or reason is None:
                chaos = [(r.kind, r.chaos) for r in stack.api.requests if r.chaos and r in creates]
                problems.append(f"job {index}: unexplained failure {what!r} (create faults {chaos})")
            else:
                reasons[reason] = reasons.get(reason, 0) + 1
                if reason != "api":
                    print(f"job {index}: {reason}: {what}")
        else:
            problems.append(f"job {index}: ended {status!r}")
    assert not problems, "\n".join(problems)

    # The chaos really happened, on every kind of request it was meant for.
    injected = {event.fault for event in api_chaos.events}
    assert {"500", "503", "429", "reset", "malformed"} <= injected, injected
    assert stack.api.file_requests[0].body_bytes_sent > 0, "the first download stalled"
    assert {kind for kind in ("create", "get", "file") if api_chaos.events_for(kind)} == {"create", "get", "file"}
    assert {status for _, status, _ in discord_chaos.hits} == {429, 500}
    # Retries and all, no message was edited past Discord's 5 edits per 5 s (compressed here as the tuning's).
    assert stack.discord.rate_limited == []
    # Every scripted API failure shows the API's own words; of the other jobs at least 99 % got their images
    # (lost create answers are found in the list of predictions), and no prediction was made twice.
    assert reasons.get("api", 0) == expected_api_failures, reasons
    deliverable = JOBS - expected_api_failures
    assert reasons.get("done", 0) >= deliverable * 0.99, reasons
    lost_creates = sum(1 for event in api_chaos.events_for("create") if event.fault != "429")
    assert lost_creates >= 5, "the chaos hit creates"
    unhandled.check()
    print(
        f"\n{JOBS} jobs in {elapsed:.1f}s: {reasons}; delivered {reasons.get('done', 0)}/{deliverable} "
        f"({100 * reasons.get('done', 0) / deliverable:.1f} %); creates whose answer was lost {lost_creates}; "
        f"API faults {len(api_chaos.events)}, Discord faults {len(discord_chaos.hits)}"
    )


# --------------------------------------------------------------------------- the create route, fault by fault


@pytest.mark.parametrize(
    ("fault", "processed"),
    [
        ("429", False),
        ("500", False),
        ("500", True),
        ("503", False),
        ("reset", False),
        ("reset", True),
        ("malformed", True),
    ],
)
async def test_each_fault_on_create_ends_with_the_image_and_one_prediction(
    fake_api: FakeReplicate, make_pipeline: Callable[..., Pipeline], fault: str, processed: bool
) -> None:
    """A 429 is simply asked again; any other fault is looked up first, and asked again only if nothing was made."""
    if fault == "429":
        fake_api.throttle_next("create", retry_after=0)
    elif fault == "reset":
        fake_api.reset_next("create", processed=processed)
    elif fault == "malformed":
        fake_api.malformed_next("create", processed=processed)
    else:
        fake_api.fail_next("create", int(fault), processed=processed)
    engine = make_pipeline().engine
    request = await engine.prepare(FLUX, ImagineOptions(prompt="a lighthouse"))
    view = await asyncio.wait_for((await engine.submit(request, RecordingPresenter())).wait(), 10)
    assert view.state is JobState.SUCCEEDED, view.error
    assert len(fake_api.predictions) == 1
    assert fake_api.count("POST", "create") == (1 if processed else 2)
    # Found at the first reading of the list; "nothing was made" only after every reading.
    assert fake_api.count("GET", "list") == (0 if fault == "429" else 1 if processed else len(FAST_LOOKUP))


async def test_a_create_refused_with_5xx_shows_the_apis_own_words(
    fake_api: FakeReplicate, make_pipeline: Callable[..., Pipeline]
) -> None:
    fake_api.fail_next("create", 503, detail="Predictions are paused for maintenance until 12:00 UTC", count=3)
    engine = make_pipeline().engine
    request = await engine.prepare(FLUX, ImagineOptions(prompt="a lighthouse"))
    view = await asyncio.wait_for((await engine.submit(request, RecordingPresenter())).wait(), 10)
    assert view.state is JobState.FAILED
    assert fake_api.count("POST", "create") == 3  # each time after the list showed that nothing was made
    assert not fake_api.predictions
    assert "paused for maintenance" in str(view.error or ""), view.error
