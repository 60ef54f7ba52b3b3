"""Blocked-word matching: the evasions it must catch, the innocent words it must leave alone, and its laws."""

from __future__ import annotations

from itertools import groupby

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from bot.moderation.wordfilter import WordFilter, normalise

ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")

# (blocked word, prompt): the prompt uses the blocked word, however disguised.
EVASIONS: list[tuple[str, str]] = [
    # plain use, case, repetition
    ("cat", "a cat on a mat"),
    ("cat", "A CAT"),
    ("cat", "CaT!!!"),
    ("cat", "CAAAT"),
    ("cat", "ccaatt"),
    ("cat", "the cat's toy"),
    # separators between letters
    ("cat", "c.a.t"),
    ("cat", "c a t"),
    ("cat", "c-a-t"),
    ("cat", "c_a_t"),
    ("cat", "c*a*t"),
    ("cat", "c / a / t"),
    ("cat", "c-a-a-t"),
    ("cat", "the c'a't sat"),
    # invisible characters
    ("cat", "c\u200bat"),
    ("cat", "c\u200ca\u200dt\u2060"),
    ("cat", "\ufeffc\u00ada\u00adt"),
    ("cat", "c\u200b.\u200ba\u200b.\u200bt"),
    ("cat", "\u202ecat\u202c"),
    # diacritics and compatibility forms
    ("cat", "càt"),
    ("cat", "c\u0301a\u0308t\u0323"),
    ("cat", "Ç.4.Ť"),
    ("cat", "𝒸𝒶𝓉"),
    ("cat", "𝐜𝐚𝐭"),
    ("cat", "ｃａｔ"),
    ("cat", "ⓒⓐⓣ"),
    ("cat", "⒞⒜⒯"),
    ("office", "the oﬃce"),
    ("strasse", "STRAẞE"),
    # look-alikes from other scripts, small capitals, letter emoji
    ("cat", "сат"),
    ("ass", "аѕѕ"),
    ("hello", "ΗΕLLΟ"),
    ("naked", "ηaked"),
    ("fuck", "fµck"),
    ("cat", "ᴄᴀᴛ"),
    ("nude", "ɴᴜᴅᴇ"),
    ("gore", "ɡore"),
    ("cat", "🇨🇦🇹"),
    # leetspeak
    ("cat", "c4t"),
    ("cat", "c 4 t"),
    ("cat", "kitty c@t"),
    ("ass", "a55"),
    ("ass", "@$$"),
    ("shit", "sh!t"),
    ("shit", "5h1t"),
    ("shit", "$h!t!!!"),
    ("ass", "a s s"),
    ("ass", "a.s.s"),
    ("ass", "asssss"),
    # a single-letter word next to a spelled-out one joins its run, which is searched inside
    ("weasel", "a w.3.a.s.e.l in the snow"),
    ("cat", "a c a t"),
    ("cat", "I c.a.t"),
    # numbers and other scripts
    ("1488", "1 4 8 8"),
    ("猫", "一只可爱的猫"),
    # whole words still count next to single letters
    ("x", "y x"),
    ("5", "x 5"),
    ("a cat", "b a cat"),
]

# (blocked word, prompt): an innocent prompt that only looks like it contains the word.
INNOCENT: list[tuple[str, str]] = [
    ("ass", "class"),
    ("ass", "a classic car"),
    ("ass", "a passage"),
    ("ass", "assassin"),
    ("ass", "bass guitar"),
    ("ass", "mass, grass, brass, harass"),
    ("ass", "as"),
    ("ass", "as soon as possible"),
    ("ass", "a sunny sky"),
    ("ass", "a s"),
    ("ass", "the class's teacher"),
    ("ass", "4 55"),
    ("ass", "a\u200bs"),
    ("cunt", "scunthorpe"),
    ("cock", "cocktail"),
    ("rapist", "therapist"),
    ("cat", "concatenate"),
    ("cat", "cats and dogs"),
    ("cat", "1500 cats"),
    ("cat", "vitamin c at noon"),
    ("ham", "I am happy"),
    ("ham", "shame"),
    ("tit", "title"),
    ("hell", "hello"),
    ("hell", "a shell"),
    ("sex", "sussex and essex"),
    ("anal", "analysis of a canal"),
    ("cum", "a document about cucumbers"),
    ("nazi", "ashkenazi"),
    ("ooo", "0000"),
    ("ooo", "0 0 0"),
    ("sis", "5 1 5"),
    ("cats?", "cat"),
    ("c.t", "cat"),
    ("blood bath", "blood bathroom"),
    ("blood bath", "bath blood"),
    ("猫", "一只狗"),
]


@pytest.mark.parametrize(("blocked", "prompt"), EVASIONS)
def test_catches_evasion(blocked: str, prompt: str) -> None:
    assert WordFilter([blocked]).first_match(prompt) == blocked


@pytest.mark.parametrize(("blocked", "prompt"), INNOCENT)
def test_leaves_innocent_prompt_alone(blocked: str, prompt: str) -> None:
    assert WordFilter([blocked]).first_match(prompt) is None


def test_tables_are_large_enough() -> None:
    assert len(EVASIONS) >= 30
    assert len(INNOCENT) >= 25


