"""One typed prompt to its jobs' prompts: named options, the suffix, permutations and ``--repeat``, by example and
by property (count, order, escapes, nesting, limits)."""

from __future__ import annotations

import itertools
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.api.flags import split_trailing_flags
from bot.api.prompts import PermutationError, add_suffix, compose_prompt, expand_named_options, expand_prompt

LIMIT = 4

_word = st.text(alphabet="abcxyz", min_size=1, max_size=5)
_prose = st.lists(_word, min_size=1, max_size=4).map(" ".join)
_groups = st.lists(st.lists(_word, min_size=1, max_size=3, unique=True), min_size=0, max_size=3)


# ---------------------------------------------------------------------------- permutations and --repeat


@pytest.mark.parametrize(
    ("text", "prompts"),
    [
        ("a fox", ["a fox"]),
        ("a fox --repeat 2", ["a fox", "a fox"]),
        ("a fox --r 3 --ar 1:1", ["a fox --ar 1:1"] * 3),  # anywhere among the flags, --r for short
        ("a fox —repeat 2", ["a fox", "a fox"]),  # a phone's dash
        ("a {red, blue} fox --repeat 2", ["a red fox", "a red fox", "a blue fox", "a blue fox"]),
        ("a fox {--repeat 2, --seed 1}", ["a fox", "a fox", "a fox --seed 1"]),  # each prompt its own count
        ("a {b\\, c, d}", ["a b, c", "a d"]),
        ("a \\{literal\\}", ["a {literal}"]),
        ("{a, b {c, d}}", ["a", "b c", "b d"]),
        ("a sign saying --repeat 2 in neon", ["a sign saying in neon", "a sign saying in neon"]),
    ],
)
def test_examples(text: str, prompts: list[str]) -> None:
    assert expand_prompt(text, limit=LIMIT) == prompts


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a fox --repeat 0", "whole number of times"),
        ("a fox --repeat two", "whole number of times"),
        ("a fox --repeat ²", "whole number of times"),  # a digit to str.isdigit, not to int()
        ("a fox --repeat ٣", "whole number of times"),
        ("a fox --repeat", "not nothing"),
        ("a fox --repeat 2 --r 2", "given twice"),
        ("a fox --repeat 5", "--repeat 5 makes 5 jobs"),
        ("a {b, c, d, e, f} fox", "makes 5 combinations"),
        ("a {b, c, d} fox --repeat 2", "makes 6 jobs (3 combinations with their --repeat)"),
        ("a {b, c fox", "`{` with no `}`"),
    ],
)
def test_refusals_say_what_and_how_many(text: str, says: str) -> None:
    with pytest.raises(PermutationError, match=re.escape(says)):
        expand_prompt(text, limit=LIMIT)


@given(_groups, _prose, st.integers(min_value=1, max_value=6), st.integers(min_value=1, max_value=12))
def test_a_sets_size_and_order_or_a_refusal_with_its_count(
    groups: list[list[str]], tail: str, times: int, limit: int
) -> None:
    text = " ".join(["{" + ", ".join(options) + "}" for options in groups] + [tail])
    if times > 1:
        text += f" --repeat {times}"
    combinations = [" ".join([*choice, tail]) for choice in itertools.product(*groups)]
    made = len(combinations) * times
    if made > limit:
        with pytest.raises(PermutationError) as refused:
            expand_prompt(text, limit=limit)
        # Counted without being made: the combinations first, then one prompt's --repeat, then all together.
        counted = len(combinations) if len(combinations) > limit else times if times > limit else made
        assert f"makes {counted} " in str(refused.value)
        return
    prompts = expand_prompt(text, limit=limit)
    assert len(prompts) == made == math.prod(len(options) for options in groups) * times
    # Each combination, in order (the first group varies slowest), repeated where it stands.
    assert prompts == [prompt for prompt in combinations for _ in range(times)]


@given(st.text(alphabet="ab -{},\\r", max_size=16), st.integers(min_value=1, max_value=8))
def test_any_text_makes_at_most_the_limit_or_is_refused_clearly(text: str, limit: int) -> None:
    try:
        prompts = expand_prompt(text, limit=limit)
    except PermutationError as refused:
        assert str(refused)
        return
    assert 1 <= len(prompts) <= limit


# ---------------------------------------------------------------------------- named options


