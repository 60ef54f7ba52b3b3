"""The storage's records and errors: what the repository takes and returns, and what it raises.

Plain frozen dataclasses, shared by :mod:`bot.storage.repository` (the interface) and both backends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bot.base.money import BudgetScope


class StorageError(Exception):
    """The database cannot be opened or used; the message names it."""


class SchemaVersionError(StorageError):
    """The database's schema cannot be used by this version of the bot."""


class RepositoryClosedError(StorageError):
    """The repository was used after it was closed."""


class DatabaseUnavailable(StorageError):
    """The database did not answer in time, or the connection to it broke: the call may be tried again later.

    A write that raised this may or may not have committed (its answer can be what was lost).
    """


class CommandSyncBusy(StorageError):
    """Another process held the command sync longer than a syncer waits for it."""


@dataclass(frozen=True)
class DayTally:
    """A server's jobs with one model on one UTC day (by when they were created), from the journal."""

    day: date
    model: str
    jobs: int
    images: int
    cost: int
    """Micro-dollars booked for the jobs that ended."""


@dataclass(frozen=True)
class Limits:
    """Per-member limits of one server; 0 means no limit."""

    cooldown_seconds: int = 0
    daily_images: int = 0
    concurrent_jobs: int = 0


@dataclass(frozen=True)
class RoleLimits:
    """The limits a server set for members with one role; ``None``: not set for this role (the server's apply)."""

    role_id: int
    cooldown_seconds: int | None = None
    daily_images: int | None = None
    concurrent_jobs: int | None = None


@dataclass(frozen=True)
class LimitChanges:
    """New values for some per-member limits, the server's or one role's; ``None``: left as it is."""

    cooldown_seconds: int | None = None
    daily_images: int | None = None
    concurrent_jobs: int | None = None


@dataclass(frozen=True)
class GuildConfig:
    """One server's moderation settings."""

    guild_id: int
    models: tuple[str, ...] = ()
    """The allowlist, in the order moderators added it; empty: the bot-wide ``IMAGINE_MODELS`` apply."""
    default_model: str | None = None
    channels: frozenset[int] = field(default_factory=frozenset)
    """Where ``/imagine`` may be used; empty: everywhere."""
    blocked_words: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    log_channel_id: int | None = None
    """The mod-log channel (blocked-word refusals and settings changes are posted there); ``None``: no mod-log."""
    model_roles: tuple[tuple[str, frozenset[int]], ...] = ()
    """Models of ``models`` allowed only to members with one of these roles, in list order; others: to everyone."""
    role_limits: tuple[RoleLimits, ...] = ()
    """Limits set for roles, by role id."""
    safety_checker_off: bool = False
    """The models' safety checker is off in the server's age-restricted channels (on everywhere else, always)."""
    nsfw_models: frozenset[str] = frozenset()
    """Models of ``models`` only for age-restricted channels (``/imagine-admin models allow … nsfw:True``)."""

    def roles_for(self, model: str) -> frozenset[int]:
        """The roles ``model`` (as stored) is restricted to; empty: everyone may use it."""
        return next((roles for name, roles in self.model_roles if name == model), frozenset())

    def limits_of_role(self, role_id: int) -> RoleLimits:
        """The limits set for ``role_id``; a role without any gets one that sets none."""
        return next((limits for limits in self.role_limits if limits.role_id == role_id), RoleLimits(role_id))

    def every_model_restricted(self) -> bool:
        """Whether the server's own list has models and each is only for some roles: members without them get none."""
        return bool(self.models) and all(self.roles_for(model) for model in self.models)


@dataclass(frozen=True)
class AuditEntry:
    """One recorded change: who, what, old → new, when."""

    guild_id: int
    actor_id: int
    action: str
    before: str | None
    after: str | None
    at: datetime


@dataclass(frozen=True)
class Usage:
    """A member's use of ``/imagine`` in one server."""

    day: date
    images_today: int = 0
    last_request_at: datetime | None = None
    spent_today: int = 0
    """Micro-dollars reserved or booked for the member's jobs charged today."""


@dataclass(frozen=True)
class Budget:
    """A server's spending caps in micro-dollars ($1 = 1 000 000); 0 means no cap."""

    monthly: int = 0
    """The whole server's per calendar month (UTC)."""
    member_daily: int = 0
    """Each member's per UTC day."""


@dataclass(frozen=True)
class Spend:
    """Micro-dollars spent (reserved for running jobs, booked for ended ones)."""

    month: int = 0
    """By the whole server this calendar month (UTC)."""
    member_today: int = 0
    """By one member today (UTC)."""


