"""A model's safety checker: which of its inputs turn it down or off, and the rule that keeps them safe.

Pure logic: no HTTP, no Discord. Models name these inputs freely; Replicate's image models mostly use
``disable_safety_checker`` (a switch, safe: ``false``), ``enable_safety_checker`` (safe: ``true``),
``safety_tolerance`` (a number, higher is more permissive: safe is the model's default or less),
``safety_filter_level`` (a choice such as ``block_only_high``) or ``moderation`` (``auto``/``low``). An input
is taken for one when its name says so (:func:`is_safety_input`), whatever its type.

:func:`apply_checker` is the one rule every job's inputs go through (:class:`bot.jobs.model.JobRequest`
applies it whenever a request is made, read back from the journal included):

- :attr:`Checker.ON` (everywhere but the age-restricted channels of a server that turned the checker off):
  a switch is sent only in its safe position, and only where the model's default is not already safe; a
  number, a choice or a switch whose name does not say for sure which way is safe (:func:`safe_switch`) is
  left out, so the model's own default applies. Whatever the request asked.
- :attr:`Checker.OFF` (an age-restricted channel, the server turned the checker off): the model's
  permissive values are sent (switches turned off, a tolerance at its maximum, the most permissive choice).
- :attr:`Checker.OWNER` (the bot's owner on the command line): inputs the owner gave explicitly
  (``--input``) go as given; every other one as with :attr:`Checker.ON`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import StrEnum
from typing import Any

from bot.api.input_values import Property
from bot.api.inputs import InputSchema

_SAFETY_WORDS = ("safety", "nsfw", "censor", "moderation", "safe_mode")
"""Words whose presence in an input's name makes it a safety input."""
_GUARDS = ("checker", "check", "filter", "censor", "moderation", "safety", "detect", "block", "hide", "safe_mode")
"""Words that name a guard (``nsfw_filter``, ``block_nsfw``)."""
_SAFE_WHEN_ON = frozenset({"censored", "safe_mode", "moderation"})
"""Switches known to be guards though their names say it less plainly than :data:`_GUARDS`' words."""
_SAFE_WHEN_OFF = frozenset({"nsfw", "allow_nsfw", "enable_nsfw", "nsfw_allowed", "uncensored", "unsafe"})
"""Switches known to let adult content through when on."""
_NEGATING_PREFIXES = ("disable_", "skip_", "bypass_", "no_", "without_", "turn_off_", "allow_", "un")
"""A guard's name after one of these is the guard turned off (``disable_safety_checker``: safe when off)."""
_NEGATING_SUFFIXES = ("_off", "_disabled", "_bypass")
_PERMISSIVE_CHOICES = ("block_none", "none", "off", "disabled", "disable", "block_only_high", "low", "permissive")
"""A choice's most permissive values, most permissive first (exact, case-insensitive)."""
_MAX_NAME = 64
"""Longer names are nobody's safety input (and are not worth scanning)."""


class Checker(StrEnum):
    """How a request treats the model's safety checker (see the module's documentation)."""

    ON = "on"
    OFF = "off"
    OWNER = "owner"


def is_safety_input(name: str) -> bool:
    """Whether an input named ``name`` turns a model's safety checker down, off or on."""
    lowered = name.lower()
    return len(lowered) <= _MAX_NAME and any(word in lowered for word in _SAFETY_WORDS)


def safe_switch(name: str) -> bool | None:
    """The safe position of a switch (boolean) safety input, ``None`` where its name does not say for sure.

    ``disable_safety_checker`` → ``False``; ``enable_safety_checker``, ``block_nsfw`` → ``True``; ``allow_nsfw``
    → ``False``; a name that could be read either way → ``None`` (such a switch is never sent where the
    checker is on: the model's own default applies).
    """
    lowered = name.lower()
    if lowered in _SAFE_WHEN_ON:
        return True
    if lowered in _SAFE_WHEN_OFF:
        return False
    negated = lowered.startswith(_NEGATING_PREFIXES) or lowered.endswith(_NEGATING_SUFFIXES)
    rest = lowered.removeprefix("enable_").removeprefix("use_")
    if not any(guard in rest for guard in _GUARDS):
        return None
    return not negated


def safety_properties(schema: InputSchema) -> tuple[Property, ...]:
    """The model's safety inputs, as its schema describes them."""
    return tuple(prop for name, prop in schema.properties.items() if is_safety_input(name))


def apply_checker(
    inputs: Mapping[str, Any],
    checker: Checker,
    schema: InputSchema | None = None,
    *,
    explicit: Collection[str] = (),
) -> dict[str, Any]:
    """``inputs`` as they may be sent under ``checker`` (a new dict; ``inputs`` is left as it is).

    ``schema`` (``None``: unknown) lets the switches whose default is unsafe be set, and the permissive values
    be found; ``explicit`` names the inputs the owner gave themselves (kept with :attr:`Checker.OWNER` only).
    """
    if checker is Checker.OFF:
        result = dict(inputs)
        if schema is not None:
            for prop in safety_properties(schema):
                value = _permissive(prop)
                if value is not _KEEP:
                    result[prop.name] = value
        return result
    kept = frozenset(explicit) if checker is Checker.OWNER else frozenset()
    result = {
        name: value
        for name, value in inputs.items()
        if name in kept or not is_safety_input(name) or _is_safe_switch_value(name, value)
    }
    if schema is not None:
        for prop in safety_properties(schema):
            safe = safe_switch(prop.name) if prop.type == "boolean" else None
            if prop.name in kept or safe is None:
                continue
            if prop.default is not safe and prop.default != safe:
                result[prop.name] = safe  # the model's own default lets everything through: say no explicitly
    return result


def _is_safe_switch_value(name: str, value: Any) -> bool:
    safe = safe_switch(name)
    return safe is not None and isinstance(value, bool) and value is safe


class _Keep:
    """A permissive value not known: leave the input as it is."""


_KEEP = _Keep()


def _permissive(prop: Property) -> Any:
    """The value of ``prop`` that lets the most through, or :data:`_KEEP` where it cannot be told."""
    if prop.type == "boolean":
        safe = safe_switch(prop.name)
        return _KEEP if safe is None else not safe
    if prop.enum is not None:
        by_text = {str(choice).lower(): choice for choice in prop.enum}
        return next((by_text[word] for word in _PERMISSIVE_CHOICES if word in by_text), _KEEP)
    if prop.type in ("integer", "number") and "tolerance" in prop.name.lower() and prop.maximum is not None:
        return int(prop.maximum) if prop.type == "integer" else prop.maximum
    return _KEEP
