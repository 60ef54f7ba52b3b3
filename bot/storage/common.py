"""What both repositories share: argument checks, the charge decision, and rows turned into records.

The SQL lives in :mod:`bot.storage.shared` and the backends; what is here is
plain Python, so no part of the storage can drift apart from another on what a
valid id is, when a charge is refused, or how a journal row becomes a
:class:`~bot.storage.JobRecord`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from datetime import UTC, date, datetime
from typing import Any

from bot.base.money import BudgetScope, cap_text
from bot.storage.records import (
    JOB_FIELDS,
    AuditEntry,
    Budget,
    Charge,
    JobRecord,
    LimitChanges,
    Limits,
    RoleLimits,
    Spend,
    Usage,
)

log = logging.getLogger(__name__)

MAX_ID = 2**63 - 1
"""The largest id either backend stores: SQLite INTEGER and PostgreSQL BIGINT are signed 64-bit."""

SETTINGS_CACHE_SIZE = 10_000
"""Guild settings kept in memory at most; past that the cache starts afresh (bounded memory, no LRU bookkeeping)."""


class SettingsChanges:
    """Audit entries held per open transaction and handed to listeners once it commits.

    A backend calls :meth:`record` from its ``_audit`` (inside the transaction), then
    :meth:`take` after the commit or :meth:`discard` after a rollback, keyed by the
    transaction's connection: a change that never committed is never announced.
    """

    def __init__(self) -> None:
        self._listeners: list[Callable[[AuditEntry], None]] = []
        self._pending: dict[int, list[AuditEntry]] = {}

    def listen(self, listener: Callable[[AuditEntry], None]) -> None:
        """Call ``listener`` with every committed entry, from now on."""
        self._listeners.append(listener)

    def record(self, transaction: object, entry: AuditEntry) -> None:
        """Hold ``entry`` until the transaction of ``transaction`` (its connection) ends."""
        self._pending.setdefault(id(transaction), []).append(entry)

    def discard(self, transaction: object) -> None:
        """The transaction was rolled back: forget what it recorded."""
        self._pending.pop(id(transaction), None)

    def take(self, transaction: object) -> list[AuditEntry]:
        """The entries the transaction recorded, now that it has committed (forgotten here)."""
        return self._pending.pop(id(transaction), [])

    def announce(self, entries: list[AuditEntry]) -> None:
        """Tell every listener of each committed entry; a failing listener is logged and the rest still hear."""
        for entry in entries:
            for listener in self._listeners:
                try:
                    listener(entry)
                except Exception:
                    log.exception("a settings-change listener failed on %s", entry.action)


def check_id(name: str, value: int) -> int:
    """Refuse an id the database would mangle or its driver reject (both take signed 64-bit integers)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise ValueError(f"{name} must be an integer between 0 and 2**63-1, got {value!r}")
    return value


def utc(moment: datetime, name: str = "now") -> datetime:
    """``moment`` in UTC; a naive datetime is refused rather than guessed at."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment!r}")
    return moment.astimezone(UTC)


LOG_CHANNEL_ACTION = "log channel"
"""The audit action of a change of the mod-log channel (before and after: channel ids as text, or ``None``)."""


def id_text(value: int | None) -> str | None:
    """An optional id as an audit entry's ``before``/``after`` text."""
    return None if value is None else str(value)


def limits_audit_text(limits: Limits) -> str:
    """The audit log's short form of a set of limits."""
    return f"cooldown={limits.cooldown_seconds} daily={limits.daily_images} concurrent={limits.concurrent_jobs}"


def model_roles_text(model: str, roles: Iterable[int]) -> str:
    """The audit log's short form of a model and the roles it is restricted to (none: just the model)."""
    ids = ",".join(str(role) for role in sorted(roles))
    return f"{model} roles={ids}" if ids else model


def role_limits_text(limits: RoleLimits) -> str:
    """The audit log's short form of one role's limits (``-``: not set for the role)."""
    values = (limits.cooldown_seconds, limits.daily_images, limits.concurrent_jobs)
    cooldown, daily, concurrent = ("-" if value is None else str(value) for value in values)
    return f"role={limits.role_id} cooldown={cooldown} daily={daily} concurrent={concurrent}"