@pytest.mark.parametrize(
    "prompt",
    [
        "a blood bath at dawn",
        "BLOOD BATH",
        "blood   bath",
        "blood-bath",
        "bloodbath",
        "bloooood baaath",
        "b.l.o.o.d b.a.t.h",
        "bl00d b4th",
    ],
)
def test_phrase_matches_with_any_separator(prompt: str) -> None:
    assert WordFilter(["Blood Bath"]).first_match(prompt) == "Blood Bath"


@pytest.mark.parametrize("prompt", ["blood", "bath", "a blood red bath", "bloodbaths"])
def test_phrase_needs_all_its_words_in_order(prompt: str) -> None:
    assert WordFilter(["blood bath"]).first_match(prompt) is None


def test_phrase_whose_words_meet_on_the_same_letter() -> None:
    words = WordFilter(["ass sucker"])
    assert words.first_match("ass sucker") == "ass sucker"
    assert words.first_match("asssucker") == "ass sucker"
    assert words.first_match("as sucker") is None


def test_returns_the_word_as_the_moderator_wrote_it() -> None:
    words = WordFilter(["dog", "  Ç.A.T  ", "Blood Bath"])
    assert words.first_match("a cute CAT") == "  Ç.A.T  "
    assert words.first_match("bloodbath") == "Blood Bath"


def test_spellings_with_the_same_normalisation_count_once_and_the_first_wins() -> None:
    words = WordFilter(["Cat", "cat", "C.A.T", "c4t"])
    assert len(words) == 1
    assert words.first_match("cat") == "Cat"


def test_each_word_of_a_long_list_is_reported_as_itself() -> None:
    words = ["zebra", "apple", "Blood Bath", "zoo", "a55", "cat", "b.a.d", "angle", "zest", "12", "bee", "c.a.t.s"]
    words += [f"{letter}word{letter}" for letter in "qwertyuiopasdfghjklzxcvbnm"]
    blocked = WordFilter(words)
    for word in words:
        assert blocked.first_match(f"one {word} two") == word
        assert blocked.first_match(f"one {' '.join(normalise(word))} two") == word  # spelled out


def test_leftmost_match_wins() -> None:
    assert WordFilter(["dog", "cat"]).first_match("a cat chases a dog") == "cat"


def test_empty_filter_matches_nothing() -> None:
    words = WordFilter([])
    assert not words
    assert len(words) == 0
    assert words.first_match("anything at all") is None
    assert words.first_match("") is None


def test_words_that_normalise_to_nothing_are_ignored() -> None:
    words = WordFilter(["", "   ", "!!!", "🙂", "\u200b", "..."])
    assert not words
    assert words.first_match("!!! 🙂 ...") is None


def test_size_and_truth() -> None:
    words = WordFilter(w for w in ["cat", "dog", "blood bath"])
    assert words
    assert len(words) == 3


def test_spelled_out_letters_are_searched_inside_their_run() -> None:
    # The documented price of catching "a w.3.a.s.e.l": spelled-out innocent words can match too.
    assert WordFilter(["ass"]).first_match("c l a s s") == "ass"
    assert WordFilter(["ass"]).first_match("class") is None


def test_pathological_input_does_not_backtrack() -> None:
    words = WordFilter(["s " * 40, "a" * 50, "ab " * 30])
    assert words.first_match("s" * 1500 + "x") is None
    assert words.first_match("s " * 700 + "x") == "s " * 40
    assert words.first_match("ab" * 700) is None
    assert words.first_match("a b " * 350 + "q") is not None


def test_regex_syntax_in_a_blocked_word_is_literal() -> None:
    words = WordFilter(["c.*t", "(a|b)"])
    assert words.first_match("cat") is None
    assert words.first_match("c t") == "c.*t"
    assert words.first_match("ab") == "(a|b)"


def test_a_blocked_number_matches_only_that_number() -> None:
    words = WordFilter(["1488"])
    assert words.first_match("1488") == "1488"
    assert words.first_match("14889") is None
    assert words.first_match("iaee") is None


def test_numbers_in_prompts_do_not_disturb_matching() -> None:
    words = WordFilter(["image", "cats"])
    assert words.first_match("a 4k image") == "image"
    assert words.first_match("1500 cats") == "cats"


def test_rebuilding_the_same_list_is_cheap() -> None:
    words = [f"word{n}" for n in range(300)]
    first, second = WordFilter(words), WordFilter(list(words))
    assert first._compiled is second._compiled


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("   ", ""),
        ("Hello, World!", "hello world"),
        ("Ç.4.Ť, my ｋｉｔｔｙ!", "cat my kitty"),
        ("a sunny sky", "a sunny sky"),
        ("I a m happy", "iam happy"),
        ("1500 cats in 4k", "1500 cats in ak"),
        ("0000 $5 @$$", "0000 5 ass"),
        ("don't stop the cat's toy", "dont stop the cat toy"),
        ("wow!!! sh!t", "wow shit"),
        ("c\u200ba\u00adt", "cat"),
        ("Straße", "strasse"),
        ("一只猫", "一 只 猫"),
    ],
)
def test_normalise_examples(text: str, expected: str) -> None:
    assert normalise(text) == expected


