"""The schema, as versioned steps both backends apply: version N is the same tables on SQLite and PostgreSQL.

Each step's SQL is written once, in SQLite's words where both agree, with the
few types that differ named in braces (:data:`~bot.storage.migrations.TYPES`): PostgreSQL gets
``BIGINT`` for Discord ids and money (snowflakes are below 2**63),
``TIMESTAMPTZ`` for moments, ``DATE`` for days, ``JSONB`` for the journal's
request and target; SQLite stores moments and days as ISO-8601 text. A
statement that differs beyond its types gives both texts
(:class:`~bot.storage.migrations.PerDialect`); :mod:`bot.storage.migrations` applies them.

Rules for whoever adds the next step:

* **Append only.** Never edit or reorder a migration that has shipped: databases
  in the wild have already applied it. Add ``Migration(N + 1, ...)`` at the end
  of :data:`MIGRATIONS` instead.
* Each string holds exactly one statement (SQLite runs them one by one).
* Foreign keys are ON while migrating on SQLite. Adding tables and columns is
  fine. Rebuilding a *parent* table there (the "create new, copy, drop, rename"
  dance) would cascade-delete its children when the old table is dropped: such
  a step needs ``PRAGMA foreign_keys=OFF`` outside the transaction, which the
  runner does not do yet — extend :class:`Migration` with a flag first.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.storage.migrations import Migration, PerDialect
from bot.storage.request_json import postgres_json_count, postgres_json_date, sqlite_json_count

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "moderation settings, per-member usage and the audit log",
        (
            # The parent of every per-server row: deleting a guild (when the bot
            # leaves a server, say) takes all its settings with it.
            """
            CREATE TABLE guilds (
                guild_id         {int64} PRIMARY KEY,
                default_model    TEXT,
                cooldown_seconds INTEGER NOT NULL DEFAULT 0 CHECK (cooldown_seconds >= 0),
                daily_images     INTEGER NOT NULL DEFAULT 0 CHECK (daily_images >= 0),
                concurrent_jobs  INTEGER NOT NULL DEFAULT 0 CHECK (concurrent_jobs >= 0)
            )
            """,
            # ``seq`` only grows, so ORDER BY seq is the order moderators added the models in.
            """
            CREATE TABLE allowed_models (
                seq      {serial},
                guild_id {int64} NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                model    TEXT NOT NULL CHECK (model <> ''),
                UNIQUE (guild_id, model)
            )
            """,
            """
            CREATE TABLE allowed_channels (
                guild_id   {int64} NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                channel_id {int64} NOT NULL,
                PRIMARY KEY (guild_id, channel_id)
            ){without_rowid}
            """,
            # ``word`` is kept as the moderator typed it (for display); ``word_key`` is its Python casefold
            # (computed by the bot), which makes uniqueness case-insensitive for all of Unicode on both
            # backends alike (SQLite's NOCASE only folds ASCII).
            """
            CREATE TABLE blocked_words (
                seq      {serial},
                guild_id {int64} NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                word     TEXT NOT NULL CHECK (word <> ''),
                word_key TEXT NOT NULL,
                UNIQUE (guild_id, word_key)
            )
            """,
            # One row per member and server: the count belongs to ``day`` (the UTC date) and is treated
            # as 0 on any other day.
            """
            CREATE TABLE member_usage (
                guild_id        {int64} NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                member_id       {int64} NOT NULL,
                day             {day} NOT NULL,
                images_today    INTEGER NOT NULL DEFAULT 0 CHECK (images_today >= 0),
                last_request_at {moment},
                PRIMARY KEY (guild_id, member_id)
            ){without_rowid}
            """,
            # ``id`` gives "newest first" even if the wall clock steps backwards.
            """
            CREATE TABLE audit_log (
                id       {serial},
                guild_id {int64} NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                actor_id {int64} NOT NULL,
                action   TEXT NOT NULL,
                before   TEXT,
                after    TEXT,
                at       {moment} NOT NULL
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
                {journal_order}
                guild_id          {int64},
                channel_id        {int64},
                requester_id      {int64},
                model             TEXT NOT NULL,
                prompt            TEXT NOT NULL,
                request           {json} NOT NULL,
                target            {json},
                state             TEXT NOT NULL,
                prediction_id     TEXT,
                created_at        {moment} NOT NULL,
                create_started_at {moment},
                ended_at          {moment},
                error             TEXT,
                images_delivered  INTEGER NOT NULL DEFAULT 0,
                seed              {int64},
                predict_time      {real},
                refunded          INTEGER NOT NULL DEFAULT 0
            )
            """,
            PerDialect(
                sqlite="CREATE INDEX jobs_unfinished ON jobs (state) WHERE ended_at IS NULL",
                postgres="CREATE INDEX jobs_unfinished ON jobs (created_at, seq) WHERE ended_at IS NULL",
            ),
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
                started_at  {moment} NOT NULL,
                alive_at    {moment} NOT NULL
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
                payload       {json} NOT NULL,
                received_at   {moment} NOT NULL
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
                seconds    {real} NOT NULL,
                samples    INTEGER NOT NULL,
                updated_at {moment} NOT NULL
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
            "ALTER TABLE jobs ADD COLUMN message_id {int64}",
            "CREATE INDEX jobs_by_member ON jobs (guild_id, requester_id, created_at)",
        ),
    ),
    Migration(
        8,
        "each server's mod-log channel",
        ("ALTER TABLE guilds ADD COLUMN log_channel_id {int64}",),
    ),
    Migration(
        9,
        "spending budgets in micro-dollars: caps per server, spend per month and per member per day, each job's cost",
        (
            # Money is whole micro-dollars ($1 = 1 000 000): exact sums; 0 means no cap.
            "ALTER TABLE guilds ADD COLUMN budget_monthly {int64} NOT NULL DEFAULT 0 CHECK (budget_monthly >= 0)",
            "ALTER TABLE guilds ADD COLUMN budget_member_daily {int64} NOT NULL DEFAULT 0 "
            "CHECK (budget_member_daily >= 0)",
            # Belongs to member_usage.day like images_today: 0 on any other day.
            "ALTER TABLE member_usage ADD COLUMN spent_today {int64} NOT NULL DEFAULT 0 CHECK (spent_today >= 0)",
            # One row per server and calendar month (``month`` is its first day); reserved and booked costs.
            """
            CREATE TABLE guild_spend (
                guild_id {int64} NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
                month    {day} NOT NULL,
                spent    {int64} NOT NULL DEFAULT 0 CHECK (spent >= 0),
                PRIMARY KEY (guild_id, month)
            )
            """,
            # A job's real cost, booked once when it ends (``cost_settled`` guards a resumed job that ends twice).
            "ALTER TABLE jobs ADD COLUMN cost {int64} NOT NULL DEFAULT 0",
            PerDialect(
                sqlite="ALTER TABLE jobs ADD COLUMN cost_settled INTEGER NOT NULL DEFAULT 0",
                postgres="ALTER TABLE jobs ADD COLUMN cost_settled BOOLEAN NOT NULL DEFAULT false",
            ),
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
"""Every schema step, oldest first. Append new steps; never edit shipped ones."""


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """The version a database reaches once every step is applied."""
    return migrations[-1].version if migrations else 0
