"""Prompt flags (``--ar``/``--aspect``, ``--seed``, ``--no``): reading them off the end, folding them into options."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.api.flags import (
    SEED_MAX,
    FlagRejected,
    PromptFlags,
    apply_prompt_flags,
    parse_prompt_flags,
    prompt_with_flags,
    remix_options,
)
from bot.api.inputs import ASPECT_RATIOS, ImagineOptions, InputSchema, plan_inputs
from bot.api.modelref import ModelRef
from bot.base.errors import InputRejected
from bot.jobs.model import JobRequest
from bot.jobs.serialization import request_from_json, request_to_json
from tests.unit.test_inputs import flux_schnell_document

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None)

# ---------------------------------------------------------------------------- reading flags


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a castle at dusk --ar 16:9 --seed 42 --no people, cars",
            PromptFlags("a castle at dusk", "16:9", "--ar 16:9", True, 42, "people, cars"),
        ),
        # Any order; --no stops at the next flag.
        (
            "a castle --no people, cars --seed 42 --aspect 9:16",
            PromptFlags("a castle", "9:16", "--aspect 9:16", True, 42, "people, cars"),
        ),
        ("a castle --seed 0", PromptFlags("a castle", seed=0)),
        ("a castle   --no   fog  ", PromptFlags("a castle", negative_prompt="fog")),
        # Several --no are joined.
        ("a castle --no fog --no rain", PromptFlags("a castle", negative_prompt="fog, rain")),
        # Equal ratios are that ratio; others use the nearest offered one.
        ("a castle --ar 32:18", PromptFlags("a castle", "16:9", "--ar 32:18", True)),
        ("a castle --ar 7:5", PromptFlags("a castle", "4:3", "--ar 7:5", False)),
        ("a castle --ar 1:10", PromptFlags("a castle", "9:21", "--ar 1:10", False)),
        # Phones turn -- into a dash; flag names are not case-sensitive.
        ("a castle —ar 3:2 –SEED 7", PromptFlags("a castle", "3:2", "--ar 3:2", True, 7)),
        # Newlines are whitespace like any other.
        ("a castle\nat dusk\n--seed 5", PromptFlags("a castle\nat dusk", seed=5)),
    ],
)
def test_flags_at_the_end_are_read_and_cut(text: str, expected: PromptFlags) -> None:
    assert parse_prompt_flags(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "a castle",
        "a sign saying --ar 16:9 in neon letters",  # prose after the flag's value: text
        "a poster with --help written on it",
        "--seed 42 is my favourite number, painted",
        "an arrow <-- pointing left",
        "a line of dashes -- and more",
        "a number --12",
        "a castle -ar 16:9",  # one dash is not a flag
    ],
)
def test_flag_looking_text_in_the_middle_is_prompt(text: str) -> None:
    assert parse_prompt_flags(text) == PromptFlags(text)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("a castle --ar banana", "--ar"),
        ("a castle --aspect 16x9", "--aspect"),
        ("a castle --ar 0:1", "--ar"),
        ("a castle --ar 1.5:1", "--ar"),
        ("a castle --ar", "--ar"),
        ("a castle --ar --seed 4", "--ar"),
        ("a castle --seed -1", "--seed"),
        ("a castle --seed 1.5", "--seed"),
        ("a castle --seed", "--seed"),
        (f"a castle --seed {SEED_MAX + 1}", "--seed"),
        ("a castle --seed 99999999999999999999999999", "--seed"),
        ("a castle --no", "--no"),
        ("a castle --no --seed 3", "--no"),
        ("a castle --v 6", "--v"),
        ("a castle --stylize 100 --ar 16:9", "--stylize"),
        ("a castle --tile", "--tile"),
        ("a castle --seed 1 --seed 2", "--seed"),
        ("a castle --ar 1:1 --aspect 16:9", "--aspect"),
    ],
)
def test_malformed_or_unknown_flags_are_refused_by_name(text: str, named: str) -> None:
    with pytest.raises(FlagRejected) as refused:
        parse_prompt_flags(text)
    assert named in str(refused.value)
    assert isinstance(refused.value, InputRejected)  # refused like any invalid option, before anything is sent


def test_unknown_flags_are_refused_with_what_the_bot_reads() -> None:
    with pytest.raises(FlagRejected, match=r"--v is not a prompt flag.*--ar W:H.*--seed N.*--no TEXT"):
        parse_prompt_flags("a castle --v 6")


@pytest.mark.parametrize("text", ["--ar 16:9", "   --seed 3 --no fog", "—no fog"])
def test_a_prompt_of_only_flags_is_refused(text: str) -> None:
    with pytest.raises(FlagRejected, match="only flags"):
        parse_prompt_flags(text)


# ---------------------------------------------------------------------------- properties

WORD = st.text(alphabet=st.characters(blacklist_categories=("Z", "C")), min_size=1, max_size=8)
PROSE = st.lists(WORD, min_size=1, max_size=8).map(" ".join)
FLAG_TOKEN = re.compile(r"(?:--|—|–)[A-Za-z]")


@PROPERTY
@given(PROSE.filter(lambda text: not any(FLAG_TOKEN.match(word) for word in text.split())))
def test_prose_without_flags_is_left_alone(text: str) -> None:
    assert parse_prompt_flags(text) == PromptFlags(text)


@PROPERTY
@given(
    prose=PROSE,
    ratio=st.none() | st.sampled_from(ASPECT_RATIOS),
    seed=st.none() | st.integers(0, SEED_MAX),
    negative=st.none() | st.lists(WORD.filter(lambda w: not FLAG_TOKEN.match(w)), min_size=1, max_size=4),
    order=st.permutations(range(3)),
)
def test_flags_written_in_any_order_come_back(
    prose: str, ratio: str | None, seed: int | None, negative: list[str] | None, order: list[int]
) -> None:
    parts = [
        f"--ar {ratio}" if ratio else "",
        f"--seed {seed}" if seed is not None else "",
        f"--no {' '.join(negative)}" if negative else "",
    ]
    text = " ".join([prose, *(parts[i] for i in order if parts[i])])
    try:
        flags = parse_prompt_flags(text)
    except FlagRejected:
        # Only when the prose itself ends like a flag (e.g. "... --x"), which is refused as such.
        assert FLAG_TOKEN.search(prose)
        return
    if FLAG_TOKEN.search(prose):
        return  # the prose's own flag-looking words may legitimately join the tail
    assert (flags.prompt, flags.aspect_ratio, flags.seed) == (prose, ratio, seed)
    assert flags.negative_prompt == (" ".join(negative) if negative else None)


@PROPERTY
@given(
    st.text(max_size=80)
    | st.lists(st.sampled_from(["a", "b", "--ar", "16:9", "--no", "x", "--seed", "3", "--v"]), max_size=12).map(
        " ".join
    )
)
def test_reading_is_idempotent_and_leaves_no_tail(text: str) -> None:
    """What is left after the flags are cut has no flags at its end: nothing is read twice (Re-roll, V)."""
    try:
        flags = parse_prompt_flags(text)
    except FlagRejected:
        return
    assert parse_prompt_flags(flags.prompt) == PromptFlags(flags.prompt)


# ---------------------------------------------------------------------------- into options


def test_flags_fill_the_options_and_leave_the_prompt_clean() -> None:
    options, notes = apply_prompt_flags(ImagineOptions("a castle --ar 16:9 --seed 42 --no people"))
    assert options == ImagineOptions("a castle", aspect_ratio="16:9", seed=42, negative_prompt="people")
    assert notes == ()


def test_explicit_options_win_over_flags_with_a_note() -> None:
    options, notes = apply_prompt_flags(ImagineOptions("a castle --ar 16:9 --seed 42", aspect_ratio="1:1", seed=7))
    assert options == ImagineOptions("a castle", aspect_ratio="1:1", seed=7)
    assert tuple(map(str, notes)) == (
        "The aspect_ratio option (1:1) was used instead of --ar 16:9.",
        "The seed option (7) was used instead of --seed 42.",
    )


def test_an_explicit_option_equal_to_the_flag_needs_no_note() -> None:
    assert apply_prompt_flags(ImagineOptions("a castle --seed 7", seed=7)) == (
        ImagineOptions("a castle", seed=7),
        (),
    )


def test_the_nearest_ratio_is_noted() -> None:
    options, notes = apply_prompt_flags(ImagineOptions("a castle --ar 7:5"))
    assert options.aspect_ratio == "4:3"
    assert tuple(map(str, notes)) == ("--ar 7:5 is not a ratio /imagine offers, so the nearest, 4:3, was used.",)


def test_options_without_flags_are_unchanged() -> None:
    options = ImagineOptions("a castle", count=2)
    assert apply_prompt_flags(options) == (options, ())


def test_the_negative_prompt_goes_to_the_models_input_or_is_noted() -> None:
    options = ImagineOptions("a castle", negative_prompt="people, cars")
    document = flux_schnell_document()
    document["components"]["schemas"]["Input"]["properties"]["negative_prompt"] = {"type": "string"}
    with_input = plan_inputs(options, InputSchema.from_openapi(document))
    assert with_input.inputs["negative_prompt"] == "people, cars" and not with_input.notes

    without = plan_inputs(options, InputSchema.from_openapi(flux_schnell_document()))
    assert "negative_prompt" not in without.inputs
    assert tuple(map(str, without.notes)) == (
        "This model does not take a negative prompt, so --no people, cars was ignored.",
    )

    unchecked = plan_inputs(options, None)  # no schema: sent under its usual name, the API's 422 tells
    assert unchecked.inputs["negative_prompt"] == "people, cars"


def test_the_negative_prompt_survives_the_journal() -> None:
    request = JobRequest(
        ModelRef.parse("a/b"), ImagineOptions("a castle", negative_prompt="fog"), {"prompt": "a castle"}
    )
    assert request_from_json(request_to_json(request)).options.negative_prompt == "fog"


# ---------------------------------------------------------------------------- written back (Remix)


@pytest.mark.parametrize(
    ("options", "text"),
    [
        (ImagineOptions("a castle"), "a castle"),
        (ImagineOptions("a castle", aspect_ratio="16:9", seed=42), "a castle --ar 16:9"),  # the seed: a new one
        (ImagineOptions("a castle", negative_prompt="people, cars"), "a castle --no people, cars"),
        (ImagineOptions("a castle", aspect_ratio="2:3", negative_prompt="fog"), "a castle --ar 2:3 --no fog"),
        (
            ImagineOptions("a sign saying --ar 16:9 in neon", aspect_ratio="1:1"),
            "a sign saying --ar 16:9 in neon --ar 1:1",
        ),
    ],
)
def test_options_are_written_back_as_the_prompt_a_member_types(options: ImagineOptions, text: str) -> None:
    assert prompt_with_flags(options) == text
    flags = parse_prompt_flags(text)
    assert (flags.prompt, flags.aspect_ratio, flags.negative_prompt) == (
        options.prompt,
        options.aspect_ratio,
        options.negative_prompt,
    )


REMIX_WORDS = ["a", "fox", "--ar", "7:5", "--no", "x", "y", "--seed", "3", "--v", "—no"]


@PROPERTY
@given(
    typed=st.text(max_size=60) | st.lists(st.sampled_from(REMIX_WORDS), max_size=12).map(" ".join),
    ratio=st.none() | st.sampled_from(ASPECT_RATIOS),
    negative=st.none() | st.lists(WORD.filter(lambda w: not FLAG_TOKEN.match(w)), min_size=1, max_size=4).map(" ".join),
)
def test_options_written_back_read_the_same(typed: str, ratio: str | None, negative: str | None) -> None:
    """Whatever a member typed (with an explicit aspect ratio or none), the options the job ran with, written back
    and read again, are the same: the prompt (less trailing spaces once flags follow it), ratio, negative prompt."""
    try:
        ran, _ = apply_prompt_flags(ImagineOptions(typed, aspect_ratio=ratio))
    except FlagRejected:
        return
    if not ran.prompt.strip():
        return  # refused as empty before anything runs
    if ran.negative_prompt is None:
        ran = replace(ran, negative_prompt=negative)
    again, _ = apply_prompt_flags(ImagineOptions(prompt_with_flags(ran)))
    flagged = ran.aspect_ratio is not None or ran.negative_prompt is not None
    assert again.prompt == (ran.prompt.rstrip() if flagged else ran.prompt)
    assert (again.aspect_ratio, again.negative_prompt, again.seed) == (ran.aspect_ratio, ran.negative_prompt, None)


def test_a_remix_takes_its_flags_from_the_edited_text_alone() -> None:
    original = ImagineOptions(
        "a castle", aspect_ratio="16:9", count=3, seed=7, negative_prompt="fog", extra={"guidance": 2}, strength=0.35
    )
    remixed = remix_options(original, "a castle at night --no rain\n", seed=99)
    assert remixed == ImagineOptions(
        "a castle at night --no rain", count=3, seed=99, extra={"guidance": 2}, strength=0.35
    )
    applied, notes = apply_prompt_flags(remixed)
    assert (applied.prompt, applied.aspect_ratio, applied.negative_prompt, notes) == (
        "a castle at night",
        None,
        "rain",
        (),
    )


def test_a_seed_typed_in_a_remix_wins_over_the_new_one() -> None:
    remixed = remix_options(ImagineOptions("a castle", seed=7), "a castle --seed 5", seed=99)
    assert remixed.seed is None and apply_prompt_flags(remixed) == (ImagineOptions("a castle", seed=5), ())
    # A malformed flag is left for the job's preparation to refuse, with the reason.
    assert remix_options(ImagineOptions("a castle"), "a castle --seed x", seed=99).seed == 99
