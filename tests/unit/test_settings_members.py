"""Settings of the members' second part: ``IMAGINE_VARY_SUBTLE``, ``IMAGINE_VARY_STRONG``,
``IMAGINE_MAX_PERMUTATIONS`` and ``IMAGINE_DESCRIBE_MODEL``: defaults, values, and every malformed one
named in one line, which stops ``python -m bot`` with exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.api.modelref import ModelRef
from bot.cli import EXIT_USAGE, main
from bot.settings import load_settings
from tests.unit.test_settings import BASE_ENV, REPLICATE_SECRET, attributes, problems_for

VARIABLES = ("IMAGINE_VARY_SUBTLE", "IMAGINE_VARY_STRONG", "IMAGINE_MAX_PERMUTATIONS", "IMAGINE_DESCRIBE_MODEL")
DEFAULTS: dict[str, object] = {
    "vary_subtle": 0.35,
    "vary_strong": 0.75,
    "max_permutations": 4,
    "describe_model": None,
}

MALFORMED = [
    ("IMAGINE_VARY_SUBTLE", "subtle", "must be a number from 0 to 1"),
    ("IMAGINE_VARY_SUBTLE", "1.5", "must be from 0 to 1"),
    ("IMAGINE_VARY_SUBTLE", "-0.1", "must be from 0 to 1"),
    ("IMAGINE_VARY_SUBTLE", "nan", "must be from 0 to 1"),
    ("IMAGINE_VARY_STRONG", "strong", "must be a number from 0 to 1"),
    ("IMAGINE_VARY_STRONG", "75%", "must be a number from 0 to 1"),
    ("IMAGINE_VARY_STRONG", "2", "must be from 0 to 1"),
    ("IMAGINE_VARY_STRONG", "NaN", "must be from 0 to 1"),
    ("IMAGINE_VARY_STRONG", "inf", "must be from 0 to 1"),
    ("IMAGINE_MAX_PERMUTATIONS", "0", "must be at least 1"),
    ("IMAGINE_MAX_PERMUTATIONS", "-2", "must be at least 1"),
    ("IMAGINE_MAX_PERMUTATIONS", "four", "must be a whole number"),
    ("IMAGINE_MAX_PERMUTATIONS", "2.5", "must be a whole number"),
    ("IMAGINE_DESCRIBE_MODEL", "blip", "blip"),
    ("IMAGINE_DESCRIBE_MODEL", "a/b/c", "a/b/c"),
]


def test_defaults() -> None:
    assert attributes(load_settings(dict(BASE_ENV)), DEFAULTS) == DEFAULTS


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_values_mean_unset(blank: str) -> None:
    settings = load_settings({**BASE_ENV, **dict.fromkeys(VARIABLES, blank)})
    assert attributes(settings, DEFAULTS) == DEFAULTS


def test_every_variable_parsed() -> None:
    settings = load_settings(
        {
            **BASE_ENV,
            "IMAGINE_VARY_SUBTLE": "0.2",
            "IMAGINE_VARY_STRONG": " 0.9 ",
            "IMAGINE_MAX_PERMUTATIONS": "12",
            "IMAGINE_DESCRIBE_MODEL": "salesforce/blip:2e1dddc8",
        }
    )
    parsed = {
        "vary_subtle": 0.2,
        "vary_strong": 0.9,
        "max_permutations": 12,
        "describe_model": ModelRef("salesforce", "blip", "2e1dddc8"),
    }
    assert attributes(settings, parsed) == parsed


@pytest.mark.parametrize(("subtle", "strong"), [("0", "1"), ("1", "0"), ("0.0", "1.0"), ("1e-1", ".5")])
def test_strengths_at_and_within_the_bounds_are_accepted(subtle: str, strong: str) -> None:
    settings = load_settings({**BASE_ENV, "IMAGINE_VARY_SUBTLE": subtle, "IMAGINE_VARY_STRONG": strong})
    assert (settings.vary_subtle, settings.vary_strong) == (float(subtle), float(strong))


def test_one_permutation_is_the_least() -> None:
    assert load_settings({**BASE_ENV, "IMAGINE_MAX_PERMUTATIONS": "1"}).max_permutations == 1


@pytest.mark.parametrize(("variable", "value", "words"), MALFORMED)
def test_a_malformed_value_is_one_line_naming_the_variable(variable: str, value: str, words: str) -> None:
    (problem,) = problems_for({**BASE_ENV, variable: value})
    assert problem.startswith(f"{variable}: ")
    assert words in problem
    assert REPLICATE_SECRET not in problem


def test_all_four_malformed_are_reported_at_once() -> None:
    env = {**BASE_ENV, **{variable: value for variable, value, _ in MALFORMED[::4]}}
    assert sorted(problem.split(":")[0] for problem in problems_for(env)) == sorted(
        {variable for variable, _, _ in MALFORMED[::4]}
    )


@pytest.mark.parametrize(("variable", "value", "words"), MALFORMED[::2])
@pytest.mark.parametrize("command", ["imagine", "run"])
def test_python_m_bot_stops_with_exit_status_2(
    variable: str,
    value: str,
    words: str,
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REPLICATE_API_TOKEN", REPLICATE_SECRET)
    monkeypatch.setenv("DISCORD_TOKEN", "MTIz.fake.token")
    monkeypatch.setenv(variable, value)
    args = ["imagine", "a fox"] if command == "imagine" else ["run"]
    assert main(args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"error: {variable}: " in err and words in err
    assert REPLICATE_SECRET not in err
