"""Settings for logs, the HTTP server, shards and the deployment's API budget: every value, every error."""

from __future__ import annotations

import pytest

from bot.settings import HttpListen, load_settings, parse_shard_ids
from tests.unit.test_settings import attributes, variables_named
from tests.unit.test_settings import problems_for as problems_of

BASE_ENV: dict[str, str] = {"REPLICATE_API_TOKEN": "r8_SECRET_abc123"}


def problems_for(**env: str) -> list[str]:
    """The problem lines for ``env`` on top of a valid base (fails the test if there are none)."""
    return problems_of({**BASE_ENV, **env})


def only_problem(**env: str) -> str:
    """The one problem reported for ``env``."""
    problems = problems_for(**env)
    assert len(problems) == 1, problems
    return problems[0]


def test_defaults() -> None:
    defaults = {
        "log_format": "text",
        "http_listen": None,
        "shard_count": None,
        "shard_ids": None,
        "api_creates_per_minute": 600,
        "api_requests_per_minute": 3000,
        "takeover_after": 30.0,
    }
    assert attributes(load_settings(dict(BASE_ENV)), defaults) == defaults


def test_every_variable_parsed() -> None:
    settings = load_settings(
        {
            **BASE_ENV,
            "LOG_FORMAT": "JSON",
            "IMAGINE_HTTP_LISTEN": "127.0.0.1:9100",
            "DISCORD_SHARD_COUNT": "4",
            "DISCORD_SHARD_IDS": "0-3",
            "IMAGINE_API_CREATES_PER_MINUTE": "300",
            "IMAGINE_API_REQUESTS_PER_MINUTE": "1500",
            "IMAGINE_TAKEOVER_AFTER": "12.5",
        }
    )
    parsed = {
        "log_format": "json",
        "http_listen": HttpListen("127.0.0.1", 9100),
        "shard_count": 4,
        "shard_ids": (0, 1, 2, 3),
        "api_creates_per_minute": 300,
        "api_requests_per_minute": 1500,
        "takeover_after": 12.5,
    }
    assert attributes(settings, parsed) == parsed


@pytest.mark.parametrize("value", ["text", "json", "Text", " JSON "])
def test_log_formats_accepted(value: str) -> None:
    assert load_settings({**BASE_ENV, "LOG_FORMAT": value}).log_format == value.strip().lower()


@pytest.mark.parametrize(
    ("value", "expected", "shown"),
    [
        ("127.0.0.1:8080", HttpListen("127.0.0.1", 8080), "127.0.0.1:8080"),
        ("localhost:1", HttpListen("localhost", 1), "localhost:1"),
        ("bot-1.internal.example:65535", HttpListen("bot-1.internal.example", 65535), "bot-1.internal.example:65535"),
        ("0.0.0.0:9100", HttpListen("0.0.0.0", 9100), "0.0.0.0:9100"),
        (":9100", HttpListen(None, 9100), ":9100"),
        ("[::1]:8080", HttpListen("::1", 8080), "[::1]:8080"),
        ("[::]:8080", HttpListen("::", 8080), "[::]:8080"),
        ("[2001:db8::5]:443", HttpListen("2001:db8::5", 443), "[2001:db8::5]:443"),
    ],
)
def test_http_listen_accepted(value: str, expected: HttpListen, shown: str) -> None:
    listen = load_settings({**BASE_ENV, "IMAGINE_HTTP_LISTEN": value}).http_listen
    assert listen == expected
    assert str(listen) == shown


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("8080", "host:port"),
        ("localhost", "host:port"),
        ("localhost:", "port"),
        ("localhost:http", "port"),
        ("localhost:0", "port"),
        ("localhost:65536", "port"),
        ("localhost:-1", "port"),
        ("::1:8080", "brackets"),
        ("[::1]8080", "[ipv6]:port"),
        ("[::1]", "[ipv6]:port"),
        ("[localhost]:8080", "IPv6"),
        ("[::1]:", "port"),
        ("bad host:80", "host name"),
        ("http://localhost:8080", "brackets"),
    ],
)
def test_http_listen_errors(value: str, says: str) -> None:
    problem = only_problem(IMAGINE_HTTP_LISTEN=value)
    assert problem.startswith("IMAGINE_HTTP_LISTEN: ")
    assert says in problem


@pytest.mark.parametrize(
    ("count", "ids", "expected"),
    [
        ("4", "0-3", (0, 1, 2, 3)),
        ("6", "0,2,5", (0, 2, 5)),
        ("10", "0-2, 5 ,7-8", (0, 1, 2, 5, 7, 8)),
        ("4", "3", (3,)),
        ("4", "2,0-1,1", (0, 1, 2)),
        ("4", "1-1", (1,)),
    ],
)
def test_shard_ids_accepted(count: str, ids: str, expected: tuple[int, ...]) -> None:
    assert parse_shard_ids(ids, int(count)) == expected


def test_shard_ids_reach_the_settings() -> None:
    settings = load_settings({**BASE_ENV, "DISCORD_SHARD_COUNT": "3", "DISCORD_SHARD_IDS": "2,0-1"})
    assert (settings.shard_count, settings.shard_ids) == (3, (0, 1, 2))


