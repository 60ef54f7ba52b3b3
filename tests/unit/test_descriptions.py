"""``/describe``'s pure half: the inputs a describe model is sent, its text output read, and the suggestions made
of it, by example and by property (any text or pieces give at most four bounded suggestions)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.api.descriptions import (
    DESCRIBE_INSTRUCTION,
    MAX_SUGGESTIONS,
    SUGGESTIONS_TOTAL_MAX,
    TEXT_MAX,
    DescribeFailed,
    clean_suggestion,
    cut_at_word,
    describe_inputs,
    read_text_output,
    suggestions_from,
)
from bot.api.inputs import PROMPT_MAX, InputSchema
from tests.fakes.replicate import (
    CAPTIONER_OPENAPI_SCHEMA,
    FLUX_SCHNELL_OPENAPI_SCHEMA,
    VISION_ANSWER,
    VISION_LANGUAGE_OPENAPI_SCHEMA,
    cog_openapi_schema,
    llm_pieces,
)

URL = "https://cdn.example/photo.png"


def schema(document: dict[str, Any]) -> InputSchema:
    read = InputSchema.from_openapi(document)
    assert read is not None
    return read


def test_a_captioner_gets_the_image_alone() -> None:
    assert describe_inputs(schema(CAPTIONER_OPENAPI_SCHEMA), URL) == {"image": URL}


def test_a_vision_language_model_is_asked_for_prompts() -> None:
    assert describe_inputs(schema(VISION_LANGUAGE_OPENAPI_SCHEMA), URL) == {
        "image": URL,
        "prompt": DESCRIBE_INSTRUCTION,
    }


def test_a_question_input_is_asked_where_there_is_no_prompt() -> None:
    blip = cog_openapi_schema(
        {
            "image": {"type": "string", "format": "uri"},
            "task": {"default": "image_captioning"},
            "question": {"type": "string"},
        },
        required=("image",),
        enums={"task": ["image_captioning", "visual_question_answering"]},
        output={"type": "string"},
    )
    assert describe_inputs(schema(blip), URL) == {"image": URL, "question": DESCRIBE_INSTRUCTION}


def test_no_schema_sends_the_image_under_its_usual_name_and_nothing_else() -> None:
    assert describe_inputs(None, URL) == {"image": URL}


def test_a_model_without_an_image_input_is_refused() -> None:
    text_only = cog_openapi_schema({"prompt": {"type": "string"}})
    with pytest.raises(DescribeFailed, match="takes no image"):
        describe_inputs(schema(text_only), URL)


def test_an_image_model_is_refused_too() -> None:
    with pytest.raises(DescribeFailed, match="takes no image"):
        describe_inputs(schema(FLUX_SCHNELL_OPENAPI_SCHEMA), URL)


def test_pieces_are_joined_as_they_came() -> None:
    assert read_text_output(llm_pieces(VISION_ANSWER)) == VISION_ANSWER
    assert read_text_output(["a red", " fox", "\n", "a cat"]) == "a red fox\na cat"
    assert read_text_output("a caption") == "a caption"


@pytest.mark.parametrize(
    ("output", "shape"),
    [
        ({"caption": "x"}, "a JSON object"),
        (["a", 1], "a list of other things"),
        (None, "nothing"),
        (3, "a number"),
        (True, "true or false"),
    ],
)
def test_other_shapes_are_refused_saying_what_came(output: Any, shape: str) -> None:
    with pytest.raises(DescribeFailed, match=shape):
        read_text_output(output)


@pytest.mark.parametrize("output", ["", "  \n ", [], ["", " "]])
def test_no_text_is_refused(output: Any) -> None:
    with pytest.raises(DescribeFailed, match="no text"):
        read_text_output(output)


def test_text_is_cut_at_its_limit_string_or_pieces() -> None:
    assert len(read_text_output("x" * (TEXT_MAX * 3))) == TEXT_MAX
    assert len(read_text_output(["xyz"] * TEXT_MAX)) == TEXT_MAX
    assert read_text_output(["ab", "cd", "ef"], limit=3) == "abc"


def test_a_chatty_answer_becomes_its_four_prompts() -> None:
    assert suggestions_from(VISION_ANSWER) == (
        "A red fox curled up asleep in fresh snow at dawn, soft pink light, wildlife photograph",
        "Watercolour painting of a sleeping fox in a snowy forest, muted pastel colours",
        "Close-up of a fox's face dusted with snowflakes, shallow depth of field, golden hour",
        "Minimalist illustration of an orange fox on white snow, flat colours, Scandinavian poster style",
    )


@pytest.mark.parametrize(
    ("line", "prompt"),
    [
        ("1. a fox", "a fox"),
        ("(2) a fox", "a fox"),
        ("3) a fox", "a fox"),
        ("- a fox", "a fox"),
        ("• a fox", "a fox"),
        ("* **a fox**", "a fox"),
        ('"a fox"', "a fox"),
        ("“a fox”", "a fox"),
        ("Caption: a fox", "a fox"),
        ("**Prompt 1:** a fox", "a fox"),
        ("1. Prompt: 'a fox'", "a fox"),
        ("  a   fox\t in  snow ", "a fox in snow"),
        ("3 foxes in the snow", "3 foxes in the snow"),  # a number that is the prompt's own
        ("1970s car, film grain", "1970s car, film grain"),
        ("1.", ""),
        ("-", ""),
    ],
)
def test_a_line_is_cleaned_to_its_prompt(line: str, prompt: str) -> None:
    assert clean_suggestion(line) == prompt


def test_empties_introductions_and_duplicates_are_dropped_and_four_kept() -> None:
    text = "Here you go:\n\n1. a fox\n2. A  Fox\n3. a cat\n\n4. a dog\n5. a bird\n6. a fish"
    assert suggestions_from(text) == ("a fox", "a cat", "a dog", "a bird")


def test_a_long_suggestion_is_cut_at_a_word() -> None:
    long = " ".join(["word"] * 1000)
    (only,) = suggestions_from(long)
    assert len(only) <= PROMPT_MAX and only.endswith("word")


def test_suggestions_together_fit_one_embed() -> None:
    lines = "\n".join(f"{n} " + "y" * (PROMPT_MAX - 5) for n in range(4))
    chosen = suggestions_from(lines)
    assert sum(map(len, chosen)) <= SUGGESTIONS_TOTAL_MAX
    assert len(chosen) == 3 and len(chosen[2]) < PROMPT_MAX  # the third is cut to fit, the fourth has no room


def test_cut_at_word() -> None:
    assert cut_at_word("a red fox", 20) == "a red fox"
    assert cut_at_word("a red fox", 6) == "a red"
    assert cut_at_word("abcdefgh", 3) == "abc"
    assert cut_at_word("a bcdefgh", 6) == "a bcde"  # a space that would keep too little is no place to cut


_texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=3000) | st.lists(
    st.sampled_from(["1.", " a", " fox", "\n", "\r\n", "- ", '"', "**", "Caption:", "x" * 700, " ", "\u2028"]),
    max_size=60,
).map("".join)


@given(_texts)
def test_any_text_gives_at_most_four_bounded_distinct_one_line_suggestions(text: str) -> None:
    chosen = suggestions_from(text)
    assert len(chosen) <= MAX_SUGGESTIONS
    assert all(0 < len(s) <= PROMPT_MAX and s == s.strip() for s in chosen)
    assert all(len(s.splitlines()) == 1 for s in chosen)
    assert sum(map(len, chosen)) <= SUGGESTIONS_TOTAL_MAX
    assert len({s.casefold() for s in chosen}) == len(chosen)


@given(st.lists(st.text(max_size=400), max_size=200))
def test_any_pieces_read_as_bounded_text_or_refused(pieces: list[str]) -> None:
    try:
        text = read_text_output(pieces)
    except DescribeFailed:
        assert not "".join(pieces).strip()
        return
    assert 0 < len(text) <= TEXT_MAX and "".join(pieces).startswith(text)
    assert len(suggestions_from(text)) <= MAX_SUGGESTIONS


@pytest.mark.parametrize(
    ("line", "prompt"),
    [
        (
            "1. A fox, with [Free Nitro](https://evil.example/claim) written on a sign",
            "A fox, with Free Nitro written on a sign",
        ),
        ('A fox [at dawn](<https://x.example> "title")', "A fox at dawn"),
        ("[[nested](https://a.example)](https://b.example) fox", "nested fox"),
        ("A fox, see https://evil.example/a?b=c or <http://x.example/> now", "A fox, see or now"),
        ("Join discord.gg/abcdef and www.evil.example for a fox", "Join and for a fox"),
        ("[https://evil.example](https://evil.example)", ""),
    ],
)
def test_links_are_taken_out_of_suggestions_their_text_kept(line: str, prompt: str) -> None:
    assert clean_suggestion(line) == prompt
