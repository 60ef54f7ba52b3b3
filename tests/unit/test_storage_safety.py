"""The safety checker and the age-restricted models, stored alike on both backends (see test_storage.py)."""

from __future__ import annotations

from bot.storage import AuditEntry, Repository
from tests.storage import T0, FakeClock

GUILD = 111
OTHER_GUILD = 222
MOD = 900


async def test_the_checker_is_on_until_a_moderator_turns_it_off(repository: Repository, clock: FakeClock) -> None:
    assert (await repository.guild_config(GUILD)).safety_checker_off is False
    assert await repository.set_safety_checker(GUILD, off=False, actor_id=MOD) is False
    assert await repository.set_safety_checker(GUILD, off=True, actor_id=MOD) is True
    assert await repository.set_safety_checker(GUILD, off=True, actor_id=MOD) is False
    assert (await repository.guild_config(GUILD)).safety_checker_off is True
    assert (await repository.guild_config(OTHER_GUILD)).safety_checker_off is False
    clock.advance(1)
    assert await repository.set_safety_checker(GUILD, off=False, actor_id=MOD) is True
    assert (await repository.guild_config(GUILD)).safety_checker_off is False
    log = await repository.audit_log(GUILD)
    assert [(entry.action, entry.before, entry.after) for entry in log] == [
        ("safety checker", "off", "on"),
        ("safety checker", "on", "off"),
    ]


async def test_a_model_is_marked_age_restricted(repository: Repository) -> None:
    assert await repository.set_model_nsfw(GUILD, "owner/model", nsfw=True, actor_id=MOD) is False  # not listed
    await repository.allow_model(GUILD, "owner/model", actor_id=MOD)
    await repository.allow_model(GUILD, "owner/other", actor_id=MOD)
    assert await repository.set_model_nsfw(GUILD, "owner/model", nsfw=True, actor_id=MOD) is True
    assert await repository.set_model_nsfw(GUILD, "owner/model", nsfw=True, actor_id=MOD) is False
    config = await repository.guild_config(GUILD)
    assert config.nsfw_models == frozenset({"owner/model"})
    assert config.models == ("owner/model", "owner/other")
    assert (await repository.audit_log(GUILD))[0] == AuditEntry(
        GUILD, MOD, "models nsfw", "owner/model", "owner/model (age-restricted)", T0
    )
    assert await repository.set_model_nsfw(GUILD, "owner/model", nsfw=False, actor_id=MOD) is True
    assert (await repository.guild_config(GUILD)).nsfw_models == frozenset()