def test_shard_count_alone_runs_every_shard() -> None:
    settings = load_settings({**BASE_ENV, "DISCORD_SHARD_COUNT": "3"})
    assert (settings.shard_count, settings.shard_ids) == (3, None)


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_shard_count_errors(value: str) -> None:
    # DISCORD_SHARD_IDS is not blamed for its partner's fault.
    assert only_problem(DISCORD_SHARD_COUNT=value, DISCORD_SHARD_IDS="0").startswith("DISCORD_SHARD_COUNT: ")


@pytest.mark.parametrize(
    ("ids", "says"),
    [
        ("0-", "range"),
        ("-3", "range"),
        ("a-b", "range"),
        ("1,,2", "''"),
        ("3-1", "backwards"),
        ("0;1", "'0;1'"),
        ("4", "shard 4 does not exist with DISCORD_SHARD_COUNT=4"),
        ("0-9", "shard 4 does not exist"),
    ],
)
def test_shard_ids_errors(ids: str, says: str) -> None:
    problem = only_problem(DISCORD_SHARD_COUNT="4", DISCORD_SHARD_IDS=ids, DATABASE_URL="sqlite:///x.db")
    assert problem.startswith("DISCORD_SHARD_IDS: ")
    assert says in problem


def test_shard_ids_need_a_count() -> None:
    problem = only_problem(DISCORD_SHARD_IDS="0-1")
    assert problem.startswith("DISCORD_SHARD_IDS: ")
    assert "DISCORD_SHARD_COUNT" in problem


def test_some_shards_on_sqlite_is_an_error_naming_database_url() -> None:
    problem = only_problem(DISCORD_SHARD_COUNT="4", DISCORD_SHARD_IDS="0-1")
    assert problem.startswith("DATABASE_URL: ")
    assert "PostgreSQL" in problem


def test_every_shard_on_sqlite_is_fine() -> None:
    settings = load_settings({**BASE_ENV, "DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "0-1"})
    assert settings.shard_ids == (0, 1)


@pytest.mark.parametrize("variable", ["IMAGINE_API_CREATES_PER_MINUTE", "IMAGINE_API_REQUESTS_PER_MINUTE"])
@pytest.mark.parametrize(("value", "says"), [("0", "at least 1"), ("-5", "at least 1"), ("lots", "whole number")])
def test_per_minute_errors(variable: str, value: str, says: str) -> None:
    problem = only_problem(**{variable: value})
    assert problem.startswith(f"{variable}: ")
    assert says in problem


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf"])
def test_takeover_after_errors(value: str) -> None:
    assert only_problem(IMAGINE_TAKEOVER_AFTER=value).startswith("IMAGINE_TAKEOVER_AFTER: ")


@pytest.mark.parametrize("value", ["yaml", "logfmt", "1"])
def test_log_format_errors(value: str) -> None:
    problem = only_problem(LOG_FORMAT=value)
    assert problem.startswith("LOG_FORMAT: ")
    assert "text or json" in problem


def test_all_new_problems_reported_at_once() -> None:
    problems = problems_for(
        LOG_FORMAT="xml",
        IMAGINE_HTTP_LISTEN="nowhere",
        DISCORD_SHARD_IDS="0",
        IMAGINE_API_CREATES_PER_MINUTE="0",
        IMAGINE_API_REQUESTS_PER_MINUTE="x",
        IMAGINE_TAKEOVER_AFTER="-3",
    )
    assert variables_named(problems) == sorted(
        [
            "LOG_FORMAT",
            "IMAGINE_HTTP_LISTEN",
            "DISCORD_SHARD_IDS",
            "IMAGINE_API_CREATES_PER_MINUTE",
            "IMAGINE_API_REQUESTS_PER_MINUTE",
            "IMAGINE_TAKEOVER_AFTER",
        ]
    )


# --------------------------------------------------------------------------- webhooks


def test_a_webhook_url_needs_the_http_server() -> None:
    problems = problems_for(IMAGINE_WEBHOOK_URL="https://bot.example.com/webhooks/replicate")
    assert any(line.startswith("IMAGINE_WEBHOOK_URL: needs IMAGINE_HTTP_LISTEN") for line in problems)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://bot.example.com/webhooks/replicate", True),
        ("http://127.0.0.1:9100/webhooks/replicate", True),
        ("http://localhost:9100/webhooks/replicate", True),
        ("http://bot.example.com/webhooks/replicate", False),
        ("ftp://bot.example.com/", False),
        ("bot.example.com", False),
    ],
)
def test_webhook_urls(url: str, ok: bool) -> None:
    environment = {"REPLICATE_API_TOKEN": "r", "IMAGINE_HTTP_LISTEN": "127.0.0.1:9100", "IMAGINE_WEBHOOK_URL": url}
    if ok:
        assert load_settings(environment).webhook_url == url
    else:
        assert any(line.startswith("IMAGINE_WEBHOOK_URL: ") for line in problems_of(environment))


def test_the_webhook_secret_is_checked_and_never_shown() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    settings = load_settings({"REPLICATE_API_TOKEN": "r", "REPLICATE_WEBHOOK_SECRET": secret})
    assert settings.webhook_secret is not None and settings.webhook_secret.reveal() == secret
    assert secret not in repr(settings)
    problems = problems_of({"REPLICATE_API_TOKEN": "r", "REPLICATE_WEBHOOK_SECRET": "not-a-secret"})
    assert any(line.startswith("REPLICATE_WEBHOOK_SECRET: ") for line in problems)
