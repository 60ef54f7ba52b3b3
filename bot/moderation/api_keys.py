"""A server's own API key: checked with the API, kept encrypted, read back for its jobs, dropped when refused.

The key is encrypted with Fernet under the deployment's ``IMAGINE_SECRET_KEY`` before it is stored; the
database, the audit log, the mod-log and every answer hold at most its last four characters. Once loaded it
is masked in every log line (:func:`bot.base.logs.mask_secret`). Which client a job uses is
:class:`bot.api.accounts.Accounts`' business: this module is where its keys come from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from cryptography.fernet import Fernet, InvalidToken

from bot.api.accounts import Accounts, AccountUnavailable, fingerprint, rejected_text
from bot.api.errors import ApiError
from bot.base.clock import Clock
from bot.base.logs import mask_secret
from bot.i18n import Text, tr
from bot.moderation.modlog import ApiKeyRejectedEvent, ModLogEvent
from bot.storage import AuditEntry, Repository, StoredApiKey

log = logging.getLogger(__name__)

API_KEY_ACTION = "apikey"
MAX_KEY_LENGTH = 200
"""Longest key taken (Replicate's are 40 characters); the modal allows no more."""
CACHE_SIZE = 4096
CACHE_SECONDS = 5.0
"""How long a server's key is read from memory: another process's change (a new key, ``off``, a rejection)
applies here within this (this process's own changes at once)."""


class KeyCheck(Enum):
    """What checking a key with the API concluded."""

    KEPT = "kept"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    MALFORMED = "malformed"
    BUSY = "busy"
    """Another key of this server is being checked right now: one check at a time per server."""


@dataclass(frozen=True)
class _Cached:
    stored: StoredApiKey | None
    key: str | None
    read_at: float


def rejected_refusal() -> Text:
    """Why ``/imagine`` is refused in a server whose key the API refused."""
    return tr(
        "This server's own API key was rejected by the prediction API, so /imagine is paused here. "
        "A moderator can set a new key with `/imagine-admin apikey set` or go back to the bot's key with "
        "`/imagine-admin apikey off`."
    )


class ServerKeys:
    """Each server's own API key, for :class:`Accounts` and for ``/imagine-admin apikey``."""

    def __init__(
        self,
        repository: Repository,
        accounts: Accounts,
        secret_key: str | None,
        *,
        clock: Clock,
        on_event: Callable[[ModLogEvent], None],
        end_jobs: Callable[[int, str, Text | str], Awaitable[int]],
    ) -> None:
        """``end_jobs(guild_id, account, error)`` ends a server's jobs of that account (how many it ended)."""
        self._repository = repository
        self._accounts = accounts
        self._fernet = Fernet(secret_key.encode()) if secret_key else None
        self._clock = clock
        self._on_event = on_event
        self._end_jobs = end_jobs
        self._cache: dict[int, _Cached] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._checking: set[int] = set()
        accounts.attach(self.key_of, self._rejected)
        repository.on_settings_change(self._changed)

    @property
    def available(self) -> bool:
        """Whether servers may keep keys: the bot's owner set ``IMAGINE_SECRET_KEY``."""
        return self._fernet is not None

    def _changed(self, entry: AuditEntry) -> None:
        if entry.action == API_KEY_ACTION:
            self._cache.pop(entry.guild_id, None)

    async def _load(self, guild_id: int) -> _Cached:
        cached = self._cache.get(guild_id)
        if cached is not None and self._clock.monotonic() - cached.read_at < CACHE_SECONDS:
            return cached
        stored = await self._repository.api_key(guild_id)
        key = None
        if stored is not None and self._fernet is not None:
            try:
                key = self._fernet.decrypt(stored.ciphertext.encode()).decode()
            except (InvalidToken, UnicodeDecodeError):
                log.error("the API key of guild %s cannot be decrypted with IMAGINE_SECRET_KEY", guild_id)
            else:
                mask_secret(key)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        cached = _Cached(stored, key, self._clock.monotonic())
        self._cache[guild_id] = cached
        return cached

    async def key_of(self, guild_id: int) -> str | None:
        """The server's key for its new jobs, ``None``: the deployment's. Raises :class:`AccountUnavailable` where
        the server has a key that cannot be used (rejected, or not readable): never the deployment's instead."""
        cached = await self._load(guild_id)
        if cached.stored is None:
            return None
        if cached.stored.rejected:
            raise AccountUnavailable(rejected_refusal())
        if cached.key is None:
            raise AccountUnavailable(
                tr(
                    "This server's own API key cannot be read by the bot (its IMAGINE_SECRET_KEY changed), so "
                    "/imagine is paused here. A moderator can set the key again with `/imagine-admin apikey set`."
                )
            )
        return cached.key

    async def check_and_set(self, guild_id: int, key: str, *, actor_id: int) -> KeyCheck:
        """Check ``key`` with one API call and keep it, encrypted, if the API takes it; nothing kept otherwise."""
        assert self._fernet is not None, "check available first"
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or " " in key:
            return KeyCheck.MALFORMED
        mask_secret(key)
        if guild_id in self._checking:
            return KeyCheck.BUSY
        self._checking.add(guild_id)
        try:
            await self._accounts.check(key)
        except ApiError as exc:
            if exc.status in (401, 403):
                return KeyCheck.REFUSED
            if exc.transient:
                log.warning("could not check guild %s's new API key: %s", guild_id, exc)
                return KeyCheck.UNREACHABLE
            log.warning("the API answered %s to guild %s's new API key", exc.status, guild_id)
            return KeyCheck.REFUSED
        finally:
            self._checking.discard(guild_id)
        ciphertext = self._fernet.encrypt(key.encode()).decode()
        await self._repository.set_api_key(guild_id, ciphertext, key[-4:], actor_id=actor_id)
        self._cache.pop(guild_id, None)
        self._accounts.remember(key, fresh=True)
        return KeyCheck.KEPT

    async def turn_off(self, guild_id: int, *, actor_id: int) -> bool:
        """Back to the deployment's key; ``False`` if the server had none. Running jobs keep their account."""
        cleared = await self._repository.clear_api_key(guild_id, actor_id=actor_id)
        self._cache.pop(guild_id, None)
        return cleared

    async def state(self, guild_id: int) -> Text:
        """What ``show`` says of the server's key: never more than its last four characters."""
        cached = await self._load(guild_id)
        stored = cached.stored
        if stored is None:
            return tr("the bot's (the deployment's key)")
        if stored.rejected:
            return tr("rejected by the API (ending in …{last4}): set a new one", last4=stored.last4)
        if cached.key is None:
            return tr(
                "set, ends in …{last4}, but the bot cannot read it (its IMAGINE_SECRET_KEY changed): set it again",
                last4=stored.last4,
            )
        return tr("set, ends in …{last4}", last4=stored.last4)

    def _rejected(self, account: str, guild_id: int | None) -> None:
        if guild_id is None:
            return
        task = asyncio.get_running_loop().create_task(self._handle_rejection(account, guild_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle_rejection(self, account: str, guild_id: int) -> None:
        """Mark the key rejected (if still the server's), end the server's jobs of it, tell its moderators."""
        log.warning("the API refused the own key of guild %s (account %s); its jobs are stopped", guild_id, account)
        try:
            ended = await self._end_jobs(guild_id, account, rejected_text())
            self._cache.pop(guild_id, None)
            cached = await self._load(guild_id)
            stored = cached.stored
            if stored is None or cached.key is None or fingerprint(cached.key) != account:
                return  # the server changed or removed its key since: the new one stands
            marked = await self._repository.reject_api_key(guild_id, stored.ciphertext)
            self._cache.pop(guild_id, None)
            if marked:  # the first process to see the refusal tells the moderators; the others only end their jobs
                self._on_event(ApiKeyRejectedEvent(guild_id, stored.last4, ended, self._clock.now()))
        except Exception:
            log.exception("could not record that guild %s's API key was rejected", guild_id)

    async def close(self) -> None:
        """Let rejections being recorded finish."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
