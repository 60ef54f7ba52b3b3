"""Discord's rules for components, as the problems a payload breaks: a message's action rows and buttons,
and a modal with its labels and text inputs; and what the client sends when a member submits a modal.

Each check returns ``(dotted.path, CODE, message)`` triples, which :mod:`errors` turns into a
400/50035 "Invalid Form Body" answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from tests.fakes.discord.protocol import _SELECT_TYPES

if TYPE_CHECKING:
    from tests.fakes.discord.protocol import JSON

Problem = tuple[str, str, str]

ACTION_ROW: Final = 1
BUTTON: Final = 2
TEXT_INPUT: Final = 4
TEXT_DISPLAY: Final = 10
LABEL: Final = 18
FILE_UPLOAD: Final = 19
LINK_STYLE: Final = 5
PREMIUM_STYLE: Final = 6

MAX_ROW_COMPONENTS: Final = 5
MAX_CUSTOM_ID: Final = 100
MAX_BUTTON_LABEL: Final = 80
MAX_MODAL_TITLE: Final = 45
MAX_MODAL_COMPONENTS: Final = 5
MAX_LABEL: Final = 45
MAX_LABEL_DESCRIPTION: Final = 100
MAX_PLACEHOLDER: Final = 100
MAX_TEXT: Final = 4000
TEXT_STYLES: Final = frozenset({1, 2})
"""Short (one line) and paragraph."""


def _length(path: str, value: Any, low: int, high: int) -> list[Problem]:
    """A text of ``low`` to ``high`` characters (absent counts as empty)."""
    size = len(str(value)) if value is not None else 0
    if low <= size <= high:
        return []
    if low == 0:
        return [(path, "BASE_TYPE_MAX_LENGTH", f"Must be {high} or fewer in length.")]
    return [(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")]


def _unique(path: str, custom_id: Any, seen: set[str]) -> list[Problem]:
    """A custom id not used before in the same message or modal (``seen`` collects them)."""
    text = str(custom_id or "")
    if text in seen:
        return [(path, "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated")]
    seen.add(text)
    return []


def message_component_problems(rows: list[JSON]) -> list[Problem]:
    """A message's (non components-v2) action rows: each one row of 1-5 buttons or one select, custom ids
    of 1-100 characters, unique in the message, button labels up to 80. (The count of rows is checked with
    the rest of the message.)"""
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        path = f"components.{index}"
        if row.get("type") != ACTION_ROW:
            problems.append((f"{path}.type", "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1,).'))
            continue
        children = row.get("components") or []
        selects = sum(1 for child in children if child.get("type") in _SELECT_TYPES)
        if not 1 <= len(children) <= MAX_ROW_COMPONENTS or (selects and len(children) > 1):
            problems.append(
                (f"{path}.components", "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_ROW_COMPONENTS} in length.")
            )
        for position, child in enumerate(children):
            here = f"{path}.components.{position}"
            link = child.get("type") == BUTTON and child.get("style") in (LINK_STYLE, PREMIUM_STYLE)
            if not link:
                problems += _length(f"{here}.custom_id", child.get("custom_id"), 1, MAX_CUSTOM_ID)
                problems += _unique(f"{here}.custom_id", child.get("custom_id"), seen)
            if child.get("type") == BUTTON:
                problems += _length(f"{here}.label", child.get("label"), 0, MAX_BUTTON_LABEL)
    return problems


def modal_problems(data: JSON) -> list[Problem]:
    """A modal (callback type 9): custom id 1-100, title 1-45, 1-5 components, each a label (1-45, its
    description up to 100) around one text input or select, a text display, or (the older form) an action
    row holding one text input that carries its own label; text inputs as :func:`_text_input_problems`."""
    problems = _length("data.custom_id", data.get("custom_id"), 1, MAX_CUSTOM_ID)
    problems += _length("data.title", data.get("title"), 1, MAX_MODAL_TITLE)
    components = data.get("components") or []
    if not 1 <= len(components) <= MAX_MODAL_COMPONENTS:
        problems.append(
            ("data.components", "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_MODAL_COMPONENTS} in length.")
        )
    seen: set[str] = set()
    for index, top in enumerate(components):
        path = f"data.components.{index}"
        kind = top.get("type")
        if kind == LABEL:
            problems += _length(f"{path}.label", top.get("label"), 1, MAX_LABEL)
            problems += _length(f"{path}.description", top.get("description"), 0, MAX_LABEL_DESCRIPTION)
            inner = top.get("component")
            inner_kind = inner.get("type") if isinstance(inner, dict) else None
            if inner_kind == TEXT_INPUT:
                problems += _text_input_problems(f"{path}.component", inner, labelled=True, seen=seen)
            elif inner_kind not in (*_SELECT_TYPES, FILE_UPLOAD):
                problems.append((f"{path}.component", "BASE_TYPE_REQUIRED", "A label holds one text input or select."))
        elif kind == ACTION_ROW:
            children = top.get("components") or []
            if len(children) != 1 or children[0].get("type") != TEXT_INPUT:
                problems.append(
                    (f"{path}.components", "BASE_TYPE_BAD_LENGTH", "A modal's action row holds one text input.")
                )
            for position, child in enumerate(children):
                if child.get("type") == TEXT_INPUT:
                    here = f"{path}.components.{position}"
                    problems += _text_input_problems(here, child, labelled=False, seen=seen)
        elif kind != TEXT_DISPLAY:
            problems.append(
                (f"{path}.type", "UNION_TYPE_CHOICES", "A modal holds labels, text displays or action rows.")
            )
    return problems


def _text_input_problems(path: str, node: JSON, *, labelled: bool, seen: set[str]) -> list[Problem]:
    """Custom id 1-100 (unique in the modal), style short or paragraph, a label of 1-45 only outside a label
    component, min_length 0-4000 up to max_length 1-4000, placeholder up to 100, a prefilled value of at most
    max_length (and 4000)."""
    problems = _length(f"{path}.custom_id", node.get("custom_id"), 1, MAX_CUSTOM_ID)
    problems += _unique(f"{path}.custom_id", node.get("custom_id"), seen)
    if node.get("style") not in TEXT_STYLES:
        problems.append((f"{path}.style", "BASE_TYPE_CHOICES", "Value must be one of {1, 2}."))
    if labelled and node.get("label") is not None:
        problems.append((f"{path}.label", "COMPONENT_LABEL_NOT_ALLOWED", "A text input in a label has no label."))
    if not labelled:
        problems += _length(f"{path}.label", node.get("label"), 1, MAX_LABEL)
    low, high = node.get("min_length"), node.get("max_length")
    if low is not None and not 0 <= int(low) <= MAX_TEXT:
        problems.append((f"{path}.min_length", "NUMBER_TYPE_MAX", f"int value should be between 0 and {MAX_TEXT}."))
    if high is not None and not 1 <= int(high) <= MAX_TEXT:
        problems.append((f"{path}.max_length", "NUMBER_TYPE_MAX", f"int value should be between 1 and {MAX_TEXT}."))
    if low is not None and high is not None and int(low) > int(high):
        problems.append((f"{path}.min_length", "NUMBER_TYPE_MAX", "Must be at most max_length."))
    problems += _length(f"{path}.placeholder", node.get("placeholder"), 0, MAX_PLACEHOLDER)
    limit = min(MAX_TEXT, int(high)) if high is not None else MAX_TEXT
    problems += _length(f"{path}.value", node.get("value"), 0, limit)
    return problems


def modal_text_inputs(modal: JSON) -> Iterator[tuple[JSON, JSON]]:
    """Each text input of a modal with the top-level component that holds it (a label or an action row)."""
    for top in modal.get("components") or []:
        if top.get("type") == LABEL and isinstance(top.get("component"), dict):
            if top["component"].get("type") == TEXT_INPUT:
                yield top, top["component"]
        elif top.get("type") == ACTION_ROW:
            for child in top.get("components") or []:
                if child.get("type") == TEXT_INPUT:
                    yield top, child


def typed_value(text_input: JSON, typed: str | None) -> str:
    """What the client submits for ``text_input``: what the member typed, else the prefilled value; raises
    ``ValueError`` where the client would not let the member submit (a required input left empty, a text
    shorter than ``min_length`` or longer than ``max_length``)."""
    value = typed if typed is not None else str(text_input.get("value") or "")
    custom_id = text_input.get("custom_id")
    low = int(text_input.get("min_length") or 0)
    high = int(text_input.get("max_length") or MAX_TEXT)
    if not value and text_input.get("required", True):
        raise ValueError(f"text input {custom_id!r} is required: Discord does not submit it empty")
    if value and not low <= len(value) <= high:
        raise ValueError(f"text input {custom_id!r} takes {low}-{high} characters, not {len(value)}")
    return value
