"""The policy's roles: models only for some roles, and each member's limits from the server's and their roles'."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.api.modelref import ModelRef
from bot.base.errors import Refusal
from bot.moderation.policy import Admission, Policy, RequestContext, effective_limits
from bot.storage import GuildConfig, LimitChanges, Limits, RoleLimits
from bot.storage.sqlite import MEMORY, SqliteRepository
from tests.storage import FakeClock

GUILD = 1
MOD = 2
MEMBER = 3
VIP, STAFF, OTHER = 10, 11, 12
OPEN, PRO, LAB = "a/open", "a/pro", "a/lab"


# ---------------------------------------------------------------------------- a server's roles at a glance


def test_a_role_without_limits_of_its_own_sets_none() -> None:
    config = GuildConfig(GUILD, role_limits=(RoleLimits(VIP, daily_images=50),))
    assert config.limits_of_role(VIP) == RoleLimits(VIP, daily_images=50)
    assert config.limits_of_role(STAFF) == RoleLimits(STAFF)


def test_every_model_restricted_only_when_the_servers_own_list_is_all_for_roles() -> None:
    only_vip = frozenset({VIP})
    assert GuildConfig(
        GUILD, models=(PRO, LAB), model_roles=((PRO, only_vip), (LAB, only_vip))
    ).every_model_restricted()
    assert not GuildConfig(GUILD, models=(OPEN, PRO), model_roles=((PRO, only_vip),)).every_model_restricted()
    assert not GuildConfig(GUILD).every_model_restricted()  # no list of its own: the bot-wide models, open to all


# ---------------------------------------------------------------------------- most generous limits


def test_no_roles_get_the_servers_limits() -> None:
    server = Limits(cooldown_seconds=60, daily_images=5, concurrent_jobs=1)
    assert effective_limits(server, (RoleLimits(VIP, daily_images=50),), frozenset()) == server


def test_a_roles_limits_loosen_only_what_it_sets() -> None:
    server = Limits(cooldown_seconds=60, daily_images=5, concurrent_jobs=1)
    vip = RoleLimits(VIP, daily_images=50)
    assert effective_limits(server, (vip,), {VIP}) == Limits(60, 50, 1)


def test_most_generous_per_limit_over_several_roles() -> None:
    server = Limits(cooldown_seconds=60, daily_images=5, concurrent_jobs=1)
    roles = (
        RoleLimits(VIP, cooldown_seconds=30, daily_images=20, concurrent_jobs=2),
        RoleLimits(STAFF, cooldown_seconds=10, daily_images=8),
        RoleLimits(OTHER, cooldown_seconds=0, daily_images=1000, concurrent_jobs=9),  # not the member's
    )
    assert effective_limits(server, roles, {VIP, STAFF}) == Limits(10, 20, 2)


def test_no_limit_is_the_most_generous() -> None:
    server = Limits(cooldown_seconds=60, daily_images=5, concurrent_jobs=1)
    roles = (RoleLimits(VIP, cooldown_seconds=0, daily_images=0), RoleLimits(STAFF, daily_images=100))
    assert effective_limits(server, roles, {VIP, STAFF}) == Limits(0, 0, 1)


def test_a_role_cannot_tighten_the_servers_limits() -> None:
    server = Limits(cooldown_seconds=10, daily_images=0, concurrent_jobs=4)
    strict = RoleLimits(VIP, cooldown_seconds=600, daily_images=3, concurrent_jobs=1)
    assert effective_limits(server, (strict,), {VIP}) == server


# ---------------------------------------------------------------------------- models per role


@pytest.fixture
async def repository() -> AsyncIterator[SqliteRepository]:
    repo = await SqliteRepository.open(MEMORY, clock=FakeClock())
    yield repo
    await repo.close()


@pytest.fixture
def policy(repository: SqliteRepository) -> Policy:
    async def no_jobs(guild_id: int, member_id: int) -> int:
        return 0

    return Policy(repository, bot_models=(ModelRef.parse(OPEN),), clock=FakeClock(), active_jobs=no_jobs)


async def admit(policy: Policy, model: str | None = None, roles: frozenset[int] = frozenset()) -> Admission:
    return await policy.admit(RequestContext(GUILD, MEMBER, 5, "a fox", model_text=model, role_ids=roles))


async def check(policy: Policy, model: str | None, roles: frozenset[int] = frozenset()) -> ModelRef:
    return (await admit(policy, model, roles)).model


async def test_a_model_for_a_role_is_refused_to_others_by_name(policy: Policy, repository: SqliteRepository) -> None:
    await repository.allow_model(GUILD, OPEN, actor_id=MOD)
    await repository.allow_model(GUILD, PRO, actor_id=MOD, role_id=VIP)
    assert await check(policy, PRO, frozenset({VIP})) == ModelRef.parse(PRO)
    with pytest.raises(Refusal) as refused:
        await check(policy, PRO, frozenset({OTHER}))
    assert f"`{PRO}` is only for members with the <@&{VIP}> role" in str(refused.value)
    assert f"You may use `{OPEN}`" in str(refused.value)


async def test_several_roles_any_one_will_do(policy: Policy, repository: SqliteRepository) -> None:
    await repository.allow_model(GUILD, PRO, actor_id=MOD, role_id=VIP)
    await repository.allow_model(GUILD, PRO, actor_id=MOD, role_id=STAFF)
    assert await check(policy, PRO, frozenset({STAFF})) == ModelRef.parse(PRO)
    with pytest.raises(Refusal, match=f"one of the roles <@&{VIP}>, <@&{STAFF}>"):
        await check(policy, PRO)


async def test_usable_models_are_what_autocomplete_offers(policy: Policy, repository: SqliteRepository) -> None:
    for model, role in ((OPEN, None), (PRO, VIP), (LAB, STAFF)):
        await repository.allow_model(GUILD, model, actor_id=MOD, role_id=role)
    names = [str(m) for m in await policy.usable_models(GUILD, frozenset({VIP}))]
    assert names == [OPEN, PRO]
    assert [str(m) for m in await policy.usable_models(GUILD)] == [OPEN]
    assert [str(m) for m in await policy.allowed_models(GUILD)] == [OPEN, PRO, LAB]


async def test_a_default_only_for_some_roles_falls_back_with_a_note(
    policy: Policy, repository: SqliteRepository
) -> None:
    await repository.allow_model(GUILD, OPEN, actor_id=MOD)
    await repository.allow_model(GUILD, PRO, actor_id=MOD, role_id=VIP)
    await repository.set_default_model(GUILD, PRO, actor_id=MOD)
    vip = await admit(policy, None, frozenset({VIP}))
    assert (vip.model, vip.note) == (ModelRef.parse(PRO), None)
    admitted = await admit(policy)
    assert admitted.model == ModelRef.parse(OPEN)
    assert admitted.note is not None
    note = str(admitted.note)
    assert f"`{PRO}`" in note and f"<@&{VIP}>" in note and f"used `{OPEN}`" in note


async def test_no_model_usable_is_refused_clearly(policy: Policy, repository: SqliteRepository) -> None:
    await repository.allow_model(GUILD, PRO, actor_id=MOD, role_id=VIP)
    with pytest.raises(Refusal, match=f"Every model on this server is only for members with some roles.*<@&{VIP}>"):
        await check(policy, None)


async def test_the_owners_model_needs_no_role(policy: Policy, repository: SqliteRepository) -> None:
    await repository.allow_model(GUILD, PRO, actor_id=MOD, role_id=VIP)
    upscaler = ModelRef.parse("a/upscaler")
    admitted = await policy.admit(RequestContext(GUILD, MEMBER, 5, "x", owner_model=upscaler))
    assert (admitted.model, admitted.note) == (upscaler, None)


# ---------------------------------------------------------------------------- limits per role in checks


async def test_a_vip_role_gets_more_images_a_day(policy: Policy, repository: SqliteRepository) -> None:
    await repository.set_limits(GUILD, LimitChanges(daily_images=2), actor_id=MOD)
    await repository.set_role_limits(GUILD, VIP, LimitChanges(daily_images=5), actor_id=MOD)
    vip = await admit(policy, roles=frozenset({VIP}))
    assert vip.limits.daily_images == 5
    await policy.check_usage(vip, 4)
    await policy.charge(vip.priced(4, 0))
    with pytest.raises(Refusal, match="limit is 5"):
        await policy.check_usage(vip, 2)
    with pytest.raises(Refusal, match="all 2"):
        await policy.check_usage(await admit(policy), 1)  # the role was taken away


async def test_charge_holds_to_the_members_own_limits(policy: Policy, repository: SqliteRepository) -> None:
    await repository.set_limits(GUILD, LimitChanges(cooldown_seconds=3600), actor_id=MOD)
    await repository.set_role_limits(GUILD, STAFF, LimitChanges(cooldown_seconds=0), actor_id=MOD)
    staff = (await admit(policy, roles=frozenset({STAFF}))).priced(1, 0)
    await policy.charge(staff)
    await policy.charge(staff)  # no cooldown for staff
    with pytest.raises(Refusal, match="Slow down"):
        await policy.charge((await admit(policy)).priced(1, 0))
