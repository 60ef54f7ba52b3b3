"""The slash commands in each member's language: discord.py's ``app_commands.Translator`` over the catalogs.

Discord shows a command's descriptions in the reader's client language from the ``*_localizations`` the bot
syncs; discord.py asks the tree's translator for each text and each locale when it builds the sync payload (and
for autocomplete choices when it answers). :class:`CatalogTranslator` looks them up in the ``.po`` catalogs, each
kind of text under its own ``msgctxt`` so a command's name and a sentence of the same spelling never meet:

- ``command description``: the descriptions of commands, groups and options (at most 100 characters);
- ``command choice``: the names of an option's choices (at most 100 characters);
- ``command name``: the names of commands, groups and options (lowercase, no spaces, at most 32 characters).

Names are localized too, so what a member's Discord shows is what the answers in their language name
("``/imagine-admin kanäle erlauben``"): subcommands, groups and options under their ``command name`` entry. The
top-level commands are product names, whose entries read as in English (an entry the same as its ``msgid`` still
counts for a name: Discord then knows the name is meant the same). Discord shows a member the names of their
locale and always sends the base (English) names in an interaction, so the code reads them as SPEC names them.
A ``command name`` entry that Discord would refuse is left out with a warning, so a catalog never breaks the sync.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Location

from bot.i18n.catalogs import catalog_code, has_entry, translations

log = logging.getLogger(__name__)

NAME = "command name"
DESCRIPTION = "command description"
CHOICE = "command choice"
"""The ``msgctxt`` of each kind of command text in the catalogs."""

_CONTEXTS = {
    Location.command_name: NAME,
    Location.group_name: NAME,
    Location.parameter_name: NAME,
    Location.command_description: DESCRIPTION,
    Location.group_description: DESCRIPTION,
    Location.parameter_description: DESCRIPTION,
    Location.choice_name: CHOICE,
}
NAME_MAX = 32
TEXT_MAX = 100


def valid_name(name: str) -> bool:
    """Whether Discord takes ``name`` as a command, group or option name:
    ``^[-_'\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$``, lowercase where the letters have a case."""
    return 1 <= len(name) <= NAME_MAX and name == name.lower() and all(_name_character(c) for c in name)


def _name_character(character: str) -> bool:
    if character in "-_'":
        return True
    if unicodedata.category(character)[0] in "LN":
        return True
    point = ord(character)
    return 0x0900 <= point <= 0x097F or 0x0E00 <= point <= 0x0E7F  # Devanagari and Thai, marks included


def translated(context: str, text: str, locale: str | None) -> str | None:
    """``text``'s translation for a Discord ``locale`` (``None``: none, or one Discord would refuse)."""
    if catalog_code(locale) is None:
        return None
    found = translations(locale).pgettext(context, text)
    if found == text and not (context == NAME and has_entry(locale, text, context)):
        return None
    fits = valid_name(found) if context == NAME else 1 <= len(found) <= TEXT_MAX
    if not fits:
        log.warning("the %s translation of the %s %r does not fit Discord's rules; left out", locale, context, text)
        return None
    return found


class CatalogTranslator(app_commands.Translator):
    """Command names, descriptions and choices from the catalogs; installed with ``tree.set_translator``."""

    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: app_commands.TranslationContextTypes
    ) -> str | None:
        kind = _CONTEXTS.get(context.location)
        if kind is None:
            return None
        return translated(kind, string.message, locale.value)


AppCommand = app_commands.Command[Any, ..., Any] | app_commands.Group


def command_texts(commands: Iterable[AppCommand]) -> Iterator[tuple[str, str]]:
    """Every ``(msgctxt, English text)`` the translator is asked for when ``commands`` (and everything under
    them) are synced."""
    for command in commands:
        yield NAME, command.name
        yield DESCRIPTION, command.description
        if isinstance(command, app_commands.Group):
            yield from command_texts(command.commands)
            continue
        for parameter in command.parameters:
            yield NAME, parameter.name
            yield DESCRIPTION, parameter.description
            for choice in parameter.choices:
                yield CHOICE, choice.name
