"""Schema steps from 15: what owners of many communities need (age-restricted models, servers' own keys, sync)."""

from __future__ import annotations

from bot.storage.migrations import Migration

OWNER_STEPS: tuple[Migration, ...] = (
    Migration(
        15,
        "models only for age-restricted channels, the safety checker per server, servers' own API keys, "
        "the last command sync",
        (
            "ALTER TABLE allowed_models ADD COLUMN nsfw BOOLEAN NOT NULL DEFAULT FALSE",
            # FALSE (the default): the models' safety checker stays on everywhere, age-restricted channels too.
            "ALTER TABLE guilds ADD COLUMN safety_checker_off BOOLEAN NOT NULL DEFAULT FALSE",
            # The key itself only as Fernet ciphertext (IMAGINE_SECRET_KEY); ``last4`` is what `show` may say.
            # ``rejected``: the API answered 401 with it, so the server's jobs stop (never the deployment's key).
            """
            CREATE TABLE guild_api_keys (
                guild_id   {int64} PRIMARY KEY REFERENCES guilds (guild_id) ON DELETE CASCADE,
                ciphertext TEXT NOT NULL CHECK (ciphertext <> ''),
                last4      TEXT NOT NULL,
                rejected   BOOLEAN NOT NULL DEFAULT FALSE,
                set_by     {int64} NOT NULL,
                set_at     {moment} NOT NULL
            )
            """,
            # ``scope``: 'global' or a guild id; ``digest``: a hash of the command tree's sync payload.
            """
            CREATE TABLE command_syncs (
                scope     TEXT PRIMARY KEY CHECK (scope <> ''),
                digest    TEXT NOT NULL CHECK (digest <> ''),
                synced_at {moment} NOT NULL
            )
            """,
        ),
    ),
)
