"""The repository contract for roles, on both backends: models allowed to some roles, limits per role."""

from __future__ import annotations

import asyncio

import pytest

from bot.storage import AuditEntry, LimitChanges, Repository, RoleLimits
from tests.storage import T0

GUILD = 111
OTHER_GUILD = 222
MOD = 900
VIP = 7001
STAFF = 7002


async def test_a_model_allowed_to_roles_collects_them(repository: Repository) -> None:
    assert await repository.allow_model(GUILD, "a/vip", actor_id=MOD, role_id=VIP) is True
    assert await repository.allow_model(GUILD, "a/vip", actor_id=MOD, role_id=STAFF) is True
    assert await repository.allow_model(GUILD, "a/vip", actor_id=MOD, role_id=VIP) is False
    await repository.allow_model(GUILD, "a/open", actor_id=MOD)
    config = await repository.guild_config(GUILD)
    assert config.models == ("a/vip", "a/open")
    assert config.model_roles == (("a/vip", frozenset({VIP, STAFF})),)
    assert config.roles_for("a/vip") == {VIP, STAFF}
    assert config.roles_for("a/open") == frozenset()
    assert [(e.action, e.before, e.after) for e in reversed(await repository.audit_log(GUILD))] == [
        ("models allow", None, f"a/vip roles={VIP}"),
        ("models allow", f"a/vip roles={VIP}", f"a/vip roles={VIP},{STAFF}"),
        ("models allow", None, "a/open"),
    ]


async def test_allowing_a_model_without_a_role_opens_it_to_everyone(repository: Repository) -> None:
    await repository.allow_model(GUILD, "a/vip", actor_id=MOD, role_id=VIP)
    assert await repository.allow_model(GUILD, "a/vip", actor_id=MOD) is True
    config = await repository.guild_config(GUILD)
    assert config.models == ("a/vip",) and config.model_roles == ()
    assert (await repository.audit_log(GUILD))[0] == AuditEntry(
        GUILD, MOD, "models allow", f"a/vip roles={VIP}", "a/vip", T0
    )
    assert await repository.allow_model(GUILD, "a/vip", actor_id=MOD) is False


async def test_removing_a_model_removes_its_roles(repository: Repository) -> None:
    await repository.allow_model(GUILD, "a/vip", actor_id=MOD, role_id=VIP)
    assert await repository.remove_model(GUILD, "a/vip", actor_id=MOD) is True
    await repository.allow_model(GUILD, "a/vip", actor_id=MOD)
    assert (await repository.guild_config(GUILD)).model_roles == ()


async def test_role_limits_are_set_one_field_at_a_time(repository: Repository) -> None:
    assert await repository.set_role_limits(GUILD, VIP, LimitChanges(daily_images=50), actor_id=MOD) == RoleLimits(
        VIP, daily_images=50
    )
    assert await repository.set_role_limits(GUILD, VIP, LimitChanges(cooldown_seconds=0), actor_id=MOD) == RoleLimits(
        VIP, cooldown_seconds=0, daily_images=50
    )
    await repository.set_role_limits(GUILD, STAFF, LimitChanges(concurrent_jobs=3), actor_id=MOD)
    config = await repository.guild_config(GUILD)
    assert config.role_limits == tuple(
        sorted(
            (RoleLimits(VIP, cooldown_seconds=0, daily_images=50), RoleLimits(STAFF, concurrent_jobs=3)),
            key=lambda limits: limits.role_id,
        )
    )
    assert config.limits.daily_images == 0  # the server's own limits are untouched
    [newest, *_] = await repository.audit_log(GUILD)
    assert newest.action == "limits role"
    assert newest.before == f"role={STAFF} cooldown=- daily=- concurrent=-"
    assert newest.after == f"role={STAFF} cooldown=- daily=- concurrent=3"


async def test_role_limits_that_change_nothing_are_not_audited(repository: Repository) -> None:
    await repository.set_role_limits(GUILD, VIP, LimitChanges(daily_images=50), actor_id=MOD)
    await repository.set_role_limits(GUILD, VIP, LimitChanges(daily_images=50), actor_id=MOD)
    await repository.set_role_limits(GUILD, STAFF, LimitChanges(), actor_id=MOD)
    assert len(await repository.audit_log(GUILD)) == 1
    assert [limits.role_id for limits in (await repository.guild_config(GUILD)).role_limits] == [VIP]


async def test_clearing_a_roles_limits(repository: Repository) -> None:
    assert await repository.clear_role_limits(GUILD, VIP, actor_id=MOD) is False
    await repository.set_role_limits(GUILD, VIP, LimitChanges(daily_images=50), actor_id=MOD)
    assert await repository.clear_role_limits(GUILD, VIP, actor_id=MOD) is True
    assert (await repository.guild_config(GUILD)).role_limits == ()
    [newest, *_] = await repository.audit_log(GUILD)
    assert (newest.action, newest.before, newest.after) == (
        "limits role",
        f"role={VIP} cooldown=- daily=50 concurrent=-",
        None,
    )


async def test_bad_role_arguments_are_refused(repository: Repository) -> None:
    with pytest.raises(ValueError, match="daily_images"):
        await repository.set_role_limits(GUILD, VIP, LimitChanges(daily_images=-1), actor_id=MOD)
    with pytest.raises(ValueError, match="role_id"):
        await repository.set_role_limits(GUILD, -5, LimitChanges(daily_images=1), actor_id=MOD)
    with pytest.raises(ValueError, match="role_id"):
        await repository.allow_model(GUILD, "a/b", actor_id=MOD, role_id=2**63)
    assert await repository.audit_log(GUILD) == []


async def test_roles_are_per_guild(repository: Repository) -> None:
    await repository.allow_model(GUILD, "a/vip", actor_id=MOD, role_id=VIP)
    await repository.set_role_limits(GUILD, VIP, LimitChanges(daily_images=50), actor_id=MOD)
    await repository.allow_model(OTHER_GUILD, "a/vip", actor_id=MOD)
    other = await repository.guild_config(OTHER_GUILD)
    assert other.model_roles == () and other.role_limits == ()


async def test_concurrent_role_changes_all_land(repository: Repository) -> None:
    roles = range(1, 9)
    await asyncio.gather(*(repository.allow_model(GUILD, "a/vip", actor_id=MOD, role_id=role) for role in roles))
    await asyncio.gather(
        *(repository.set_role_limits(GUILD, role, LimitChanges(daily_images=role), actor_id=MOD) for role in roles)
    )
    config = await repository.guild_config(GUILD)
    assert config.roles_for("a/vip") == frozenset(roles)
    assert [(limits.role_id, limits.daily_images) for limits in config.role_limits] == [(r, r) for r in roles]
    assert len(await repository.audit_log(GUILD, limit=100)) == 16