def model_roles_of(models: Iterable[str], pairs: Iterable[tuple[str, int]]) -> tuple[tuple[str, frozenset[int]], ...]:
    """:attr:`~bot.storage.GuildConfig.model_roles` from (model, role) rows, in the allowlist's order."""
    roles: dict[str, set[int]] = {}
    for model, role in pairs:
        roles.setdefault(model, set()).add(int(role))
    return tuple((model, frozenset(roles[model])) for model in models if model in roles)


def non_negative(name: str, value: int | None) -> int | None:
    """``value`` if it is ``None`` or a whole number ≥ 0; ``ValueError`` otherwise."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{name} must be a whole number ≥ 0, got {value!r}")
    return value


def settled_cost(row: Any, *, reserved: int, actual: int) -> int | None:
    """What a job's spend stands at before booking ``actual`` (``row``: its ``cost, cost_settled``), or ``None``.

    ``None``, and nothing is to change, for an unknown job or one already booked at ``actual`` or less:
    a booking only ever moves towards the member, so a job that ends twice is booked once, and a job
    whose images could not be shown after all is booked down to what was seen.
    """
    if row is None:
        return None
    cost, settled = int(row[0]), bool(row[1])
    if not settled:
        return reserved
    return cost if actual < cost else None


def image_count(value: int, *, minimum: int) -> int:
    """A number of images for :meth:`~bot.storage.Repository.charge` (≥ 1) or a refund (≥ 0)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"images must be a whole number ≥ {minimum}, got {value!r}")
    return value


def model_name(model: str) -> str:
    """The model reference as stored: trimmed, never empty."""
    model = model.strip()
    if not model:
        raise ValueError("model must not be empty")
    return model


def word_and_key(word: str) -> tuple[str, str]:
    """The word as stored (trimmed) and its case-insensitive key (Python's casefold covers all of Unicode)."""
    word = word.strip()
    if not word:
        raise ValueError("word must not be empty")
    return word, word.casefold()


def limits_given(changes: LimitChanges) -> dict[str, int]:
    """The limits ``changes`` sets, by name, each checked to be ≥ 0: what to replace in the old ones."""
    given: dict[str, int] = {}
    for field in fields(changes):
        value = getattr(changes, field.name)
        if value is not None:
            non_negative(field.name, value)
            given[field.name] = value
    return given


def usage_on(
    today: date, stored_day: date | None, images: int, last_request_at: datetime | None, spent: int = 0
) -> Usage:
    """A member's usage on ``today`` from their stored row (``stored_day`` ``None``: no row yet).

    The stored counts belong to the stored day; on any other day they are 0, so the
    daily reset needs no scheduled job.
    """
    same_day = stored_day == today
    return Usage(
        day=today,
        images_today=images if same_day else 0,
        last_request_at=last_request_at,
        spent_today=spent if same_day else 0,
    )


def budget_audit_text(budget: Budget) -> str:
    """The audit log's short form of a server's caps."""
    return f"monthly={cap_text(budget.monthly)} member_daily={cap_text(budget.member_daily)}"


def decide_budget(budget: Budget, spend: Spend, cost: int) -> BudgetScope | None:
    """The cap a job costing ``cost`` would pass, given what is spent (read under a lock); ``None``: none.

    The server's month is checked first, then the member's day. A job that costs nothing passes any cap.
    """
    if cost <= 0:
        return None
    if budget.monthly and spend.month + cost > budget.monthly:
        return BudgetScope.MONTHLY
    if budget.member_daily and spend.member_today + cost > budget.member_daily:
        return BudgetScope.MEMBER_DAILY
    return None


