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

from bot.storage.migrations import Migration
from bot.storage.schema.first_steps import FIRST_STEPS
from bot.storage.schema.member_steps import MEMBER_STEPS
from bot.storage.schema.owner_steps import OWNER_STEPS

MIGRATIONS: tuple[Migration, ...] = (*FIRST_STEPS, *MEMBER_STEPS, *OWNER_STEPS)
"""Every schema step, oldest first. Append new steps (in the newest module, or a new one); never edit shipped ones."""


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """The version a database reaches once every step is applied."""
    return migrations[-1].version if migrations else 0
