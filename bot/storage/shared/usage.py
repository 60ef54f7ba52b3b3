"""Member usage and spending both backends keep alike: charges against limits and budgets, refunds,
real costs settled, the budgets themselves and the tallies the usage report reads.

Charges and refunds stay exact across processes: they read under row locks
(every transaction that takes both locks the month's row before the member's,
so none deadlock) or are single statements that move a count where it lies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime

from bot.base.money import month_of
from bot.storage.common import (
    budget_audit_text,
    check_id,
    decide_budget,
    decide_charge,
    image_count,
    non_negative,
    settled_cost,
    usage_on,
    utc,
)
from bot.storage.records import Budget, Charge, DayTally, JobRecord, JobTally, Limits, Spend, Usage
from bot.storage.shared.base import SqlBase
from bot.storage.shared.dialect import Executor, Row

_USAGE = "SELECT day, images_today, last_request_at, spent_today FROM member_usage WHERE guild_id = ? AND member_id = ?"

TALLY_SQL = (
    "SELECT requester_id, model, COUNT(*), COUNT(prediction_id), COALESCE(SUM(images_delivered), 0), "
    "COALESCE(SUM(CASE WHEN state IN ('failed', 'timed_out') THEN 1 ELSE 0 END), 0), COALESCE(SUM(cost), 0) "
    "FROM jobs WHERE guild_id = ? AND created_at >= ? GROUP BY requester_id, model"
)
""":meth:`~bot.storage.Repository.job_tallies`'s query: failures are jobs that failed or timed out (a canceled
job is not one)."""


DAY_TALLY_SQL = (
    "SELECT {created_day}, model, COUNT(*), COALESCE(SUM(images_delivered), 0), COALESCE(SUM(cost), 0) "
    "FROM jobs WHERE guild_id = ? AND created_at >= ? GROUP BY {created_day}, model"
)
""":meth:`~bot.storage.Repository.job_day_tallies`'s query (at most a row per day and model)."""


