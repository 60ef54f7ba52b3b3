"""Prices, costs, caps and the words of a budget refusal; the usage report's tables."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from bot.api.modelref import ModelRef
from bot.base.money import BudgetScope, next_month, parse_cap, usd
from bot.moderation.costs import DEFAULT_RUN_TIME, Price, PriceUnit, Pricing, budget_refusal, parse_prices
from bot.moderation.usage import Tally, UsageReport, report_tables
from bot.settings import load_settings
from tests.unit.test_settings import BASE_ENV, problems_for

FLUX = ModelRef.parse("black-forest-labs/flux-schnell")
SDXL = ModelRef.parse("stability-ai/sdxl")
SDXL_V1 = ModelRef.parse("stability-ai/sdxl:abc123")


def test_prices_per_image_and_per_second_with_a_version_winning_over_its_model() -> None:
    prices = parse_prices(" black-forest-labs/flux-schnell=0.003/image, stability-ai/sdxl=0.000225/s,")
    assert prices.of(FLUX) == Price(Decimal("0.003"), PriceUnit.IMAGE)
    assert prices.of(SDXL_V1) == Price(Decimal("0.000225"), PriceUnit.SECOND)  # the model's price
    assert prices.of(ModelRef.parse("someone/else")) is None
    versioned = parse_prices("stability-ai/sdxl=0.000225/s,stability-ai/sdxl:abc123=$0.01/image")
    assert versioned.of(SDXL_V1) == Price(Decimal("0.01"), PriceUnit.IMAGE)
    assert versioned.of(SDXL) == Price(Decimal("0.000225"), PriceUnit.SECOND)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("flux=0.003/image", "not a model reference"),
        ("black-forest-labs/flux-schnell", "MODEL=PRICE/UNIT"),
        ("black-forest-labs/flux-schnell=0.003/minute", "/image or /s"),
        ("black-forest-labs/flux-schnell=-1/image", "MODEL=PRICE/UNIT"),
        ("black-forest-labs/flux-schnell=1.2.3/image", "not a number"),
        ("black-forest-labs/flux-schnell=5000/image", "between 0 and 1000"),
        ("a/b=1/image,a/b=2/image", "priced twice"),
    ],
)
def test_bad_price_entries_are_named(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_prices(text)


def test_imagine_prices_setting() -> None:
    assert not load_settings(BASE_ENV).prices
    settings = load_settings({**BASE_ENV, "IMAGINE_PRICES": "a/b=0.01/image"})
    assert settings.prices.of(ModelRef.parse("a/b")) == Price(Decimal("0.01"), PriceUnit.IMAGE)
    [problem] = problems_for({**BASE_ENV, "IMAGINE_PRICES": "a/b=0.01/image,c/d=oops"})
    assert problem.startswith("IMAGINE_PRICES:") and "c/d=oops" in problem


def test_costs_are_exact_micro_dollars() -> None:
    prices = parse_prices("black-forest-labs/flux-schnell=0.003/image,stability-ai/sdxl=0.000225/s")
    assert prices.cost(FLUX, images=3, seconds=None) == 9_000
    assert prices.cost(SDXL, images=4, seconds=2.5) == 563  # 562.5 rounds half up
    assert prices.cost(SDXL, images=1, seconds=None) == 0  # no predict_time: nothing to bill
    assert prices.cost(ModelRef.parse("free/model"), images=4, seconds=9.0) == 0
    # Ten thousand 0.1 s jobs add up exactly (floats would drift).
    assert sum(prices.cost(SDXL, images=1, seconds=0.1) for _ in range(10_000)) == 230_000


async def test_estimates_use_the_usual_run_time_or_the_default() -> None:
    prices = parse_prices("black-forest-labs/flux-schnell=0.003/image,stability-ai/sdxl=0.001/s")
    run_times = {"stability-ai/sdxl:abc123": 4.0}

    async def run_time(model: str) -> float | None:
        return run_times.get(model)

    pricing = Pricing(prices, run_time)
    assert await pricing.estimate(FLUX, 4) == 12_000
    assert await pricing.estimate(SDXL_V1, 4) == 4_000
    assert await pricing.estimate(SDXL, 1) == int(DEFAULT_RUN_TIME * 1_000)
    assert pricing.actual(SDXL, images=1, predict_time=1.5) == 1_500


@pytest.mark.parametrize(
    ("typed", "micros"), [(0, 0), (5, 5_000_000), (0.25, 250_000), ("$1.5", 1_500_000), (1e6, 10**12)]
)
def test_caps(typed: float | str, micros: int) -> None:
    assert parse_cap(typed) == micros


@pytest.mark.parametrize(
    ("typed", "says"), [(-1, "negative"), (float("nan"), "not an amount"), (1e7, "largest"), (4e-7, "smallest")]
)
def test_bad_caps_are_explained(typed: float, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_cap(typed)


def test_amounts_for_people() -> None:
    assert [usd(n) for n in (0, 3_000, 225, 10_000, 1_234_567, 12_500_000)] == [
        "$0.00",
        "$0.003",
        "$0.000225",
        "$0.01",
        "$1.23",
        "$12.50",
    ]


def test_budget_refusals_say_spend_cap_cost_and_reset() -> None:
    monthly = str(
        budget_refusal(BudgetScope.MONTHLY, spent=4_990_000, cap=5_000_000, cost=30_000, day=date(2025, 12, 31))
    )
    reset = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    assert "$5.00" in monthly and "$4.99" in monthly and "$0.03" in monthly and f"<t:{reset}:R>" in monthly
    daily = str(budget_refusal(BudgetScope.MEMBER_DAILY, spent=100_000, cap=100_000, cost=3_000, day=date(2025, 3, 14)))
    assert "Your budget for today is $0.10" in daily and "midnight UTC" in daily
    assert next_month(date(2024, 2, 29)) == datetime(2024, 3, 1, tzinfo=UTC)


def test_report_tables_align_figures() -> None:
    report = UsageReport(
        guild_id=1,
        days=30,
        since=datetime(2025, 2, 12, tzinfo=UTC),
        until=datetime(2025, 3, 14, tzinfo=UTC),
        total=Tally(120, 118, 400, 3, 12_345_678),
        members=((7, Tally(100, 99, 390, 1, 12_000_000)), (8, Tally(20, 19, 10, 2, 345_678))),
        models=(("a/b", Tally(120, 118, 400, 3, 12_345_678)),),
    )
    tables = report_tables(report, member_name=lambda member: f"member {member}")
    assert list(tables) == ["Totals", "Top members", "Per model"]
    members = tables["Top members"]
    assert members[0].split() == ["member", "jobs", "predictions", "images", "failed", "spend"]
    assert members[1].split() == ["member", "7", "100", "99", "390", "1", "$12.00"]
    assert len({len(line) for line in members}) == 1  # right-aligned to one width
    assert tables["Totals"][1].split() == ["all", "120", "118", "400", "3", "$12.35"]
