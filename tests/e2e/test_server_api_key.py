"""A server's own API key through the fakes: set in a form, checked, kept encrypted, used for exactly that
server's requests (the fake API checks each request's bearer), never shown, logged or stored in clear; a key
the API refuses later ends that server's jobs and never falls back to the deployment's key."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from bot.base.logs import RedactSecrets
from bot.settings import Secret
from tests.e2e.conftest import Stack, StackFactory, status_of
from tests.e2e.test_describe import describe, describe_stack, private_answer, suggestions_of
from tests.e2e.test_moderation import answer
from tests.e2e.test_modlog import entry_in, log_channel, text_of
from tests.fakes.discord import CallbackType, InteractionHandle
from tests.fakes.replicate import Scenario

SERVER_KEY = "r8_server0wnKeyForTheTestGuild0123456789"
LAST4 = SERVER_KEY[-4:]


async def keyed_stack(make_stack: StackFactory, **settings: Any) -> Stack:
    """The bot with IMAGINE_SECRET_KEY set, and the server's account known to the fake API."""
    stack: Stack = await make_stack(secret_key=Secret(Fernet.generate_key().decode()), **settings)
    stack.api.add_account(SERVER_KEY, username="testguild")
    return stack


async def submit_key(stack: Stack, key: str, user: str = "moderator") -> str:
    """``/imagine-admin apikey set``, the form submitted with ``key``; the private answer."""
    opened = await stack.admin("apikey set", user)
    assert (await opened.wait_callback()).type == CallbackType.MODAL
    modal = opened.modal
    assert modal is not None and key not in str(modal)
    submit = await stack.discord.submit_modal(opened, {"key": key})
    return await _deferred_answer(submit)


async def _deferred_answer(handle: InteractionHandle) -> str:
    callback = await handle.wait_callback(accepted_only=True)
    if callback.type == CallbackType.CHANNEL_MESSAGE:
        assert callback.ephemeral
        return callback.content or ""
    assert callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE and callback.ephemeral
    message = await handle.wait_message(lambda m: not m.current.loading, timeout=10)
    assert message.ephemeral
    return message.content


def tokens_of(stack: Stack, prediction_id: str) -> set[str | None]:
    """The tokens of every API request about one prediction (its create included)."""
    return {r.token for r in stack.api.api_requests if r.prediction_id == prediction_id}


def everything_discord_saw(stack: Stack) -> str:
    """Every message (each version) and every interaction answer and modal the bot sent, flattened."""
    texts = [str(version) for message in stack.discord.messages.values() for version in message.history]
    texts += [str(callback.data) for handle in stack.discord.interactions.values() for callback in handle.callbacks]
    return "\n".join(texts)


def database_bytes(tmp_path: Path) -> bytes:
    """The SQLite database and its journal files, as stored."""
    return b"".join(path.read_bytes() for path in tmp_path.glob("imagine.db*"))


async def test_a_servers_key_is_used_for_exactly_its_requests_and_never_shown(
    make_stack: StackFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stack = await keyed_stack(make_stack)
    assert "the bot's" in await answer(stack, "show")

    kept = await submit_key(stack, SERVER_KEY)
    assert f"…{LAST4}" in kept and SERVER_KEY not in kept
    assert [r.token for r in stack.api.api_requests if r.path.endswith("/v1/account")] == [SERVER_KEY]
    shown = await answer(stack, "show")
    assert f"set, ends in …{LAST4}" in shown

    final = await stack.final_message(await stack.imagine(prompt="a fox of the server"))
    assert "Done" in status_of(final)
    mine = stack.api.last_prediction
    assert mine.account == SERVER_KEY and tokens_of(stack, mine.id) == {SERVER_KEY}

    elsewhere = await stack.final_message(await stack.imagine(guild=stack.other, prompt="a fox elsewhere"))
    assert "Done" in status_of(elsewhere)
    theirs = stack.api.last_prediction
    assert theirs.account == stack.api.token and tokens_of(stack, theirs.id) == {stack.api.token}

    # A running job keeps its account across a restart: its polls after it carry the same key.
    stack.api.push_scenario(Scenario(duration=1.0))
    running = await stack.imagine(prompt="a slow fox")
    await stack.api.wait_for_requests("create", 3, answered=True)
    await stack.restart()
    slow = stack.api.last_prediction
    await stack.final_message(running, timeout=15)
    assert tokens_of(stack, slow.id) == {SERVER_KEY}

    assert stack.bot is not None
    audit = await stack.bot.core.repository.audit_log(stack.guild.id)
    assert any(entry.after == f"set, ends in …{LAST4}" for entry in audit)
    assert SERVER_KEY not in str(audit)
    stored = await stack.bot.core.repository.api_key(stack.guild.id)
    assert stored is not None and SERVER_KEY not in str(stored)
    await stack.stop_bot()
    assert SERVER_KEY.encode() not in database_bytes(tmp_path)
    assert SERVER_KEY not in everything_discord_saw(stack)
    # What the log handlers print: every record through the filter production installs (the key is masked
    # from the moment it is loaded, and in its form's submit, which discord.py logs before the bot reads it).
    redact = RedactSecrets(stack.settings.secrets()).redact
    logged = "\n".join(redact(f"{r.getMessage()} {r.exc_text or ''}") for r in caplog.records)
    assert SERVER_KEY not in logged
    bot_logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records if r.name.startswith("bot"))
    assert SERVER_KEY not in bot_logged  # the bot itself never logs it, filter or not


