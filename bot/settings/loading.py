"""Reading the settings from the environment (after ``.env``): every problem reported at once, one line each."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from dotenv import load_dotenv

from bot.api.modelref import InvalidModelRef, ModelRef
from bot.media.fetch_guard import FetchAllow, parse_fetch_allow
from bot.moderation.costs import NO_PRICES, parse_prices
from bot.settings.parsing import (
    http_url,
    parse_listen,
    parse_shard_ids,
    parse_webhook_url,
    seconds,
    strength,
    whole_number,
)
from bot.settings.values import (
    DEFAULT_BASE_URL,
    DEFAULT_CREATES_PER_MINUTE,
    DEFAULT_DATABASE_URL,
    DEFAULT_MODEL,
    DEFAULT_REQUESTS_PER_MINUTE,
    Secret,
    Settings,
    SettingsError,
)
from bot.storage.urls import parse_database_url

_T = TypeVar("_T")
_D = TypeVar("_D")

_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
LOG_FORMATS = ("text", "json")
_WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/]{8,}={0,2}")


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

    base_url = http_url(
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
    describe_model = parsed("IMAGINE_DESCRIBE_MODEL", ModelRef.parse, None)

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
        api_base = http_url("DISCORD_API_BASE", api_base, problems, ("http", "https"))
    gateway_url = get("DISCORD_GATEWAY_URL")
    if gateway_url is not None:
        gateway_url = http_url("DISCORD_GATEWAY_URL", gateway_url, problems, ("ws", "wss"))

    sync_guild: int | None = None
    raw_guild = get("IMAGINE_SYNC_GUILD")
    if raw_guild is not None:
        sync_guild = whole_number("IMAGINE_SYNC_GUILD", raw_guild, problems, minimum=1)

    max_running = whole_number("IMAGINE_MAX_RUNNING", get("IMAGINE_MAX_RUNNING") or "8", problems, minimum=1)
    per_server = whole_number(
        "IMAGINE_MAX_RUNNING_PER_SERVER", get("IMAGINE_MAX_RUNNING_PER_SERVER") or "4", problems, minimum=1
    )

    job_timeout = seconds("IMAGINE_JOB_TIMEOUT", get("IMAGINE_JOB_TIMEOUT"), 600.0, problems)

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
        shard_count = whole_number("DISCORD_SHARD_COUNT", raw_count, problems, minimum=1)
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

    creates_per_minute = whole_number(
        "IMAGINE_API_CREATES_PER_MINUTE",
        get("IMAGINE_API_CREATES_PER_MINUTE") or str(DEFAULT_CREATES_PER_MINUTE),
        problems,
        minimum=1,
    )
    requests_per_minute = whole_number(
        "IMAGINE_API_REQUESTS_PER_MINUTE",
        get("IMAGINE_API_REQUESTS_PER_MINUTE") or str(DEFAULT_REQUESTS_PER_MINUTE),
        problems,
        minimum=1,
    )
    takeover_after = seconds("IMAGINE_TAKEOVER_AFTER", get("IMAGINE_TAKEOVER_AFTER"), 30.0, problems)

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
    max_queued = whole_number("IMAGINE_MAX_QUEUED", get("IMAGINE_MAX_QUEUED") or "200", problems, minimum=0)
    max_queued_per_member = whole_number(
        "IMAGINE_MAX_QUEUED_PER_MEMBER", get("IMAGINE_MAX_QUEUED_PER_MEMBER") or "3", problems, minimum=0
    )
    vary_subtle = strength("IMAGINE_VARY_SUBTLE", get("IMAGINE_VARY_SUBTLE"), 0.35, problems)
    vary_strong = strength("IMAGINE_VARY_STRONG", get("IMAGINE_VARY_STRONG"), 0.75, problems)
    max_permutations = whole_number(
        "IMAGINE_MAX_PERMUTATIONS", get("IMAGINE_MAX_PERMUTATIONS") or "4", problems, minimum=1
    )

    secret_key = get("IMAGINE_SECRET_KEY")
    if secret_key is not None and not _is_fernet_key(secret_key):
        problems.append(
            "IMAGINE_SECRET_KEY: must be a Fernet key (32 bytes in URL-safe base64, 44 characters); "
            'make one with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
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
        vary_subtle=vary_subtle,
        vary_strong=vary_strong,
        max_permutations=max_permutations,
        describe_model=describe_model,
        secret_key=Secret(secret_key) if secret_key else None,
    )


def _is_fernet_key(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.encode("ascii"))) == 32 and len(value) == 44
    except (ValueError, UnicodeEncodeError):
        return False
