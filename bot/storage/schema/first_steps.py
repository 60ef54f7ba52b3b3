"""Schema steps 1-9: moderation settings, the jobs journal, processes, webhooks, budgets."""

from __future__ import annotations

from bot.storage.migrations import Migration, PerDialect

FIRST_STEPS: tuple[Migration, ...] = (
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
)
