"""The PostgreSQL backend's member usage and spending: charges against limits and budgets, refunds,
real costs settled, the budgets themselves and the tallies the usage report reads. Charges and refunds
stay exact across processes: they queue on row locks or are single statements."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from bot.base.money import month_of
from bot.storage import Budget, Charge, JobRecord, JobTally, Limits, Spend, Usage
from bot.storage.common import (
    TALLY_SQL,
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
from bot.storage.postgres.base import PostgresBase


class PostgresUsage(PostgresBase):
    """What members used and servers spent."""

    async def usage(self, guild_id: int, member_id: int, *, now: datetime) -> Usage:
        """A member's usage today (UTC day of ``now``)."""
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        today = utc(now).date()
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "SELECT day, images_today, last_request_at, spent_today FROM member_usage "
                "WHERE guild_id = $1 AND member_id = $2",
                guild_id,
                member_id,
            )
        if row is None:
            return usage_on(today, None, 0, None)
        return usage_on(today, row["day"], row["images_today"], row["last_request_at"], row["spent_today"])

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
    ) -> Charge:
        """Atomically check the cooldown, the daily limit, then the budgets, and if all allow it record the request.

        The member's usage row is created if missing (a row for today with
        nothing used is the same as no row) and locked, so concurrent charges
        from any number of connections and processes queue on it: each sees
        the count the previous one committed. A charge with a cost first locks
        the server's row of the month (every transaction that takes both locks
        the month's before the member's, so none deadlock), so charges
        against the monthly budget queue on it. Refusals change nothing that
        :meth:`usage` or :meth:`spend` can see. A charge journals ``job`` (if
        given) in the same transaction, with this charge in its columns.
        """
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        image_count(images, minimum=1)
        non_negative("cost", cost)
        now = utc(now)
        today = now.date()
        async with self._transaction() as conn:
            await self._ensure_guild(conn, guild_id)
            month_spent = await self._locked_month_spend(conn, guild_id, today) if cost else 0
            await conn.execute(
                "INSERT INTO member_usage (guild_id, member_id, day) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                guild_id,
                member_id,
                today,
            )
            row = await conn.fetchrow(
                "SELECT day, images_today, last_request_at, spent_today FROM member_usage "
                "WHERE guild_id = $1 AND member_id = $2 FOR UPDATE",
                guild_id,
                member_id,
            )
            usage = usage_on(today, row["day"], row["images_today"], row["last_request_at"], row["spent_today"])
            decision = decide_charge(usage, images, limits=limits, now=now)
            if not decision.charged:
                return decision
            if cost:
                spend = Spend(month_spent, usage.spent_today)
                over = decide_budget(await self._budget(conn, guild_id), spend, cost)
                if over is not None:
                    return replace(decision, charged=False, usage=usage, over_budget=over, spend=spend)
                await self._add_month_spend(conn, guild_id, today, cost)
                decision = replace(decision, spend=Spend(spend.month + cost, spend.member_today + cost))
            await conn.execute(
                "UPDATE member_usage SET day = $3, images_today = $4, last_request_at = $5, spent_today = $6 "
                "WHERE guild_id = $1 AND member_id = $2",
                guild_id,
                member_id,
                today,
                decision.usage.images_today,
                now,
                usage.spent_today + cost,
            )
            if job is not None:
                await self._insert_job(conn, replace(job, charged_images=images, charged_day=today, reserved_cost=cost))
        return replace(decision, usage=replace(decision.usage, spent_today=usage.spent_today + cost))

    async def refund(self, guild_id: int, member_id: int, images: int, *, day: date, cost: int = 0) -> None:
        """Give back images charged on ``day`` that were not delivered (never below zero; other days: nothing),
        and ``cost`` reserved (the month's spend, and the member's if ``day`` is still on record).
        """
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        if image_count(images, minimum=0) == 0 and not non_negative("cost", cost):
            return
        async with self._transaction() as conn:
            if cost:
                await self._move_spend(conn, guild_id, member_id, -cost, day)  # month's row first, as charge
            await self._give_back(conn, guild_id, member_id, images, day)

    async def abandon_job(self, job_id: str, *, owner: str, reason: str, now: datetime) -> bool:
        """Fail an unfinished job of ``owner`` and give back its charge from its columns, in one transaction
        (the job's row lock, taken first as by every booking, makes a concurrent booking wait and see it)."""
        async with self._transaction() as conn:
            row = await conn.fetchrow(
                "UPDATE jobs SET state = 'failed', ended_at = $3, error = $4, target = NULL "
                "WHERE job_id = $1 AND owner = $2 AND ended_at IS NULL "
                "RETURNING guild_id, requester_id, charged_images, charged_day, reserved_cost",
                job_id,
                owner,
                utc(now),
                reason,
            )
            if row is None:
                return False
            guild_id, member_id, day = row["guild_id"], row["requester_id"], row["charged_day"]
            if guild_id is None or member_id is None or day is None:
                return True  # charged nothing (the imagine command's jobs)
            # Nothing of it was seen: through the bookings that only move towards the member, whatever an end
            # already booked (some images given back, a cost settled) is completed, never booked twice. The
            # cost first: its month's row is locked before the member's, as by every transaction taking both.
            await self._settle_at(conn, job_id, guild_id, member_id, reserved=row["reserved_cost"], actual=0, day=day)
            await self._refund_up_to(conn, job_id, guild_id, member_id, row["charged_images"], day)
        return True

    async def refund_job(self, job_id: str, guild_id: int, member_id: int, images: int, *, day: date) -> bool:
        """Refund a journaled job's undelivered images up to ``images`` in all: ``False`` if it already was."""
        async with self._transaction() as conn:
            return await self._refund_up_to(conn, job_id, guild_id, member_id, images, day)

    @classmethod
    async def _refund_up_to(cls, conn: Any, job_id: str, guild_id: int, member_id: int, images: int, day: date) -> bool:
        """Raise the job's refund to ``images`` and give back the difference (never lower it)."""
        # The row lock makes a second, concurrent refund wait and then find what this one gave back.
        before = await conn.fetchval("SELECT refunded FROM jobs WHERE job_id = $1 FOR UPDATE", job_id)
        if before is None or before >= images:
            return False
        await conn.execute("UPDATE jobs SET refunded = $1 WHERE job_id = $2", images, job_id)
        await cls._give_back(conn, guild_id, member_id, images - before, day)
        return True

    @staticmethod
    async def _give_back(conn: Any, guild_id: int, member_id: int, images: int, day: date) -> None:
        # One statement: the subtraction happens on the row as locked, never on a stale read.
        await conn.execute(
            "UPDATE member_usage SET images_today = GREATEST(images_today - $1, 0) "
            "WHERE guild_id = $2 AND member_id = $3 AND day = $4",
            images,
            guild_id,
            member_id,
            day,
        )

    # ------------------------------------------------------------- budgets

    @staticmethod
    async def _budget(conn: Any, guild_id: int) -> Budget:
        row = await conn.fetchrow(
            "SELECT budget_monthly, budget_member_daily FROM guilds WHERE guild_id = $1", guild_id
        )
        return Budget() if row is None else Budget(row["budget_monthly"], row["budget_member_daily"])

    @staticmethod
    async def _locked_month_spend(conn: Any, guild_id: int, day: date) -> int:
        """The server's spend in ``day``'s month, its row created if need be and locked until the transaction ends."""
        month = month_of(day)
        await conn.execute(
            "INSERT INTO guild_spend (guild_id, month) VALUES ($1, $2) ON CONFLICT DO NOTHING", guild_id, month
        )
        spent = await conn.fetchval(
            "SELECT spent FROM guild_spend WHERE guild_id = $1 AND month = $2 FOR UPDATE", guild_id, month
        )
        return int(spent)

    @staticmethod
    async def _add_month_spend(conn: Any, guild_id: int, day: date, amount: int) -> None:
        """Move the month's spend by ``amount`` in one statement (never below zero); the guild's row must exist."""
        await conn.execute(
            "INSERT INTO guild_spend AS s (guild_id, month, spent) VALUES ($1, $2, GREATEST($3::BIGINT, 0)) "
            "ON CONFLICT (guild_id, month) DO UPDATE SET spent = GREATEST(s.spent + $3::BIGINT, 0)",
            guild_id,
            month_of(day),
            amount,
        )

    async def _move_spend(self, conn: Any, guild_id: int, member_id: int, amount: int, day: date) -> None:
        """Move the spend of ``day``'s month, then of the member's ``day`` (if still on record), by ``amount``."""
        await self._ensure_guild(conn, guild_id)
        await self._add_month_spend(conn, guild_id, day, amount)
        await conn.execute(
            "UPDATE member_usage SET spent_today = GREATEST(spent_today + $1::BIGINT, 0) "
            "WHERE guild_id = $2 AND member_id = $3 AND day = $4",
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
        async with self._transaction() as conn:
            return await self._settle_at(conn, job_id, guild_id, member_id, reserved=reserved, actual=actual, day=day)

    async def _settle_at(
        self, conn: Any, job_id: str, guild_id: int, member_id: int, *, reserved: int, actual: int, day: date
    ) -> bool:
        """Book the job's cost at ``actual`` if that is its first booking or lowers it (see :func:`settled_cost`)."""
        row = await conn.fetchrow("SELECT cost, cost_settled FROM jobs WHERE job_id = $1 FOR UPDATE", job_id)
        booked = settled_cost(row, reserved=reserved, actual=actual)
        if booked is None:
            return False
        await conn.execute("UPDATE jobs SET cost = $1, cost_settled = true WHERE job_id = $2", actual, job_id)
        if actual != booked:
            await self._move_spend(conn, guild_id, member_id, actual - booked, day)
        return True

    async def budget(self, guild_id: int) -> Budget:
        """The server's spending caps."""
        check_id("guild_id", guild_id)
        async with self._connection() as conn:
            return await self._budget(conn, guild_id)

    async def set_budget(
        self, guild_id: int, *, actor_id: int, monthly: int | None = None, member_daily: int | None = None
    ) -> Budget:
        """Change the given caps under the guild's row lock; one ``budget`` audit entry (none if unchanged)."""
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        non_negative("monthly", monthly)
        non_negative("member_daily", member_daily)
        async with self._transaction() as conn:
            await self._locked_guild(conn, guild_id)
            old = await self._budget(conn, guild_id)
            new = Budget(
                old.monthly if monthly is None else monthly,
                old.member_daily if member_daily is None else member_daily,
            )
            if new == old:
                return old
            await conn.execute(
                "UPDATE guilds SET budget_monthly = $2, budget_member_daily = $3 WHERE guild_id = $1",
                guild_id,
                new.monthly,
                new.member_daily,
            )
            await self._audit(conn, guild_id, actor_id, "budget", budget_audit_text(old), budget_audit_text(new))
        return new

    async def spend(self, guild_id: int, member_id: int | None, *, now: datetime) -> Spend:
        """The server's spend this calendar month and (with a member) the member's today, in one snapshot."""
        check_id("guild_id", guild_id)
        today = utc(now).date()
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "SELECT (SELECT spent FROM guild_spend WHERE guild_id = $1 AND month = $2) AS month, "
                "(SELECT spent_today FROM member_usage WHERE guild_id = $1 AND member_id = $3 AND day = $4) AS today",
                guild_id,
                month_of(today),
                member_id,
                today,
            )
        return Spend(row["month"] or 0, row["today"] or 0)

    async def job_tallies(self, guild_id: int, *, since: datetime) -> list[JobTally]:
        """The server's jobs created since ``since``, per member and model."""
        check_id("guild_id", guild_id)
        async with self._connection() as conn:
            rows = await conn.fetch(TALLY_SQL.format(guild="$1", since="$2"), guild_id, utc(since, "since"))
        return [JobTally(row[0], row[1], *(int(figure) for figure in row[2:])) for row in rows]