class SqlUsage(SqlBase):
    """What members used and servers spent."""

    @staticmethod
    def _usage_of(db: Executor, today: date, row: Row | None) -> Usage:
        if row is None:
            return usage_on(today, None, 0, None)
        last = None if row[2] is None else db.dialect.moment(row[2])
        return usage_on(today, db.dialect.day(row[0]), int(row[1]), last, int(row[3]))

    async def usage(self, guild_id: int, member_id: int, *, now: datetime) -> Usage:
        """A member's usage today (UTC day of ``now``)."""
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        today = utc(now).date()
        async with self._reading() as db:
            return self._usage_of(db, today, await db.one(_USAGE, guild_id, member_id))

    async def charge(
        self,
        guild_id: int,
        member_id: int,
        images: int,
        *,
        limits: Limits,
        now: datetime,
        cost: int = 0,
        job: JobRecord | None = None,
        jobs: Sequence[JobRecord] = (),
        moves_cooldown: bool = True,
    ) -> Charge:
        """Atomically check the cooldown, the daily limit, then the budgets, and if all allow it record the request.

        The member's usage row is created if missing (a row for today with
        nothing used is the same as no row) and locked, so concurrent charges
        queue on it: each sees the count the previous one committed. A charge
        with a cost first locks the server's row of the month, so charges
        against the monthly budget queue on it. Refusals change nothing that
        :meth:`usage` or :meth:`spend` can see. A charge moves
        ``last_request_at`` to ``now``, adds ``images`` to the count of
        ``now``'s UTC day (from 0 on a new day), reserves ``cost`` against the
        month's and the member's day's spend, and journals ``job`` (if given)
        in the same transaction, with this charge in its columns. ``jobs`` (a
        set charged as one request) are journaled alike, each keeping its own
        ``charged_images`` and ``reserved_cost`` (their sums are ``images`` and
        ``cost``). Without a job, ``images`` may be 0 (a request that makes
        none). With ``moves_cooldown=False`` (``/describe``) the cooldown is
        neither checked nor moved: ``last_request_at`` stays as it was.
        """
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        if job is not None and jobs:
            raise ValueError("charge takes one job or a set of jobs, not both")
        image_count(images, minimum=1 if job is not None or jobs else 0)
        if jobs and (sum(j.charged_images for j in jobs) != images or sum(j.reserved_cost for j in jobs) != cost):
            raise ValueError("a set's jobs must carry the images and cost charged for them")
        non_negative("cost", cost)
        now = utc(now)
        today = now.date()
        async with self._writing() as db:
            await self._ensure_guild(db, guild_id)
            month_spent = await self._locked_month_spend(db, guild_id, today) if cost else 0
            await db.run(
                "INSERT INTO member_usage (guild_id, member_id, day) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                guild_id,
                member_id,
                today,
            )
            usage = self._usage_of(db, today, await db.one(_USAGE + "{for_update}", guild_id, member_id))
            decision = decide_charge(usage, images, limits=limits, now=now, moves_cooldown=moves_cooldown)
            if not decision.charged:
                return decision
            if cost:
                spend = Spend(month_spent, usage.spent_today)
                over = decide_budget(await self._budget(db, guild_id), spend, cost)
                if over is not None:
                    return replace(decision, charged=False, usage=usage, over_budget=over, spend=spend)
                await self._add_month_spend(db, guild_id, today, cost)
                decision = replace(decision, spend=Spend(spend.month + cost, spend.member_today + cost))
            await db.run(
                "UPDATE member_usage SET day = ?, images_today = ?, last_request_at = ?, spent_today = ? "
                "WHERE guild_id = ? AND member_id = ?",
                today,
                decision.usage.images_today,
                decision.usage.last_request_at,
                usage.spent_today + cost,
                guild_id,
                member_id,
            )
            if job is not None:
                await self._insert_job(db, replace(job, charged_images=images, charged_day=today, reserved_cost=cost))
            for each in jobs:
                await self._insert_job(db, replace(each, charged_day=today))
        return replace(decision, usage=replace(decision.usage, spent_today=usage.spent_today + cost))

    async def refund(self, guild_id: int, member_id: int, images: int, *, day: date, cost: int = 0) -> None:
        """Give back images charged on ``day`` that were not delivered, and ``cost`` reserved (never below zero).

        A refund for a day other than the one on record (yesterday's job that
        failed after midnight, say) changes nothing in the member's counts: that
        day's no longer limit anyone; the month's spend is given back all the
        same. The cooldown is not given back.
        """
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        if image_count(images, minimum=0) == 0 and not non_negative("cost", cost):
            return
        async with self._writing() as db:
            if cost:
                await self._move_spend(db, guild_id, member_id, -cost, day)  # the month's row first, as charge
            await self._give_back(db, guild_id, member_id, images, day)

    async def move_spend(self, guild_id: int, member_id: int, amount: int, *, day: date) -> None:
        """Move the spend of ``day``'s month and of the member's ``day`` (if still on record) by ``amount``
        micro-dollars, up or down (never below zero): a run that is not journaled settled at its real cost."""
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        if not amount:
            return
        async with self._writing() as db:
            await self._move_spend(db, guild_id, member_id, amount, day)

    async def abandon_job(self, job_id: str, *, owner: str, reason: str, now: datetime) -> bool:
        """Fail an unfinished job of ``owner`` and give back its charge from its columns, in one transaction
        (the job's row lock, taken first as by every booking, makes a concurrent booking wait and see it)."""
        async with self._writing() as db:
            row = await db.one(
                "UPDATE jobs SET state = 'failed', ended_at = ?, error = ?, target = NULL "
                "WHERE job_id = ? AND owner = ? AND ended_at IS NULL "
                "RETURNING guild_id, requester_id, charged_images, charged_day, reserved_cost",
                utc(now),
                reason,
                job_id,
                owner,
            )
            if row is None:
                return False
            guild_id, member_id, images, day, reserved = row
            if guild_id is None or member_id is None or day is None:
                return True  # charged nothing (the imagine command's jobs)
            day = db.dialect.day(day)
            # Nothing of it was seen: through the bookings that only move towards the member, whatever an end
            # already booked (some images given back, a cost settled) is completed, never booked twice. The
            # cost first: its month's row is locked before the member's, as by every transaction taking both.
            await self._settle_at(db, job_id, guild_id, member_id, reserved=reserved, actual=0, day=day)
            await self._refund_up_to(db, job_id, guild_id, member_id, images, day)
        return True

    async def refund_job(self, job_id: str, guild_id: int, member_id: int, images: int, *, day: date) -> bool:
        """Refund a journaled job's undelivered images up to ``images`` in all: ``False`` if it already was."""
        async with self._writing() as db:
            return await self._refund_up_to(db, job_id, guild_id, member_id, images, day)

    @classmethod
    async def _refund_up_to(
        cls, db: Executor, job_id: str, guild_id: int, member_id: int, images: int, day: date
    ) -> bool:
        """Raise the job's refund to ``images`` and give back the difference (never lower it)."""
        # The row lock makes a second, concurrent refund wait and then find what this one gave back.
        row = await db.one("SELECT refunded FROM jobs WHERE job_id = ?{for_update}", job_id)
        if row is None or int(row[0]) >= images:
            return False
        await db.run("UPDATE jobs SET refunded = ? WHERE job_id = ?", images, job_id)
        await cls._give_back(db, guild_id, member_id, images - int(row[0]), day)
        return True

    @staticmethod
    async def _give_back(db: Executor, guild_id: int, member_id: int, images: int, day: date) -> None:
        # One statement: the subtraction happens on the row as locked, never on a stale read.
        await db.run(
            "UPDATE member_usage SET images_today = {greatest}(images_today - ?, 0) "
            "WHERE guild_id = ? AND member_id = ? AND day = ?",
            images,
            guild_id,
            member_id,
            day,
        )

    # ------------------------------------------------------------- budgets

    @staticmethod
    async def _budget(db: Executor, guild_id: int) -> Budget:
        row = await db.one("SELECT budget_monthly, budget_member_daily FROM guilds WHERE guild_id = ?", guild_id)
        return Budget() if row is None else Budget(int(row[0]), int(row[1]))

    @staticmethod
    async def _locked_month_spend(db: Executor, guild_id: int, day: date) -> int:
        """The server's spend in ``day``'s month, its row created if need be and locked until the transaction ends."""
        month = month_of(day)
        await db.run("INSERT INTO guild_spend (guild_id, month) VALUES (?, ?) ON CONFLICT DO NOTHING", guild_id, month)
        row = await db.one(
            "SELECT spent FROM guild_spend WHERE guild_id = ? AND month = ?{for_update}", guild_id, month
        )
        assert row is not None  # just ensured
        return int(row[0])

    @staticmethod
    async def _add_month_spend(db: Executor, guild_id: int, day: date, amount: int) -> None:
        """Move the month's spend by ``amount`` in one statement (never below zero); the guild's row must exist."""
        await db.run(
            "INSERT INTO guild_spend AS s (guild_id, month, spent) VALUES (?, ?, {greatest}(CAST(? AS BIGINT), 0)) "
            "ON CONFLICT (guild_id, month) DO UPDATE SET spent = {greatest}(s.spent + CAST(? AS BIGINT), 0)",
            guild_id,
            month_of(day),
            amount,
            amount,
        )

    async def _move_spend(self, db: Executor, guild_id: int, member_id: int, amount: int, day: date) -> None:
        """Move the spend of ``day``'s month, then of the member's ``day`` (if still on record), by ``amount``."""
        await self._ensure_guild(db, guild_id)
        await self._add_month_spend(db, guild_id, day, amount)
        await db.run(
            "UPDATE member_usage SET spent_today = {greatest}(spent_today + CAST(? AS BIGINT), 0) "
            "WHERE guild_id = ? AND member_id = ? AND day = ?",
            amount,
            guild_id,
            member_id,
            day,
        )

    async def settle_cost(
        self, job_id: str, guild_id: int, member_id: int, *, reserved: int, actual: int, day: date
    ) -> bool:
        """Book a journaled job's real cost (lowered later if it delivered less); the spend moves by the difference.

        The job's row lock makes a second, concurrent settlement wait, then find it settled.
        """
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        non_negative("reserved", reserved)
        non_negative("actual", actual)
        async with self._writing() as db:
            return await self._settle_at(db, job_id, guild_id, member_id, reserved=reserved, actual=actual, day=day)

    async def _settle_at(
        self, db: Executor, job_id: str, guild_id: int, member_id: int, *, reserved: int, actual: int, day: date
    ) -> bool:
        """Book the job's cost at ``actual`` if that is its first booking or lowers it (see :func:`settled_cost`)."""
        row = await db.one("SELECT cost, cost_settled FROM jobs WHERE job_id = ?{for_update}", job_id)
        booked = settled_cost(row, reserved=reserved, actual=actual)
        if booked is None:
            return False
        await db.run("UPDATE jobs SET cost = ?, cost_settled = true WHERE job_id = ?", actual, job_id)
        if actual != booked:
            await self._move_spend(db, guild_id, member_id, actual - booked, day)
        return True

    async def budget(self, guild_id: int) -> Budget:
        """The server's spending caps."""
        check_id("guild_id", guild_id)
        async with self._reading() as db:
            return await self._budget(db, guild_id)

    async def set_budget(
        self, guild_id: int, *, actor_id: int, monthly: int | None = None, member_daily: int | None = None
    ) -> Budget:
        """Change the given caps under the guild's row lock; one ``budget`` audit entry (none if unchanged)."""
        non_negative("monthly", monthly)
        non_negative("member_daily", member_daily)
        async with self._settings_change(guild_id, actor_id=actor_id) as db:
            old = (await self._locked_guild(db, guild_id)).budget
            new = Budget(
                old.monthly if monthly is None else monthly,
                old.member_daily if member_daily is None else member_daily,
            )
            if new == old:
                return old
            await self._update_guild(db, guild_id, budget_monthly=new.monthly, budget_member_daily=new.member_daily)
            await self._audit(db, guild_id, actor_id, "budget", budget_audit_text(old), budget_audit_text(new))
        return new

    async def spend(self, guild_id: int, member_id: int | None, *, now: datetime) -> Spend:
        """The server's spend this calendar month and (with a member) the member's today, in one snapshot."""
        check_id("guild_id", guild_id)
        today = utc(now).date()
        async with self._reading() as db:
            row = await db.one(
                "SELECT (SELECT spent FROM guild_spend WHERE guild_id = ? AND month = ?), "
                "(SELECT spent_today FROM member_usage WHERE guild_id = ? AND member_id = ? AND day = ?)",
                guild_id,
                month_of(today),
                guild_id,
                member_id,
                today,
            )
        assert row is not None  # a SELECT without FROM yields one row
        return Spend(int(row[0] or 0), int(row[1] or 0))

    async def job_tallies(self, guild_id: int, *, since: datetime) -> list[JobTally]:
        """The server's jobs created since ``since``, per member and model."""
        check_id("guild_id", guild_id)
        async with self._reading() as db:
            rows = await db.all(TALLY_SQL, guild_id, utc(since, "since"))
        return [
            JobTally(None if row[0] is None else int(row[0]), str(row[1]), *(int(figure) for figure in row[2:]))
            for row in rows
        ]

    async def job_day_tallies(self, guild_id: int, *, since: datetime) -> list[DayTally]:
        """The server's jobs created since ``since``, per UTC day and model."""
        check_id("guild_id", guild_id)
        async with self._reading() as db:
            rows = await db.all(DAY_TALLY_SQL, guild_id, utc(since, "since"))
        return [DayTally(db.dialect.day(row[0]), str(row[1]), int(row[2]), int(row[3]), int(row[4])) for row in rows]
