"""Schema steps 10-14: roles, webhook ids, charges in columns, identify turns, members' preferences."""

from __future__ import annotations

from bot.storage.migrations import Migration, PerDialect
from bot.storage.request_json import postgres_json_count, postgres_json_date, sqlite_json_count

MEMBER_STEPS: tuple[Migration, ...] = (
    Migration(
        10,
        "models allowed only to some roles, and limits per role",
        (
            # A row per (model, role): the model is allowed only to members with one of its roles.
            # Keyed to the allowlist's row, so removing the model takes its roles with it.
            """
            CREATE TABLE model_roles (
                guild_id {int64} NOT NULL,
                model    TEXT NOT NULL,
                role_id  {int64} NOT NULL,
                PRIMARY KEY (guild_id, model, role_id),
                FOREIGN KEY (guild_id, model) REFERENCES allowed_models (guild_id, model) ON DELETE CASCADE
            ){without_rowid}
            """,
            # NULL: not set for this role, so a moderator can raise one limit and leave the others to the server.
            """
            CREATE TABLE role_limits (
                guild_id         {int64} NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                role_id          {int64} NOT NULL,
                cooldown_seconds INTEGER CHECK (cooldown_seconds >= 0),
                daily_images     INTEGER CHECK (daily_images >= 0),
                concurrent_jobs  INTEGER CHECK (concurrent_jobs >= 0),
                PRIMARY KEY (guild_id, role_id)
            ){without_rowid}
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
                received_at {moment} NOT NULL
            )
            """,
            "CREATE INDEX webhook_ids_by_age ON webhook_ids (received_at)",
            # ``stage``: 0 starting, 1 processing, 2 ended; a payload never gives way to an earlier stage.
            """
            CREATE TABLE webhook_payloads (
                prediction_id TEXT PRIMARY KEY,
                stage         INTEGER NOT NULL,
                payload       {json} NOT NULL,
                received_at   {moment} NOT NULL
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
            "ALTER TABLE jobs ADD COLUMN charged_day {day}",
            "ALTER TABLE jobs ADD COLUMN reserved_cost {int64} NOT NULL DEFAULT 0 CHECK (reserved_cost >= 0)",
            # Unfinished jobs journaled before this step have their charge in the request only; what cannot
            # be read there stays 0 (nothing to give back) rather than failing the upgrade.
            PerDialect(
                sqlite=f"""
                UPDATE jobs SET
                    charged_images = {sqlite_json_count("charged_images")},
                    reserved_cost = {sqlite_json_count("reserved_cost")},
                    charged_day = CASE
                        WHEN json_type(request, '$.charged_day') = 'text'
                             -- A modifier makes SQLite carry an impossible day over (2024-02-30 → 03-01): no match.
                             AND date(json_extract(request, '$.charged_day'), '+0 days')
                                 = json_extract(request, '$.charged_day')
                             AND json_extract(request, '$.charged_day') >= '0001-01-01'
                        THEN json_extract(request, '$.charged_day') END
                WHERE ended_at IS NULL AND json_valid(request)
                """,
                postgres=f"""
                UPDATE jobs SET
                    charged_images = {postgres_json_count("charged_images", 1_000_000)}::INTEGER,
                    reserved_cost = {postgres_json_count("reserved_cost", 10**15)}::BIGINT,
                    charged_day = {postgres_json_date("charged_day")}
                WHERE ended_at IS NULL
                """,
            ),
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
                bot_id  {int64} NOT NULL,
                bucket  INTEGER NOT NULL CHECK (bucket >= 0),
                turn_at {moment} NOT NULL,
                PRIMARY KEY (bot_id, bucket)
            ){without_rowid}
            """,
        ),
    ),
    Migration(
        14,
        "members' preferences and named options, the same in every server of the deployment",
        (
            # One row per member, not per server: preferences follow the member across the deployment's
            # servers (each server's rules still apply when they are used). NULL: no preference.
            """
            CREATE TABLE member_preferences (
                member_id    {int64} PRIMARY KEY,
                model        TEXT CHECK (model <> ''),
                aspect_ratio TEXT CHECK (aspect_ratio <> ''),
                count        INTEGER CHECK (count >= 1),
                remix        BOOLEAN NOT NULL DEFAULT FALSE,
                suffix       TEXT CHECK (suffix <> ''),
                updated_at   {moment} NOT NULL
            )
            """,
            # ``name`` is stored lower-case (``--Film`` and ``--film`` are one option). Every option has its
            # member's preferences row: locking that row is what keeps a member at 20 options when two sets race.
            """
            CREATE TABLE member_options (
                member_id {int64} NOT NULL REFERENCES member_preferences (member_id) ON DELETE CASCADE,
                name      TEXT NOT NULL CHECK (name <> ''),
                value     TEXT NOT NULL CHECK (value <> ''),
                PRIMARY KEY (member_id, name)
            ){without_rowid}
            """,
        ),
    ),
)
