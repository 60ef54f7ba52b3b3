"""Money: prices from ``IMAGINE_PRICES``, the cost of a job, and the words of a budget refusal.

Amounts are whole micro-dollars (``int``; $1 = 1 000 000), so sums and caps are
exact on both storage backends; prices are :class:`~decimal.Decimal` and a cost
is rounded to the micro-dollar once, at the end. Knows nothing of Discord.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from babel.dates import format_skeleton

from bot.api.modelref import InvalidModelRef, ModelRef
from bot.base.money import BudgetScope, micros, next_day, next_month, usd
from bot.i18n import Text, catalog_code, tr

MAX_PRICE = Decimal(1000)
"""The dearest price ``IMAGINE_PRICES`` accepts per image or second: anything above is a typo."""


DEFAULT_RUN_TIME = 10.0
"""Seconds assumed for a per-second model that never ran here, when estimating a job before it starts.

Enough for most image models on a GPU (Flux schnell 1-2 s, SDXL about 5-10 s); the estimate only reserves
money, and the difference to the real ``metrics.predict_time`` is given back or added when the job ends.
"""


class PriceUnit(StrEnum):
    """What a price is for."""

    IMAGE = "image"
    SECOND = "s"


@dataclass(frozen=True)
class Price:
    """Dollars per output image or per second of ``metrics.predict_time``."""

    usd: Decimal
    unit: PriceUnit

    def __str__(self) -> str:
        return f"${self.usd.normalize():f}/{self.unit}"


_ENTRY = re.compile(r"^(?P<model>[^=]+)=\s*\$?(?P<amount>[0-9.]+)\s*/\s*(?P<unit>[A-Za-z]+)$")
_UNITS = {
    "image": PriceUnit.IMAGE,
    "img": PriceUnit.IMAGE,
    "s": PriceUnit.SECOND,
    "sec": PriceUnit.SECOND,
    "second": PriceUnit.SECOND,
}


@dataclass(frozen=True)
class Prices:
    """The owner's prices by model; a model without one costs nothing.

    Keys are ``owner/name`` or ``owner/name:version``: a version's own price wins over its model's.
    """

    by_model: Mapping[str, Price]

    def __bool__(self) -> bool:
        return bool(self.by_model)

    def of(self, model: ModelRef) -> Price | None:
        """The price that applies to ``model``, if any."""
        return self.by_model.get(str(model)) or self.by_model.get(model.base)

    def cost(self, model: ModelRef, *, images: int, seconds: float | None) -> int:
        """Micro-dollars for ``images`` delivered or ``seconds`` of prediction (whichever the price counts)."""
        price = self.of(model)
        if price is None:
            return 0
        # repr: the float's shortest exact decimal form (0.1 s is 0.1, not 0.1000000000000000055…).
        per_second = price.unit is PriceUnit.SECOND
        quantity = Decimal(repr(max(seconds or 0.0, 0.0))) if per_second else Decimal(max(images, 0))
        return micros(price.usd * quantity)


NO_PRICES = Prices({})


def parse_prices(text: str) -> Prices:
    """``owner/name=0.003/image,owner/name:version=0.000225/s``; ``ValueError`` names the bad entry."""
    prices: dict[str, Price] = {}
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        match = _ENTRY.match(entry)
        if match is None:
            raise ValueError(f"{entry!r} is not MODEL=PRICE/UNIT (for example owner/name=0.003/image)")
        try:
            model = ModelRef.parse(match["model"])
        except InvalidModelRef as exc:
            raise ValueError(f"in {entry!r}: {exc}") from None
        unit = _UNITS.get(match["unit"].lower())
        if unit is None:
            raise ValueError(f"in {entry!r}: the unit must be /image or /s, got /{match['unit']}")
        try:
            amount = Decimal(match["amount"])
        except InvalidOperation:
            raise ValueError(f"in {entry!r}: {match['amount']!r} is not a number of dollars") from None
        if not amount.is_finite() or amount > MAX_PRICE:
            raise ValueError(f"in {entry!r}: a price must be between 0 and {MAX_PRICE} dollars")
        key = str(model)
        if key in prices:
            raise ValueError(f"{key} is priced twice")
        prices[key] = Price(amount, unit)
    return Prices(prices)


class Pricing:
    """What jobs cost: estimated before they start, real once they end."""

    def __init__(self, prices: Prices, run_time: Callable[[str], Awaitable[float | None]]) -> None:
        """``run_time(model)``: the model's usual ``metrics.predict_time``, if it ever ran."""
        self.prices = prices
        self._run_time = run_time

    async def estimate(self, model: ModelRef, images: int) -> int:
        """Micro-dollars to reserve for a job: its images, or its model's usual run time.

        A model that never ran here is assumed to take :data:`DEFAULT_RUN_TIME`. The usual run time is of
        whole predictions, however many images each made, so it is not multiplied.
        """
        price = self.prices.of(model)
        if price is None:
            return 0
        seconds = None
        if price.unit is PriceUnit.SECOND:
            seconds = await self._run_time(str(model))
            seconds = DEFAULT_RUN_TIME if seconds is None else seconds
        return self.prices.cost(model, images=images, seconds=seconds)

    def actual(self, model: ModelRef, *, images: int, predict_time: float | None) -> int:
        """Micro-dollars a finished job cost: images delivered, or ``metrics.predict_time``."""
        return self.prices.cost(model, images=images, seconds=predict_time)


# ---------------------------------------------------------------------------- budget periods and refusals


def next_midnight_text(day: date) -> Text:
    """When a daily limit charged on ``day`` resets, as members read it: ``<t:…:R> (midnight UTC)``."""
    when = f"<t:{int(next_day(day).timestamp())}:R>"
    return tr("{when} (midnight UTC)", when=when)


@dataclass(frozen=True)
class DayOfMonth:
    """A day and its month (``1 January``), in the reader's language."""

    day: date

    def render(self, locale: str | None = None) -> str:
        code = catalog_code(locale)
        if code is None:
            return f"{self.day:%-d %B}"
        return format_skeleton("MMMMd", self.day, locale=code)

    def __str__(self) -> str:
        return self.render(None)


def budget_refusal(scope: BudgetScope, *, spent: int, cap: int, cost: int, day: date) -> Text:
    """What a member reads when a job's estimated ``cost`` would take ``spent`` past ``cap`` (charged on ``day``)."""
    if scope is BudgetScope.MONTHLY:
        resets = next_month(day)
        when = f"<t:{int(resets.timestamp())}:R>"
        return tr(
            "This server's budget for this month is {cap} and {spent} of it is spent; this job would cost about "
            "{cost}. It resets {when} ({day}, UTC).",
            cap=usd(cap),
            spent=usd(spent),
            cost=usd(cost),
            when=when,
            day=DayOfMonth(resets.date()),
        )
    return tr(
        "Your budget for today is {cap} and you have spent {spent}; this job would cost about {cost}. "
        "It resets {when}.",
        cap=usd(cap),
        spent=usd(spent),
        cost=usd(cost),
        when=next_midnight_text(day),
    )
