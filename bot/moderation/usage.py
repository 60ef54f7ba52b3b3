"""A server's usage over the last days: jobs, predictions, images, failures and spend, in all, per member, per model.

:func:`usage_report` computes it from the jobs journal (with each job's booked
cost); :func:`report_tables` lays it out as aligned text, which the
``/imagine-admin usage`` embed and ``python -m bot usage`` only frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from bot.base.money import usd
from bot.i18n import Text, tr, tr_n
from bot.storage import JobTally, Repository

DEFAULT_DAYS = 30
MAX_DAYS = 365
TOP = 10
"""Members and models listed at most; the totals count everyone."""


@dataclass(frozen=True)
class Tally:
    """Jobs, predictions made, images delivered, failures (failed or timed out) and booked spend in micro-dollars."""

    jobs: int = 0
    predictions: int = 0
    images: int = 0
    failures: int = 0
    cost: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.jobs + other.jobs,
            self.predictions + other.predictions,
            self.images + other.images,
            self.failures + other.failures,
            self.cost + other.cost,
        )


@dataclass(frozen=True)
class UsageReport:
    """One server's figures since ``since`` (``days`` days before ``until``)."""

    guild_id: int
    days: int
    since: datetime
    until: datetime
    total: Tally
    members: tuple[tuple[int | None, Tally], ...]
    """Every member with jobs in the period, the biggest spenders (then most jobs) first."""
    models: tuple[tuple[str, Tally], ...]
    """Every model used in the period, in the same order."""


def check_days(days: int) -> int:
    """A period for a report: 1 to :data:`MAX_DAYS` whole days; ``ValueError`` says what is wrong."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be a whole number from 1 to {MAX_DAYS}, got {days!r}")
    return days


async def usage_report(repository: Repository, guild_id: int, *, days: int, now: datetime) -> UsageReport:
    """The server's usage over the ``days`` days before ``now`` (jobs counted by when they were accepted)."""
    since = now - timedelta(days=check_days(days))
    tallies = await repository.job_tallies(guild_id, since=since)
    return UsageReport(
        guild_id=guild_id,
        days=days,
        since=since,
        until=now,
        total=sum((_tally(row) for row in tallies), Tally()),
        members=_ranked(tallies, lambda row: row.member_id),
        models=_ranked(tallies, lambda row: row.model),
    )


def _tally(row: JobTally) -> Tally:
    return Tally(row.jobs, row.predictions, row.images, row.failures, row.cost)


_Key = TypeVar("_Key", int | None, str)


def _ranked(rows: Iterable[JobTally], key: Callable[[JobTally], _Key]) -> tuple[tuple[_Key, Tally], ...]:
    totals: dict[_Key, Tally] = {}
    for row in rows:
        totals[key(row)] = totals.get(key(row), Tally()) + _tally(row)
    return tuple(sorted(totals.items(), key=lambda item: (-item[1].cost, -item[1].jobs, str(item[0]))))


# ---------------------------------------------------------------------------- text


COLUMNS = (tr("jobs"), tr("predictions"), tr("images"), tr("failed"), tr("spend"))
"""The figures' column headers, in the order of :func:`figures`."""
TOTALS, TOP_MEMBERS, PER_MODEL = tr("Totals"), tr("Top members"), tr("Per model")
"""The report's sections."""


def column_names(locale: str | None = None) -> tuple[str, ...]:
    """:data:`COLUMNS` in ``locale``."""
    return tuple(column.render(locale) for column in COLUMNS)


def aligned(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Lines of columns aligned for a monospace font: the first to the left, the figures to the right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        first = [row[0].ljust(widths[0])] if widths[0] else []
        figures = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([*first, *figures]).rstrip()

    return [line(row) for row in [header, *rows]]


def figures(tally: Tally) -> tuple[str, str, str, str, str]:
    """A tally's figures as shown under :data:`COLUMNS`."""
    return f"{tally.jobs:,}", f"{tally.predictions:,}", f"{tally.images:,}", f"{tally.failures:,}", usd(tally.cost)


def report_tables(
    report: UsageReport, *, member_name: Callable[[int | None], str], locale: str | None = None
) -> dict[str, list[str]]:
    """Section title → the lines of an aligned table: ``Totals``, ``Top members``, ``Per model`` (empty ones left out).

    ``member_name`` shows a member (the embed and the command line name them differently); the top
    :data:`TOP` members and models are listed. Titles and headers are in ``locale`` (``None``: English).
    """
    columns = column_names(locale)
    everyone = tr("all").render(locale)
    sections = {TOTALS.render(locale): aligned(("", *columns), [(everyone, *figures(report.total))])}
    if report.members:
        rows = [(member_name(member), *figures(tally)) for member, tally in report.members[:TOP]]
        sections[TOP_MEMBERS.render(locale)] = aligned((tr("member").render(locale), *columns), rows)
    if report.models:
        rows = [(_short(model), *figures(tally)) for model, tally in report.models[:TOP]]
        sections[PER_MODEL.render(locale)] = aligned((tr("model").render(locale), *columns), rows)
    return sections


def _short(model: str, width: int = 40) -> str:
    """A model's name cut to fit a table row (a version hash is long)."""
    return model if len(model) <= width else model[: width - 1] + "…"


def report_title(report: UsageReport) -> Text:
    """``Usage over the last 30 days`` (with the dates, UTC)."""
    since, until = report.since.strftime("%Y-%m-%d"), report.until.strftime("%Y-%m-%d")
    return tr_n(
        "Usage over the last day ({since} to {until}, UTC)",
        "Usage over the last {n} days ({since} to {until}, UTC)",
        report.days,
        since=since,
        until=until,
    )
