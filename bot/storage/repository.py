"""The repository interface: everything the bot stores, as one protocol both backends implement."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from bot.storage.records import (
    AuditEntry,
    Budget,
    Charge,
    DayTally,
    GuildConfig,
    JobRecord,
    JobTally,
    LimitChanges,
    Limits,
    PreferenceChanges,
    Preferences,
    QueuedJobs,
    RoleLimits,
    Spend,
    StoredApiKey,
    Usage,
)


class Repository(Protocol):
    """Everything the bot stores. All datetimes are timezone-aware UTC."""

    async def close(self) -> None:
        """Release the database."""
        ...

    async def ping(self) -> None:
        """A cheap round trip to the database; raises :class:`StorageError` (or the driver's error) if it fails."""
        ...

    # ------------------------------------------------------------- moderation settings

    async def guild_config(self, guild_id: int) -> GuildConfig:
        """The server's settings (defaults if it never set any)."""
        ...

    async def allow_model(self, guild_id: int, model: str, *, actor_id: int, role_id: int | None = None) -> bool:
        """Add to the allowlist; ``False`` if nothing changed.

        With ``role_id`` the model is allowed only to members with one of its roles (each call adds one);
        without, it is allowed to everyone again (its roles are dropped).
        """
        ...

    async def remove_model(self, guild_id: int, model: str, *, actor_id: int) -> bool:
        """Remove from the allowlist (and clear the default if it was this model); ``False`` if absent."""
        ...

    async def set_default_model(self, guild_id: int, model: str | None, *, actor_id: int) -> bool:
        """Set (or clear) the server's default model; ``False`` if it already was that."""
        ...

    async def allow_channel(self, guild_id: int, channel_id: int, *, actor_id: int) -> bool:
        """Add a channel where ``/imagine`` may be used; ``False`` if already there."""
        ...

    async def remove_channel(self, guild_id: int, channel_id: int, *, actor_id: int) -> bool:
        """Remove a channel; ``False`` if absent."""
        ...

    async def add_word(self, guild_id: int, word: str, *, actor_id: int) -> bool:
        """Block a word (stored as given; matching normalises); ``False`` if already blocked."""
        ...

    async def remove_word(self, guild_id: int, word: str, *, actor_id: int) -> bool:
        """Unblock a word; ``False`` if it was not blocked."""
        ...

    async def set_limits(self, guild_id: int, changes: LimitChanges, *, actor_id: int) -> Limits:
        """Make the given limits' changes; returns the limits now in force."""
        ...

    async def set_safety_checker(self, guild_id: int, *, off: bool, actor_id: int) -> bool:
        """Turn the safety checker off in the server's age-restricted channels (or keep it on everywhere);
        ``False`` if it already was so. Audited as ``safety checker``."""
        ...

    async def set_model_nsfw(self, guild_id: int, model: str, *, nsfw: bool, actor_id: int) -> bool:
        """Mark a model of the server's list as only for age-restricted channels (or not); ``False`` if it is not
        on the list or already was so. Audited as ``models nsfw``."""
        ...

    async def set_log_channel(self, guild_id: int, channel_id: int | None, *, actor_id: int) -> bool:
        """Set (or, with ``None``, turn off) the server's mod-log channel; ``False`` if it already was that."""
        ...

    async def set_role_limits(self, guild_id: int, role_id: int, changes: LimitChanges, *, actor_id: int) -> RoleLimits:
        """Make the given changes to the limits of members with ``role_id``; returns that role's limits."""
        ...

    async def clear_role_limits(self, guild_id: int, role_id: int, *, actor_id: int) -> bool:
        """Forget every limit of ``role_id``; ``False`` if it had none."""
        ...

    async def audit_log(self, guild_id: int, *, limit: int = 10) -> list[AuditEntry]:
        """The server's latest changes, newest first."""
        ...

    def on_settings_change(self, listener: Callable[[AuditEntry], None]) -> None:
        """Call ``listener(entry)`` for every audited change this process makes, once its transaction has committed.

        Never for a change that was rolled back. ``listener`` runs on the event loop and must not block;
        an exception it raises is logged and does not affect the change or other listeners.
        """
        ...

    # ------------------------------------------------------------- a server's own API key

    async def api_key(self, guild_id: int) -> StoredApiKey | None:
        """The server's own API key (ciphertext only), ``None`` where it uses the deployment's."""
        ...

    async def set_api_key(self, guild_id: int, ciphertext: str, last4: str, *, actor_id: int) -> None:
        """Keep the server's key, encrypted; audited as ``apikey`` with only its last characters."""
        ...

    async def clear_api_key(self, guild_id: int, *, actor_id: int) -> bool:
        """Back to the deployment's key; ``False`` if the server had none."""
        ...

    async def reject_api_key(self, guild_id: int, ciphertext: str) -> bool:
        """Mark the key rejected by the API, if it is still the server's; ``True`` if it was."""
        ...

    # ------------------------------------------------------------- members' preferences

    async def preferences(self, member_id: int) -> Preferences:
        """A member's preferences (all defaults for one who set none)."""
        ...

    async def set_preferences(self, member_id: int, changes: PreferenceChanges) -> Preferences:
        """Change the given preferences; returns them as they are now."""
        ...

    async def set_named_option(self, member_id: int, name: str, value: str | None) -> bool:
        """Set (or, with ``None``, remove) the named option ``name`` (lower-case); ``False`` (nothing changed)
        when setting a new one would pass :data:`~bot.storage.records.MAX_NAMED_OPTIONS`, or removing one the
        member does not have. Atomic: two at once never make 21."""
        ...

    async def reset_preferences(self, member_id: int) -> None:
        """Forget every preference and named option of the member."""
        ...

    # ------------------------------------------------------------- usage

    async def usage(self, guild_id: int, member_id: int, *, now: datetime) -> Usage:
        """A member's usage today (UTC day of ``now``)."""
        ...

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
        jobs: Sequence[JobRecord] = (),
        moves_cooldown: bool = True,
    ) -> Charge:
        """Atomically check the cooldown, the daily limit and (for a ``cost`` in micro-dollars) the budgets and,
        if all allow it, record the request and reserve ``cost`` against the month's and the member's day's spend.

        With ``job``, a charge also journals the job in the same transaction, its ``charged_images``,
        ``charged_day`` and ``reserved_cost`` those of this charge: a charge never exists without the job that
        gives it back, whatever crashes when. ``jobs`` is a set charged as one request (permutations,
        ``--repeat``): all or none, each keeping its own ``charged_images`` and ``reserved_cost``, which sum to
        ``images`` and ``cost``. With neither, ``images`` may be 0 (a request that makes none). With
        ``moves_cooldown=False`` (``/describe``) the cooldown is neither checked nor moved.
        """
        ...

    async def refund(self, guild_id: int, member_id: int, images: int, *, day: date, cost: int = 0) -> None:
        """Give back images charged on ``day`` that were not delivered, and ``cost`` reserved (never below zero)."""
        ...

    async def move_spend(self, guild_id: int, member_id: int, amount: int, *, day: date) -> None:
        """Move the month's spend and the member's spend of ``day`` (if still on record) by ``amount``
        micro-dollars, up or down, never below zero: a run that is not journaled (``/describe``) settled."""
        ...

    async def settle_cost(
        self, job_id: str, guild_id: int, member_id: int, *, reserved: int, actual: int, day: date
    ) -> bool:
        """Book a journaled job's real cost: the spend charged on ``day`` moves by ``actual - reserved``.

        A job settled before is settled again only for less (it delivered fewer images than first
        booked): the spend moves by the difference. ``False`` (and nothing changes) if the job was
        settled at ``actual`` or less before, or is not journaled.
        """
        ...

    async def budget(self, guild_id: int) -> Budget:
        """The server's spending caps."""
        ...

    async def set_budget(
        self, guild_id: int, *, actor_id: int, monthly: int | None = None, member_daily: int | None = None
    ) -> Budget:
        """Change the given caps (micro-dollars; ``None``: unchanged); returns the caps now in force."""
        ...

    async def spend(self, guild_id: int, member_id: int | None, *, now: datetime) -> Spend:
        """The server's spend in the calendar month of ``now`` and (with a member) the member's on its day."""
        ...

    async def job_tallies(self, guild_id: int, *, since: datetime) -> list[JobTally]:
        """The server's jobs created since ``since``, counted per member and model."""
        ...

    async def job_day_tallies(self, guild_id: int, *, since: datetime) -> list[DayTally]:
        """The server's jobs created since ``since``, counted per UTC day of creation and model."""
        ...

    async def refund_job(self, job_id: str, guild_id: int, member_id: int, images: int, *, day: date) -> bool:
        """Like :meth:`refund` for a journaled job, up to ``images`` in all per job (a resumed job may end twice).

        A second call for more gives back only the difference; ``False`` if ``images`` were given back already.
        """
        ...

    # ------------------------------------------------------------- the jobs journal

    async def add_job(self, record: JobRecord) -> None:
        """Journal a newly accepted job."""
        ...

    async def update_job(self, job_id: str, *, owner: str | None = None, durable: bool = True, **changes: Any) -> bool:
        """Change some of a job's :data:`JOB_FIELDS`; with ``owner``, only while that process owns the job.

        ``durable=False`` may return before the change is on disk, for a step a power cut may lose without
        harm (SQLite; PostgreSQL's commits run side by side on its pool and always wait).

        ``False`` if no row changed (with ``owner``: the job was taken over by another process).
        """
        ...

    async def update_jobs(self, changes: Mapping[str, Mapping[str, Any]], *, owner: str) -> bool:
        """Change several jobs (job id → its changes, as :meth:`update_job`) in one transaction, only while
        ``owner`` owns every one of them: ``False``, and nothing written, otherwise (a set's jobs placed at once).
        """
        ...

    async def abandon_job(self, job_id: str, *, owner: str, reason: str, now: datetime) -> bool:
        """End an unfinished job of ``owner`` that will not run, failed with ``reason``, and give back what it was
        charged (its own columns, however broken its request) in the same transaction, once.

        Through the same bookings as :meth:`refund_job` and :meth:`settle_cost` (which only move towards the
        member): an end booked before a crash (its final message not shown) is completed to nothing charged.

        ``False`` (and nothing changes) if the job has ended or another process owns it.
        """
        ...

    async def get_job(self, job_id: str) -> JobRecord | None:
        """One job, finished or not."""
        ...

    async def job_with_prediction(self, prediction_id: str) -> str | None:
        """The ``job_id`` of the journaled job whose ``prediction_id`` is this one, or ``None``."""
        ...

    async def active_jobs(self, guild_id: int, member_id: int) -> int:
        """The member's jobs in this server that have not ended (waiting or running, on any process)."""
        ...

    async def queued_jobs(self, guild_id: int, member_id: int, *, besides: str = "") -> QueuedJobs:
        """Servers' jobs that wait for a slot (accepted, create not begun), on any process, and this member's.

        ``besides``: leave out the jobs this owner (a process's incarnation) has; it counts its own itself.
        """
        ...

    async def member_history(self, guild_id: int, member_id: int, *, limit: int = 10) -> list[JobRecord]:
        """The member's latest ``limit`` jobs in this server, finished or not, newest first."""
        ...

    # ------------------------------------------------------------- processes (scale-out)

    async def register_process(self, incarnation: str, name: str, shards: str) -> None:
        """A process starts: record it alive (and forget long-dead processes that own nothing).

        Signs of life are stamped and compared with the database's clock, never a process's own: processes whose
        clocks disagree still agree on who is silent.
        """
        ...

    async def heartbeat(self, incarnation: str, *, alive_within: float) -> int:
        """Record the process alive now (the database's clock); return how many processes gave a sign of life
        in the last ``alive_within`` seconds (this one included)."""
        ...

    async def claim_jobs(
        self, incarnation: str, *, name: str | None = None, silent_for: float | None = None
    ) -> list[JobRecord]:
        """Atomically take unfinished jobs, oldest first, and return them.

        With ``name``: the jobs of earlier incarnations of the same process (a restart), and jobs that have
        no owner. With ``silent_for``: the jobs of processes that gave no sign of life for that many seconds
        by the database's clock (a takeover). A job goes to one claimer only, and never back to an
        incarnation it was taken from.
        """
        ...

    async def owned_jobs(self, incarnation: str, job_ids: Collection[str]) -> set[str]:
        """Which of ``job_ids`` this incarnation still owns (the rest were taken over)."""
        ...

    async def unstarted_jobs(self, incarnation: str, *, journaled_before: datetime) -> list[str]:
        """This incarnation's unended jobs still ``queued`` (no create went out), journaled before
        ``journaled_before``: the ids, oldest first."""
        ...

    async def model_run_time(self, model: str) -> float | None:
        """The model's usual ``metrics.predict_time`` (a moving average), if it ever ran."""
        ...

    async def record_run_time(self, model: str, seconds: float, *, now: datetime) -> None:
        """Fold one prediction's ``predict_time`` into the model's usual run time."""
        ...

    async def take_identify_turn(self, bot_id: int, bucket: int, *, spacing: float, within: float) -> float | None:
        """Reserve bucket ``bucket``'s next Discord IDENTIFY for bot ``bot_id``, shared by every process.

        The turn is the later of now and ``spacing`` seconds after the turn reserved before it (by any
        process), on the database's clock; the reservation is made at once, so waiters queue in order and
        a process that dies only leaves its turn unused. Returns the seconds from now until the turn
        (0: identify at once); ``math.inf`` if it is more than ``within`` seconds away (then nothing is
        reserved: the queue does not grow past what anyone can wait); or ``None`` where one process runs
        every shard (SQLite): it paces itself.
        """
        ...

    # ------------------------------------------------------------- command syncs

    async def synced_digest(self, scope: str) -> str | None:
        """The digest of the commands last synced to ``scope`` (``global`` or a guild id), if any was recorded."""
        ...

    async def sync_commands_once(
        self, scope: str, digest: str, sync: Callable[[], Awaitable[object]], *, now: datetime, force: bool = False
    ) -> bool:
        """Run ``sync`` and record ``digest`` for ``scope``, unless the last recorded sync had ``digest`` (``force``:
        run it all the same); ``False`` if it did not run. One syncer at a time across every process: a second
        waits for the first, then finds its digest. Nothing is recorded when ``sync`` raises. Raises
        :class:`CommandSyncBusy` when another process held the sync too long.
        """
        ...

    # ------------------------------------------------------------- webhooks

    async def record_webhook(
        self, webhook_id: str, prediction_id: str, *, stage: int, payload: Mapping[str, Any] | None
    ) -> bool:
        """Keep a verified webhook's id; ``False`` if it was seen before (then nothing changes).

        ``payload`` (``None``: the process that runs the job has it already) becomes the prediction's
        payload for :meth:`read_webhook` unless the one kept is further on: ``stage`` is 0 starting,
        1 processing, 2 ended, and an ended one is never replaced. Both are stamped with the database's
        clock (every process prunes against it: a process's own clock may be off). On PostgreSQL every
        process hears of a new id (``NOTIFY``): see :meth:`on_webhook`.
        """
        ...

    async def read_webhook(self, prediction_id: str) -> Mapping[str, Any] | None:
        """The prediction's kept payload, if any. It is not removed: a process that still watches the
        prediction after a takeover may read it too, and the job's owner must still find it; pruning
        forgets it."""
        ...

    async def prune_webhooks(self, *, ids_older_than: float, payloads_older_than: float) -> None:
        """Forget webhook ids received over ``ids_older_than`` seconds ago (no retry or replay comes for them
        any more) and payloads received over ``payloads_older_than`` seconds ago, on the database's clock."""
        ...

    def on_webhook(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(prediction_id)`` when any process records a webhook (PostgreSQL; SQLite: never)."""
        ...