def test_named_options_expand_where_they_stand_in_any_case() -> None:
    named = {"cine": "dramatic light --ar 16:9", "ink": "in ink"}
    assert expand_named_options("a cat --cine", named) == "a cat dramatic light --ar 16:9"
    assert expand_named_options("a cat --INK on paper", named) == "a cat in ink on paper"
    assert expand_named_options("a cat {--ink, --cine}", named) == "a cat {in ink, dramatic light --ar 16:9}"
    assert expand_named_options("a cat --inky --ar 1:1", named) == "a cat --inky --ar 1:1"  # unknown: as typed
    assert expand_named_options("a cat--ink", named) == "a cat--ink"  # part of a word: not an option
    assert expand_named_options("a cat --ar 1:1", {"ar": "oops"}) == "a cat --ar 1:1"  # a flag stays a flag


@given(
    st.dictionaries(st.sampled_from(["aa", "bb", "cc"]), _prose), st.lists(st.sampled_from(["aa", "bb", "cc", "dd"]))
)
def test_named_options_expand_once_each_and_never_recursively(named: dict[str, str], used: list[str]) -> None:
    # Every option's text names every option: none of those is expanded again.
    named = {name: f"{text} --aa --bb --cc" for name, text in named.items()}
    text = " ".join(["x", *(f"--{name}" for name in used)])
    expected = " ".join(["x", *(named.get(name, f"--{name}") for name in used)])
    assert expand_named_options(text, named) == expected


# ---------------------------------------------------------------------------- the suffix


@pytest.mark.parametrize(
    ("prompt", "suffix", "composed"),
    [
        ("a cat --ar 1:1", "in watercolor --no text", "a cat in watercolor --ar 1:1 --no text"),
        ("a cat --ar 1:1", "in ink --aspect 16:9", "a cat in ink --ar 1:1"),  # the prompt's flag wins
        ("a cat --no dogs", "--no text --seed 3", "a cat --no dogs --seed 3"),
        ("a cat", "--ar 3:2", "a cat --ar 3:2"),
        ("a cat --r 2", "in ink --repeat 3", "a cat in ink --r 2"),
        ("a {cat, dog} --ar {1:1, 16:9}", "in ink", "a {cat, dog} in ink --ar {1:1, 16:9}"),
        ("a sign saying --ar 16:9 in neon", "at night", "a sign saying --ar 16:9 in neon at night"),
        ("a cat", "", "a cat"),
    ],
)
def test_the_suffix_joins_the_prose_before_the_flags(prompt: str, suffix: str, composed: str) -> None:
    assert add_suffix(prompt, suffix) == composed


_flag = st.sampled_from(["--ar 1:1", "--aspect 2:3", "--seed 7", "--no cars", "--r 2", "--tile"])


@given(_prose, st.lists(_flag, max_size=3), _prose, st.lists(_flag, max_size=3))
def test_a_suffixed_prompt_keeps_its_prose_then_the_suffixes_and_its_own_flags_first(
    prose: str, flags: list[str], suffix_prose: str, suffix_flags: list[str]
) -> None:
    composed = add_suffix(" ".join([prose, *flags]), " ".join([suffix_prose, *suffix_flags]))
    read_prose, read_flags = split_trailing_flags(composed)
    assert read_prose == f"{prose} {suffix_prose}"
    own = [flag.kind for flag in split_trailing_flags(" ".join(["x", *flags]))[1]]
    kinds = [flag.kind for flag in read_flags]
    assert kinds[: len(own)] == own
    assert not set(kinds[len(own) :]) & set(own)  # no flag of the suffix that the prompt gives


def test_composition_runs_named_options_then_the_suffix_then_permutations() -> None:
    composed = compose_prompt("a {cat, dog} --style", named={"style": "--ar {1:1, 16:9}"}, suffix="in ink --style")
    assert composed == "a {cat, dog} in ink --ar {1:1, 16:9} --style"  # the suffix's --style is not an option
    with pytest.raises(PermutationError, match="4 combinations"):
        expand_prompt(composed, limit=3)
    composed = compose_prompt("a {cat, dog} --style", named={"style": "--ar {1:1, 16:9}"}, suffix="in ink")
    assert expand_prompt(composed, limit=LIMIT) == [
        "a cat in ink --ar 1:1",
        "a cat in ink --ar 16:9",
        "a dog in ink --ar 1:1",
        "a dog in ink --ar 16:9",
    ]


def test_trailing_flags_are_found_whatever_braces_and_escapes_they_hold() -> None:
    prose, flags = split_trailing_flags("a \\{b c\\} {d, e} --ar {1:1, 2:3} --no {x y, z}")
    assert prose == "a \\{b c\\} {d, e}"
    assert [(flag.name, flag.text) for flag in flags] == [("ar", "--ar {1:1, 2:3}"), ("no", "--no {x y, z}")]
    assert split_trailing_flags("a sign --ar 16:9 in neon") == ("a sign --ar 16:9 in neon", ())
