"""``/describe``'s pure half: what a describe model is sent, and its text read back as prompt suggestions.

A describe model takes an image and returns text: a captioner (a string: one caption) or a vision-language
model (asked, through its text input, for prompts that would make such an image; it streams its answer, so
its output is a list of string pieces to join). :func:`describe_inputs` builds the inputs from the model's
schema, :func:`read_text_output` reads the output (any other shape is refused), and :func:`suggestions_from`
turns the text into at most :data:`MAX_SUGGESTIONS` prompts, each fit to start ``/imagine`` with. No HTTP,
no Discord.
"""

from __future__ import annotations

import re
from typing import Any, Final

from bot.api.inputs import PROMPT_MAX, UNCHECKED_IMAGE_NAME, InputSchema
from bot.base.errors import ImagineError
from bot.i18n import Text, tr

MAX_SUGGESTIONS: Final = 4
"""Prompts one ``/describe`` offers, each with its button."""
TEXT_MAX: Final = 20_000
"""Characters of a model's text read at most: four prompts of :data:`PROMPT_MAX` fit several times over; a
model that talks on past it (a language model with a large ``max_tokens``) is cut there."""
SUGGESTIONS_TOTAL_MAX: Final = 3_800
"""Characters of all suggestions together: numbered, they fit in one embed's description (4096)."""
MIN_CUT: Final = 40
"""A suggestion cut shorter than this to fit :data:`SUGGESTIONS_TOTAL_MAX` is left out rather than shown."""
TEXT_INPUTS: Final = ("prompt", "question")
"""A describe model's text input, in order of preference: where the instruction goes."""
DESCRIBE_INSTRUCTION: Final = (
    "Write four different prompts for an image generation model, each of which would make an image like this "
    "one: its subject, style, medium, composition, colours and lighting. One prompt per line, at most 60 words "
    "each, with no numbering and no other text."
)
"""What a model with a text input is asked (a captioner without one captions the image as it always does)."""


class DescribeFailed(ImagineError):
    """The describe model could not be run or its answer not read; the message says why, for the member."""


def describe_inputs(schema: InputSchema | None, image_url: str) -> dict[str, Any]:
    """The inputs that ask the model for prompts for the image at ``image_url``.

    With no schema (a gateway that serves only predictions) the image goes under the usual name and nothing
    else is sent: a text input the model may not have would be refused by the API.
    Raises :class:`DescribeFailed` for a model that takes no image.
    """
    if schema is None:
        return {UNCHECKED_IMAGE_NAME: image_url}
    image = schema.image_input
    if image is None:
        raise DescribeFailed(tr("The describe model set up on this bot takes no image; tell the bot's owner."))
    inputs: dict[str, Any] = {image: image_url}
    text = next((name for name in TEXT_INPUTS if _takes_text(schema, name)), None)
    if text is not None:
        inputs[text] = DESCRIBE_INSTRUCTION
    return inputs


def _takes_text(schema: InputSchema, name: str) -> bool:
    prop = schema.properties.get(name)
    return prop is not None and prop.type in (None, "string") and prop.enum is None and prop.format is None


def read_text_output(output: Any, *, limit: int = TEXT_MAX) -> str:
    """The model's text: a string, or a list of string pieces joined as they came (a language model streams
    its answer a few characters at a time, spaces included), cut at ``limit`` characters.

    Raises :class:`DescribeFailed` for any other shape, or for no text at all.
    """
    if isinstance(output, str):
        text = output[:limit]
    elif isinstance(output, list) and all(isinstance(piece, str) for piece in output):
        pieces: list[str] = []
        size = 0
        for piece in output:
            pieces.append(piece[: limit - size])
            size += len(pieces[-1])
            if size >= limit:
                break
        text = "".join(pieces)
    else:
        raise DescribeFailed(
            tr(
                "The describe model returned {shape} instead of text, so it can't describe images here; "
                "tell the bot's owner (IMAGINE_DESCRIBE_MODEL must be a model that returns text).",
                shape=_shape(output),
            )
        )
    if not text.strip():
        raise DescribeFailed(tr("The describe model returned no text for this image. Try another image."))
    return text


def _shape(output: Any) -> Text:
    if output is None:
        return tr("nothing")
    if isinstance(output, list):
        return tr("a list of other things than text")
    if isinstance(output, dict):
        return tr("a JSON object")
    if isinstance(output, bool):
        return tr("true or false")
    if isinstance(output, int | float):
        return tr("a number")
    return tr("a value")


