"""Prompt permutations: counts, order, escapes, nesting and the refusals, by example and by property."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.api.permutations import PermutationError, count, expand


@pytest.mark.parametrize(
    ("text", "prompts"),
    [
        ("a fox", ["a fox"]),
        ("a {red, green} bird", ["a red bird", "a green bird"]),
        ("{a, b} {1, 2}", ["a 1", "a 2", "b 1", "b 2"]),  # the first group varies slowest
        ("a {b, c {d, e}}", ["a b", "a c d", "a c e"]),  # nesting expands fully
        ("a {b\\, c, d}", ["a b, c", "a d"]),  # \, is a literal comma
        ("a, b, c", ["a, b, c"]),  # commas outside braces are text
        ("a {, red} bird", ["a bird", "a red bird"]),  # an empty option, its spaces folded
        ("a bird --ar {1:1, 16:9}", ["a bird --ar 1:1", "a bird --ar 16:9"]),  # a flag's value
        ("a \\{literal\\} \\\\ brace", ["a {literal} \\ brace"]),
        ("{solo}", ["solo"]),
    ],
)
def test_examples(text: str, prompts: list[str]) -> None:
    assert list(expand(text)) == prompts
    assert count(text) == len(prompts)


@pytest.mark.parametrize(("text", "where"), [("a {b, c", "`{` with no `}`"), ("a b}", "`}` with no `{`")])
def test_unmatched_braces_are_refused_saying_which(text: str, where: str) -> None:
    with pytest.raises(PermutationError, match=where):
        count(text)


def test_a_huge_set_is_counted_without_being_made() -> None:
    text = " ".join("{a, b, c}" for _ in range(40))
    assert count(text) == 3**40  # expanding this would never end; counting is instant


_word = st.text(alphabet="abcxyz ", min_size=1, max_size=6).map(lambda word: " ".join(word.split())).filter(bool)


@given(st.lists(st.lists(_word, min_size=1, max_size=4), min_size=0, max_size=4), _word)
def test_groups_make_their_product_in_order(groups: list[list[str]], tail: str) -> None:
    text = " ".join("{" + ", ".join(options) + "}" for options in groups) + " " + tail
    # Spaces an option leaves doubled are folded into one, as expand does.
    expected = [" ".join(" ".join([*combination, tail]).split()) for combination in itertools.product(*groups)]
    assert count(text) == len(expected)
    assert list(expand(text)) == expected


@given(st.lists(_word, min_size=1, max_size=3), st.lists(_word, min_size=1, max_size=3))
def test_a_nested_group_counts_as_its_options(outer: list[str], inner: list[str]) -> None:
    text = "{" + ", ".join(outer) + ", x {" + ", ".join(inner) + "}}"
    assert count(text) == len(outer) + len(inner)
    assert list(expand(text))[-len(inner) :] == [f"x {word}" for word in inner]


@given(st.text(alphabet="ab{},\\ ", max_size=12))
def test_any_text_is_read_or_refused_clearly(text: str) -> None:
    try:
        total = count(text)
    except PermutationError as refused:
        assert "`{`" in str(refused) or "`}`" in str(refused)
        return
    assert total == len(list(expand(text))) >= 1
