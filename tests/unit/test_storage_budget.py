"""The repository's budgets on both backends: caps, reservations with the image charge, settlement, tallies."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from bot.base.money import BudgetScope
from bot.storage import Budget, Limits, Repository, Spend, open_repository
from tests.storage import T0, FakeClock, make_job

GUILD, MEMBER, OTHER, MOD = 1001, 2002, 2003, 3003
NO_LIMITS = Limits()
DAY = T0.date()


async def test_caps_are_set_audited_and_kept(repository: Repository) -> None:
    assert await repository.budget(GUILD) == Budget()
    assert await repository.set_budget(GUILD, actor_id=MOD, monthly=5_000_000) == Budget(5_000_000, 0)
    assert await repository.set_budget(GUILD, actor_id=MOD, member_daily=250_000) == Budget(5_000_000, 250_000)
    assert await repository.set_budget(GUILD, actor_id=MOD, monthly=5_000_000) == Budget(5_000_000, 250_000)
    assert await repository.budget(GUILD) == Budget(5_000_000, 250_000)
    audit = await repository.audit_log(GUILD)
    assert [(e.action, e.before, e.after) for e in audit] == [
        ("budget", "monthly=$5.00 member_daily=no cap", "monthly=$5.00 member_daily=$0.25"),
        ("budget", "monthly=no cap member_daily=no cap", "monthly=$5.00 member_daily=no cap"),
    ]


async def test_a_charge_reserves_its_cost_and_the_caps_refuse_what_would_pass_them(repository: Repository) -> None:
    await repository.set_budget(GUILD, actor_id=MOD, monthly=1_000_000, member_daily=600_000)
    first = await repository.charge(GUILD, MEMBER, 1, limits=NO_LIMITS, now=T0, cost=500_000)
    assert first.charged and first.spend == Spend(500_000, 500_000)
    assert first.usage.spent_today == 500_000

    over_member = await repository.charge(GUILD, MEMBER, 1, limits=NO_LIMITS, now=T0, cost=200_000)
    assert not over_member.charged and over_member.over_budget is BudgetScope.MEMBER_DAILY
    assert over_member.spend == Spend(500_000, 500_000)

    assert (await repository.charge(GUILD, OTHER, 1, limits=NO_LIMITS, now=T0, cost=500_000)).charged
    over_month = await repository.charge(GUILD, OTHER, 1, limits=NO_LIMITS, now=T0, cost=1)
    assert not over_month.charged and over_month.over_budget is BudgetScope.MONTHLY
    assert over_month.spend == Spend(1_000_000, 500_000)
    # Refusals change nothing; a free job passes any cap.
    assert await repository.spend(GUILD, MEMBER, now=T0) == Spend(1_000_000, 500_000)
    assert await repository.spend(GUILD, None, now=T0) == Spend(1_000_000, 0)
    assert (await repository.charge(GUILD, OTHER, 1, limits=NO_LIMITS, now=T0)).charged
    assert (await repository.usage(GUILD, MEMBER, now=T0)).images_today == 1


async def test_the_member_day_and_the_month_reset(repository: Repository) -> None:
    await repository.set_budget(GUILD, actor_id=MOD, monthly=10_000_000, member_daily=100_000)
    assert (await repository.charge(GUILD, MEMBER, 1, limits=NO_LIMITS, now=T0, cost=100_000)).charged
    tomorrow = T0 + timedelta(days=1)
    assert await repository.spend(GUILD, MEMBER, now=tomorrow) == Spend(100_000, 0)
    assert (await repository.charge(GUILD, MEMBER, 1, limits=NO_LIMITS, now=tomorrow, cost=100_000)).charged
    next_month = T0.replace(day=1) + timedelta(days=31)
    assert await repository.spend(GUILD, MEMBER, now=next_month) == Spend(0, 0)


async def test_refund_gives_back_reserved_money(repository: Repository) -> None:
    await repository.charge(GUILD, MEMBER, 2, limits=NO_LIMITS, now=T0, cost=300_000)
    await repository.refund(GUILD, MEMBER, 2, day=DAY, cost=300_000)
    assert await repository.spend(GUILD, MEMBER, now=T0) == Spend(0, 0)
    assert (await repository.usage(GUILD, MEMBER, now=T0)).images_today == 0
    await repository.refund(GUILD, MEMBER, 0, day=DAY, cost=5)  # never below zero
    assert await repository.spend(GUILD, MEMBER, now=T0) == Spend(0, 0)


async def test_settling_books_the_real_cost_once(repository: Repository) -> None:
    await repository.charge(GUILD, MEMBER, 1, limits=NO_LIMITS, now=T0, cost=400_000)
    await repository.add_job(make_job("j1", guild_id=GUILD, requester_id=MEMBER))
    assert await repository.settle_cost("j1", GUILD, MEMBER, reserved=400_000, actual=150_000, day=DAY)
    assert await repository.spend(GUILD, MEMBER, now=T0) == Spend(150_000, 150_000)
    assert not await repository.settle_cost("j1", GUILD, MEMBER, reserved=400_000, actual=150_000, day=DAY)
    assert await repository.spend(GUILD, MEMBER, now=T0) == Spend(150_000, 150_000)
    assert not await repository.settle_cost("unknown", GUILD, MEMBER, reserved=0, actual=9, day=DAY)

    # A job that cost more than reserved adds the difference, cap or not.
    await repository.add_job(make_job("j2", guild_id=GUILD, requester_id=MEMBER))
    results = await asyncio.gather(
        *(repository.settle_cost("j2", GUILD, MEMBER, reserved=0, actual=50_000, day=DAY) for _ in range(5))
    )
    assert sorted(results) == [False, False, False, False, True]
    assert await repository.spend(GUILD, MEMBER, now=T0) == Spend(200_000, 200_000)
    # A day no longer on record leaves the member's count alone but still books the month.
    await repository.add_job(make_job("j3", guild_id=GUILD, requester_id=MEMBER))
    yesterday = DAY - timedelta(days=1)
    assert await repository.settle_cost("j3", GUILD, MEMBER, reserved=0, actual=1_000, day=yesterday)
    assert await repository.spend(GUILD, MEMBER, now=T0) == Spend(201_000, 200_000)


async def test_a_job_booked_again_for_fewer_images_moves_only_towards_the_member(repository: Repository) -> None:
    """Images Discord then refused: the job is settled again for less (never more), and only once for each figure."""
    await repository.charge(GUILD, MEMBER, 4, limits=NO_LIMITS, now=T0, cost=16_000)
    await repository.add_job(make_job("j1", guild_id=GUILD, requester_id=MEMBER))
    assert await repository.settle_cost("j1", GUILD, MEMBER, reserved=16_000, actual=8_000, day=DAY)  # 2 of 4
    assert await repository.refund_job("j1", GUILD, MEMBER, 2, day=DAY)
    assert (await repository.usage(GUILD, MEMBER, now=T0)).images_today == 2

    results = await asyncio.gather(
        *(repository.settle_cost("j1", GUILD, MEMBER, reserved=16_000, actual=0, day=DAY) for _ in range(3)),
        *(repository.refund_job("j1", GUILD, MEMBER, 4, day=DAY) for _ in range(3)),
    )
    assert sorted(results[:3]) == [False, False, True] and sorted(results[3:]) == [False, False, True]
    assert await repository.spend(GUILD, MEMBER, now=T0) == Spend(0, 0)
    assert (await repository.usage(GUILD, MEMBER, now=T0)).images_today == 0

    # Never back up: a later booking for more changes nothing.
    assert not await repository.settle_cost("j1", GUILD, MEMBER, reserved=16_000, actual=8_000, day=DAY)
    assert not await repository.refund_job("j1", GUILD, MEMBER, 2, day=DAY)
    assert await repository.spend(GUILD, MEMBER, now=T0) == Spend(0, 0)
    tallies = await repository.job_tallies(GUILD, since=T0 - timedelta(days=1))
    assert [t.cost for t in tallies] == [0]


async def test_job_tallies_count_per_member_and_model(repository: Repository) -> None:
    jobs = [
        replace(
            make_job("a", guild_id=GUILD, requester_id=MEMBER, images_delivered=2),
            state="succeeded",
            prediction_id="p1",
        ),
        replace(make_job("b", guild_id=GUILD, requester_id=MEMBER), state="failed", prediction_id="p2"),
        replace(make_job("c", guild_id=GUILD, requester_id=OTHER), state="timed_out"),
        replace(make_job("d", guild_id=GUILD, requester_id=OTHER), state="canceled"),
        make_job("old", guild_id=GUILD, requester_id=OTHER, created=T0 - timedelta(days=40), images_delivered=4),
        make_job("elsewhere", guild_id=GUILD + 1, requester_id=MEMBER, images_delivered=4),
    ]
    for job in jobs:
        await repository.add_job(job)
    await repository.settle_cost("a", GUILD, MEMBER, reserved=0, actual=6_000, day=DAY)
    tallies = await repository.job_tallies(GUILD, since=T0 - timedelta(days=30))
    by_member = {t.member_id: (t.model, t.jobs, t.predictions, t.images, t.failures, t.cost) for t in tallies}
    assert by_member == {
        MEMBER: ("black-forest-labs/flux-schnell", 2, 2, 2, 1, 6_000),
        OTHER: ("black-forest-labs/flux-schnell", 2, 0, 0, 1, 0),
    }


async def test_concurrent_charges_from_several_processes_never_overspend(database_url: str, clock: FakeClock) -> None:
    """Three repositories (as three processes) race 36 charges of $0.10 against a $1.00 month and $0.30 a day."""
    repositories = [await open_repository(database_url, clock=clock) for _ in range(3)]
    try:
        await repositories[0].set_budget(GUILD, actor_id=MOD, monthly=1_000_000, member_daily=300_000)
        members = [MEMBER + n for n in range(6)]
        charges = [
            repositories[n % 3].charge(GUILD, members[n % 6], 1, limits=NO_LIMITS, now=T0, cost=100_000)
            for n in range(36)
        ]
        results = await asyncio.gather(*charges)
        assert sum(result.charged for result in results) == 10
        assert {r.over_budget for r in results if not r.charged} <= {BudgetScope.MONTHLY, BudgetScope.MEMBER_DAILY}
        spends = [await repositories[0].spend(GUILD, member, now=T0) for member in members]
        assert spends[0].month == 1_000_000
        assert all(spend.member_today <= 300_000 for spend in spends)
        assert sum(spend.member_today for spend in spends) == 1_000_000
    finally:
        for repository in repositories:
            await repository.close()
