"""The shared store: :class:`bot.storage.Repository` on PostgreSQL, for one process or many.

One :class:`PostgresRepository` owns an asyncpg pool. Every method is one
transaction on one pooled connection; many processes may use the same database
at once, so correctness never rests on anything held in this process:

* **Read-modify-write under row locks.** A change that depends on what is
  stored (a charge against today's count, new limits against the old ones)
  first locks the row (``SELECT … FOR UPDATE``), after making sure it exists
  with ``INSERT … ON CONFLICT DO NOTHING``; a concurrent transaction, in this
  process or another, waits for the lock and then sees the committed result.
  Plain changes are single conditional statements (``… ON CONFLICT DO
  NOTHING RETURNING``, ``DELETE … RETURNING``, ``UPDATE … WHERE refunded = 0
  RETURNING``), whose row counts say whether anything happened.
* **Audit in the same transaction** as the change it records, as on SQLite.
* **Settings cache: LISTEN/NOTIFY.** Every settings change notifies every
  process, whose dedicated LISTEN connection drops that guild's cached
  settings; nothing is cached while that connection is down, and each entry
  expires after ``CACHE_MAX_AGE`` (5 s, ``notifications.py``) whatever happens.
  Normally another process's change is seen as soon as its notification
  arrives, within milliseconds; this process's own changes at once.

* **Every wait bounded.** A statement gives up after ``COMMAND_TIMEOUT``, a
  pooled connection is waited for ``ACQUIRE_TIMEOUT``, the server ends runaway
  statements and idle transactions (their locks with them) by itself, and TCP
  keepalives find a half-open connection; each such failure is a
  :class:`~bot.storage.DatabaseUnavailable` (see ``base.py``).

Discord ids are BIGINT (snowflakes are below 2**63), moments TIMESTAMPTZ
(returned in UTC), the journal's request and target JSONB.

:class:`PostgresRepository` is the shared SQL of :mod:`bot.storage.shared` over
the pool of :class:`~bot.storage.postgres.base.PostgresBase` (``base.py``: the
pool and its transactions), in PostgreSQL's words (``dialect.py``, with the
migration lock), plus what only PostgreSQL does:

* ``notifications.py``: the settings cache and the LISTEN connection;
* ``settings.py``: a guild's settings read in one statement and cached;
* ``cluster.py``: identify turns and webhook notifications.

Its schema is built by :mod:`bot.storage.migrations` from :mod:`bot.storage.schema`.
"""

from __future__ import annotations

from bot.storage.postgres.cluster import PostgresCluster
from bot.storage.postgres.settings import PostgresSettings
from bot.storage.shared.repository import SqlRepository

__all__ = ["PostgresRepository"]


class PostgresRepository(PostgresSettings, PostgresCluster, SqlRepository):
    """:class:`bot.storage.Repository` on PostgreSQL. Open it with :meth:`open`."""
