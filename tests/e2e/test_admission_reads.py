"""The policy decides once per ``/imagine``: one read of the server's settings, whatever the request names."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.storage import LimitChanges, Repository
from tests.e2e.conftest import LORA_REF, Stack, status_of
from tests.fakes.replicate import Scenario

MODERATOR = 1


def count_calls(repository: Repository, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every call of the repository's methods from now on, by name (the bot's own object, so all callers)."""
    calls: Counter[str] = Counter()
    for name in dir(type(repository)):
        method = getattr(repository, name)
        if name.startswith("_") or not callable(method):
            continue

        def counted(method: Callable[..., Any] = method, name: str = name) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                calls[name] += 1
                return method(*args, **kwargs)

            return call

        monkeypatch.setattr(repository, name, counted())
    return calls


async def set_up(stack: Stack, monkeypatch: pytest.MonkeyPatch, **limits: int) -> Counter[str]:
    assert stack.bot is not None
    repository = stack.bot.core.repository
    await repository.set_limits(stack.guild.id, LimitChanges(**limits), actor_id=MODERATOR)
    await repository.set_budget(stack.guild.id, actor_id=MODERATOR, monthly=10_000_000)
    await stack.bot.core.modlog.flush()  # the mod-log reads the settings to post those changes: not /imagine's
    stack.api.set_default_scenario(Scenario.manual())
    return count_calls(repository, monkeypatch)


async def placeholder_after(calls: Counter[str], start: Callable[[], Awaitable[Any]]) -> Counter[str]:
    """The repository calls from the interaction to its placeholder."""
    calls.clear()
    handle = await start()
    placeholder = await handle.wait_message()
    assert "Done" not in status_of(placeholder) and "❌" not in (placeholder.content or "")
    return Counter(calls)


@pytest.mark.parametrize("model", [None, LORA_REF], ids=["default model", "model named"])
async def test_one_imagine_reads_the_servers_settings_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, model: str | None
) -> None:
    calls = await set_up(stack, monkeypatch, cooldown_seconds=1, daily_images=50, concurrent_jobs=3)
    options = {} if model is None else {"model": model}
    seen = await placeholder_after(calls, lambda: stack.imagine(**options))
    assert seen["guild_config"] == 1, seen
    assert seen["charge"] == 1 and seen["usage"] == 1, seen
    assert seen["budget"] == 0, seen  # read only to say why a charge went over it


async def test_a_set_of_jobs_reads_the_servers_settings_once_and_charges_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = await set_up(stack, monkeypatch, cooldown_seconds=1, daily_images=50, concurrent_jobs=5)
    calls.clear()
    handle = await stack.imagine(prompt="a {red, green, blue} fox")
    assert (await handle.wait_callback(timeout=10)).ephemeral  # answered once all three are posted
    seen = Counter(calls)
    assert seen["guild_config"] == 1 and seen["preferences"] == 1, seen
    assert seen["charge"] == 1 and seen["usage"] == 1, seen
