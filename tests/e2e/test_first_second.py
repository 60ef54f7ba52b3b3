"""The first seconds of a job, at production timings: progress shown at once, and polls aimed at the end.

Every test runs the bot with its production tuning (a create held 1 s when polling and not at all with
webhooks, Discord's own 5-edits-per-5-s window) against a prediction of a few seconds, as a member sees it.
Bounds are generous (a loaded machine): the benchmark measures the figures.
"""

from __future__ import annotations

import re
from dataclasses import replace

from bot.core import Tuning
from tests.conftest import FAST_LOOKUP
from tests.e2e.conftest import Stack, StackFactory, status_of
from tests.e2e.test_webhooks import webhook_stack
from tests.fakes.discord import StoredMessage
from tests.fakes.replicate import FakePrediction, Scenario

PRODUCTION = Tuning(lookup_delays=FAST_LOOKUP)
"""Production timings (only the lookups after a lost create are shortened: none is lost here)."""


def shown_percentages(message: StoredMessage) -> list[tuple[float, int]]:
    """(when, percent) of every version of the message that showed a percentage, before the image."""
    shown = []
    for version in message.history:
        if version.attachments:
            break
        match = re.search(r"(\d+)%", status_of(version))
        if match:
            shown.append((version.at, int(match.group(1))))
    return shown


def began(prediction: FakePrediction, stack: Stack) -> float:
    """When the fake prediction began processing, on the monotonic clock."""
    assert prediction.started_at is not None
    return prediction.monotonic_of(prediction.started_at)


async def test_polling_shows_a_four_second_job_move_from_its_first_second(make_stack: StackFactory) -> None:
    stack = await make_stack(tuning=PRODUCTION)
    stack.api.set_default_scenario(Scenario(start_delay=0.0, duration=4.0))
    final = await stack.final_message(await stack.imagine(), timeout=20)

    assert "Done" in status_of(final) and final.attachments
    prediction = stack.api.last_prediction
    assert prediction.prefer == "wait=1"  # held a second at most: then the bot knows the prediction runs
    shown = shown_percentages(final)
    assert len({percent for _, percent in shown}) >= 2, shown
    assert shown[0][0] - began(prediction, stack) < 2.5, shown  # the old 3 s create wait showed nothing
    assert stack.discord.rate_limited == []
    stack.assert_paced(final)


async def test_webhooks_show_progress_as_the_logs_arrive(make_stack: StackFactory) -> None:
    stack = await webhook_stack(make_stack, PRODUCTION)
    stack.api.set_default_scenario(Scenario(start_delay=0.0, duration=4.0))
    final = await stack.final_message(await stack.imagine(), timeout=20)

    assert "Done" in status_of(final) and final.attachments
    prediction = stack.api.last_prediction
    assert prediction.prefer is None  # the webhooks push the end: the create is not held at all
    logs = [w for w in stack.api.webhooks_for(prediction.id, "logs") if b"%|" in w.body]
    assert logs
    shown = shown_percentages(final)
    assert len({percent for _, percent in shown}) >= 2, shown
    assert shown[0][0] - logs[0].time < 1.0, (shown, logs[0].time)
    assert stack.api.count("GET", "get") == 0  # pushed, not polled
    assert stack.discord.rate_limited == []


async def test_polls_are_aimed_at_the_end_the_model_has_shown(make_stack: StackFactory) -> None:
    """Once the model has run, a job costs a look or two on its way and is noticed ending at once."""
    stack = await make_stack(tuning=PRODUCTION)
    scenario = Scenario(start_delay=0.0, duration=5.0)
    stack.api.set_default_scenario(scenario)
    await stack.final_message(await stack.imagine(), timeout=20)  # the model's first run is learned

    stack.api.set_default_scenario(replace(scenario, duration=5.3))
    before = stack.api.count("GET", "get")
    final = await stack.final_message(await stack.imagine(), timeout=20)
    assert "Done" in status_of(final)
    prediction = stack.api.last_prediction
    polls = stack.api.count("GET", "get") - before
    assert polls <= 5, polls  # the naive loop's 1 s polls would be 5 or 6, spread over the whole run
    assert prediction.completed_at is not None
    first_file = min(r.time for r in stack.api.requests if r.kind == "file" and r.prediction_id == prediction.id)
    lag = first_file - prediction.monotonic_of(prediction.completed_at)
    assert lag < 0.5, lag  # half the naive loop's average; the benchmark shows tens of milliseconds


async def noticed_after(stack: Stack, scenario: Scenario) -> float:
    """Run one job of ``scenario``; seconds from its prediction's end to the first request for its image."""
    final = await stack.final_message(await stack.imagine(), timeout=30)
    assert "Done" in status_of(final)
    prediction = stack.api.last_prediction
    assert prediction.completed_at is not None
    first_file = min(r.time for r in stack.api.requests if r.kind == "file" and r.prediction_id == prediction.id)
    return first_file - prediction.monotonic_of(prediction.completed_at)


async def test_a_model_that_sets_up_before_its_bar_and_wraps_up_after_is_still_noticed_at_once(
    make_stack: StackFactory,
) -> None:
    """Set-up and wrap-up are learned as the bar's tail; neither is counted twice."""
    stack = await make_stack(tuning=PRODUCTION)
    scenario = Scenario(start_delay=0.0, setup=1.0, duration=2.0, wrap_up=0.5)
    stack.api.set_default_scenario(scenario)
    await noticed_after(stack, scenario)  # the model's first run is learned
    stack.api.set_default_scenario(replace(scenario, duration=2.2))
    lag = await noticed_after(stack, scenario)
    assert lag < 0.5, lag


async def test_an_end_much_earlier_than_the_runs_learned_is_noticed_soon(make_stack: StackFactory) -> None:
    """A member asked for fewer steps than the runs so far: the learned window alone is not aimed at."""
    stack = await make_stack(tuning=PRODUCTION)
    stack.api.set_default_scenario(Scenario(start_delay=0.0, duration=8.0))
    await noticed_after(stack, Scenario())  # learned: about 8 s
    short = Scenario(start_delay=0.0, duration=1.5, progress_style="none")  # and no bar to say otherwise
    stack.api.set_default_scenario(short)
    lag = await noticed_after(stack, short)
    assert lag < 2.5, lag  # aimed at the learned 8 s it would be about 6.5 s
