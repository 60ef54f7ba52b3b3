"""Versioned schema migrations for the PostgreSQL store.

The steps mirror :data:`bot.storage.migrations.MIGRATIONS` one for one (version
N is the same tables on either backend), in PostgreSQL's own types: ``BIGINT``
for Discord ids (snowflakes are below 2**63), ``TIMESTAMPTZ`` for moments,
``DATE`` for the usage day, ``JSONB`` for the journal's request and target.
The same rules hold: append only, never edit a step that has shipped.

Several processes may start at once against a fresh database. Each step runs
in its own transaction that first takes a transaction-scoped advisory lock
(:data:`MIGRATION_LOCK`) and only then reads the recorded version: the first
process applies the step, the others wait on the lock, then see the new
version and apply nothing twice. PostgreSQL's DDL is transactional, so a step
that fails leaves no half-built table behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bot.storage import SchemaVersionError
from bot.storage.migrations import Migration, check_migrations, latest_version

MIGRATION_LOCK = 0x696D6167696E65  # "imagine" in ASCII: one advisory-lock key for this bot's migrations
"""The ``pg_advisory_xact_lock`` key that serialises migrations (advisory locks are per database)."""


def _json_count(key: str, most: int) -> str:
    """SQL for a whole number from 0 to ``most`` at ``key`` of a job's JSON request; 0 if it holds none."""
    return (
        f"CASE WHEN jsonb_typeof(request -> '{key}') = 'number' "
        f"THEN round(LEAST(GREATEST((request ->> '{key}')::NUMERIC, 0), {most})) ELSE 0 END"
    )


