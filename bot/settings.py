"""The bot's settings: one frozen object read from the environment after ``.env``.

Every problem found is reported on its own line naming the variable; the
caller turns them into exit status 2. Secrets are wrapped in :class:`Secret`
so that no repr, log line or error message can show them.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dotenv import load_dotenv

from bot.modelref import InvalidModelRef, ModelRef
from bot.storage.urls import DatabaseUrl, parse_database_url

DEFAULT_MODEL = "black-forest-labs/flux-schnell"
DEFAULT_BASE_URL = "https://api.replicate.com"
DEFAULT_DATABASE_URL = "sqlite:///imagine.db"
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


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

    default_model = ModelRef.parse(DEFAULT_MODEL)
    raw_default = get("IMAGINE_DEFAULT_MODEL")
    if raw_default is not None:
        try:
            default_model = ModelRef.parse(raw_default)
        except InvalidModelRef as exc:
            problems.append(f"IMAGINE_DEFAULT_MODEL: {exc}")

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

    job_timeout = 600.0
    raw_timeout = get("IMAGINE_JOB_TIMEOUT")
    if raw_timeout is not None:
        try:
            job_timeout = float(raw_timeout)
        except ValueError:
            problems.append(f"IMAGINE_JOB_TIMEOUT: must be a number of seconds, got {raw_timeout!r}")
        else:
            if not math.isfinite(job_timeout) or job_timeout <= 0:
                problems.append(f"IMAGINE_JOB_TIMEOUT: must be more than 0 seconds, got {raw_timeout!r}")

    log_level = (get("LOG_LEVEL") or "INFO").upper()
    if log_level not in _LOG_LEVELS:
        problems.append(f"LOG_LEVEL: must be one of {', '.join(_LOG_LEVELS)}, got {log_level!r}")

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
    )


# Interaction tokens travel in webhook and callback URLs, which discord.py logs at DEBUG.
_INTERACTION_TOKEN = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_.\-]{20,}")


class RedactSecrets(logging.Filter):
    """Masks secret values in every record, whichever library logged them: a last line of defence."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [secret for secret in secrets if len(secret) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _INTERACTION_TOKEN.sub(r"\1********", message)
        for secret in self._secrets:
            redacted = redacted.replace(secret, "********")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def configure_logging(level: str, settings: Settings | None = None, *, secrets: Sequence[str] = ()) -> None:
    """Plain, timestamped logging to stderr, with the settings' secrets (and ``secrets``) masked."""
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    masked = list(secrets)
    if settings is not None:
        masked.append(settings.replicate_api_token.reveal())
        if settings.discord_token is not None:
            masked.append(settings.discord_token.reveal())
        password = database_password(settings.database_url)
        if password is not None:
            masked.append(password)
    if masked:
        for handler in logging.getLogger().handlers:
            handler.addFilter(RedactSecrets(masked))