# --------------------------------------------------------------------------------------- properties

# Characters that exercise every rule (letters, leet, separators, invisible, look-alikes, marks, CJK).
TRICKY = st.text(alphabet="aAcst0145@$!'’. -_*\u200b\u00ad\u0301сαΗηｃ𝐜ß猫ก㈎⒜½İ🙂\t\n\x00", max_size=40)
ANY_TEXT = st.one_of(st.text(max_size=80), TRICKY)
WITH_SURROGATES = st.text(alphabet=st.characters(blacklist_categories=()), max_size=80)


@settings(max_examples=300, deadline=None, database=None)
@given(ANY_TEXT)
@example("$㈎0⒜")  # Hangul syllables decompose into two letters; a run's mark must survive str.split
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@settings(max_examples=300, deadline=None, database=None)
@given(ANY_TEXT)
def test_normalised_text_is_words_separated_by_single_spaces(text: str) -> None:
    words = normalise(text).split(" ")
    assert words == [""] or all(word.isalnum() for word in words)


@settings(max_examples=200, deadline=None, database=None)
@given(st.one_of(WITH_SURROGATES, ANY_TEXT), st.lists(st.one_of(WITH_SURROGATES, ANY_TEXT), max_size=4))
def test_never_raises(prompt: str, blocked: list[str]) -> None:
    assert isinstance(normalise(prompt), str)
    assert WordFilter(blocked).first_match(prompt) in [None, *blocked]


@settings(max_examples=300, deadline=None, database=None)
@given(word=ANY_TEXT, before=ANY_TEXT, after=ANY_TEXT)
def test_a_word_used_verbatim_always_matches(word: str, before: str, after: str) -> None:
    assume(normalise(word))
    assert WordFilter([word]).first_match(f"{before} {word} {after}") == word


@settings(max_examples=300, deadline=None, database=None)
@given(words=st.lists(ANY_TEXT, min_size=1, max_size=8), pick=st.integers(0, 7), before=ANY_TEXT, after=ANY_TEXT)
def test_with_many_words_the_one_reported_really_matches(words: list[str], pick: int, before: str, after: str) -> None:
    word = words[pick % len(words)]
    assume(normalise(word))
    prompt = f"{before} {word} {after}"
    found = WordFilter(words).first_match(prompt)
    assert found is not None and found in words
    assert WordFilter([found]).first_match(prompt) == found


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from(EVASIONS), st.data())
def test_zero_width_characters_change_nothing(case: tuple[str, str], data: st.DataObject) -> None:
    blocked, prompt = case
    chars = list(prompt)
    for _ in range(data.draw(st.integers(1, 5))):
        chars.insert(data.draw(st.integers(0, len(chars))), data.draw(st.sampled_from(ZERO_WIDTH)))
    assert WordFilter([blocked]).first_match("".join(chars)) == blocked


LOWER = "abcdefghijklmnopqrstuvwxyz"


@settings(max_examples=300, deadline=None, database=None)
@given(
    word=st.text(alphabet=LOWER, min_size=1, max_size=8),
    before=st.text(alphabet=LOWER, max_size=4),
    after=st.text(alphabet=LOWER, max_size=4),
)
def test_never_fires_inside_a_longer_word(word: str, before: str, after: str) -> None:
    assume(before or after)
    # Letters that merely repeat the word's first or last letter spell the same word (caaat), so avoid them.
    assume(not before.endswith(word[0]) and not after.startswith(word[-1]))
    assert WordFilter([word]).first_match(f"the {before}{word}{after} here") is None


def _runs_cover(word: str, text: str) -> bool:
    """Whether ``text`` is ``word`` with some of its letters repeated (the same runs, none shorter)."""
    word_runs = [(char, len(list(run))) for char, run in groupby(word)]
    text_runs = [(char, len(list(run))) for char, run in groupby(text)]
    return len(word_runs) == len(text_runs) and all(
        w_char == t_char and t_count >= w_count
        for (w_char, w_count), (t_char, t_count) in zip(word_runs, text_runs, strict=True)
    )


def _reference_match(word: str, prompt: str) -> bool:
    """The matching rule written out plainly, for one lower-case word and a prompt of letters and spaces."""
    tokens = prompt.split()
    if any(_runs_cover(word, token) for token in tokens):
        return True
    runs: list[str] = []  # the letters of each run of two or more single-letter tokens
    current = ""
    for token in [*tokens, "--"]:
        if len(token) == 1:
            current += token
            continue
        if len(current) > 1:
            runs.append(current)
        current = ""
    return any(_runs_cover(word, run[i:j]) for run in runs for i in range(len(run)) for j in range(i + 1, len(run) + 1))


@settings(max_examples=500, deadline=None, database=None)
@given(word=st.text(alphabet="abc", min_size=1, max_size=4), prompt=st.text(alphabet="abc  ", max_size=24))
def test_agrees_with_the_rule_written_out(word: str, prompt: str) -> None:
    assert (WordFilter([word]).first_match(prompt) is not None) == _reference_match(word, prompt)