def _json_date(key: str) -> str:
    """SQL for the date at ``key`` of a job's JSON request (``YYYY-MM-DD``); NULL unless a real day from year 1.

    Checked before any cast, in nested CASE expressions (the only order PostgreSQL promises): a cast of
    ``2024-02-30`` would raise and abort the whole upgrade. The day is compared with its month's length,
    the month's first day plus a month less a day (``make_date`` cannot fail once year and month are valid).
    """
    text = f"(request ->> '{key}')"
    return (
        f"CASE WHEN jsonb_typeof(request -> '{key}') = 'string' "
        f"AND {text} ~ '^(?!0000)[0-9]{{4}}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$' "
        f"THEN CASE WHEN substr({text}, 9, 2)::INTEGER <= EXTRACT(DAY FROM "
        f"make_date(substr({text}, 1, 4)::INTEGER, substr({text}, 6, 2)::INTEGER, 1) "
        f"+ INTERVAL '1 month' - INTERVAL '1 day') "
        f"THEN {text}::DATE END END"
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "moderation settings, per-member usage and the audit log",
        (
            """
            CREATE TABLE guilds (
                guild_id         BIGINT PRIMARY KEY,
                default_model    TEXT,
                cooldown_seconds INTEGER NOT NULL DEFAULT 0 CHECK (cooldown_seconds >= 0),
                daily_images     INTEGER NOT NULL DEFAULT 0 CHECK (daily_images >= 0),
                concurrent_jobs  INTEGER NOT NULL DEFAULT 0 CHECK (concurrent_jobs >= 0)
            )
            """,
            # ``seq`` only grows, so ORDER BY seq is the order moderators added the models in.
            """
            CREATE TABLE allowed_models (
                seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                guild_id BIGINT NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                model    TEXT NOT NULL CHECK (model <> ''),
                UNIQUE (guild_id, model)
            )
            """,
            """
            CREATE TABLE allowed_channels (
                guild_id   BIGINT NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                channel_id BIGINT NOT NULL,
                PRIMARY KEY (guild_id, channel_id)
            )
            """,
            # ``word_key`` is Python's casefold of ``word`` (computed by the bot, as on
            # SQLite), so both backends agree on which words are "the same".
            """
            CREATE TABLE blocked_words (
                seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                guild_id BIGINT NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                word     TEXT NOT NULL CHECK (word <> ''),
                word_key TEXT NOT NULL,
                UNIQUE (guild_id, word_key)
            )
            """,
            # The count belongs to ``day`` (the UTC date) and is 0 on any other day.
            """
            CREATE TABLE member_usage (
                guild_id        BIGINT NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                member_id       BIGINT NOT NULL,
                day             DATE NOT NULL,
                images_today    INTEGER NOT NULL DEFAULT 0 CHECK (images_today >= 0),
                last_request_at TIMESTAMPTZ,
                PRIMARY KEY (guild_id, member_id)
            )
            """,
            # ``id`` gives "newest first" even if a wall clock steps backwards.
            """
            CREATE TABLE audit_log (
                id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                guild_id BIGINT NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                actor_id BIGINT NOT NULL,
                action   TEXT NOT NULL,
                before   TEXT,
                after    TEXT,
                at       TIMESTAMPTZ NOT NULL
            )
            """,
            "CREATE INDEX audit_log_by_guild ON audit_log (guild_id, id)",
        ),
    ),
    Migration(
        2,
        "the jobs journal",
        (
            # ``seq`` orders jobs created in the same microsecond (SQLite's rowid does that there).
            """
            CREATE TABLE jobs (
                job_id            TEXT PRIMARY KEY,
                seq               BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
                guild_id          BIGINT,
                channel_id        BIGINT,
                requester_id      BIGINT,
                model             TEXT NOT NULL,
                prompt            TEXT NOT NULL,
                request           JSONB NOT NULL,
                target            JSONB,
                state             TEXT NOT NULL,
                prediction_id     TEXT,
                created_at        TIMESTAMPTZ NOT NULL,
                create_started_at TIMESTAMPTZ,
                ended_at          TIMESTAMPTZ,
                error             TEXT,
                images_delivered  INTEGER NOT NULL DEFAULT 0,
                seed              BIGINT,
                predict_time      DOUBLE PRECISION,
                refunded          INTEGER NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX jobs_unfinished ON jobs (created_at, seq) WHERE ended_at IS NULL",
            "CREATE INDEX jobs_by_guild ON jobs (guild_id, created_at)",
        ),
    ),
    Migration(
        3,
        "find a journaled job by its prediction",
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
                started_at  TIMESTAMPTZ NOT NULL,
                alive_at    TIMESTAMPTZ NOT NULL
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
                payload       JSONB NOT NULL,
                received_at   TIMESTAMPTZ NOT NULL
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
                seconds    DOUBLE PRECISION NOT NULL,
                samples    INTEGER NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL
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
            "ALTER TABLE jobs ADD COLUMN message_id BIGINT",
            "CREATE INDEX jobs_by_member ON jobs (guild_id, requester_id, created_at)",
        ),
    ),
    Migration(
        8,
        "each server's mod-log channel",
        ("ALTER TABLE guilds ADD COLUMN log_channel_id BIGINT",),
    ),
    Migration(
        9,
        "spending budgets in micro-dollars: caps per server, spend per month and per member per day, each job's cost",
        (
            # Money is whole micro-dollars ($1 = 1 000 000): exact sums; 0 means no cap.
            "ALTER TABLE guilds ADD COLUMN budget_monthly BIGINT NOT NULL DEFAULT 0 CHECK (budget_monthly >= 0)",
            "ALTER TABLE guilds ADD COLUMN budget_member_daily BIGINT NOT NULL DEFAULT 0 "
            "CHECK (budget_member_daily >= 0)",
            # Belongs to member_usage.day like images_today: 0 on any other day.
            "ALTER TABLE member_usage ADD COLUMN spent_today BIGINT NOT NULL DEFAULT 0 CHECK (spent_today >= 0)",
            # One row per server and calendar month (``month`` is its first day); reserved and booked costs.
            """
            CREATE TABLE guild_spend (
                guild_id BIGINT NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                month    DATE NOT NULL,
                spent    BIGINT NOT NULL DEFAULT 0 CHECK (spent >= 0),
                PRIMARY KEY (guild_id, month)
            )
            """,
            # A job's real cost, booked once when it ends (``cost_settled`` guards a resumed job that ends twice).
            "ALTER TABLE jobs ADD COLUMN cost BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE jobs ADD COLUMN cost_settled BOOLEAN NOT NULL DEFAULT false",
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
                guild_id BIGINT NOT NULL,
                model    TEXT NOT NULL,
                role_id  BIGINT NOT NULL,
                PRIMARY KEY (guild_id, model, role_id),
                FOREIGN KEY (guild_id, model) REFERENCES allowed_models (guild_id, model) ON DELETE CASCADE
            )
            """,
            # NULL: not set for this role, so a moderator can raise one limit and leave the others to the server.
            """
            CREATE TABLE role_limits (
                guild_id         BIGINT NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                role_id          BIGINT NOT NULL,
                cooldown_seconds INTEGER CHECK (cooldown_seconds >= 0),
                daily_images     INTEGER CHECK (daily_images >= 0),
                concurrent_jobs  INTEGER CHECK (concurrent_jobs >= 0),
                PRIMARY KEY (guild_id, role_id)
            )
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
                received_at TIMESTAMPTZ NOT NULL
            )
            """,
            "CREATE INDEX webhook_ids_by_age ON webhook_ids (received_at)",
            # ``stage``: 0 starting, 1 processing, 2 ended; a payload never gives way to an earlier stage.
            """
            CREATE TABLE webhook_payloads (
                prediction_id TEXT PRIMARY KEY,
                stage         INTEGER NOT NULL,
                payload       JSONB NOT NULL,
                received_at   TIMESTAMPTZ NOT NULL
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
            "ALTER TABLE jobs ADD COLUMN charged_day DATE",
            "ALTER TABLE jobs ADD COLUMN reserved_cost BIGINT NOT NULL DEFAULT 0 CHECK (reserved_cost >= 0)",
            # Unfinished jobs journaled before this step have their charge in the request only; what cannot
            # be read there stays 0 (nothing to give back) rather than failing the upgrade.
            f"""
            UPDATE jobs SET
                charged_images = {_json_count("charged_images", 1_000_000)}::INTEGER,
                reserved_cost = {_json_count("reserved_cost", 10**15)}::BIGINT,
                charged_day = {_json_date("charged_day")}
            WHERE ended_at IS NULL
            """,
        ),
    ),
    Migration(
        13,
        "identify turns: when each Discord identify bucket of a bot may next identify, shared by every process",
        (
            # One row per (bot, bucket of shard_id % max_concurrency): the moment its latest identify was
            # given (now or in the future, for a process waiting its turn); the next comes a window later.
            """
            CREATE TABLE identify_turns (
                bot_id  BIGINT NOT NULL,
                bucket  INTEGER NOT NULL CHECK (bucket >= 0),
                turn_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (bot_id, bucket)
            )
            """,
        ),
    ),
)
"""Every PostgreSQL schema step, oldest first. Append new steps; never edit shipped ones."""


_CREATE_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_version (
        version     INTEGER PRIMARY KEY,
        description TEXT NOT NULL,
        applied_at  TIMESTAMPTZ NOT NULL
    )
"""


async def recorded_version(conn: Any) -> int:
    """The highest version applied (0 for a fresh database); refuses a version table with holes.

    ``conn`` is an asyncpg connection (asyncpg ships no type information).
    """
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    row = await conn.fetchrow("SELECT COALESCE(MAX(version), 0) AS highest, COUNT(*) AS steps FROM schema_version")
    highest, count = int(row["highest"]), int(row["steps"])
    if highest != count:
        # A hole means someone edited the table by hand; guessing which steps are in place could corrupt data.
        raise SchemaVersionError(
            f"schema_version records {count} steps but claims version {highest}; the database was edited by hand"
        )
    return highest


async def apply_migrations(
    conn: Any,
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    now: datetime | None = None,
    where: str = "the database",
) -> list[int]:
    """Bring the database up to the latest version; return the versions applied by this call.

    ``conn`` is an asyncpg connection outside any transaction. Safe to run from
    many processes at once (see the module's docstring). Raises
    :class:`SchemaVersionError` for a database newer than ``migrations``,
    changing nothing.
    """
    check_migrations(migrations)
    latest = latest_version(migrations)
    applied: list[int] = []
    while True:
        async with conn.transaction():
            # Taken before reading the version, held until this step commits: a process that
            # waited here re-reads the version and sees what the winner applied.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(_CREATE_VERSION_TABLE)
            current = await recorded_version(conn)
            if current > latest:
                raise SchemaVersionError(
                    f"{where} has schema version {current}, but this bot only knows versions up to {latest}: "
                    "it was written by a newer imagine-bot. Upgrade the bot, or point DATABASE_URL elsewhere."
                )
            if current == latest:
                return applied
            step = migrations[current]  # versions are 1-based and contiguous
            for statement in step.statements:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES ($1, $2, $3)",
                step.version,
                step.description,
                (now or datetime.now(UTC)).astimezone(UTC),
            )
        applied.append(step.version)
