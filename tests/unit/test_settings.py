"""Settings: defaults, parsing of every variable, one problem line per bad value, secrets never shown."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from bot.api.modelref import ModelRef
from bot.base.logs import RedactSecrets
from bot.media.fetch_guard import FetchAllow
from bot.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_DATABASE_URL,
    DEFAULT_MODEL,
    Secret,
    Settings,
    SettingsError,
    database_password,
    load_database_url,
    load_environment,
    load_settings,
)

REPLICATE_SECRET = "r8_SECRET_abc123"
DISCORD_SECRET = "MTIzNDU2.DISCORD_SECRET.xyz789"
BASE_ENV: dict[str, str] = {"REPLICATE_API_TOKEN": REPLICATE_SECRET}

ALL_VARIABLES = (
    "DISCORD_TOKEN",
    "REPLICATE_API_TOKEN",
    "REPLICATE_BASE_URL",
    "IMAGINE_DEFAULT_MODEL",
    "IMAGINE_MODELS",
    "DATABASE_URL",
    "DISCORD_API_BASE",
    "DISCORD_GATEWAY_URL",
    "IMAGINE_SYNC_GUILD",
    "IMAGINE_MAX_RUNNING",
    "IMAGINE_MAX_RUNNING_PER_SERVER",
    "IMAGINE_JOB_TIMEOUT",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "IMAGINE_HTTP_LISTEN",
    "DISCORD_SHARD_COUNT",
    "DISCORD_SHARD_IDS",
    "IMAGINE_API_CREATES_PER_MINUTE",
    "IMAGINE_API_REQUESTS_PER_MINUTE",
    "IMAGINE_TAKEOVER_AFTER",
    "IMAGINE_UPSCALE_MODEL",
    "IMAGINE_FETCH_ALLOW",
    "IMAGINE_MAX_QUEUED",
    "IMAGINE_MAX_QUEUED_PER_MEMBER",
)


def problems_for(env: dict[str, str], **kwargs: bool) -> list[str]:
    """The problem lines ``load_settings`` reports for ``env`` (fails the test if it reports none)."""
    with pytest.raises(SettingsError) as caught:
        load_settings(env, **kwargs)
    return caught.value.problems


def variables_named(problems: list[str]) -> list[str]:
    """The variables that problem lines name, sorted."""
    return sorted(problem.split(":", 1)[0] for problem in problems)


FLUX_SCHNELL = ModelRef("black-forest-labs", "flux-schnell")
DEFAULTS: dict[str, object] = {
    "discord_token": None,
    "replicate_base_url": "https://api.replicate.com",
    "default_model": FLUX_SCHNELL,
    "models": (),
    "offered_models": (FLUX_SCHNELL,),
    "database_url": "sqlite:///imagine.db",
    "database_path": "imagine.db",
    "discord_api_base": None,
    "discord_gateway_url": None,
    "sync_guild": None,
    "max_running": 8,
    "max_running_per_server": 4,
    "job_timeout": 600.0,
    "log_level": "INFO",
}
"""What the settings hold where the variables are unset (or blank)."""


def attributes(settings: Settings, expected: Mapping[str, object]) -> dict[str, object]:
    """The attributes of ``settings`` that ``expected`` names: compared whole, a failure shows every difference."""
    return {name: getattr(settings, name) for name in expected}


def test_defaults() -> None:
    settings = load_settings(dict(BASE_ENV))
    assert settings.replicate_api_token == Secret(REPLICATE_SECRET)
    assert attributes(settings, DEFAULTS) == DEFAULTS
    assert ModelRef.parse(DEFAULT_MODEL) == FLUX_SCHNELL
    # The constants the bot exports are the same defaults.
    assert (DEFAULTS["replicate_base_url"], DEFAULTS["database_url"]) == (DEFAULT_BASE_URL, DEFAULT_DATABASE_URL)


def test_every_variable_parsed() -> None:
    env = {
        "REPLICATE_API_TOKEN": REPLICATE_SECRET,
        "DISCORD_TOKEN": DISCORD_SECRET,
        "REPLICATE_BASE_URL": "https://gateway.example/replicate/",
        "IMAGINE_DEFAULT_MODEL": "owner/default-model",
        "IMAGINE_MODELS": "a/one, b/two:v2 ,a/one,,",
        "DATABASE_URL": "sqlite:////var/lib/imagine/bot.db",
        "DISCORD_API_BASE": "http://discord-proxy.local:8080/api/",
        "DISCORD_GATEWAY_URL": "wss://gateway-proxy.local/",
        "IMAGINE_SYNC_GUILD": "123456789012345678",
        "IMAGINE_MAX_RUNNING": " 16 ",
        "IMAGINE_MAX_RUNNING_PER_SERVER": "2",
        "IMAGINE_JOB_TIMEOUT": "90.5",
        "LOG_LEVEL": "debug",
    }
    settings = load_settings(env, require_discord=True)
    assert settings.replicate_api_token.reveal() == REPLICATE_SECRET
    assert settings.discord_token is not None
    assert settings.discord_token.reveal() == DISCORD_SECRET
    parsed = {
        "replicate_base_url": "https://gateway.example/replicate",
        "default_model": ModelRef("owner", "default-model"),
        "models": (ModelRef("a", "one"), ModelRef("b", "two", "v2")),
        "database_url": "sqlite:////var/lib/imagine/bot.db",
        "database_path": "/var/lib/imagine/bot.db",
        "discord_api_base": "http://discord-proxy.local:8080/api",
        "discord_gateway_url": "wss://gateway-proxy.local",
        "sync_guild": 123456789012345678,
        "max_running": 16,
        "max_running_per_server": 2,
        "job_timeout": 90.5,
        "log_level": "DEBUG",
    }
    assert attributes(settings, parsed) == parsed


@pytest.mark.parametrize("level", ["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "warning"])
def test_log_levels_accepted(level: str) -> None:
    assert load_settings({**BASE_ENV, "LOG_LEVEL": level}).log_level == level.upper()


@pytest.mark.parametrize("value", ["", "   "])
def test_blank_values_mean_unset(value: str) -> None:
    env = {**BASE_ENV, **{name: value for name in ALL_VARIABLES if name != "REPLICATE_API_TOKEN"}}
    assert attributes(load_settings(env), DEFAULTS) == DEFAULTS


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REPLICATE_BASE_URL", "api.replicate.com"),
        ("REPLICATE_BASE_URL", "ftp://api.replicate.com"),
        ("REPLICATE_BASE_URL", "https://"),
        ("IMAGINE_DEFAULT_MODEL", "flux-schnell"),
        ("IMAGINE_DEFAULT_MODEL", "a/b/c"),
        ("IMAGINE_UPSCALE_MODEL", "real-esrgan"),
        ("IMAGINE_UPSCALE_MODEL", "a/b:"),
        ("IMAGINE_MODELS", "good/model,not a model"),
        ("IMAGINE_MODELS", "a/b:,c/d"),
        ("DATABASE_URL", "mysql://db/imagine"),
        ("DATABASE_URL", "postgresql://db"),
        ("DATABASE_URL", "postgresql://db:port/imagine"),
        ("DATABASE_URL", "sqlite:///"),
        ("DATABASE_URL", "sqlite://imagine.db"),
        ("DISCORD_API_BASE", "discord-proxy:8080"),
        ("DISCORD_GATEWAY_URL", "https://gateway.discord.gg"),
        ("DISCORD_GATEWAY_URL", "gateway.discord.gg"),
        ("IMAGINE_SYNC_GUILD", "my-guild"),
        ("IMAGINE_SYNC_GUILD", "0"),
        ("IMAGINE_MAX_RUNNING", "eight"),
        ("IMAGINE_MAX_RUNNING", "1.5"),
        ("IMAGINE_MAX_RUNNING", "0"),
        ("IMAGINE_MAX_RUNNING", "-3"),
        ("IMAGINE_MAX_RUNNING_PER_SERVER", "four"),
        ("IMAGINE_MAX_RUNNING_PER_SERVER", "0"),
        ("IMAGINE_JOB_TIMEOUT", "ten minutes"),
        ("IMAGINE_JOB_TIMEOUT", "0"),
        ("IMAGINE_JOB_TIMEOUT", "-5"),
        ("IMAGINE_JOB_TIMEOUT", "nan"),
        pytest.param("IMAGINE_JOB_TIMEOUT", "inf"),
        pytest.param("IMAGINE_JOB_TIMEOUT", "Infinity"),
        ("LOG_LEVEL", "verbose"),
        ("LOG_LEVEL", "TRACE"),
    ],
)
def test_malformed_value_names_variable(variable: str, value: str) -> None:
    problems = problems_for({**BASE_ENV, "DISCORD_TOKEN": DISCORD_SECRET, variable: value})
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{variable}:")
    assert REPLICATE_SECRET not in problems[0]
    assert DISCORD_SECRET not in problems[0]


@pytest.mark.parametrize(
    ("variable", "minimum"),
    [("IMAGINE_MAX_RUNNING", 1), ("IMAGINE_MAX_RUNNING_PER_SERVER", 1), ("IMAGINE_SYNC_GUILD", 1)],
)
def test_minimum_is_accepted_and_below_is_not(variable: str, minimum: int) -> None:
    load_settings({**BASE_ENV, variable: str(minimum)})
    (problem,) = problems_for({**BASE_ENV, variable: str(minimum - 1)})
    assert problem.startswith(f"{variable}:")
    assert f"at least {minimum}" in problem


def test_bad_model_in_list_is_quoted() -> None:
    (problem,) = problems_for({**BASE_ENV, "IMAGINE_MODELS": "ok/model, bad model "})
    assert problem.startswith("IMAGINE_MODELS:")
    assert "bad model" in problem


def test_several_problems_reported_at_once() -> None:
    env = {
        "REPLICATE_BASE_URL": "nope",
        "IMAGINE_DEFAULT_MODEL": "nope",
        "DATABASE_URL": "mysql://x",
        "IMAGINE_MAX_RUNNING": "x",
        "IMAGINE_JOB_TIMEOUT": "-1",
        "LOG_LEVEL": "loud",
    }
    assert variables_named(problems_for(env, require_discord=True)) == sorted(
        [
            "REPLICATE_API_TOKEN",
            "DISCORD_TOKEN",
            "REPLICATE_BASE_URL",
            "IMAGINE_DEFAULT_MODEL",
            "DATABASE_URL",
            "IMAGINE_MAX_RUNNING",
            "IMAGINE_JOB_TIMEOUT",
            "LOG_LEVEL",
        ]
    )


def test_settings_error_message_has_one_line_per_problem() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"LOG_LEVEL": "loud"})
    assert str(caught.value).splitlines() == caught.value.problems


@pytest.mark.parametrize(
    ("env", "kwargs", "missing"),
    [
        ({}, {}, ["REPLICATE_API_TOKEN"]),
        ({}, {"require_discord": True}, ["REPLICATE_API_TOKEN", "DISCORD_TOKEN"]),
        ({"REPLICATE_API_TOKEN": REPLICATE_SECRET}, {"require_discord": True}, ["DISCORD_TOKEN"]),
        ({"DISCORD_TOKEN": DISCORD_SECRET}, {}, ["REPLICATE_API_TOKEN"]),
        ({"REPLICATE_API_TOKEN": "  "}, {}, ["REPLICATE_API_TOKEN"]),
    ],
)
def test_missing_tokens(env: dict[str, str], kwargs: dict[str, bool], missing: list[str]) -> None:
    problems = problems_for(env, **kwargs)
    assert [problem.split(":", 1)[0] for problem in problems] == missing


def test_tokens_not_required_when_not_asked() -> None:
    settings = load_settings({}, require_replicate=False)
    assert settings.replicate_api_token.reveal() == ""
    assert settings.discord_token is None
    sync = load_settings({"DISCORD_TOKEN": DISCORD_SECRET}, require_discord=True, require_replicate=False)
    assert sync.discord_token == Secret(DISCORD_SECRET)


def test_repr_never_shows_tokens() -> None:
    settings = load_settings(
        {"REPLICATE_API_TOKEN": REPLICATE_SECRET, "DISCORD_TOKEN": DISCORD_SECRET}, require_discord=True
    )
    for text in (repr(settings), str(settings), repr(settings.replicate_api_token), str(settings.discord_token)):
        assert REPLICATE_SECRET not in text
        assert DISCORD_SECRET not in text
        assert "r8_" not in text
    assert "********" in repr(settings)


def test_problem_lines_never_show_tokens() -> None:
    env = {name: "x" for name in ALL_VARIABLES} | {
        "REPLICATE_API_TOKEN": REPLICATE_SECRET,
        "DISCORD_TOKEN": DISCORD_SECRET,
    }
    with pytest.raises(SettingsError) as caught:
        load_settings(env, require_discord=True)
    # "x" is bad for all but the tokens, IMAGINE_FETCH_ALLOW (a host name) and DISCORD_SHARD_IDS (its count is blamed).
    assert len(caught.value.problems) == len(ALL_VARIABLES) - 4
    for text in [*caught.value.problems, str(caught.value), repr(caught.value)]:
        assert REPLICATE_SECRET not in text
        assert DISCORD_SECRET not in text


def test_secret_equality_and_hash_do_not_need_reveal() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert len({Secret("a"), Secret("a")}) == 1


def log_record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("bot.test", logging.INFO, __file__, 1, msg, args or None, None)


def test_redact_secrets_masks_formatted_messages() -> None:
    redact = RedactSecrets([REPLICATE_SECRET, DISCORD_SECRET])
    record = log_record("sending %s to %s", f"Bearer {REPLICATE_SECRET}", "https://api")
    assert redact.filter(record) is True
    message = record.getMessage()
    assert REPLICATE_SECRET not in message
    assert message == "sending Bearer ******** to https://api"
    plain = log_record(f"token={DISCORD_SECRET}")
    redact.filter(plain)
    assert plain.getMessage() == "token=********"


def test_redact_secrets_leaves_other_records_alone() -> None:
    record = log_record("job %s done", "abc")
    RedactSecrets([REPLICATE_SECRET]).filter(record)
    assert record.msg == "job %s done"
    assert record.args == ("abc",)
    short = log_record("abc in a message")
    RedactSecrets(["abc", ""]).filter(short)
    assert short.getMessage() == "abc in a message"


@pytest.mark.parametrize(
    ("default", "models", "offered"),
    [
        ("a/x", "", ("a/x",)),
        ("a/x", "b/y,c/z", ("a/x", "b/y", "c/z")),
        ("a/x", "b/y,a/x,c/z", ("a/x", "b/y", "c/z")),
        ("a/x", "a/x,a/x", ("a/x",)),
        ("a/x", "a/x:v1,b/y,b/y", ("a/x", "a/x:v1", "b/y")),
    ],
)
def test_offered_models_default_first_without_duplicates(default: str, models: str, offered: tuple[str, ...]) -> None:
    settings = load_settings({**BASE_ENV, "IMAGINE_DEFAULT_MODEL": default, "IMAGINE_MODELS": models})
    assert tuple(str(model) for model in settings.offered_models) == offered


def test_settings_is_frozen() -> None:
    settings = load_settings(dict(BASE_ENV))
    with pytest.raises(AttributeError):
        settings.max_running = 1  # type: ignore[misc]
    assert isinstance(settings, Settings)


def test_database_memory_path() -> None:
    assert load_settings({**BASE_ENV, "DATABASE_URL": "sqlite:///:memory:"}).database_path == ":memory:"


DB_PASSWORD = "pg-p@ss/w0rd"
PG_URL = "postgresql://imagine:pg-p%40ss%2Fw0rd@db.internal:5432/imagine"


@pytest.mark.parametrize(
    "url",
    [
        PG_URL,
        "postgres://imagine:secret@db:5432/imagine",
        "postgresql://db/imagine",
        "postgresql://imagine@127.0.0.1/imagine?sslmode=require",
    ],
)
def test_postgresql_urls_are_accepted(url: str) -> None:
    settings = load_settings({**BASE_ENV, "DATABASE_URL": url})
    assert settings.database_url == url
    assert settings.database.backend == "postgres"
    with pytest.raises(ValueError, match="not an SQLite URL"):
        settings.database_path  # noqa: B018 - the property raises


def test_database_password_is_never_shown() -> None:
    settings = load_settings({**BASE_ENV, "DATABASE_URL": PG_URL})
    for text in (repr(settings), str(settings), repr(settings.database), settings.database.masked):
        assert "pg-p" not in text and "w0rd" not in text, text
    assert "postgresql://imagine:***@db.internal:5432/imagine" in repr(settings)
    # A malformed URL is quoted in the problem line, masked too.
    (problem,) = problems_for({**BASE_ENV, "DATABASE_URL": "mysql://root:hunter2@db/imagine"})
    assert problem.startswith("DATABASE_URL:") and "hunter2" not in problem
    assert "mysql://root:***@db/imagine" in problem


def test_database_password_is_masked_in_logs() -> None:
    # configure_logging hands this password to RedactSecrets along with the tokens.
    assert database_password(PG_URL) == DB_PASSWORD
    assert database_password("sqlite:///imagine.db") is None
    redact = RedactSecrets([REPLICATE_SECRET, DB_PASSWORD])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "connecting with %s", (DB_PASSWORD,), None)
    redact.filter(record)
    assert DB_PASSWORD not in record.getMessage()


def test_the_database_url_alone_can_be_loaded() -> None:
    """``python -m bot migrate`` reads DATABASE_URL only: no token, and other settings are not its business."""
    assert load_database_url({"IMAGINE_MAX_RUNNING": "many"}) == DEFAULT_DATABASE_URL
    assert load_database_url({"DATABASE_URL": f" {PG_URL} "}) == PG_URL
    with pytest.raises(SettingsError) as caught:
        load_database_url({"DATABASE_URL": "redis://x:secret@h/0"})
    (problem,) = caught.value.problems
    assert problem.startswith("DATABASE_URL:") and "secret" not in problem


# --------------------------------------------------------------------------- .env loading


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """``os.environ`` without any of the bot's variables (restored after the test)."""
    for name in ALL_VARIABLES:
        # setenv first so that monkeypatch records (and later restores) even unset names,
        # since load_environment() writes straight into os.environ.
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    return monkeypatch