@dataclass(frozen=True)
class JobTally:
    """One member's jobs with one model in a server over a period, from the journal."""

    member_id: int | None
    model: str
    jobs: int
    predictions: int
    """Jobs that got a prediction (the others were canceled, refused by the API or lost before one was made)."""
    images: int
    failures: int
    """Jobs that failed or timed out (canceled ones are not failures)."""
    cost: int
    """Micro-dollars booked for the jobs that ended."""


@dataclass(frozen=True)
class Charge:
    """The outcome of :meth:`Repository.charge`: either charged, or why not."""

    charged: bool
    usage: Usage
    retry_after_seconds: float | None = None
    """Set when refused for the cooldown: seconds until the member may ask again."""
    over_daily_limit: bool = False
    over_budget: BudgetScope | None = None
    """Set when refused because the job's cost would pass this cap."""
    spend: Spend = field(default_factory=Spend)
    """Spent so far (with the job's cost once charged); read only when the charge had a cost."""


@dataclass(frozen=True)
class JobRecord:
    """One job in the journal: who asked what, where its message is, and how far it got."""

    job_id: str
    model: str
    prompt: str
    request: Mapping[str, Any]
    """The whole request as JSON-able data (options, inputs, notes, charges)."""
    state: str
    created_at: datetime
    guild_id: int | None = None
    channel_id: int | None = None
    requester_id: int | None = None
    target: Mapping[str, Any] | None = None
    """Where the job is shown (the front end's data); cleared once the job has ended."""
    prediction_id: str | None = None
    create_started_at: datetime | None = None
    """Set just before the create request goes out: with no ``prediction_id`` it may or may not exist."""
    ended_at: datetime | None = None
    error: str | None = None
    images_delivered: int = 0
    seed: int | None = None
    predict_time: float | None = None
    owner: str | None = None
    """The incarnation of the process that runs the job (see :mod:`bot.ops.cluster`); changed only by claims."""
    message_id: int | None = None
    """The job's message in ``channel_id`` once shown (kept after the job ends, unlike ``target``)."""
    charged_images: int = 0
    """Images charged against the member's day when the job was accepted (given back once if not delivered)."""
    charged_day: date | None = None
    """The UTC day they were charged on."""
    reserved_cost: int = 0
    """Micro-dollars reserved against the budgets (settled once when the job ends)."""


@dataclass(frozen=True)
class QueuedJobs:
    """Jobs waiting for a slot (accepted, not yet started)."""

    total: int
    """Every server's."""
    member: int
    """One member's in one server."""


JOB_FIELDS = frozenset(
    {
        "state",
        "target",
        "prediction_id",
        "create_started_at",
        "ended_at",
        "error",
        "images_delivered",
        "seed",
        "predict_time",
        "message_id",
    }
)
"""The :class:`JobRecord` fields :meth:`Repository.update_job` may change."""


MAX_NAMED_OPTIONS = 20
"""Named options (``/imagine-settings option``) one member may keep."""


@dataclass(frozen=True)
class Preferences:
    """A member's own defaults for ``/imagine``, the same in every server of this deployment.

    An option the member gives beats a preference, a preference beats the server's default; the server's
    rules (models allowed, blocked words, limits) always apply.
    """

    member_id: int
    model: str | None = None
    """``owner/name`` or ``owner/name:version``; used where this server allows it to the member."""
    aspect_ratio: str | None = None
    count: int | None = None
    remix: bool = False
    """``V1``…``Vn`` (and ``Vary``) open the Remix modal first."""
    suffix: str | None = None
    """Added to the end of every prompt (before its flags), as Midjourney's ``/prefer suffix``."""
    options: Mapping[str, str] = field(default_factory=dict)
    """Named options: ``--name`` in a prompt stands for the text (names lower-case letters and digits)."""


@dataclass(frozen=True)
class PreferenceChanges:
    """Preferences to set (``None``: leave as it is); an empty ``suffix`` or ``model`` clears it."""

    model: str | None = None
    aspect_ratio: str | None = None
    count: int | None = None
    remix: bool | None = None
    suffix: str | None = None


@dataclass(frozen=True)
class StoredApiKey:
    """A server's own API key as stored: only its Fernet ciphertext, its last four characters and its state."""

    guild_id: int
    ciphertext: str
    last4: str
    rejected: bool
    set_by: int
    set_at: datetime