async def test_describe_runs_on_the_servers_key(make_stack: StackFactory) -> None:
    stack: Stack = await describe_stack(make_stack, secret_key=Secret(Fernet.generate_key().decode()))
    stack.api.add_account(SERVER_KEY)
    await submit_key(stack, SERVER_KEY)
    await suggestions_of(await describe(stack))
    described = stack.api.last_prediction
    assert described.account == SERVER_KEY and tokens_of(stack, described.id) == {SERVER_KEY}


async def test_a_key_first_refused_by_a_describe_is_marked_rejected_too(make_stack: StackFactory) -> None:
    stack: Stack = await describe_stack(make_stack, secret_key=Secret(Fernet.generate_key().decode()))
    stack.api.add_account(SERVER_KEY)
    await submit_key(stack, SERVER_KEY)
    stack.api.revoke(SERVER_KEY)
    refused = await private_answer(stack, await describe(stack))
    assert "API key was rejected" in refused, refused
    assert stack.bot is not None
    stored = await stack.bot.core.repository.api_key(stack.guild.id)
    for _ in range(50):  # marked in the background, as a job's refusal is
        if stored is not None and stored.rejected:
            break
        await asyncio.sleep(0.1)
        stored = await stack.bot.core.repository.api_key(stack.guild.id)
    assert stored is not None and stored.rejected
    assert stack.api.count("POST", "create") == 1  # nothing sent with the deployment's key instead


async def test_a_key_the_api_refuses_is_not_kept(make_stack: StackFactory) -> None:
    stack = await keyed_stack(make_stack)
    refused = await submit_key(stack, "r8_notAKnownAccount000000000000000000000")
    assert "refused" in refused
    assert "the bot's" in await answer(stack, "show")
    assert stack.bot is not None and await stack.bot.core.repository.api_key(stack.guild.id) is None
    await stack.final_message(await stack.imagine())
    assert stack.api.last_prediction.account == stack.api.token


async def test_a_key_rejected_later_ends_the_servers_jobs_and_never_falls_back(make_stack: StackFactory) -> None:
    stack = await keyed_stack(make_stack, max_running_per_server=1)
    channel = await log_channel(stack)
    await submit_key(stack, SERVER_KEY)
    stack.api.push_scenario(Scenario.manual())
    handle = await stack.imagine(prompt="a fox when the key is revoked")
    await stack.api.wait_for_requests("create", 1, answered=True)
    waiting = await stack.imagine("moderator", prompt="a fox waiting its turn")
    await waiting.wait_message()
    prediction = stack.api.last_prediction
    stack.api.revoke(SERVER_KEY)

    final = await stack.final_message(handle, timeout=15)
    assert "API key was rejected" in str(final.embeds) + final.content
    queued = await stack.final_message(waiting, timeout=15)
    assert "API key was rejected" in str(queued.embeds) + queued.content
    assert stack.api.count("POST", "create") == 1  # the waiting job never started
    assert tokens_of(stack, prediction.id) == {SERVER_KEY}  # nothing with the deployment's key
    entry = await entry_in(stack, channel, "API key rejected")
    assert f"…{LAST4}" in text_of(entry) and SERVER_KEY not in text_of(entry)
    assert "rejected by the API" in await answer(stack, "show")

    creates = stack.api.count("POST", "create")
    refused = await stack.imagine(prompt="another fox")
    callback = await refused.wait_callback(accepted_only=True)
    text = callback.content or ""
    if callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE:
        text = (await stack.discord.wait_for(lambda: next(iter(refused.followups), None), 5, what="refusal")).content
    assert "rejected" in text
    assert stack.api.count("POST", "create") == creates

    off = await answer(stack, "apikey off")
    assert "bot's key" in off
    await stack.final_message(await stack.imagine(prompt="a fox on the bot's key"))
    assert stack.api.last_prediction.account == stack.api.token
    assert SERVER_KEY not in everything_discord_saw(stack)


async def test_network_trouble_while_checking_keeps_nothing(make_stack: StackFactory) -> None:
    stack = await keyed_stack(make_stack)
    stack.api.fail_next("other", 503, count=2, method="GET")  # the check and its one retry
    answered = await submit_key(stack, SERVER_KEY)
    assert "could not be reached" in answered and SERVER_KEY not in answered
    assert stack.bot is not None and await stack.bot.core.repository.api_key(stack.guild.id) is None
    await stack.final_message(await stack.imagine())
    assert stack.api.last_prediction.account == stack.api.token


async def test_without_imagine_secret_key_the_command_explains(stack: Stack) -> None:
    text = await answer(stack, "apikey set")
    assert "IMAGINE_SECRET_KEY" in text
    assert "the bot's" in await answer(stack, "show")


async def test_apikey_needs_manage_server(make_stack: StackFactory) -> None:
    stack = await keyed_stack(make_stack)
    assert "Manage Server" in await answer(stack, "apikey off", "member")
