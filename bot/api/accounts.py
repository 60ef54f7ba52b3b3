"""The API accounts the bot sends requests as: the deployment's, and the servers' own keys.

A server that set its own API key (``/imagine-admin apikey set``) has its predictions created, polled,
canceled and looked up with that key, under a request budget of its own (the API's limits are per account),
while every other server and the command line use the deployment's ``REPLICATE_API_TOKEN``.

A job records which account its prediction belongs to by the key's :func:`fingerprint` (never the key), so
its polls after a restart or after the server changed its key go to the same account. Where that account's
key is gone or was rejected, the job gets :class:`AccountUnavailable`: never the deployment's key instead.

:class:`Accounts` is the one place that hands out "the client for this job": clients are built lazily, one per
key, at most :data:`MAX_CLIENTS` of them (the least recently used one is forgotten), and closed together.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from bot.api.client import ReplicateClient, RetryPolicy
from bot.api.errors import ApiError, Unauthenticated
from bot.i18n import Text, tr

CHECK_RETRY = RetryPolicy(attempts=2, base_delay=0.5, max_delay=1.0)
"""A key is checked while a moderator waits: one retry at most."""
MAX_CLIENTS = 256
"""Servers' clients kept at once; past that the least recently used is dropped (and rebuilt when asked)."""


def fingerprint(key: str) -> str:
    """What names an account in the journal and in logs: a short hash of its key, never the key."""
    return "k" + hashlib.sha256(key.encode()).hexdigest()[:20]


def rejected_text() -> Text:
    """What a job of a server whose key the API refused says (in the reader's language)."""
    return tr(
        "This server's own API key was rejected by the prediction API, so this job was stopped (the bot "
        "never uses another key in its place). A moderator can set a new key with `/imagine-admin apikey set` "
        "or go back to the bot's key with `/imagine-admin apikey off`."
    )


class AccountUnavailable(ApiError):
    """A server's key cannot be used (rejected by the API, changed or removed): its requests go nowhere.

    Not transient: the job ends with this message. Never a reason to use the deployment's key.
    """

    def __init__(self, message: Text | str) -> None:
        super().__init__(message, status=401)


KeyLoader = Callable[[int], Awaitable[str | None]]
"""The server's current key (decrypted), ``None`` if it has none; raises :class:`AccountUnavailable` where rejected."""


class Accounts:
    """The client for each account: the deployment's and the servers' keys, built lazily, bounded, closed together."""

    def __init__(
        self,
        default: ReplicateClient,
        build: Callable[[str, RetryPolicy | None], ReplicateClient] | None = None,
        *,
        limit: int = MAX_CLIENTS,
    ) -> None:
        """``build(key, retry)`` makes a client (with a budget of its own) for a server's key; without it every
        server's key is unavailable (never the deployment's client instead)."""
        self.default = default
        self._build = build
        self._limit = max(1, limit)
        self._processes = 1
        self._keys: OrderedDict[str, str] = OrderedDict()
        self._clients: OrderedDict[str, ReplicateClient] = OrderedDict()
        self._rejected: dict[str, Text | str] = {}
        self._loader: KeyLoader | None = None
        self._on_rejected: Callable[[str, int | None], None] | None = None

    def attach(self, loader: KeyLoader, on_rejected: Callable[[str, int | None], None]) -> None:
        """Where the servers' keys come from (the moderation layer's store) and who hears of a rejected one."""
        self._loader = loader
        self._on_rejected = on_rejected

    def remember(self, key: str, *, fresh: bool = False) -> str:
        """Know ``key`` from now on (loaded, or with ``fresh`` just checked with the API); its fingerprint."""
        account = fingerprint(key)
        if fresh:
            self._rejected.pop(account, None)
        elif account in self._rejected:
            raise AccountUnavailable(self._rejected[account])
        self._keys[account] = key
        self._keys.move_to_end(account)
        while len(self._keys) > self._limit:
            dropped, _ = self._keys.popitem(last=False)
            self._clients.pop(dropped, None)
        return account

    async def account_of_guild(self, guild_id: int | None) -> str | None:
        """The account this server's new jobs use: its key's fingerprint, ``None`` for the deployment's.

        Raises :class:`AccountUnavailable` (with the reason) where the server's key was rejected.
        """
        if guild_id is None or self._loader is None:
            return None
        key = await self._loader(guild_id)
        # The loader read it as not rejected: the database is the truth across processes (a moderator may have
        # set the same key again in another one since this process saw it refused).
        return None if key is None else self.remember(key, fresh=True)

    async def client(self, account: str | None, guild_id: int | None = None) -> ReplicateClient:
        """The client for a job of ``account`` (``None``: the deployment's); never another account's."""
        if account is None:
            return self.default
        reason = self._rejected.get(account)
        if reason is not None:
            raise AccountUnavailable(reason)
        key = self._keys.get(account)
        if key is None and guild_id is not None and self._loader is not None:
            # After a restart: the server's stored key, if it is still the one the job was created with.
            loaded = await self._loader(guild_id)
            if loaded is not None and fingerprint(loaded) == account:
                key = loaded
                self.remember(loaded)
        if key is None:
            raise AccountUnavailable(
                tr(
                    "This job was started with this server's own API key, which has since been changed or "
                    "removed, so the bot cannot follow it any more."
                )
            )
        client = self._clients.get(account)
        if client is None:
            client = self._make(key, None)
            self._clients[account] = client
        self._clients.move_to_end(account)
        self._keys.move_to_end(account)
        return client

    def rejected(self, account: str, guild_id: int | None, reason: Text | str) -> bool:
        """The API refused ``account``'s key: every later request of it fails with ``reason``.

        ``True`` the first time (the listener hears of it once).
        """
        first = account not in self._rejected
        self._rejected[account] = reason
        self._clients.pop(account, None)
        self._keys.pop(account, None)
        if first and self._on_rejected is not None:
            self._on_rejected(account, guild_id)
        return first

    def failure(self, account: str | None, guild_id: int | None, exc: ApiError) -> Text | str:
        """The message a job ends with after ``exc``; a server's key refused with 401 is marked rejected."""
        if account is not None and isinstance(exc, Unauthenticated) and not isinstance(exc, AccountUnavailable):
            self.rejected(account, guild_id, rejected_text())
            return rejected_text()
        return exc.text

    async def check(self, key: str) -> dict[str, Any]:
        """The account ``key`` belongs to (``GET /v1/account``, one quick try): the API's proof the key works.

        Raises :class:`~bot.api.errors.Unauthenticated` (or another :class:`ApiError`) where it does not.
        """
        return await self._make(key, CHECK_RETRY).account()

    def _make(self, key: str, retry: RetryPolicy | None) -> ReplicateClient:
        if self._build is None:
            raise AccountUnavailable(tr("This bot runs every job with its own API key only."))
        client = self._build(key, retry)
        client.budget.share(self._processes)
        return client

    def share(self, processes: int) -> None:
        """Each account's request budget split between the deployment's live processes (the API's limits are
        per account, whichever process sends): the deployment's and every server key's, present and future."""
        self._processes = max(1, processes)
        self.default.budget.share(self._processes)
        for client in self._clients.values():
            client.budget.share(self._processes)

    def is_rejected(self, account: str) -> bool:
        """Whether the API refused this account's key."""
        return account in self._rejected
