"""The bot's settings: one frozen object read from the environment after ``.env``.

Every problem found is reported on its own line naming the variable; the
caller turns them into exit status 2. Secrets are wrapped in :class:`Secret`
so that no repr, log line or error message can show them.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from dotenv import load_dotenv

from bot.api.modelref import InvalidModelRef, ModelRef
from bot.media.fetch_guard import HOSTNAME, FetchAllow, parse_fetch_allow
from bot.moderation.costs import NO_PRICES, Prices, parse_prices
from bot.storage.urls import DatabaseUrl, parse_database_url

_T = TypeVar("_T")
_D = TypeVar("_D")

DEFAULT_MODEL = "black-forest-labs/flux-schnell"
DEFAULT_BASE_URL = "https://api.replicate.com"
DEFAULT_DATABASE_URL = "sqlite:///imagine.db"
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
LOG_FORMATS = ("text", "json")
# Replicate's published limits (requests per minute); the budget aims 10 % under them.
DEFAULT_CREATES_PER_MINUTE = 600
DEFAULT_REQUESTS_PER_MINUTE = 3000


class Secret:
    """A string that never shows itself in ``repr``/``str``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: only for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class HttpListen:
    """A ``host:port`` to listen on; ``host`` ``None`` means every interface."""

    host: str | None
    port: int

    def __str__(self) -> str:
        host = self.host or ""
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


class SettingsError(Exception):
    """One or more settings are missing or malformed; each problem is one line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    """Everything the bot reads from its environment."""

    replicate_api_token: Secret
    discord_token: Secret | None = None
    replicate_base_url: str = DEFAULT_BASE_URL
    default_model: ModelRef = field(default_factory=lambda: ModelRef.parse(DEFAULT_MODEL))
    models: tuple[ModelRef, ...] = ()
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    """May hold a PostgreSQL password: left out of ``repr``; :attr:`database` shows it masked."""
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    sync_guild: int | None = None
    max_running: int = 8
    max_running_per_server: int = 4
    job_timeout: float = 600.0
    log_level: str = "INFO"
    log_format: str = "text"
    http_listen: HttpListen | None = None
    """Where the HTTP server (health, metrics) listens; ``None``: no server."""
    shard_count: int | None = None
    """``None``: one process runs every shard, as many as Discord recommends."""
    shard_ids: tuple[int, ...] | None = None
    """The shards this process runs, sorted; ``None``: every shard of ``shard_count``."""
    api_creates_per_minute: int = DEFAULT_CREATES_PER_MINUTE
    api_requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE
    takeover_after: float = 30.0
    webhook_url: str | None = None
    """Where the API sends webhooks (``IMAGINE_WEBHOOK_URL``); ``None``: results are polled."""
    webhook_secret: Secret | None = None
    """``REPLICATE_WEBHOOK_SECRET``; ``None``: read once from the API at start-up."""
    upscale_model: ModelRef | None = None
    """``IMAGINE_UPSCALE_MODEL``: what the U buttons run on one image; ``None``: no U buttons."""
    prices: Prices = NO_PRICES
    """``IMAGINE_PRICES``: what each model costs, for the servers' budgets; a model without a price costs nothing."""
    fetch_allow: FetchAllow = field(default_factory=lambda: FetchAllow())
    """``IMAGINE_FETCH_ALLOW``: hosts and networks files may be fetched from besides globally routable addresses."""
    max_queued: int = 200
    """``IMAGINE_MAX_QUEUED``: jobs waiting in the queue, whole deployment; 0: no cap."""
    max_queued_per_member: int = 3
    """``IMAGINE_MAX_QUEUED_PER_MEMBER``: jobs one member may have waiting; 0: no cap."""

    @property
    def offered_models(self) -> tuple[ModelRef, ...]:
        """The bot-wide model list, the default first."""
        return (self.default_model, *(m for m in self.models if m != self.default_model))

    @property
    def database(self) -> DatabaseUrl:
        """``DATABASE_URL``, checked: its backend, and a masked form safe to print."""
        return parse_database_url(self.database_url)

    @property
    def database_path(self) -> str:
        """The SQLite file named by ``DATABASE_URL`` (``:memory:`` allowed); ``ValueError`` for PostgreSQL."""
        return sqlite_path(self.database_url)

    def secrets(self) -> list[str]:
        """Every secret these settings hold, for the log filter that masks them (never for showing)."""
        found = [self.replicate_api_token.reveal()]
        found += [secret.reveal() for secret in (self.discord_token, self.webhook_secret) if secret is not None]
        password = database_password(self.database_url)
        return found if password is None else [*found, password]

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__dataclass_fields__ if name != "database_url"
        )
        return f"Settings({fields}, database={self.database.masked!r})"


