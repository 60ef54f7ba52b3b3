"""The SQLite backend's member usage and spending: charges against limits and budgets, refunds,
real costs settled, the budgets themselves and the tallies the usage report reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import aiosqlite

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
from bot.storage.sqlite.base import SqliteBase, from_text, to_text


class SqliteUsage(SqliteBase):
    """What members used and servers spent; a charge reads and writes under one write lock."""

    @staticmethod
    async def _usage(conn: aiosqlite.Connection, guild_id: int, member_id: int, today: date) -> Usage:
        row = await SqliteBase._one(
            conn,
            "SELECT day, images_today, last_request_at, spent_today FROM member_usage "
            "WHERE guild_id = ? AND member_id = ?",
            (guild_id, member_id),
        )
        if row is None:
            return usage_on(today, None, 0, None)
        last = None if row[2] is None else from_text(str(row[2]))
        return usage_on(today, date.fromisoformat(str(row[0])), int(row[1]), last, int(row[3]))

    async def usage(self, guild_id: int, member_id: int, *, now: datetime) -> Usage:
        """A member's usage today (UTC day of ``now``)."""
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        today = utc(now).date()
        async with self._transaction(write=False) as conn:
            return await self._usage(conn, guild_id, member_id, today)

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

        Refusals change nothing. A charge moves ``last_request_at`` to ``now``,
        adds ``images`` to the count of ``now``'s UTC day (starting from 0
        on a new day) and reserves ``cost`` against the month's and the member's
        day's spend. ``0`` in ``limits`` or the budget means no limit. A charge
        journals ``job`` (if given) in the same transaction, with this charge in its columns.
        """
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        image_count(images, minimum=1)
        non_negative("cost", cost)
        now = utc(now)
        today = now.date()
        async with self._transaction(write=True) as conn:
            # BEGIN IMMEDIATE holds the write lock from these reads to the writes below.
            usage = await self._usage(conn, guild_id, member_id, today)
            decision = decide_charge(usage, images, limits=limits, now=now)
            if not decision.charged:
                return decision
            await self._ensure_guild(conn, guild_id)
            if cost:
                spend = Spend(await self._month_spend(conn, guild_id, today), usage.spent_today)
                over = decide_budget(await self._budget(conn, guild_id), spend, cost)
                if over is not None:
                    return replace(decision, charged=False, usage=usage, over_budget=over, spend=spend)
                await self._add_month_spend(conn, guild_id, today, cost)
                decision = replace(decision, spend=Spend(spend.month + cost, spend.member_today + cost))
            await conn.execute(
                """
                INSERT INTO member_usage (guild_id, member_id, day, images_today, last_request_at, spent_today)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (guild_id, member_id) DO UPDATE SET
                    day = excluded.day,
                    images_today = excluded.images_today,
                    last_request_at = excluded.last_request_at,
                    spent_today = excluded.spent_today
                """,
                (
                    guild_id,
                    member_id,
                    today.isoformat(),
                    decision.usage.images_today,
                    to_text(now),
                    usage.spent_today + cost,
                ),
            )
            if job is not None:
                await self._insert_job(conn, replace(job, charged_images=images, charged_day=today, reserved_cost=cost))
        return replace(decision, usage=replace(decision.usage, spent_today=usage.spent_today + cost))

    async def refund_job(self, job_id: str, guild_id: int, member_id: int, images: int, *, day: date) -> bool:
        """Refund a journaled job's undelivered images up to ``images`` in all: ``False`` if it already was."""
        async with self._transaction(write=True) as conn:
            return await self._refund_up_to(conn, job_id, guild_id, member_id, images, day)

    @classmethod
    async def _refund_up_to(
        cls, conn: aiosqlite.Connection, job_id: str, guild_id: int, member_id: int, images: int, day: date
    ) -> bool:
        """Raise the job's refund to ``images`` and give back the difference (never lower it)."""
        row = await cls._one(conn, "SELECT refunded FROM jobs WHERE job_id = ?", (job_id,))
        if row is None or int(row[0]) >= images:
            return False
        await conn.execute("UPDATE jobs SET refunded = ? WHERE job_id = ?", (images, job_id))
        await cls._give_back(conn, guild_id, member_id, images - int(row[0]), day)
        return True

    async def abandon_job(self, job_id: str, *, owner: str, reason: str, now: datetime) -> bool:
        """Fail an unfinished job of ``owner`` and give back its charge from its columns, in one transaction."""
        async with self._transaction(write=True) as conn:
            row = await self._one(
                conn,
                "UPDATE jobs SET state = 'failed', ended_at = ?, error = ?, target = NULL "
                "WHERE job_id = ? AND owner = ? AND ended_at IS NULL "
                "RETURNING guild_id, requester_id, charged_images, charged_day, reserved_cost",
                (to_text(now), reason, job_id, owner),
            )
            if row is None:
                return False
            guild_id, member_id, images, day_text, reserved = row
            if guild_id is None or member_id is None or day_text is None:
                return True  # charged nothing (the imagine command's jobs)
            day = date.fromisoformat(day_text)
            # Nothing of it was seen: through the bookings that only move towards the member, whatever an end
            # already booked (some images given back, a cost settled) is completed, never booked twice.
            await self._settle_at(conn, job_id, guild_id, member_id, reserved=reserved, actual=0, day=day)
            await self._refund_up_to(conn, job_id, guild_id, member_id, images, day)
        return True

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
        async with self._transaction(write=True) as conn:
            await self._give_back(conn, guild_id, member_id, images, day)
            if cost:
                await self._move_spend(conn, guild_id, member_id, -cost, day)

    @staticmethod
    async def _give_back(conn: aiosqlite.Connection, guild_id: int, member_id: int, images: int, day: date) -> None:
        await conn.execute(
            """
            UPDATE member_usage SET images_today = MAX(images_today - ?, 0)
            WHERE guild_id = ? AND member_id = ? AND day = ?
            """,
            (images, guild_id, member_id, day.isoformat()),
        )

    # ------------------------------------------------------------- budgets

    @staticmethod
    async def _budget(conn: aiosqlite.Connection, guild_id: int) -> Budget:
        row = await SqliteBase._one(
            conn, "SELECT budget_monthly, budget_member_daily FROM guilds WHERE guild_id = ?", (guild_id,)
        )
        return Budget() if row is None else Budget(int(row[0]), int(row[1]))

    @staticmethod
    async def _month_spend(conn: aiosqlite.Connection, guild_id: int, day: date) -> int:
        row = await SqliteBase._one(
            conn,
            "SELECT spent FROM guild_spend WHERE guild_id = ? AND month = ?",
            (guild_id, month_of(day).isoformat()),
        )
        return 0 if row is None else int(row[0])

    @staticmethod
    async def _add_month_spend(conn: aiosqlite.Connection, guild_id: int, day: date, amount: int) -> None:
        """Move the month's spend by ``amount`` (never below zero); the guild's row must exist."""
        await conn.execute(
            "INSERT INTO guild_spend (guild_id, month, spent) VALUES (?, ?, MAX(?, 0)) "
            "ON CONFLICT (guild_id, month) DO UPDATE SET spent = MAX(spent + ?, 0)",
            (guild_id, month_of(day).isoformat(), amount, amount),
        )

    async def _move_spend(
        self, conn: aiosqlite.Connection, guild_id: int, member_id: int, amount: int, day: date
    ) -> None:
        """Move the spend of ``day``'s month and of the member's ``day`` (if still on record) by ``amount``."""
        await self._ensure_guild(conn, guild_id)
        await self._add_month_spend(conn, guild_id, day, amount)
        await conn.execute(
            "UPDATE member_usage SET spent_today = MAX(spent_today + ?, 0) "
            "WHERE guild_id = ? AND member_id = ? AND day = ?",
            (amount, guild_id, member_id, day.isoformat()),
        )

    async def settle_cost(
        self, job_id: str, guild_id: int, member_id: int, *, reserved: int, actual: int, day: date
    ) -> bool:
        """Book a journaled job's real cost (lowered later if it delivered less); the spend moves by the difference."""
        check_id("guild_id", guild_id)
        check_id("member_id", member_id)
        non_negative("reserved", reserved)
        non_negative("actual", actual)
        async with self._transaction(write=True) as conn:
            return await self._settle_at(conn, job_id, guild_id, member_id, reserved=reserved, actual=actual, day=day)

    async def _settle_at(
        self,
        conn: aiosqlite.Connection,
        job_id: str,
        guild_id: int,
        member_id: int,
        *,
        reserved: int,
        actual: int,
        day: date,
    ) -> bool:
        """Book the job's cost at ``actual`` if that is its first booking or lowers it (see :func:`settled_cost`)."""
        row = await self._one(conn, "SELECT cost, cost_settled FROM jobs WHERE job_id = ?", (job_id,))
        booked = settled_cost(row, reserved=reserved, actual=actual)
        if booked is None:
            return False
        await conn.execute("UPDATE jobs SET cost = ?, cost_settled = 1 WHERE job_id = ?", (actual, job_id))
        if actual != booked:
            await self._move_spend(conn, guild_id, member_id, actual - booked, day)
        return True

    async def budget(self, guild_id: int) -> Budget:
        """The server's spending caps."""
        check_id("guild_id", guild_id)
        async with self._transaction(write=False) as conn:
            return await self._budget(conn, guild_id)

    async def set_budget(
        self, guild_id: int, *, actor_id: int, monthly: int | None = None, member_daily: int | None = None
    ) -> Budget:
        """Change the given caps; one ``budget`` audit entry shows both before and after (none if unchanged)."""
        check_id("guild_id", guild_id)
        check_id("actor_id", actor_id)
        non_negative("monthly", monthly)
        non_negative("member_daily", member_daily)
        async with self._transaction(write=True) as conn:
            old = await self._budget(conn, guild_id)
            new = Budget(
                old.monthly if monthly is None else monthly,
                old.member_daily if member_daily is None else member_daily,
            )
            if new == old:
                return old
            await self._ensure_guild(conn, guild_id)
            await conn.execute(
                "UPDATE guilds SET budget_monthly = ?, budget_member_daily = ? WHERE guild_id = ?",
                (new.monthly, new.member_daily, guild_id),
            )
            await self._audit(conn, guild_id, actor_id, "budget", budget_audit_text(old), budget_audit_text(new))
        return new

    async def spend(self, guild_id: int, member_id: int | None, *, now: datetime) -> Spend:
        """The server's spend this calendar month and (with a member) the member's today."""
        check_id("guild_id", guild_id)
        today = utc(now).date()
        async with self._transaction(write=False) as conn:
            month = await self._month_spend(conn, guild_id, today)
            member = 0 if member_id is None else (await self._usage(conn, guild_id, member_id, today)).spent_today
        return Spend(month, member)

    async def job_tallies(self, guild_id: int, *, since: datetime) -> list[JobTally]:
        """The server's jobs created since ``since``, per member and model."""
        check_id("guild_id", guild_id)
        async with self._transaction(write=False) as conn:
            rows = await self._all(conn, TALLY_SQL.format(guild="?", since="?"), (guild_id, to_text(since)))
        return [
            JobTally(None if row[0] is None else int(row[0]), str(row[1]), *(int(figure) for figure in row[2:]))
            for row in rows
        ]
