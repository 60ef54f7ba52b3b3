"""The policy's budgets: a charge reserves the estimated cost with the images, or refuses saying why and when."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta

import pytest

from bot.api.modelref import ModelRef
from bot.base.errors import Refusal
from bot.moderation.policy import Policy, RequestContext
from bot.storage import JobRecord, LimitChanges, Limits
from bot.storage.sqlite import MEMORY, SqliteRepository
from tests.storage import T0, FakeClock, make_job

GUILD = 1
MOD = 2
MEMBER, OTHER = 3, 4
DIME = 100_000  # $0.10 in micro-dollars


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def repository(clock: FakeClock) -> AsyncIterator[SqliteRepository]:
    repo = await SqliteRepository.open(MEMORY, clock=clock)
    yield repo
    await repo.close()


@pytest.fixture
def policy(repository: SqliteRepository, clock: FakeClock) -> Policy:
    async def no_jobs(guild_id: int, member_id: int) -> int:
        return 0

    return Policy(repository, bot_models=(ModelRef.parse("a/b"),), clock=clock, active_jobs=no_jobs)


async def charge(
    policy: Policy, member: int, images: int, *, cost: int, journal: Callable[[date], JobRecord] | None = None
) -> date:
    admission = await policy.admit(RequestContext(GUILD, member, None, "a fox"))
    return await policy.charge(admission.priced(images, cost), journal=journal)


async def test_within_the_caps_the_cost_is_reserved(policy: Policy, repository: SqliteRepository) -> None:
    await repository.set_budget(GUILD, actor_id=MOD, monthly=10 * DIME, member_daily=3 * DIME)
    assert await charge(policy, MEMBER, 1, cost=DIME) == T0.date()
    spend = await repository.spend(GUILD, MEMBER, now=T0)
    assert (spend.month, spend.member_today) == (DIME, DIME)


async def test_a_members_daily_cap_refuses_with_the_spend_and_midnight(
    policy: Policy, repository: SqliteRepository
) -> None:
    await repository.set_budget(GUILD, actor_id=MOD, member_daily=2 * DIME)
    await charge(policy, MEMBER, 1, cost=DIME)
    await charge(policy, MEMBER, 1, cost=DIME)
    with pytest.raises(Refusal) as refused:
        await charge(policy, MEMBER, 1, cost=DIME)
    text = str(refused.value)
    assert "$0.20" in text and "midnight UTC" in text and "<t:" in text
    await charge(policy, OTHER, 1, cost=DIME)  # another member's day is their own


async def test_the_servers_monthly_cap_refuses_everyone_until_the_month_turns(
    policy: Policy, repository: SqliteRepository, clock: FakeClock
) -> None:
    await repository.set_budget(GUILD, actor_id=MOD, monthly=DIME)
    await charge(policy, MEMBER, 1, cost=DIME)
    with pytest.raises(Refusal, match=r"This server's budget for this month is \$0\.10"):
        await charge(policy, OTHER, 1, cost=1)
    clock.advance(timedelta(days=32).total_seconds())
    await charge(policy, OTHER, 1, cost=DIME)


async def test_a_refused_budget_charges_no_images_and_no_cooldown(policy: Policy, repository: SqliteRepository) -> None:
    await repository.set_limits(GUILD, LimitChanges(cooldown_seconds=60, daily_images=5), actor_id=MOD)
    await repository.set_budget(GUILD, actor_id=MOD, member_daily=DIME)
    with pytest.raises(Refusal):
        await charge(policy, MEMBER, 1, cost=2 * DIME)
    usage = await repository.usage(GUILD, MEMBER, now=T0)
    assert usage.images_today == 0 and usage.last_request_at is None


async def test_free_jobs_pass_any_cap_and_refunds_give_money_back(policy: Policy, repository: SqliteRepository) -> None:
    await repository.set_budget(GUILD, actor_id=MOD, monthly=DIME, member_daily=DIME)
    day = await charge(policy, MEMBER, 1, cost=DIME)
    await charge(policy, MEMBER, 1, cost=0)
    await repository.refund(GUILD, MEMBER, 1, day=day, cost=DIME)
    spend = await repository.spend(GUILD, MEMBER, now=T0)
    assert (spend.month, spend.member_today) == (0, 0)
    assert (await policy.admit(RequestContext(GUILD, MEMBER, None, "a fox"))).limits == Limits()


async def test_a_charge_journals_the_job_for_the_day_it_charged(policy: Policy, repository: SqliteRepository) -> None:
    days = []

    def entry(day: date) -> JobRecord:
        days.append(day)
        return make_job("j1", guild_id=GUILD, requester_id=MEMBER, owner="me")

    day = await charge(policy, MEMBER, 2, cost=DIME, journal=entry)
    job = await repository.get_job("j1")
    assert days == [day] and job is not None
    assert (job.charged_images, job.charged_day, job.reserved_cost) == (2, day, DIME)


async def test_the_refusals_name_the_command_asked_with(policy: Policy, repository: SqliteRepository) -> None:
    await repository.set_limits(GUILD, LimitChanges(cooldown_seconds=60), actor_id=MOD)
    await charge(policy, MEMBER, 1, cost=0)
    described = await policy.admit(RequestContext(GUILD, MEMBER, 7, "", command="/describe"))
    with pytest.raises(Refusal, match=r"^Slow down: you can use /describe again in"):
        await policy.check_usage(described.priced(1, 0), 1)
    with pytest.raises(Refusal, match=r"^Slow down: you can use /describe again in"):
        await policy.charge(described.priced(1, 0))
    await policy.charge(described.priced(1, 0), moves_cooldown=False)  # /describe's own charge is not held to it
    await repository.allow_channel(GUILD, 8, actor_id=MOD)
    with pytest.raises(Refusal, match=r"^/describe can.t be used in this channel\. Try <#8>\."):
        await policy.admit(RequestContext(GUILD, MEMBER, 7, "", command="/describe"))
