"""Named options' names and values, and the suffix: what may be stored, and what each refusal says."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.api.flags import parse_prompt_flags
from bot.api.named_options import (
    BUILTIN_FLAGS,
    OPTION_NAME_MAX,
    OPTION_VALUE_MAX,
    SUFFIX_MAX,
    OptionRejected,
    check_option_name,
    check_option_value,
    check_suffix,
)
from bot.base.errors import InputRejected

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("cinematic", "cinematic"),
        ("Cinematic", "cinematic"),
        ("  style2 ", "style2"),
        ("--Film", "film"),
        ("—film", "film"),  # a phone's dash for --
        ("x", "x"),
        ("a" * OPTION_NAME_MAX, "a" * OPTION_NAME_MAX),
    ],
)
def test_a_name_is_stored_lower_case_without_its_dashes(typed: str, stored: str) -> None:
    assert check_option_name(typed) == stored


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("", "empty"),
        ("--", "empty"),
        ("a" * (OPTION_NAME_MAX + 1), f"at most {OPTION_NAME_MAX}"),
        ("two words", "only letters a-z and digits 0-9"),
        ("dash-ed", "only letters a-z and digits 0-9"),
        ("under_score", "only letters a-z and digits 0-9"),
        ("2d", "starting with a letter"),
        ("café", "accents"),
        ("ar", "`--ar` is a prompt flag"),
        ("--AR", "`--ar` is a prompt flag"),
        ("Repeat", "`--repeat` is a prompt flag"),
        ("r", "`--r` is a prompt flag"),
    ],
)
def test_a_name_that_cannot_be_one_is_refused_saying_why(typed: str, says: str) -> None:
    with pytest.raises(OptionRejected) as refused:
        check_option_name(typed)
    assert says in str(refused.value)
    assert isinstance(refused.value, InputRejected)  # answered to the member as any bad option


def test_every_flag_the_bot_reads_is_reserved() -> None:
    assert {"ar", "aspect", "seed", "no", "repeat", "r"} == BUILTIN_FLAGS
    for flag in BUILTIN_FLAGS:
        with pytest.raises(OptionRejected):
            check_option_name(flag)


@PROPERTY
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_ é", max_size=40))
def test_a_stored_name_is_read_back_as_a_flag_of_that_name(typed: str) -> None:
    """Whatever is accepted reads, after ``--`` at the end of a prompt, as a flag named exactly so."""
    try:
        name = check_option_name(typed)
    except OptionRejected:
        return
    assert name == name.lower() and 1 <= len(name) <= OPTION_NAME_MAX and name not in BUILTIN_FLAGS
    assert check_option_name(name) == name  # stored names pass again unchanged
    with pytest.raises(InputRejected, match=f"--{name} is not a prompt flag"):
        parse_prompt_flags(f"a castle --{name}")


def test_a_value_is_text_or_flags_trimmed() -> None:
    assert check_option_value("  --ar 16:9 --no people ") == "--ar 16:9 --no people"
    assert check_option_value("x" * OPTION_VALUE_MAX) == "x" * OPTION_VALUE_MAX


@pytest.mark.parametrize(("typed", "says"), [("   ", "leave `value` out"), ("x" * 501, "at most 500")])
def test_an_empty_or_long_value_is_refused_saying_why(typed: str, says: str) -> None:
    with pytest.raises(OptionRejected, match=says):
        check_option_value(typed)


def test_a_suffix_is_trimmed_and_bounded() -> None:
    assert check_suffix(" , oil painting ") == ", oil painting"
    assert check_suffix("  ") == ""
    assert check_suffix("x" * SUFFIX_MAX) == "x" * SUFFIX_MAX
    with pytest.raises(OptionRejected, match=f"at most {SUFFIX_MAX}"):
        check_suffix("x" * (SUFFIX_MAX + 1))
