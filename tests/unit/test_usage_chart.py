"""The usage chart: drawn from the report's per-day figures, which add up to the tables' totals."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta

import pytest
from matplotlib.container import BarContainer
from PIL import Image

from bot.moderation.usage import Tally, UsageReport, usage_report
from bot.moderation.usage_chart import (
    HEIGHT_PX,
    MAX_MODELS,
    OTHER,
    WIDTH_PX,
    chart_series,
    draw_chart,
    render_chart,
    usage_chart_png,
)
from bot.storage import DayTally, Repository
from tests.storage import T0, make_job

GUILD, MEMBER, OTHER_MEMBER = 1001, 2002, 2003
SCHNELL, DEV = "black-forest-labs/flux-schnell", "black-forest-labs/flux-dev"


async def journaled_report(repository: Repository) -> UsageReport:
    """Jobs on three days of the last seven, two models, costs booked: the report as the admin command reads it."""
    jobs = [
        (make_job("a", guild_id=GUILD, requester_id=MEMBER, images_delivered=4, created=T0 - timedelta(days=3)), 0),
        (make_job("b", guild_id=GUILD, requester_id=MEMBER, images_delivered=2, created=T0 - timedelta(days=3)), 0),
        (make_job("c", guild_id=GUILD, requester_id=OTHER_MEMBER, images_delivered=1, created=T0), 5_000),
        (replace(make_job("d", guild_id=GUILD, requester_id=MEMBER, images_delivered=3, created=T0), model=DEV), 0),
        (make_job("e", guild_id=GUILD, requester_id=MEMBER, images_delivered=1, created=T0 - timedelta(days=1)), 0),
        (make_job("old", guild_id=GUILD, requester_id=MEMBER, images_delivered=9, created=T0 - timedelta(days=9)), 0),
    ]
    for job, _ in jobs:
        await repository.add_job(job)
    for job, cost in [(jobs[0][0], 16_000), (jobs[2][0], 4_000), (jobs[3][0], 30_000)]:
        assert job.requester_id is not None
        await repository.settle_cost(job.job_id, GUILD, job.requester_id, reserved=0, actual=cost, day=T0.date())
    return await usage_report(repository, GUILD, days=7, now=T0 + timedelta(hours=1))


async def test_the_chart_draws_the_report_s_per_day_figures_which_add_up_to_its_totals(
    repository: Repository,
) -> None:
    report = await journaled_report(repository)
    series = chart_series(report)
    assert len(series.days) == 8 and series.days[0] == (T0 - timedelta(days=7)).date() and series.days[-1] == T0.date()
    images = dict(series.images)
    assert images[SCHNELL] == (0, 0, 0, 0, 6, 0, 1, 1)
    assert images[DEV] == (0, 0, 0, 0, 0, 0, 0, 3)
    assert series.spend == (0, 0, 0, 0, 16_000, 0, 0, 34_000)
    # The tables' totals, per model too.
    assert sum(series.images_per_day()) == report.total.images == 11
    assert sum(series.spend) == report.total.cost
    for model, tally in report.models:
        assert sum(images[model]) == tally.images

    figure = draw_chart(series, title="t", locale=None)
    bars, spend = figure.axes
    drawn: dict[str, list[float]] = {}
    for container in bars.containers:
        assert isinstance(container, BarContainer)
        drawn[str(container.get_label())] = [patch.get_height() for patch in container.patches]
    assert drawn == {SCHNELL: list(images[SCHNELL]), DEV: list(images[DEV])}
    (line,) = spend.get_lines()
    assert list(line.get_ydata()) == [micros / 1_000_000 for micros in series.spend]


async def test_the_png_is_valid_bounded_and_drawn_off_the_loop(repository: Repository) -> None:
    report = await journaled_report(repository)
    png = await usage_chart_png(report, locale="de")
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (WIDTH_PX, HEIGHT_PX)


def test_a_year_of_many_models_keeps_its_size_and_groups_the_smallest_models() -> None:
    now = T0
    daily = tuple(
        DayTally((now - timedelta(days=day)).date(), f"owner/model-{m}", 1, m + 1, 1_000)
        for day in range(366)
        for m in range(12)
    )
    report = UsageReport(GUILD, 365, now - timedelta(days=365), now, Tally(), (), (), daily)
    series = chart_series(report)
    assert len(series.images) == MAX_MODELS and series.images[-1][0] == OTHER
    assert series.images[0][0] == "owner/model-11"  # the most images first
    assert sum(series.images_per_day()) == sum(row.images for row in daily)
    png = render_chart(series, title="a year", locale="fr")
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (WIDTH_PX, HEIGHT_PX)


def test_no_job_draws_a_chart_that_says_so() -> None:
    report = UsageReport(GUILD, 30, T0 - timedelta(days=30), T0, Tally(), (), ())
    series = chart_series(report)
    assert series.empty
    figure = draw_chart(series, title="t", locale="de")
    texts = [text.get_text() for axes in figure.axes for text in axes.texts]
    assert texts == ["Keine /imagine-Aufträge in diesem Zeitraum: nichts darzustellen."]


@pytest.mark.parametrize("locale", ["de", "fr", "es-ES", "pt-BR"])
def test_labels_are_in_the_moderator_s_language(locale: str) -> None:
    daily = (DayTally(T0.date(), SCHNELL, 1, 2, 4_000),)
    report = UsageReport(GUILD, 7, T0 - timedelta(days=7), T0, Tally(), (), (), daily)
    bars, _ = draw_chart(chart_series(report), title="t", locale=locale).axes
    assert bars.get_ylabel() != "images per day"
