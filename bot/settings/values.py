"""The settings' record and the values it holds: secrets that never show, a listen address, database URLs."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from bot.api.modelref import ModelRef
from bot.media.fetch_guard import FetchAllow
from bot.moderation.costs import NO_PRICES, Prices
from bot.storage.urls import DatabaseUrl, parse_database_url

DEFAULT_MODEL = "black-forest-labs/flux-schnell"
DEFAULT_BASE_URL = "https://api.replicate.com"
DEFAULT_DATABASE_URL = "sqlite:///imagine.db"
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
    vary_subtle: float = 0.35
    """``IMAGINE_VARY_SUBTLE``: the strength ``Vary (Subtle)`` sends as the model's strength input."""
    vary_strong: float = 0.75
    """``IMAGINE_VARY_STRONG``: the strength ``Vary (Strong)`` sends."""
    max_permutations: int = 4
    """``IMAGINE_MAX_PERMUTATIONS``: jobs one ``/imagine`` may expand into (``{a,b}`` and ``--repeat``)."""
    describe_model: ModelRef | None = None
    """``IMAGINE_DESCRIBE_MODEL``: what ``/describe`` runs (an image in, text out); ``None``: not enabled."""
    secret_key: Secret | None = None
    """``IMAGINE_SECRET_KEY``: the Fernet key that encrypts servers' own API keys; ``None``: servers cannot set one."""

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
        found += [
            secret.reveal()
            for secret in (self.discord_token, self.webhook_secret, self.secret_key)
            if secret is not None
        ]
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
