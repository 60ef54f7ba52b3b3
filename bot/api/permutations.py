"""Prompt permutations: ``a {red, green} bird`` is two prompts, ``a red bird`` and ``a green bird``.

Braces may stand anywhere in the text, flags' values included (``--ar {1:1, 16:9}``), and nest
(``{a, b {c, d}}`` is ``a``, ``b c``, ``b d``); several groups make every combination, the first group
varying slowest. ``\\,`` is a literal comma inside a group, ``\\{``, ``\\}`` and ``\\\\`` are literal braces
and a backslash. The number of prompts is known before any is made (:func:`count`), so a text that would
make millions is refused without making them.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from bot.base.errors import Refusal
from bot.i18n import tr

_ESCAPED = {",", "{", "}", "\\"}
_SPACES = re.compile(r"[ \t]{2,}")


class PermutationError(Refusal):
    """The prompt's braces cannot be read (the message says where)."""


@dataclass(frozen=True)
class Group:
    """``{…}``: one of its options stands where it stood."""

    options: tuple[Parts, ...]


Part = str | Group
Parts = tuple[Part, ...]


def parse(text: str) -> Parts:
    """The text as literal runs and brace groups; :class:`PermutationError` for an unmatched brace."""
    parts, position = _parse_sequence(text, 0, inside=False)
    if position < len(text):  # only a closing brace stops the top level early
        raise PermutationError(
            tr("The prompt has a `}}` with no `{{` before it (at character {position}).", position=position + 1)
        )
    return parts


def _parse_sequence(text: str, position: int, *, inside: bool) -> tuple[Parts, int]:
    """Parts from ``position`` up to the end, or (``inside`` a group) up to its next ``,`` or ``}``."""
    parts: list[Part] = []
    literal: list[str] = []
    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text) and text[position + 1] in _ESCAPED:
            literal.append(text[position + 1])
            position += 2
            continue
        if char == "}" or (char == "," and inside):
            break
        if char == "{":
            if literal:
                parts.append("".join(literal))
                literal = []
            group, position = _parse_group(text, position + 1)
            parts.append(group)
            continue
        literal.append(char)
        position += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts), position


def _parse_group(text: str, position: int) -> tuple[Group, int]:
    """The group whose ``{`` stood just before ``position``, and the position after its ``}``."""
    start = position - 1
    options: list[Parts] = []
    while True:
        option, position = _parse_sequence(text, position, inside=True)
        options.append(_trimmed(option))
        if position >= len(text):
            raise PermutationError(
                tr("The prompt has a `{{` with no `}}` after it (at character {position}).", position=start + 1)
            )
        if text[position] == "}":
            return Group(tuple(options)), position + 1
        position += 1  # past the comma


def _trimmed(option: Parts) -> Parts:
    """An option without the spaces around it (``{red, green}``'s second option is ``green``)."""
    parts = list(option)
    if parts and isinstance(parts[0], str):
        parts[0] = parts[0].lstrip()
    if parts and isinstance(parts[-1], str):
        parts[-1] = parts[-1].rstrip()
    return tuple(part for part in parts if part != "")


def count(text: str) -> int:
    """How many prompts ``text`` makes (1 without braces), without making them."""
    return _count(parse(text))


def _count(sequence: Parts) -> int:
    return math.prod(sum(_count(option) for option in part.options) for part in sequence if isinstance(part, Group))


def expand(text: str) -> Iterator[str]:
    """Every prompt ``text`` makes, in order (the first group varies slowest); use :func:`count` first."""
    for prompt in _expand(parse(text)):
        yield _SPACES.sub(" ", prompt).strip()


def _expand(sequence: Parts) -> Iterator[str]:
    choices = [[part] if isinstance(part, str) else _options(part) for part in sequence]
    for combination in itertools.product(*choices):
        yield "".join(combination)


def _options(group: Group) -> list[str]:
    return [prompt for option in group.options for prompt in _expand(option)]
