"""The fake Discord's component rules: modals (title, labels, text inputs, lengths), message action rows and
buttons, and what the client lets a member submit."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.discord.components import (
    message_component_problems,
    modal_problems,
    modal_text_inputs,
    typed_value,
)


def text_input(**fields: Any) -> dict[str, Any]:
    return {"type": 4, "custom_id": "prompt", "style": 2, **fields}


def modal(*components: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A modal callback's data: a label around a text input unless ``components`` are given."""
    body = components or ({"type": 18, "label": "Prompt", "component": text_input(value="a fox")},)
    return {"custom_id": "imagine:remix-form:ab", "title": "Remix", "components": list(body), **fields}


def row(*children: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "components": list(children)}


def paths(problems: list[tuple[str, str, str]]) -> set[str]:
    return {path for path, _, _ in problems}


def test_a_well_formed_modal_passes_in_either_form() -> None:
    assert modal_problems(modal()) == []
    older = {"type": 1, "components": [text_input(label="Prompt", value="a fox")]}
    assert modal_problems(modal(older, {"type": 10, "content": "Edit the prompt"})) == []


def labelled(label: str = "Prompt", description: str | None = None, **fields: Any) -> dict[str, Any]:
    """A modal with one label (``label``, ``description``) around a text input with ``fields``."""
    top = {"type": 18, "label": label, "component": text_input(**fields)}
    return modal(top if description is None else {**top, "description": description})


INPUT = "data.components.0.component"
"""Where the text input of :func:`labelled` is."""


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (modal(title="R" * 46), "data.title"),
        (modal(title=""), "data.title"),
        (modal(custom_id="x" * 101), "data.custom_id"),
        (modal(custom_id=None), "data.custom_id"),
        (modal(components=[]), "data.components"),
        (modal(*[{"type": 10, "content": "x"}] * 6), "data.components"),
        (labelled(label="L" * 46), "data.components.0.label"),
        (labelled(description="d" * 101), "data.components.0.description"),
        (modal({"type": 18, "label": "Prompt", "component": text_input(label="Twice")}), f"{INPUT}.label"),
        (labelled(style=3), f"{INPUT}.style"),
        (labelled(max_length=4001), f"{INPUT}.max_length"),
        (labelled(min_length=10, max_length=5), f"{INPUT}.min_length"),
        (labelled(value="x" * 11, max_length=10), f"{INPUT}.value"),
        (labelled(placeholder="p" * 101), f"{INPUT}.placeholder"),
        (modal({"type": 18, "label": "Prompt", "component": {"type": 2, "custom_id": "b", "style": 1}}), INPUT),
        (modal({"type": 1, "components": [text_input()]}), "data.components.0.components.0.label"),  # none at all
        (modal(row(text_input(label="A"), text_input(label="B", custom_id="b"))), "data.components.0.components"),
        (modal({"type": 2, "custom_id": "b", "style": 1}), "data.components.0.type"),
    ],
)
def test_a_modal_discord_would_refuse_is_refused(data: dict[str, Any], where: str) -> None:
    assert where in paths(modal_problems(data))


def test_text_inputs_custom_ids_are_unique_in_a_modal() -> None:
    twice = {"type": 18, "label": "Prompt", "component": text_input()}
    assert "data.components.1.component.custom_id" in paths(modal_problems(modal(twice, twice)))


def button(custom_id: str, label: str = "Go", **fields: Any) -> dict[str, Any]:
    return {"type": 2, "style": 2, "custom_id": custom_id, "label": label, **fields}


def test_message_rows_hold_one_to_five_buttons_with_unique_short_ids() -> None:
    assert message_component_problems([row(*(button(f"b{n}") for n in range(5)))]) == []
    assert message_component_problems([row({"type": 2, "style": 5, "url": "https://x", "label": "Open"})]) == []
    assert paths(message_component_problems([row(*(button(f"b{n}") for n in range(6)))])) == {"components.0.components"}
    assert paths(message_component_problems([row()])) == {"components.0.components"}
    assert paths(message_component_problems([row(button("x" * 101))])) == {"components.0.components.0.custom_id"}
    assert paths(message_component_problems([row(button("b", label="L" * 81))])) == {"components.0.components.0.label"}
    assert paths(message_component_problems([row(button("b")), row(button("b"))])) == {
        "components.1.components.0.custom_id"
    }
    assert paths(message_component_problems([button("b")])) == {"components.0.type"}


def test_the_client_submits_the_prefilled_text_or_what_was_typed_within_the_inputs_bounds() -> None:
    [(_, prompt)] = list(modal_text_inputs(modal()))
    assert typed_value(prompt, None) == "a fox" and typed_value(prompt, "a wolf") == "a wolf"
    bounded = text_input(min_length=2, max_length=5)
    with pytest.raises(ValueError, match="2-5 characters"):
        typed_value(bounded, "a fox!")
    with pytest.raises(ValueError, match="required"):
        typed_value(text_input(), "")
    assert typed_value(text_input(required=False), "") == ""