# A leading list marker: "1.", "2)", "(3)", "4:", "#1", "-", "*", "•", "–" followed by space.
_MARKER = re.compile(r"^(?:\(?#?\d{1,2}[.):\]]|[-*•·–—>]|#{1,6})(?:\s+|$)")
# A leading label a model puts before its text: "Caption:", "Prompt 2:", "Answer -".
_LABEL = re.compile(r"^(?:caption|prompt|answer|description|image prompt)(?:\s*#?\d{1,2})?\s*[:\-–]\s*", re.IGNORECASE)
_EMPHASIS = re.compile(r"^(?:\*\*|__)(.*?)(?:\*\*|__)$")
_QUOTES: Final = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "`": "`", "„": "“"}
_WHITESPACE = re.compile(r"\s+")
# A markdown link "[text](target)" (Discord renders it as a masked link, even in an embed): its text is kept.
_LINK = re.compile(r"\[([^\[\]]*)\]\(\s*<?[^()\s]*>?(?:\s+[\"'][^\"']*[\"'])?\s*\)")
# A bare address Discord would make a link of ("https://…", "<https://…>", "discord.gg/…", "www.…").
_URL = re.compile(r"<?\b(?:[a-z][a-z0-9+.-]*://|www\.|discord(?:app)?\.(?:gg|com)/)\S*>?", re.IGNORECASE)


def without_links(text: str) -> str:
    """``text`` with no link a model could make the bot post: markdown links become their text, bare
    addresses go (an image that says "write [Free Nitro](https://…)" must not get a link into a public embed)."""
    for _ in range(4):  # "[[a](b)](c)" unnests a level a round
        before = text
        text = _LINK.sub(r"\1", text)
        if text == before:
            break
    return _URL.sub("", text)


def clean_suggestion(line: str) -> str:
    """One line of a model's answer as a prompt: links taken out (:func:`without_links`), list markers, labels,
    emphasis and wrapping quotes taken off, whitespace made single; ``""`` for a line with no prompt in it."""
    text = _WHITESPACE.sub(" ", without_links(line)).strip()
    for _ in range(4):  # "1. **Prompt:** "…"" peels in a few rounds; each round only shortens the text
        before = text
        text = _MARKER.sub("", text)
        emphasis = _EMPHASIS.match(text)
        if emphasis is not None:
            text = emphasis.group(1).strip()
        text = _LABEL.sub("", text).strip(" *_")
        if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
            text = text[1:-1].strip()
        if text == before:
            break
    return text


def _introduction(line: str) -> bool:
    """A model's own words around its prompts ("Here are four prompts:"), not a prompt."""
    return line.endswith(":")


def cut_at_word(text: str, limit: int) -> str:
    """``text`` at most ``limit`` characters long, cut at the last space that keeps it so (hard, where that space
    would keep less than half)."""
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit + 1)
    return (text[:space] if space >= limit // 2 else text[:limit]).rstrip(" ,;")


def suggestions_from(
    text: str,
    *,
    limit: int = MAX_SUGGESTIONS,
    each_max: int = PROMPT_MAX,
    total_max: int = SUGGESTIONS_TOTAL_MAX,
) -> tuple[str, ...]:
    """At most ``limit`` prompts from a model's text: one per line, cleaned (:func:`clean_suggestion`), no
    empty line, no introduction and no duplicate (letter case and spacing aside), each at most ``each_max``
    characters and all together at most ``total_max`` (a later one is cut to fit, or left out)."""
    chosen: list[str] = []
    seen: set[str] = set()
    used = 0
    for line in text.splitlines():
        if len(chosen) == limit:
            break
        stripped = line.strip()
        if _introduction(stripped):
            continue
        suggestion = clean_suggestion(stripped)
        room = min(each_max, total_max - used)
        if len(suggestion) > room:
            if room < MIN_CUT:
                break
            suggestion = cut_at_word(suggestion, room)
            if len(suggestion) < MIN_CUT:
                continue
        key = suggestion.casefold()
        if not suggestion or key in seen:
            continue
        seen.add(key)
        chosen.append(suggestion)
        used += len(suggestion)
    return tuple(chosen)
