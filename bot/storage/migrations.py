"""Versioned schema migrations: the runner for the SQLite store, and what both backends share.

PostgreSQL has its own steps and runner in :mod:`bot.storage.postgres_migrations`,
numbered alike: version N means the same tables on either backend.

The schema is an ordered list of :class:`Migration` steps, numbered 1, 2, 3…
The database records each applied step in a ``schema_version`` table (one row
per version, with a description and the time it was applied), so a glance at
the file tells an operator where it stands.

Rules for whoever adds the next step:

* **Append only.** Never edit or reorder a migration that has shipped: databases
  in the wild have already applied it. Add ``Migration(N + 1, ...)`` at the end
  of :data:`MIGRATIONS` instead.
* Each step runs in its own ``BEGIN IMMEDIATE`` transaction together with its
  ``schema_version`` row, so a step is either wholly applied or not at all, and
  two processes opening the same file cannot both apply it.
* Statements run one by one with ``execute`` (never ``executescript``, which
  would commit behind our back), so each string holds exactly one statement.
* Foreign keys are ON while migrating. Adding tables and columns is fine.
  Rebuilding a *parent* table (the SQLite "create new, copy, drop, rename"
  dance) would cascade-delete its children when the old table is dropped: such
  a step needs ``PRAGMA foreign_keys=OFF`` outside the transaction, which this
  runner does not do yet — extend :class:`Migration` with a flag first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiosqlite

from bot.storage import SchemaVersionError


@dataclass(frozen=True)
class Migration:
    """One schema step: its number, what it does, and its SQL statements."""

    version: int
    description: str
    statements: tuple[str, ...]


def _json_count(key: str) -> str:
    """SQL for a whole number ≥ 0 at ``key`` of a job's JSON request; 0 if it holds none."""
    return (
        f"CASE WHEN json_type(request, '$.{key}') = 'integer' THEN MAX(json_extract(request, '$.{key}'), 0) ELSE 0 END"
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "moderation settings, per-member usage and the audit log",
        (
            # The parent of every per-server row: deleting a guild (when the bot
            # leaves a server, say) takes all its settings with it.
            """
            CREATE TABLE guilds (
                guild_id         INTEGER PRIMARY KEY,
                default_model    TEXT,
                cooldown_seconds INTEGER NOT NULL DEFAULT 0 CHECK (cooldown_seconds >= 0),
                daily_images     INTEGER NOT NULL DEFAULT 0 CHECK (daily_images >= 0),
                concurrent_jobs  INTEGER NOT NULL DEFAULT 0 CHECK (concurrent_jobs >= 0)
            )
            """,
            # ``seq`` is a rowid alias: it only grows, so ORDER BY seq is the order
            # moderators added the models in.
            """
            CREATE TABLE allowed_models (
                seq      INTEGER PRIMARY KEY,
                guild_id INTEGER NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                model    TEXT NOT NULL CHECK (model <> ''),
                UNIQUE (guild_id, model)
            )
            """,
            """
            CREATE TABLE allowed_channels (
                guild_id   INTEGER NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                channel_id INTEGER NOT NULL,
                PRIMARY KEY (guild_id, channel_id)
            ) WITHOUT ROWID
            """,
            # ``word`` is kept as the moderator typed it (for display); ``word_key``
            # is its Python casefold, which makes uniqueness case-insensitive for
            # all of Unicode (SQLite's NOCASE only folds ASCII).
            """
            CREATE TABLE blocked_words (
                seq      INTEGER PRIMARY KEY,
                guild_id INTEGER NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                word     TEXT NOT NULL CHECK (word <> ''),
                word_key TEXT NOT NULL,
                UNIQUE (guild_id, word_key)
            )
            """,
            # One row per member and server: the count belongs to ``day`` (the UTC
            # date, ISO text) and is treated as 0 on any other day.
            """
            CREATE TABLE member_usage (
                guild_id        INTEGER NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                member_id       INTEGER NOT NULL,
                day             TEXT NOT NULL,
                images_today    INTEGER NOT NULL DEFAULT 0 CHECK (images_today >= 0),
                last_request_at TEXT,
                PRIMARY KEY (guild_id, member_id)
            ) WITHOUT ROWID
            """,
            # ``id`` gives "newest first" even if the wall clock steps backwards.
            """
            CREATE TABLE audit_log (
                id       INTEGER PRIMARY KEY,
                guild_id INTEGER NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                actor_id INTEGER NOT NULL,
                action   TEXT NOT NULL,
                before   TEXT,
                after    TEXT,
                at       TEXT NOT NULL
            )
            """,
            "CREATE INDEX audit_log_by_guild ON audit_log (guild_id, id)",
        ),
    ),
    Migration(
        2,
        "the jobs journal",
        (
            # One row per accepted job, written before its prediction is created
            # and updated at each step, so a restart can finish what was running.
            # ``request`` and ``target`` are JSON: the job's inputs, and where its
            # message lives (the front end's own data, cleared when the job ends).
            """
            CREATE TABLE jobs (
                job_id            TEXT PRIMARY KEY,
                guild_id          INTEGER,
                channel_id        INTEGER,
                requester_id      INTEGER,
                model             TEXT NOT NULL,
                prompt            TEXT NOT NULL,
                request           TEXT NOT NULL,
                target            TEXT,
                state             TEXT NOT NULL,
                prediction_id     TEXT,
                created_at        TEXT NOT NULL,
                create_started_at TEXT,
                ended_at          TEXT,
                error             TEXT,
                images_delivered  INTEGER NOT NULL DEFAULT 0,
                seed              INTEGER,
                predict_time      REAL,
                refunded          INTEGER NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX jobs_unfinished ON jobs (state) WHERE ended_at IS NULL",
            "CREATE INDEX jobs_by_guild ON jobs (guild_id, created_at)",
        ),
    ),
    Migration(
        3,
        "find a journaled job by its prediction",
        # Webhooks and takeover name a prediction, not a job.
        ("CREATE INDEX jobs_by_prediction ON jobs (prediction_id) WHERE prediction_id IS NOT NULL",),
    ),
    Migration(
        4,
        "processes and job owners, for takeover",
        (
            """
            CREATE TABLE processes (
                incarnation TEXT PRIMARY KEY,
                name        TEXT NOT NULL,
                shards      TEXT NOT NULL,
                started_at  TEXT NOT NULL,
                alive_at    TEXT NOT NULL
            )
            """,
            "CREATE INDEX processes_by_name ON processes (name)",
            "ALTER TABLE jobs ADD COLUMN owner TEXT",
            "CREATE INDEX jobs_by_owner ON jobs (owner) WHERE ended_at IS NULL",
        ),
    ),
    Migration(
        5,
        "webhooks received, for dedupe and for the process that owns the prediction",
        (
            """
            CREATE TABLE webhooks (
                webhook_id    TEXT PRIMARY KEY,
                prediction_id TEXT NOT NULL,
                status        TEXT NOT NULL,
                terminal      BOOLEAN NOT NULL,
                payload       TEXT NOT NULL,
                received_at   TEXT NOT NULL
            )
            """,
            "CREATE INDEX webhooks_by_prediction ON webhooks (prediction_id, terminal, received_at)",
        ),
    ),
    Migration(
        6,
        "each model's usual run time, to aim polls at its end",
        (
            """
            CREATE TABLE model_run_times (
                model      TEXT PRIMARY KEY,
                seconds    REAL NOT NULL,
                samples    INTEGER NOT NULL,
                updated_at TEXT NOT NULL
            )
            """,
        ),
    ),
    Migration(
        7,
        "each job's message, kept after the job ends, and a member's jobs by server, for /imagine-history",
        (
            # The target (with the interaction token) is cleared when a job ends; the message id alone
            # is no secret and is all a link to the result needs, with the job's channel.
            "ALTER TABLE jobs ADD COLUMN message_id INTEGER",
            "CREATE INDEX jobs_by_member ON jobs (guild_id, requester_id, created_at)",
        ),
    ),
    Migration(
        8,
        "each server's mod-log channel",
        ("ALTER TABLE guilds ADD COLUMN log_channel_id INTEGER",),
    ),
    Migration(
        9,
        "spending budgets in micro-dollars: caps per server, spend per month and per member per day, each job's cost",
        (
            # Money is whole micro-dollars ($1 = 1 000 000): exact sums; 0 means no cap.
            "ALTER TABLE guilds ADD COLUMN budget_monthly INTEGER NOT NULL DEFAULT 0 CHECK (budget_monthly >= 0)",
            "ALTER TABLE guilds ADD COLUMN budget_member_daily INTEGER NOT NULL DEFAULT 0 "
            "CHECK (budget_member_daily >= 0)",
            # Belongs to member_usage.day like images_today: 0 on any other day.
            "ALTER TABLE member_usage ADD COLUMN spent_today INTEGER NOT NULL DEFAULT 0 CHECK (spent_today >= 0)",
            # One row per server and calendar month (``month`` is its first day); reserved and booked costs.
            """
            CREATE TABLE guild_spend (
                guild_id INTEGER NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                month    TEXT NOT NULL,
                spent    INTEGER NOT NULL DEFAULT 0 CHECK (spent >= 0),
                PRIMARY KEY (guild_id, month)
            )
            """,
            # A job's real cost, booked once when it ends (``cost_settled`` guards a resumed job that ends twice).
            "ALTER TABLE jobs ADD COLUMN cost INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE jobs ADD COLUMN cost_settled INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    Migration(
        10,
        "models allowed only to some roles, and limits per role",
        (
            # A row per (model, role): the model is allowed only to members with one of its roles.
            # Keyed to the allowlist's row, so removing the model takes its roles with it.
            """
            CREATE TABLE model_roles (
                guild_id INTEGER NOT NULL,
                model    TEXT NOT NULL,
                role_id  INTEGER NOT NULL,
                PRIMARY KEY (guild_id, model, role_id),
                FOREIGN KEY (guild_id, model) REFERENCES allowed_models (guild_id, model) ON DELETE CASCADE
            ) WITHOUT ROWID
            """,
            # NULL: not set for this role, so a moderator can raise one limit and leave the others to the server.
            """
            CREATE TABLE role_limits (
                guild_id         INTEGER NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                role_id          INTEGER NOT NULL,
                cooldown_seconds INTEGER CHECK (cooldown_seconds >= 0),
                daily_images     INTEGER CHECK (daily_images >= 0),
                concurrent_jobs  INTEGER CHECK (concurrent_jobs >= 0),
                PRIMARY KEY (guild_id, role_id)
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        11,
        "webhook ids kept apart from payloads: the newest payload per prediction, until its job reads it",
        (
            # Only ids are needed for dedupe (pruned once no retry or replay can come); a prediction's
            # payloads replace each other (each ``logs`` event holds all the logs so far).
            """
            CREATE TABLE webhook_ids (
                webhook_id  TEXT PRIMARY KEY,
                received_at TEXT NOT NULL
            )
            """,
            "CREATE INDEX webhook_ids_by_age ON webhook_ids (received_at)",
            # ``stage``: 0 starting, 1 processing, 2 ended; a payload never gives way to an earlier stage.
            """
            CREATE TABLE webhook_payloads (
                prediction_id TEXT PRIMARY KEY,
                stage         INTEGER NOT NULL,
                payload       TEXT NOT NULL,
                received_at   TEXT NOT NULL
            )
            """,
            "CREATE INDEX webhook_payloads_by_age ON webhook_payloads (received_at)",
            "INSERT INTO webhook_ids (webhook_id, received_at) SELECT webhook_id, received_at FROM webhooks",
            """
            INSERT INTO webhook_payloads (prediction_id, stage, payload, received_at)
            SELECT prediction_id, stage, payload, received_at FROM (
                SELECT prediction_id, payload, received_at,
                       CASE WHEN terminal THEN 2 WHEN status = 'processing' THEN 1 ELSE 0 END AS stage,
                       ROW_NUMBER() OVER (
                           PARTITION BY prediction_id ORDER BY terminal DESC, received_at DESC
                       ) AS newest
                FROM webhooks
            ) AS ranked
            WHERE newest = 1
            """,
            "DROP TABLE webhooks",
        ),
    ),
    Migration(
        12,
        "what each job was charged, in columns: a journal entry too broken to read still gives it back",
        (
            "ALTER TABLE jobs ADD COLUMN charged_images INTEGER NOT NULL DEFAULT 0 CHECK (charged_images >= 0)",
            "ALTER TABLE jobs ADD COLUMN charged_day TEXT",
            "ALTER TABLE jobs ADD COLUMN reserved_cost INTEGER NOT NULL DEFAULT 0 CHECK (reserved_cost >= 0)",
            # Unfinished jobs journaled before this step have their charge in the request only; what cannot
            # be read there stays 0 (nothing to give back) rather than failing the upgrade.
            f"""
            UPDATE jobs SET
                charged_images = {_json_count("charged_images")},
                reserved_cost = {_json_count("reserved_cost")},
                charged_day = CASE
                    WHEN json_type(request, '$.charged_day') = 'text'
                         -- A modifier makes SQLite carry an impossible day over (2024-02-30 → 03-01): no match.
                         AND date(json_extract(request, '$.charged_day'), '+0 days')
                             = json_extract(request, '$.charged_day')
                         AND json_extract(request, '$.charged_day') >= '0001-01-01'
                    THEN json_extract(request, '$.charged_day') END
            WHERE ended_at IS NULL AND json_valid(request)
            """,
        ),
    ),
    Migration(
        13,
        "identify turns: when each Discord identify bucket of a bot may next identify, shared by every process",
        (
            # One row per (bot, bucket of shard_id % max_concurrency): the moment its latest identify was
            # given (now or in the future, for a process waiting its turn); the next comes a window later.
            # Only PostgreSQL uses it (SQLite is one process, paced by itself); here for the same tables on both.
            """
            CREATE TABLE identify_turns (
                bot_id  INTEGER NOT NULL,
                bucket  INTEGER NOT NULL CHECK (bucket >= 0),
                turn_at TEXT NOT NULL,
                PRIMARY KEY (bot_id, bucket)
            ) WITHOUT ROWID
            """,
        ),
    ),
)
"""Every schema step, oldest first. Append new steps; never edit shipped ones."""


_CREATE_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_version (
        version     INTEGER PRIMARY KEY,
        description TEXT NOT NULL,
        applied_at  TEXT NOT NULL
    )
"""


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """The version a database reaches once every step is applied."""
    return migrations[-1].version if migrations else 0


def check_migrations(migrations: Sequence[Migration]) -> None:
    """Refuse a list that is not numbered 1, 2, 3… (a mistake in the code, not the data)."""
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise ValueError(f"migration #{expected} is numbered {migration.version}; versions must be 1, 2, 3…")
        if not migration.statements:
            raise ValueError(f"migration {migration.version} has no statements")


async def schema_version(conn: aiosqlite.Connection) -> int:
    """The highest version applied to the database; 0 for a fresh one."""
    async with conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'") as cursor:
        if await cursor.fetchone() is None:
            return 0
    return await _recorded_version(conn)


async def _recorded_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT COALESCE(MAX(version), 0), COUNT(*) FROM schema_version") as cursor:
        row = await cursor.fetchone()
    assert row is not None  # an aggregate always yields one row
    highest, count = int(row[0]), int(row[1])
    if highest != count:
        # A hole means someone edited the table by hand or a step was lost;
        # guessing which steps are really in place could corrupt data.
        raise SchemaVersionError(
            f"schema_version records {count} steps but claims version {highest}; the database was edited by hand"
        )
    return highest


async def apply_migrations(
    conn: aiosqlite.Connection,
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    now: datetime | None = None,
    where: str = "the database",
) -> list[int]:
    """Bring the database up to the latest version; return the versions applied now.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so that the
    explicit transactions here are the only ones. Raises
    :class:`SchemaVersionError` if the database is newer than ``migrations``
    (written by a later bot); nothing is changed in that case.
    """
    check_migrations(migrations)
    latest = latest_version(migrations)
    applied: list[int] = []
    while True:
        # The version is re-read inside the write lock on every round, so a
        # second process racing us on the same file never applies a step twice.
        await conn.execute("BEGIN IMMEDIATE")
        try:
            await conn.execute(_CREATE_VERSION_TABLE)
            current = await _recorded_version(conn)
            if current > latest:
                raise SchemaVersionError(
                    f"{where} has schema version {current}, but this bot only knows versions up to {latest}: "
                    "it was written by a newer imagine-bot. Upgrade the bot, or point DATABASE_URL elsewhere."
                )
            if current == latest:
                await conn.execute("COMMIT")
                return applied
            step = migrations[current]  # versions are 1-based and contiguous
            for statement in step.statements:
                await conn.execute(statement)
            applied_at = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
            await conn.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                (step.version, step.description, applied_at),
            )
            await conn.execute("COMMIT")
        except BaseException:
            await conn.rollback()  # a no-op if SQLite already ended the transaction
            raise
        applied.append(step.version)
