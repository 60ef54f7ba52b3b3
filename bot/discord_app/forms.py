"""Reading a submitted form (modal) from its raw payload, as discord.py hands it to ``on_interaction``.

Forms answered by custom id (the Remix form, the API key form) are read from the payload rather than from
discord.py's in-memory modal objects, which a restart loses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def submitted_value(components: Iterable[Any], custom_id: str) -> str | None:
    """The value a submit carries for the text input ``custom_id`` (in an action row or a label)."""
    for component in components:
        if not isinstance(component, Mapping):
            continue
        if component.get("custom_id") == custom_id and isinstance(component.get("value"), str):
            return str(component["value"])
        nested = [*(component.get("components") or ()), component.get("component")]
        found = submitted_value(nested, custom_id)
        if found is not None:
            return found
    return None