def sqlite_path(url: str) -> str:
    """The path in a ``sqlite:///path`` URL; raise ``ValueError`` for anything else (PostgreSQL included)."""
    database = parse_database_url(url)
    if database.sqlite_path is None:
        raise ValueError(f"is not an SQLite URL: {database.masked!r}")
    return database.sqlite_path


def database_password(url: str) -> str | None:
    """The password in a database URL, if any: for :class:`RedactSecrets`, never for showing."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def load_database_url(environ: Mapping[str, str] | None = None) -> str:
    """``DATABASE_URL`` (or the default), checked, reading nothing else: for ``python -m bot migrate``.

    Raises :class:`SettingsError` with one line naming the variable.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    url = _database_url(env.get("DATABASE_URL"), problems)
    if problems:
        raise SettingsError(problems)
    return url


def _database_url(value: str | None, problems: list[str]) -> str:
    url = value.strip() if value is not None and value.strip() else DEFAULT_DATABASE_URL
    try:
        parse_database_url(url)
    except ValueError as exc:
        problems.append(f"DATABASE_URL: {exc}")
    return url


def load_environment(env_file: Path | None = None) -> None:
    """Load ``.env`` from the working directory without overriding what is already set."""
    load_dotenv(env_file or Path.cwd() / ".env", override=False)


