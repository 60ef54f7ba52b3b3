"""What a member's preferences may add to their prompts: named options (``--name`` standing for a text) and
the prompt suffix, checked before they are stored (``/imagine-settings``) and readable wherever they are used.

Pure logic, no Discord, no storage. A name is what follows ``--`` in a prompt: ASCII letters and digits,
starting with a letter (a prompt flag's name starts with one too, see :mod:`bot.api.flags`), at most
:data:`OPTION_NAME_MAX` characters, kept lower-case (``--Cinematic`` and ``--cinematic`` are one option).
The names of the prompt flags the bot reads itself (:data:`BUILTIN_FLAGS`) are refused: ``--ar`` must
always mean the aspect ratio. A value is text or flags (``--ar 16:9 --no people``), at most
:data:`OPTION_VALUE_MAX` characters.
"""

from __future__ import annotations

import re

from bot.base.errors import InputRejected
from bot.i18n import tr

OPTION_NAME_MAX = 32
"""Characters in a named option's name."""
OPTION_VALUE_MAX = 500
"""Characters in the text a named option stands for."""
SUFFIX_MAX = 300
"""Characters in the suffix added to every prompt."""

BUILTIN_FLAGS: frozenset[str] = frozenset({"ar", "aspect", "seed", "no", "repeat", "r"})
"""Prompt flags the bot reads itself (``--r`` is ``--repeat``): never a member's named option."""

OPTION_NAME = re.compile(r"[a-z][a-z0-9]{0,31}")
"""A stored name, lower-case (full match); :data:`OPTION_NAME_MAX` is its longest."""

_DASHES = ("--", "—", "–")
"""What may stand before a name as typed: ``--``, or the dash a phone makes of it."""


class OptionRejected(InputRejected):
    """A named option's name or value, or a suffix, that cannot be stored; the message says why and what to do."""


def check_option_name(typed: str) -> str:
    """The name as stored (lower-case, without a leading ``--``), or :class:`OptionRejected` saying what is wrong."""
    name = typed.strip()
    for dash in _DASHES:
        if name.startswith(dash):
            name = name[len(dash) :]
            break
    name = name.lower()
    if not name:
        raise OptionRejected(tr("The option's name is empty: give it a name of letters and digits, e.g. `cinematic`."))
    if len(name) > OPTION_NAME_MAX:
        raise OptionRejected(
            tr(
                "The option's name is {length} characters long; it may have at most {most}.",
                length=len(name),
                most=OPTION_NAME_MAX,
            )
        )
    if not OPTION_NAME.fullmatch(name):
        shown = typed.strip()[:40]
        raise OptionRejected(
            tr(
                "`{typed}` can't be an option's name: use only letters a-z and digits 0-9, starting with a letter "
                "(no spaces, dashes or accents), e.g. `cinematic` or `style2`.",
                typed=shown,
            )
        )
    if name in BUILTIN_FLAGS:
        reserved = ", ".join(f"`--{flag}`" for flag in sorted(BUILTIN_FLAGS))
        raise OptionRejected(
            tr(
                "`--{name}` is a prompt flag the bot reads itself ({reserved} are taken); choose another name.",
                name=name,
                reserved=reserved,
            )
        )
    return name


def check_option_value(typed: str) -> str:
    """The value as stored (spaces around it trimmed), or :class:`OptionRejected` saying what is wrong."""
    value = typed.strip()
    if not value:
        raise OptionRejected(tr("The option's value is empty. To remove the option, leave `value` out."))
    if len(value) > OPTION_VALUE_MAX:
        raise OptionRejected(
            tr(
                "The option's value is {length} characters long; it may have at most {most}.",
                length=len(value),
                most=OPTION_VALUE_MAX,
            )
        )
    return value


def check_suffix(typed: str) -> str:
    """The suffix as stored (spaces around it trimmed; empty: none), or :class:`OptionRejected` if too long."""
    suffix = typed.strip()
    if len(suffix) > SUFFIX_MAX:
        raise OptionRejected(
            tr(
                "The suffix is {length} characters long; it may have at most {most}.",
                length=len(suffix),
                most=SUFFIX_MAX,
            )
        )
    return suffix
