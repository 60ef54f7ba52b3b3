"""A job's charge on both backends: journaled with the job in one transaction, given back once on every abandon.

A charge that outlives its job (a crash between two transactions) would keep a member's images and a
server's money with nothing left to give them back; an abandoned job must give back exactly what it was
charged, once, even when its journal entry is too broken to read.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from typing import Any

import pytest

from bot.jobs.journal import NOT_STARTED, UNSTARTED_AFTER, Journal
from bot.storage import JobRecord, Limits, Repository, Spend, StorageError, open_repository
from bot.storage.postgres import PostgresRepository
from bot.storage.schema import MIGRATIONS as POSTGRES_MIGRATIONS
from bot.storage.schema import MIGRATIONS as SQLITE_MIGRATIONS
from bot.storage.sqlite import SqliteRepository
from tests.storage import T0, FakeClock, make_job

GUILD, MEMBER, MOD = 1001, 2002, 3003
NO_LIMITS = Limits()
DAY = T0.date()
COST = 400_000


def member_job(job_id: str, owner: str = "me", **fields: object) -> JobRecord:
    return make_job(job_id, guild_id=GUILD, requester_id=MEMBER, channel_id=5, owner=owner, **fields)


async def charge_with_job(repository: Repository, job_id: str, images: int = 2, **fields: object) -> None:
    charged = await repository.charge(
        GUILD, MEMBER, images, limits=NO_LIMITS, now=T0, cost=COST, job=member_job(job_id, **fields)
    )
    assert charged.charged


async def used(repository: Repository) -> tuple[int, Spend]:
    return (await repository.usage(GUILD, MEMBER, now=T0)).images_today, await repository.spend(GUILD, MEMBER, now=T0)


async def test_a_charge_journals_its_job_with_what_it_charged(repository: Repository) -> None:
    await charge_with_job(repository, "j1", images=3)
    job = await repository.get_job("j1")
    assert job is not None and job.state == "queued" and job.owner == "me"
    assert (job.charged_images, job.charged_day, job.reserved_cost) == (3, DAY, COST)
    assert await used(repository) == (3, Spend(COST, COST))


async def test_a_refused_charge_journals_nothing(repository: Repository) -> None:
    limits = Limits(daily_images=1)
    refused = await repository.charge(GUILD, MEMBER, 2, limits=limits, now=T0, job=member_job("j1"))
    assert not refused.charged
    assert await repository.get_job("j1") is None


async def test_the_charge_and_its_job_commit_or_roll_back_together(repository: Repository) -> None:
    await charge_with_job(repository, "j1", images=1)
    # The same job id again: the journal refuses the row, and the charge goes with it.
    with pytest.raises(Exception):  # noqa: B017 - each driver has its own integrity error
        await charge_with_job(repository, "j1", images=2)
    assert await used(repository) == (1, Spend(COST, COST))


async def test_a_set_is_charged_as_one_request_each_job_keeping_its_own_share(repository: Repository) -> None:
    jobs = [member_job(f"s{n}", charged_images=n, reserved_cost=100 * n) for n in (1, 2, 3)]
    charged = await repository.charge(GUILD, MEMBER, 6, limits=NO_LIMITS, now=T0, cost=600, jobs=jobs)
    assert charged.charged
    shares = [await repository.get_job(f"s{n}") for n in (1, 2, 3)]
    assert [(j.charged_images, j.reserved_cost, j.charged_day) for j in shares if j] == [
        (1, 100, DAY),
        (2, 200, DAY),
        (3, 300, DAY),
    ]
    assert await used(repository) == (6, Spend(600, 600))
    # One abandoned job gives back its own share only.
    assert await repository.abandon_job("s2", owner="me", reason="lost", now=T0)
    assert await used(repository) == (4, Spend(400, 400))


async def test_a_set_past_the_daily_images_journals_none_of_its_jobs(repository: Repository) -> None:
    jobs = [member_job(f"s{n}", charged_images=1) for n in range(3)]
    refused = await repository.charge(GUILD, MEMBER, 3, limits=Limits(daily_images=2), now=T0, jobs=jobs)
    assert not refused.charged
    assert [await repository.get_job(f"s{n}") for n in range(3)] == [None, None, None]


async def test_a_set_whose_shares_do_not_add_up_is_refused_before_anything_is_written(repository: Repository) -> None:
    with pytest.raises(ValueError, match="carry the images"):
        await repository.charge(GUILD, MEMBER, 3, limits=NO_LIMITS, now=T0, jobs=[member_job("s", charged_images=1)])
    assert await repository.get_job("s") is None


async def test_a_request_that_makes_no_image_moves_the_cooldown_and_the_spend_only(repository: Repository) -> None:
    limits = Limits(cooldown_seconds=60, daily_images=1)
    await charge_with_job(repository, "j1", images=1)
    described = await repository.charge(GUILD, MEMBER, 0, limits=Limits(daily_images=1), now=T0, cost=50)
    assert described.charged  # all of today's images used: a request for none still goes
    assert await used(repository) == (1, Spend(COST + 50, COST + 50))
    again = await repository.charge(GUILD, MEMBER, 0, limits=limits, now=T0 + timedelta(seconds=10))
    assert not again.charged and again.retry_after_seconds == pytest.approx(50)


async def test_a_request_that_does_not_move_the_cooldown_neither_checks_nor_moves_it(repository: Repository) -> None:
    limits = Limits(cooldown_seconds=60, daily_images=2)
    await charge_with_job(repository, "j1", images=1)  # starts the cooldown at T0
    later = T0 + timedelta(seconds=10)
    described = await repository.charge(GUILD, MEMBER, 1, limits=limits, now=later, cost=50, moves_cooldown=False)
    assert described.charged  # inside the cooldown, which it does not check
    usage = await repository.usage(GUILD, MEMBER, now=later)
    assert (usage.images_today, usage.last_request_at) == (2, T0)  # the daily images count it; the cooldown stays
    past = await repository.charge(GUILD, MEMBER, 1, limits=limits, now=later, moves_cooldown=False)
    assert not past.charged and past.over_daily_limit  # the daily images still bound it
    again = await repository.charge(GUILD, MEMBER, 0, limits=limits, now=T0 + timedelta(seconds=61))
    assert again.charged  # the cooldown runs from the job's request, not the describe's


async def test_the_spend_moves_up_and_down_never_below_zero(repository: Repository) -> None:
    await charge_with_job(repository, "j1", images=1)
    await repository.move_spend(GUILD, MEMBER, 150, day=DAY)
    assert await used(repository) == (1, Spend(COST + 150, COST + 150))
    await repository.move_spend(GUILD, MEMBER, -(COST + 1_000), day=DAY)
    assert await used(repository) == (1, Spend(0, 0))
    await repository.move_spend(GUILD, MEMBER, 70, day=DAY - timedelta(days=1))  # a day no longer on record
    assert await used(repository) == (1, Spend(70, 0))


async def test_an_abandoned_job_gives_back_its_charge_once(repository: Repository) -> None:
    await charge_with_job(repository, "j1")
    assert not await repository.abandon_job("j1", owner="someone else", reason="x", now=T0)
    assert await used(repository) == (2, Spend(COST, COST))
    results = await asyncio.gather(*(repository.abandon_job("j1", owner="me", reason="lost", now=T0) for _ in range(4)))
    assert sorted(results) == [False, False, False, True]
    assert await used(repository) == (0, Spend(0, 0))
    job = await repository.get_job("j1")
    assert job is not None and (job.state, job.error, job.target) == ("failed", "lost", None)
    assert job.ended_at == T0


async def test_an_abandon_after_the_end_began_booking_gives_back_the_rest(repository: Repository) -> None:
    """A crash after the end was booked and before the final edit: the member saw nothing, so is charged nothing."""
    await charge_with_job(repository, "j1", images=2)
    # The job ended with one image to deliver: one given back, its cost settled; then a crash before the edit.
    assert await repository.refund_job("j1", GUILD, MEMBER, 1, day=DAY)
    assert await repository.settle_cost("j1", GUILD, MEMBER, reserved=COST, actual=100_000, day=DAY)
    assert await used(repository) == (1, Spend(100_000, 100_000))
    assert await repository.abandon_job("j1", owner="me", reason="could not be resumed", now=T0)
    assert await used(repository) == (0, Spend(0, 0))
    # The engine's end coming again (or late) books nothing more: bookings only move towards the member.
    assert not await repository.refund_job("j1", GUILD, MEMBER, 1, day=DAY)
    assert not await repository.settle_cost("j1", GUILD, MEMBER, reserved=COST, actual=100_000, day=DAY)
    assert await used(repository) == (0, Spend(0, 0))


@pytest.mark.parametrize("booked_first", [False, True])
async def test_an_abandon_racing_the_engines_end_books_once(repository: Repository, booked_first: bool) -> None:
    await charge_with_job(repository, "j1", images=2)
    await charge_with_job(repository, "j2", images=1)  # another job of the member's, still charged
    end = (
        repository.refund_job("j1", GUILD, MEMBER, 1, day=DAY),
        repository.settle_cost("j1", GUILD, MEMBER, reserved=COST, actual=100_000, day=DAY),
    )
    abandons = [repository.abandon_job("j1", owner="me", reason="lost", now=T0) for _ in range(3)]
    results = await asyncio.gather(*(end + tuple(abandons) if booked_first else tuple(abandons) + end))
    assert sum(results[2:] if booked_first else results[:3]) == 1
    assert await used(repository) == (1, Spend(COST, COST))
    job = await repository.get_job("j1")
    assert job is not None and job.state == "failed"


async def test_an_ended_job_is_not_abandoned(repository: Repository) -> None:
    await charge_with_job(repository, "j1")
    await repository.update_job("j1", state="succeeded", ended_at=T0)
    assert not await repository.abandon_job("j1", owner="me", reason="late", now=T0)
    assert await used(repository) == (2, Spend(COST, COST))


async def test_a_job_that_charged_nothing_abandons_quietly(repository: Repository) -> None:
    await repository.add_job(make_job("cli", owner="me"))
    assert await repository.abandon_job("cli", owner="me", reason="gone", now=T0)


async def test_an_unreadable_journal_entry_gives_back_its_charge(repository: Repository, clock: FakeClock) -> None:
    await repository.register_process("old", "host", "all")
    await charge_with_job(repository, "broken", owner="old")  # make_job's request is no JobRequest
    await charge_with_job(repository, "broken-too", owner="old")
    assert await used(repository) == (4, Spend(2 * COST, 2 * COST))
    journal = Journal(repository, clock, owner="new")
    await repository.register_process("new", "host", "all")
    assert await journal.claim_restart("host") == []
    assert await used(repository) == (0, Spend(0, 0))
    for job_id in ("broken", "broken-too"):
        job = await repository.get_job(job_id)
        assert job is not None and (job.state, job.error) == ("failed", "unreadable journal entry")
    # Claimed again (another restart): nothing more is given back.
    assert await journal.claim_restart("host") == []
    assert await used(repository) == (0, Spend(0, 0))


async def test_an_abandon_the_database_refuses_reports_false(repository: Repository, clock: FakeClock) -> None:
    await charge_with_job(repository, "j1")
    journal = Journal(repository, clock, owner="me")
    await repository.close()
    assert await journal.abandon("j1", "any") is False  # logged; the job stays for a restart to resume
    with pytest.raises(StorageError):
        await repository.get_job("j1")


async def test_the_upgrade_copies_unfinished_jobs_charges_from_their_requests(database_url: str) -> None:
    """Jobs journaled before the charge had columns keep what they were charged; nonsense there reads as 0."""
    requests = {
        "good": {"charged_images": 2, "charged_day": "2025-03-14", "reserved_cost": COST},
        "nonsense": {"charged_images": "two", "charged_day": "2025-99-99", "reserved_cost": -5},
        "ended": {"charged_images": 2, "charged_day": "2025-03-14", "reserved_cost": COST},
        # Shaped like a date, but no day: the day is forgotten (nothing to give back), the upgrade goes on.
        "impossible": {"charged_images": 2, "charged_day": "2024-02-30", "reserved_cost": COST},
        "year-zero": {"charged_images": 2, "charged_day": "0000-01-01", "reserved_cost": COST},
        "leap": {"charged_images": 1, "charged_day": "2024-02-29", "reserved_cost": 0},
    }
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        old: Any = await SqliteRepository.open(path, migrations=SQLITE_MIGRATIONS[:11])
        async with old._transaction(write=True) as conn:
            for job_id, request in requests.items():
                await conn.execute(
                    "INSERT INTO jobs (job_id, model, prompt, request, state, created_at, ended_at) "
                    "VALUES (?, 'a/b', 'p', ?, 'queued', ?, ?)",
                    (job_id, json.dumps(request), T0.isoformat(), T0.isoformat() if job_id == "ended" else None),
                )
    else:
        old = await PostgresRepository.open(database_url, migrations=POSTGRES_MIGRATIONS[:11])
        async with old._transaction() as conn:
            for job_id, request in requests.items():
                await conn.execute(
                    "INSERT INTO jobs (job_id, model, prompt, request, state, created_at, ended_at) "
                    "VALUES ($1, 'a/b', 'p', $2, 'queued', $3, $4)",
                    job_id,
                    request,
                    T0,
                    T0 if job_id == "ended" else None,
                )
    await old.close()
    repository = await open_repository(database_url)
    try:
        charges = {}
        for job_id in requests:
            job = await repository.get_job(job_id)
            assert job is not None
            charges[job_id] = (job.charged_images, job.charged_day, job.reserved_cost)
    finally:
        await repository.close()
    assert charges == {
        "good": (2, DAY, COST),
        "nonsense": (0, None, 0),
        "ended": (0, None, 0),
        "impossible": (2, None, COST),
        "year-zero": (2, None, COST),
        "leap": (1, date(2024, 2, 29), 0),
    }


async def test_unstarted_jobs_are_the_owners_unended_queued_ones_journaled_before_the_bound(
    repository: Repository,
) -> None:
    await charge_with_job(repository, "old")
    await charge_with_job(repository, "creating")
    await charge_with_job(repository, "ended")
    assert await repository.update_job("creating", state="creating")
    assert await repository.update_job("ended", state="failed", ended_at=T0)
    await charge_with_job(repository, "others", owner="other")
    await charge_with_job(repository, "young", created=T0 + timedelta(seconds=30))
    assert await repository.unstarted_jobs("me", journaled_before=T0 + timedelta(seconds=10)) == ["old"]
    assert await repository.unstarted_jobs("me", journaled_before=T0) == []


async def test_set_ups_given_up_are_abandoned_once_even_when_their_charge_commits_late(
    repository: Repository, clock: FakeClock
) -> None:
    """The charge's answer was lost (its commit landed later, or never): the job is given back, never run."""
    journal = Journal(repository, clock, owner="me")
    journal.give_up("late")  # its abandon finds nothing yet: the commit has not landed
    await asyncio.sleep(0)
    await charge_with_job(repository, "late")  # ...and now it has
    await charge_with_job(repository, "running")  # the engine's: never touched
    await charge_with_job(repository, "shown-never", created=T0 - timedelta(seconds=UNSTARTED_AFTER + 1))
    await charge_with_job(repository, "setting-up", created=T0)  # being set up right now: left alone
    assert (await used(repository))[0] == 8
    await journal.abandon_unstarted(lambda: ["running"])
    states = {"late": "failed", "running": "queued", "shown-never": "failed", "setting-up": "queued"}
    for job_id, state in states.items():
        job = await repository.get_job(job_id)
        assert job is not None and job.state == state, job_id
        if state == "failed":
            assert job.error == NOT_STARTED and job.ended_at is not None
    assert await used(repository) == (4, Spend(2 * COST, 2 * COST))
    clock.advance(UNSTARTED_AFTER + 1)  # later beats: given back once, whatever is tried again
    await journal.abandon_unstarted(lambda: ["running"])
    await journal.abandon_unstarted(lambda: ["running"])
    assert await used(repository) == (2, Spend(COST, COST))  # only the running job's charge stands