def decide_charge(usage: Usage, images: int, *, limits: Limits, now: datetime, moves_cooldown: bool = True) -> Charge:
    """Whether a request for ``images`` may be charged against ``usage`` (today's, read under a lock).

    The cooldown is checked first (unless the request ``moves_cooldown`` not: ``/describe``), then the daily
    limit; ``0`` means no limit. On success the returned usage is what must be stored: ``images`` more
    today, and the last request at ``now`` (left as it was for a request that does not move the cooldown).
    """
    if moves_cooldown and limits.cooldown_seconds > 0 and usage.last_request_at is not None:
        # A clock that stepped backwards counts as "just asked", never as a negative wait.
        elapsed = max(0.0, (now - usage.last_request_at).total_seconds())
        if elapsed < limits.cooldown_seconds:
            return Charge(charged=False, usage=usage, retry_after_seconds=limits.cooldown_seconds - elapsed)
    if limits.daily_images > 0 and usage.images_today + images > limits.daily_images:
        return Charge(charged=False, usage=usage, over_daily_limit=True)
    last = now if moves_cooldown else usage.last_request_at
    return Charge(
        charged=True, usage=Usage(day=usage.day, images_today=usage.images_today + images, last_request_at=last)
    )


JOB_COLUMN_NAMES = (
    "job_id", "guild_id", "channel_id", "requester_id", "model", "prompt", "request", "target", "state",
    "prediction_id", "created_at", "create_started_at", "ended_at", "error", "images_delivered", "seed",
    "predict_time", "owner", "message_id", "charged_images", "charged_day", "reserved_cost",
)  # fmt: skip
"""The journal's columns, in :class:`~bot.storage.JobRecord` order; the same names in both schemas."""

JOB_COLUMNS = ", ".join(JOB_COLUMN_NAMES)

RUN_TIME_WEIGHT = 0.3
"""Weight of the newest run in a model's usual run time (an exponential moving average)."""

ENDED_STAGE = 2
"""A kept webhook payload's stage once its prediction has ended (0 starting, 1 processing): never replaced."""

JOB_TIMES = frozenset({"created_at", "create_started_at", "ended_at"})
"""The journal's datetime columns."""


def job_values(record: JobRecord) -> dict[str, Any]:
    """A record as column → value (``created_at`` checked to be timezone-aware), ready for a backend to encode."""
    values = {name: getattr(record, name) for name in JOB_COLUMN_NAMES}
    for name in JOB_TIMES:
        if values[name] is not None:
            values[name] = utc(values[name], name)
    return values


HISTORY_MAX = 100
"""The most jobs :meth:`~bot.storage.Repository.member_history` returns, whatever is asked."""


def history_limit(limit: int) -> int:
    """A checked ``limit`` for :meth:`~bot.storage.Repository.member_history`: 1 to :data:`HISTORY_MAX`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= HISTORY_MAX:
        raise ValueError(f"limit must be a whole number from 1 to {HISTORY_MAX}, got {limit!r}")
    return limit


def job_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Checked changes for :meth:`~bot.storage.Repository.update_job`: journal fields only, times in UTC."""
    unknown = set(changes) - JOB_FIELDS
    if unknown:
        raise ValueError(f"not journal fields: {', '.join(sorted(unknown))}")
    return {name: utc(value, name) if isinstance(value, datetime) else value for name, value in changes.items()}


def job_record(row: Mapping[str, Any]) -> JobRecord:
    """A journal row (column → value, already decoded by the backend: datetimes, JSON, ints) as a record."""
    return JobRecord(
        job_id=row["job_id"],
        model=row["model"],
        prompt=row["prompt"],
        request=row["request"],
        state=row["state"],
        created_at=row["created_at"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        requester_id=row["requester_id"],
        target=row["target"],
        prediction_id=row["prediction_id"],
        create_started_at=row["create_started_at"],
        ended_at=row["ended_at"],
        error=row["error"],
        images_delivered=row["images_delivered"],
        seed=row["seed"],
        predict_time=row["predict_time"],
        owner=row["owner"],
        message_id=row["message_id"],
        charged_images=row["charged_images"],
        charged_day=row["charged_day"],
        reserved_cost=row["reserved_cost"],
    )