def test_env_file_loaded_without_overriding(tmp_path: Path, clean_environ: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "\n".join(
            [
                "# comment",
                "REPLICATE_API_TOKEN=r8_FROM_DOTENV",
                "IMAGINE_MAX_RUNNING=3",
                "LOG_LEVEL=DEBUG",
                "IMAGINE_JOB_TIMEOUT=42",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    clean_environ.setenv("REPLICATE_API_TOKEN", REPLICATE_SECRET)
    clean_environ.setenv("IMAGINE_MAX_RUNNING", "5")
    load_environment(env_file)
    settings = load_settings()
    assert settings.replicate_api_token.reveal() == REPLICATE_SECRET
    assert settings.max_running == 5
    assert settings.log_level == "DEBUG"
    assert settings.job_timeout == 42.0
    assert os.environ["LOG_LEVEL"] == "DEBUG"


def test_missing_env_file_is_fine(tmp_path: Path, clean_environ: pytest.MonkeyPatch) -> None:
    clean_environ.setenv("REPLICATE_API_TOKEN", REPLICATE_SECRET)
    load_environment(tmp_path / ".env")
    assert load_settings().max_running == 8


def test_env_file_defaults_to_working_directory(tmp_path: Path, clean_environ: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("REPLICATE_API_TOKEN=r8_cwd_token\nIMAGINE_MAX_RUNNING_PER_SERVER=7\n")
    clean_environ.chdir(tmp_path)
    load_environment()
    settings = load_settings()
    assert settings.replicate_api_token.reveal() == "r8_cwd_token"
    assert settings.max_running_per_server == 7


def test_upscale_model_is_a_model_reference_and_optional() -> None:
    assert load_settings(BASE_ENV).upscale_model is None
    settings = load_settings({**BASE_ENV, "IMAGINE_UPSCALE_MODEL": " nightmareai/real-esrgan:abc123 "})
    assert settings.upscale_model == ModelRef("nightmareai", "real-esrgan", "abc123")


def test_fetch_allow_takes_hosts_addresses_and_cidrs() -> None:
    settings = load_settings({**BASE_ENV, "IMAGINE_FETCH_ALLOW": " Files.LAN., 10.0.0.0/8,[fd00::1],192.168.1.20 ,"})
    assert settings.fetch_allow.hosts == frozenset({"files.lan"})
    assert [str(n) for n in settings.fetch_allow.networks] == ["10.0.0.0/8", "fd00::1/128", "192.168.1.20/32"]
    assert load_settings(BASE_ENV).fetch_allow == FetchAllow()


@pytest.mark.parametrize("value", ["files lan", "10.0.0.0/33", "http://files.lan", "-bad-"])
def test_fetch_allow_names_the_entry_that_is_neither_host_nor_network(value: str) -> None:
    (problem,) = problems_for({**BASE_ENV, "IMAGINE_FETCH_ALLOW": f"ok.lan,{value}"})
    assert problem.startswith("IMAGINE_FETCH_ALLOW:") and repr(value) in problem


def test_queue_caps_default_and_zero_means_no_cap() -> None:
    defaults = load_settings(BASE_ENV)
    assert (defaults.max_queued, defaults.max_queued_per_member) == (200, 3)
    off = load_settings({**BASE_ENV, "IMAGINE_MAX_QUEUED": "0", "IMAGINE_MAX_QUEUED_PER_MEMBER": "0"})
    assert (off.max_queued, off.max_queued_per_member) == (0, 0)
    assert problems_for({**BASE_ENV, "IMAGINE_MAX_QUEUED_PER_MEMBER": "-2"}) == [
        "IMAGINE_MAX_QUEUED_PER_MEMBER: must be at least 0, got -2"
    ]