def _http_url(name: str, value: str, problems: list[str], schemes: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        problems.append(f"{name}: is not a valid URL: {value!r}")
        return value
    if parts.scheme not in schemes or not parts.netloc:
        problems.append(f"{name}: must be an {'/'.join(schemes)} URL, got {value!r}")
    return value.rstrip("/")


def _int(name: str, value: str, problems: list[str], *, minimum: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        problems.append(f"{name}: must be a whole number, got {value!r}")
        return minimum
    if number < minimum:
        problems.append(f"{name}: must be at least {minimum}, got {number}")
    return number


def _seconds(name: str, value: str | None, default: float, problems: list[str]) -> float:
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        problems.append(f"{name}: must be a number of seconds, got {value!r}")
        return default
    if not math.isfinite(seconds) or seconds <= 0:
        problems.append(f"{name}: must be more than 0 seconds, got {value!r}")
    return seconds


def parse_listen(value: str) -> HttpListen:
    """``host:port``, ``[ipv6]:port`` or ``:port`` (every interface); ``ValueError`` says what is wrong."""
    if value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
        if not sep:
            raise ValueError(f"must look like host:port or [ipv6]:port, got {value!r}")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address (expected e.g. [::1]:8080)") from None
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            raise ValueError(f"must look like host:port (e.g. 127.0.0.1:8080), got {value!r}")
        if ":" in host:
            raise ValueError(f"put an IPv6 address in brackets, like [::1]:8080, got {value!r}")
        if host and not HOSTNAME.match(host):
            raise ValueError(f"{host!r} is not a host name or address")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"the port must be a number from 1 to 65535, got {port_text!r}")
    return HttpListen(host or None, int(port_text))


_WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/]{8,}={0,2}")
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def parse_webhook_url(value: str) -> str:
    """An ``https://`` URL, or ``http://`` on this machine (for tests and a local TLS proxy); ``ValueError`` if not."""
    parts = urlsplit(value.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host:
        return value.strip()
    if parts.scheme == "http" and host in _LOCAL_HOSTS:
        return value.strip()
    if parts.scheme == "http":
        raise ValueError(
            f"must be https:// (the API refuses plain http), or http:// on 127.0.0.1/localhost; got {value!r}"
        )
    raise ValueError(f"must be an https:// URL that reaches POST /webhooks/replicate; got {value!r}")


def parse_shard_ids(value: str, count: int) -> tuple[int, ...]:
    """``0-3``, ``0,2,5`` or a mix, sorted; every id must exist among ``count`` shards (``ValueError`` if not)."""
    ids: set[int] = set()
    for item in (part.strip() for part in value.split(",")):
        first, dash, last = item.partition("-")
        if not first.strip().isdigit() or (dash and not last.strip().isdigit()):
            raise ValueError(f"{item!r} is not a shard id or a range like 0-3")
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise ValueError(f"the range {item!r} runs backwards")
        ids.update(range(low, high + 1))
    outside = sorted(i for i in ids if i >= count)
    if outside:
        raise ValueError(
            f"shard {outside[0]} does not exist with DISCORD_SHARD_COUNT={count} (ids are 0 to {count - 1})"
        )
    return tuple(sorted(ids))


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    require_discord: bool = False,
    require_replicate: bool = True,
) -> Settings:
    """Build :class:`Settings` from ``environ`` (default: ``os.environ``).

    ``require_discord`` is set by the commands that log in to Discord. Raises
    :class:`SettingsError` listing every problem at once.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []

    def get(name: str) -> str | None:
        value = env.get(name)
        return value.strip() if value is not None and value.strip() != "" else None

    replicate_token = get("REPLICATE_API_TOKEN")
    if replicate_token is None and require_replicate:
        problems.append("REPLICATE_API_TOKEN: required, and not set")
    discord_token = get("DISCORD_TOKEN")
    if discord_token is None and require_discord:
        problems.append("DISCORD_TOKEN: required to run the bot, and not set")

    base_url = _http_url(
        "REPLICATE_BASE_URL", get("REPLICATE_BASE_URL") or DEFAULT_BASE_URL, problems, ("http", "https")
    )

    def parsed(name: str, parse: Callable[[str], _T], default: _D) -> _T | _D:
        """``parse`` of ``name``'s value; ``default`` when it is unset, or malformed (then reported)."""
        value = get(name)
        if value is None:
            return default
        try:
            return parse(value)
        except (ValueError, InvalidModelRef) as exc:
            problems.append(f"{name}: {exc}")
            return default

    default_model = parsed("IMAGINE_DEFAULT_MODEL", ModelRef.parse, ModelRef.parse(DEFAULT_MODEL))
    upscale_model = parsed("IMAGINE_UPSCALE_MODEL", ModelRef.parse, None)

    models: list[ModelRef] = []
    raw_models = get("IMAGINE_MODELS")
    if raw_models is not None:
        for item in raw_models.split(","):
            if not item.strip():
                continue
            try:
                ref = ModelRef.parse(item)
            except InvalidModelRef as exc:
                problems.append(f"IMAGINE_MODELS: {exc}")
                continue
            if ref not in models:
                models.append(ref)

    database_url = _database_url(get("DATABASE_URL"), problems)

    api_base = get("DISCORD_API_BASE")
    if api_base is not None:
        api_base = _http_url("DISCORD_API_BASE", api_base, problems, ("http", "https"))
    gateway_url = get("DISCORD_GATEWAY_URL")
    if gateway_url is not None:
        gateway_url = _http_url("DISCORD_GATEWAY_URL", gateway_url, problems, ("ws", "wss"))

    sync_guild: int | None = None
    raw_guild = get("IMAGINE_SYNC_GUILD")
    if raw_guild is not None:
        sync_guild = _int("IMAGINE_SYNC_GUILD", raw_guild, problems, minimum=1)

    max_running = _int("IMAGINE_MAX_RUNNING", get("IMAGINE_MAX_RUNNING") or "8", problems, minimum=1)
    per_server = _int(
        "IMAGINE_MAX_RUNNING_PER_SERVER", get("IMAGINE_MAX_RUNNING_PER_SERVER") or "4", problems, minimum=1
    )

    job_timeout = _seconds("IMAGINE_JOB_TIMEOUT", get("IMAGINE_JOB_TIMEOUT"), 600.0, problems)

    log_level = (get("LOG_LEVEL") or "INFO").upper()
    if log_level not in _LOG_LEVELS:
        problems.append(f"LOG_LEVEL: must be one of {', '.join(_LOG_LEVELS)}, got {log_level!r}")
    log_format = (get("LOG_FORMAT") or "text").lower()
    if log_format not in LOG_FORMATS:
        problems.append(f"LOG_FORMAT: must be {' or '.join(LOG_FORMATS)}, got {log_format!r}")

    raw_listen = get("IMAGINE_HTTP_LISTEN")
    http_listen = parsed("IMAGINE_HTTP_LISTEN", parse_listen, None)

    shard_count, shard_ids = None, None
    raw_count, raw_ids = get("DISCORD_SHARD_COUNT"), get("DISCORD_SHARD_IDS")
    if raw_count is not None:
        reported = len(problems)
        shard_count = _int("DISCORD_SHARD_COUNT", raw_count, problems, minimum=1)
        if len(problems) > reported:
            shard_count = None  # already reported: do not also blame DISCORD_SHARD_IDS for it
    if raw_ids is not None and raw_count is None:
        problems.append("DISCORD_SHARD_IDS: needs DISCORD_SHARD_COUNT, the total number of shards over all processes")
    elif raw_ids is not None and shard_count is not None:
        try:
            shard_ids = parse_shard_ids(raw_ids, shard_count)
        except ValueError as exc:
            problems.append(f"DISCORD_SHARD_IDS: {exc}")
    if shard_ids is not None and len(shard_ids) < (shard_count or 0) and database_url.startswith("sqlite"):
        problems.append(
            "DATABASE_URL: DISCORD_SHARD_IDS names only some of the shards, so other processes run the rest; "
            "they must share one PostgreSQL database, not SQLite"
        )

    creates_per_minute = _int(
        "IMAGINE_API_CREATES_PER_MINUTE",
        get("IMAGINE_API_CREATES_PER_MINUTE") or str(DEFAULT_CREATES_PER_MINUTE),
        problems,
        minimum=1,
    )
    requests_per_minute = _int(
        "IMAGINE_API_REQUESTS_PER_MINUTE",
        get("IMAGINE_API_REQUESTS_PER_MINUTE") or str(DEFAULT_REQUESTS_PER_MINUTE),
        problems,
        minimum=1,
    )
    takeover_after = _seconds("IMAGINE_TAKEOVER_AFTER", get("IMAGINE_TAKEOVER_AFTER"), 30.0, problems)

    webhook_url = get("IMAGINE_WEBHOOK_URL")
    if webhook_url is not None:
        try:
            webhook_url = parse_webhook_url(webhook_url)
        except ValueError as exc:
            problems.append(f"IMAGINE_WEBHOOK_URL: {exc}")
        if http_listen is None and raw_listen is None:
            problems.append(
                "IMAGINE_WEBHOOK_URL: needs IMAGINE_HTTP_LISTEN, the address of the bot's HTTP server that "
                "this URL reaches (POST /webhooks/replicate)"
            )
    webhook_secret = get("REPLICATE_WEBHOOK_SECRET")
    if webhook_secret is not None and not _WEBHOOK_SECRET.fullmatch(webhook_secret):
        problems.append("REPLICATE_WEBHOOK_SECRET: must look like whsec_ followed by base64 (as the API gives it)")

    prices = parsed("IMAGINE_PRICES", parse_prices, NO_PRICES)
    fetch_allow = parsed("IMAGINE_FETCH_ALLOW", parse_fetch_allow, FetchAllow())
    max_queued = _int("IMAGINE_MAX_QUEUED", get("IMAGINE_MAX_QUEUED") or "200", problems, minimum=0)
    max_queued_per_member = _int(
        "IMAGINE_MAX_QUEUED_PER_MEMBER", get("IMAGINE_MAX_QUEUED_PER_MEMBER") or "3", problems, minimum=0
    )

    if problems:
        raise SettingsError(problems)
    return Settings(
        replicate_api_token=Secret(replicate_token or ""),
        discord_token=Secret(discord_token) if discord_token else None,
        replicate_base_url=base_url,
        default_model=default_model,
        models=tuple(models),
        database_url=database_url,
        discord_api_base=api_base,
        discord_gateway_url=gateway_url,
        sync_guild=sync_guild,
        max_running=max_running,
        max_running_per_server=per_server,
        job_timeout=job_timeout,
        log_level=log_level,
        log_format=log_format,
        http_listen=http_listen,
        shard_count=shard_count,
        shard_ids=shard_ids,
        api_creates_per_minute=creates_per_minute,
        api_requests_per_minute=requests_per_minute,
        takeover_after=takeover_after,
        webhook_url=webhook_url,
        webhook_secret=Secret(webhook_secret) if webhook_secret else None,
        upscale_model=upscale_model,
        prices=prices,
        fetch_allow=fetch_allow,
        max_queued=max_queued,
        max_queued_per_member=max_queued_per_member,
    )
