"""Results pushed by the API: the bot's webhook receiver against the fake's signed deliveries.

Signed deliveries finish jobs without polls; forged and stale ones are refused (401) and change nothing;
a replay is answered and ignored; a lost ``completed`` is made up for by the safety poll soon after the
expected end; a retried ``completed`` ends the job once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core import Tuning
from bot.jobs.poll_planner import Backoff, PollPolicy
from bot.settings import HttpListen, Secret
from tests.conftest import FAST_LOOKUP
from tests.e2e.conftest import DISCORD_TOKEN, Stack, StackFactory, status_of
from tests.e2e.test_cli import base_env, cli
from tests.fakes.discord import FakeDiscord, StoredMessage
from tests.fakes.replicate import FakeReplicate, Scenario
from tests.helpers import free_port

WEBHOOK_TUNING = Tuning(
    poll=PollPolicy(
        blind=Backoff(first=0.05, growth=1.5, ceiling=0.2),
        webhook_grace=0.5,
        safety=Backoff(first=1.0, growth=2.0, ceiling=2.0),
    ),
    prefer_wait=0,
    edit_window=0.8,  # Discord's 5 s, compressed: a progress edit every 0.2 s at most
    lookup_delays=FAST_LOOKUP,
)


async def webhook_stack(make_stack: StackFactory, tuning: Tuning = WEBHOOK_TUNING, **settings: object) -> Stack:
    """A bot that serves HTTP on a free port and asks the API to push its results there."""
    port = free_port()
    stack: Stack = await make_stack(
        tuning=tuning,
        http_listen=HttpListen("127.0.0.1", port),
        webhook_url=f"http://127.0.0.1:{port}/webhooks/replicate",
        **settings,
    )
    return stack


async def imagined_to_done(stack: Stack, duration: float, start_delay: float = 0.05) -> StoredMessage:
    """The final message of an ``/imagine`` whose prediction takes ``duration`` seconds: it shows the job done."""
    stack.api.set_default_scenario(Scenario(start_delay=start_delay, duration=duration))
    final = await stack.final_message(await stack.imagine(), timeout=15)
    assert "Done" in status_of(final), final.embeds
    return final


async def test_signed_webhooks_finish_the_job_without_polling(make_stack: StackFactory) -> None:
    stack = await webhook_stack(make_stack)
    final = await imagined_to_done(stack, duration=1.2, start_delay=0.1)
    prediction = stack.api.last_prediction
    assert prediction.body["webhook"].endswith("/webhooks/replicate")
    assert prediction.body["webhook_events_filter"] == ["start", "logs", "completed"]
    assert [a.data for a in final.attachments] == [f.data for f in prediction.files]
    completed = stack.api.webhooks_for(prediction.id, "completed")
    assert completed and completed[0].status == 200
    assert stack.api.count("GET", "get") == 0  # the push was enough: no poll besides the create
    assert any("Processing" in status_of_version for status_of_version in _statuses(final))


@pytest.mark.parametrize("forgery", ["tampered", "stale"])
async def test_forged_or_stale_webhooks_are_refused_and_the_real_one_still_counts(
    make_stack: StackFactory, forgery: str
) -> None:
    stack = await webhook_stack(make_stack)
    if forgery == "tampered":
        stack.api.tamper_next_webhook(events=("completed",))
    else:
        stack.api.stale_next_webhook(events=("completed",))
    await imagined_to_done(stack, duration=0.3)
    attempts = stack.api.webhooks_for(stack.api.last_prediction.id, "completed")
    assert [attempt.status for attempt in attempts][:2] == [401, 200]  # refused, then the signed retry


async def test_a_lost_completed_webhook_is_made_up_for_by_the_safety_poll(make_stack: StackFactory) -> None:
    stack = await webhook_stack(make_stack)
    stack.api.lose_next_webhooks(1, events=("completed",), mode="drop")
    await imagined_to_done(stack, duration=0.8)
    assert 1 <= stack.api.count("GET", "get") <= 3


async def test_a_retried_completed_ends_the_job_once(make_stack: StackFactory) -> None:
    stack = await webhook_stack(make_stack)
    stack.api.lose_next_webhooks(2, events=("completed",), mode="fail")
    final = await imagined_to_done(stack, duration=0.3)
    prediction = stack.api.last_prediction
    await stack.api.wait_for_webhooks(1, prediction_id=prediction.id, event="completed", ok=True, timeout=10)
    finals = [version for version in final.history if is_terminal_version(version)]
    assert len(finals) == 1


async def test_a_replayed_webhook_changes_nothing(make_stack: StackFactory) -> None:
    stack = await webhook_stack(make_stack)
    final = await imagined_to_done(stack, duration=0.3)
    versions = len(final.history)
    completed = stack.api.webhooks_for(stack.api.last_prediction.id, "completed", ok=True)[0]
    replay = await stack.api.replay_webhook(completed)
    assert replay.status == 200
    assert len(final.history) == versions


async def test_a_gateway_without_a_secret_route_and_no_secret_is_a_start_up_error(tmp_path: Path) -> None:
    async with FakeReplicate() as api, FakeDiscord(token=DISCORD_TOKEN) as fake:
        api.serve_webhook_secret = False
        env = base_env(
            DISCORD_TOKEN=DISCORD_TOKEN,
            DISCORD_GATEWAY_URL=fake.gateway_url,
            REPLICATE_API_TOKEN=api.token,
            REPLICATE_BASE_URL=api.base_url,
            IMAGINE_HTTP_LISTEN=f"127.0.0.1:{free_port()}",
            IMAGINE_WEBHOOK_URL="https://bot.example.com/webhooks/replicate",
            DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
            DISCORD_API_BASE=fake.http_base,
        )
        result = await cli(env=env, cwd=tmp_path)
    assert result.code == 2, result.err
    assert "REPLICATE_WEBHOOK_SECRET" in result.err and "whsec_" in result.err
    assert api.webhook_secret not in result.err + result.out


async def test_the_secret_from_the_settings_is_used_as_is(make_stack: StackFactory) -> None:
    secret_holder = FakeReplicate(seed=99)  # a fake only for its seeded secret format
    stack = await webhook_stack(make_stack, webhook_secret=Secret(secret_holder.webhook_secret))
    # The fake signs with its own secret, which is not the one configured: deliveries are refused, and the
    # safety poll still finishes the job.
    await imagined_to_done(stack, duration=0.3)
    assert all(attempt.status == 401 for attempt in stack.api.webhook_deliveries if attempt.done)
    assert stack.api.count("GET", "secret") == 0  # the configured secret: never asked of the API


def _statuses(message: object) -> list[str]:
    return [
        field["value"]
        for version in getattr(message, "history", [])
        for field in (version.embeds[0]["fields"] if version.embeds else [])
        if field["name"] == "Status"
    ]


def is_terminal_version(version: object) -> bool:
    embeds = getattr(version, "embeds", ())
    if not embeds:
        return False
    status = next((f["value"] for f in embeds[0]["fields"] if f["name"] == "Status"), "")
    return any(word in status for word in ("Done", "Failed", "Canceled", "Timed out"))
