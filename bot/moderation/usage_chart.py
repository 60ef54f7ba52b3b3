"""The usage report as a picture: images per day stacked by model, and spend per day, as one PNG.

:func:`chart_series` takes the figures from the report's per-day tallies (the same report as the tables);
:func:`draw_chart` lays them out on a matplotlib figure (two panels sharing the days); :func:`render_chart`
makes the PNG, off the event loop (Agg, no pyplot: nothing global is touched, so threads may draw at once).
The size is fixed whatever the period: :data:`WIDTH_PX` by :data:`HEIGHT_PX`.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from bot.base.money import MICROS_PER_USD, usd
from bot.i18n import Text, tr, tr_n
from bot.moderation.usage import UsageReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WIDTH_PX, HEIGHT_PX, DPI = 1000, 640, 100
"""The PNG's size in pixels (``DPI`` dots per inch of the figure)."""
MAX_MODELS = 8
"""Models stacked by name at most; the rest are drawn together as other models."""

OTHER = "\x00other"
"""The series key of the models past :data:`MAX_MODELS` (no model reference can be it)."""


@dataclass(frozen=True)
class ChartSeries:
    """What the chart draws: one value per day of ``days`` in every series."""

    days: tuple[date, ...]
    images: tuple[tuple[str, tuple[int, ...]], ...]
    """Model (or :data:`OTHER`) → images per day, the most images first."""
    spend: tuple[int, ...]
    """Micro-dollars booked per day."""

    @property
    def empty(self) -> bool:
        """No job in the period: nothing to draw."""
        return not self.images and not any(self.spend)

    def images_per_day(self) -> tuple[int, ...]:
        """The stacks' heights: every model's images of each day."""
        return tuple(sum(values[n] for _, values in self.images) for n in range(len(self.days)))


def chart_series(report: UsageReport) -> ChartSeries:
    """The report's per-day figures laid out for the chart: every day of the period, zeros included."""
    days = report.days_covered()
    index = {day: n for n, day in enumerate(days)}
    per_model: dict[str, list[int]] = {}
    spend = [0] * len(days)
    for row in report.daily:
        at = index.get(row.day)
        if at is None:  # created after the report's end (another machine's clock): not in the tables either
            continue
        per_model.setdefault(row.model, [0] * len(days))[at] += row.images
        spend[at] += row.cost
    ranked = sorted(per_model.items(), key=lambda item: (-sum(item[1]), item[0]))
    kept = ranked[:MAX_MODELS] if len(ranked) <= MAX_MODELS else ranked[: MAX_MODELS - 1]
    series = [(model, tuple(values)) for model, values in kept]
    rest = ranked[len(kept) :]
    if rest:
        series.append((OTHER, tuple(sum(values) for values in zip(*(v for _, v in rest), strict=True))))
    return ChartSeries(days, tuple(series), tuple(spend))


def chart_title(report: UsageReport) -> Text:
    """The chart's title: the period, in days, with its dates (UTC)."""
    return tr_n(
        "Images and spend per day, the last day ({since} to {until}, UTC)",
        "Images and spend per day, the last {n} days ({since} to {until}, UTC)",
        report.days,
        since=f"{report.since:%Y-%m-%d}",
        until=f"{report.until:%Y-%m-%d}",
    )


def draw_chart(series: ChartSeries, *, title: str, locale: str | None) -> Figure:
    """The figure: images per day stacked by model above, spend per day in dollars below."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=13)
    if series.empty:
        axes = figure.add_subplot()
        axes.set_axis_off()
        axes.text(
            0.5, 0.5, tr("No /imagine jobs in this period: nothing to draw.").render(locale), ha="center", va="center"
        )
        return figure
    images, spend = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    positions = list(range(len(series.days)))
    bottom = [0] * len(positions)
    colours = [f"C{n}" for n in range(10)]
    for n, (model, values) in enumerate(series.images):
        label = tr("other models").render(locale) if model == OTHER else _short(model)
        images.bar(positions, values, bottom=bottom, width=0.8, label=label, color=colours[n % len(colours)])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    images.set_ylabel(tr("images per day").render(locale))
    images.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    images.yaxis.get_major_locator().set_params(integer=True)
    dollars = [micros / MICROS_PER_USD for micros in series.spend]
    spend.plot(positions, dollars, marker="o" if len(positions) <= 60 else "", color="C3", linewidth=1.5)
    spend.fill_between(positions, dollars, alpha=0.15, color="C3")
    spend.set_ylabel(tr("spend per day (US$)").render(locale))
    spend.set_ylim(bottom=0)
    spend.yaxis.set_major_formatter(lambda value, _: usd(round(value * MICROS_PER_USD)))
    ticks = _ticks(series.days)
    spend.set_xticks(ticks, [f"{series.days[n]:%m-%d}" for n in ticks])
    spend.set_xlabel(tr("day (UTC)").render(locale))
    for axes in (images, spend):
        axes.grid(axis="y", alpha=0.3)
        axes.set_xlim(-0.6, len(positions) - 0.4)
    return figure


def render_chart(series: ChartSeries, *, title: str, locale: str | None) -> bytes:
    """The PNG (blocking: matplotlib draws on the calling thread)."""
    buffer = io.BytesIO()
    draw_chart(series, title=title, locale=locale).savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


_DRAWING = threading.Lock()
"""One chart at a time: a year of many models takes the worker a second or two, and drawing holds the GIL in
bursts the event loop feels; moderators asking at once wait their turn (on the worker thread, never on the loop)
instead of slowing every job."""


def _render_alone(series: ChartSeries, *, title: str, locale: str | None) -> bytes:
    with _DRAWING:
        return render_chart(series, title=title, locale=locale)


async def usage_chart_png(report: UsageReport, *, locale: str | None) -> bytes:
    """The report's chart as PNG bytes, drawn on a worker thread (never on the event loop), one at a time."""
    series = chart_series(report)
    title = chart_title(report).render(locale)
    return await asyncio.to_thread(_render_alone, series, title=title, locale=locale)


def _ticks(days: Sequence[date], most: int = 12) -> list[int]:
    """Positions of at most ``most`` day labels, evenly spread, the last day always labelled."""
    step = max(1, -(-len(days) // most))
    ticks = list(range(len(days) - 1, -1, -step))
    return sorted(ticks)


def _short(model: str, width: int = 32) -> str:
    """A model's name cut to fit the legend (a version hash is long)."""
    return model if len(model) <= width else model[: width - 1] + "…"
