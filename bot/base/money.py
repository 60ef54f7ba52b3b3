"""Money as every layer counts it: whole micro-dollars, their text, and the periods budgets run in.

Amounts are ``int`` micro-dollars ($1 = 1 000 000), so sums and caps are exact on both storage backends.
Imports nothing of the bot's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum

MICROS_PER_USD = 1_000_000


MAX_CAP_USD = Decimal(1_000_000)
"""The largest budget cap a moderator may set, in dollars: anything above is a typo (0 means no cap)."""


def micros(usd: Decimal) -> int:
    """Dollars as whole micro-dollars (half a micro-dollar rounds up)."""
    return int((usd * MICROS_PER_USD).to_integral_value(rounding=ROUND_HALF_UP))


def parse_cap(value: float | str | Decimal) -> int:
    """A budget cap a moderator typed, in dollars, as micro-dollars; ``ValueError`` says what is wrong."""
    try:
        usd = value if isinstance(value, Decimal) else Decimal(str(value).strip().lstrip("$"))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount of dollars") from None
    if not usd.is_finite():
        raise ValueError(f"{value!r} is not an amount of dollars")
    if usd < 0:
        raise ValueError(f"a budget cannot be negative (got {usd}); 0 means no cap")
    if usd > MAX_CAP_USD:
        raise ValueError(f"{usd} dollars is more than the largest cap, {MAX_CAP_USD:,} dollars; 0 means no cap")
    amount = micros(usd)
    if usd and not amount:  # would read as 0, "no cap": the opposite of what was asked
        raise ValueError(f"{usd} dollars is less than the smallest cap, $0.000001; 0 means no cap")
    return amount


def cap_text(amount: int) -> str:
    """A spending cap in micro-dollars as ``$1.50``, or ``no cap`` for 0."""
    return "no cap" if amount == 0 else usd(amount)


def usd(amount: int) -> str:
    """Micro-dollars for people: ``$12.50``; small amounts keep the cents' fractions (``$0.0035``)."""
    value = Decimal(amount) / MICROS_PER_USD
    if amount == 0 or abs(value) >= 1 or amount % 10_000 == 0:
        return f"${value:,.2f}"
    return f"${value.quantize(Decimal('0.000001')).normalize():f}"


def month_of(day: date) -> date:
    """The first day of ``day``'s calendar month: the key of a server's monthly spend."""
    return day.replace(day=1)


def next_month(day: date) -> datetime:
    """Midnight UTC at the start of the month after ``day``'s: when a monthly budget resets."""
    first = month_of(day)
    following = (first + timedelta(days=32)).replace(day=1)
    return datetime.combine(following, datetime.min.time(), tzinfo=UTC)


def next_day(day: date) -> datetime:
    """Midnight UTC after ``day``: when a member's daily budget (and daily images) reset."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


class BudgetScope(StrEnum):
    """Which cap a job would pass."""

    MONTHLY = "monthly"
    MEMBER_DAILY = "member_daily"
