"""The checks a bulk sync of application commands passes, as Discord makes them: 400/50035 "Invalid Form Body"
with Discord's error shape otherwise, names, descriptions, options, choices and their localizations included.

Localizations (``name_localizations``/``description_localizations``, on commands, options and choices) are keyed
by Discord's locales only (``pt_BR`` is refused: ``BASE_TYPE_CHOICES``); a localized name follows the rules of
names (``^[-_'\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$``, lowercase), a localized description or choice name
is 1-100 characters. Discord reports a command's own bad localized name without its locale, an option's with it.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

from tests.fakes.discord.errors import _form_error
from tests.fakes.discord.protocol import _OPTION_GROUP, _OPTION_SUBCOMMAND, MAX_CHOICES

if TYPE_CHECKING:
    from tests.fakes.discord.protocol import JSON

Problem = tuple[str, str, str]

LOCALES = (
    "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl", "no", "pl", "pt-BR",
    "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th", "zh-CN", "ja", "zh-TW", "ko",
)  # fmt: skip
"""Discord's locales, the only keys a localization may have."""
NAME_MAX = 32
TEXT_MAX = 100
_INVALID_NAME = ("APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
_TEXT_LENGTH = ("BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {TEXT_MAX} in length.")


def valid_name(name: object) -> bool:
    """A command, option or localized name as Discord takes it (a lowercase letter where there is a case)."""
    if not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX or name != name.lower():
        return False
    return all(_name_character(character) for character in name)


def _name_character(character: str) -> bool:
    point = ord(character)
    return (
        character in "-_'"
        or unicodedata.category(character)[0] in "LN"
        or 0x0900 <= point <= 0x097F  # Devanagari, its marks included
        or 0x0E00 <= point <= 0x0E7F  # Thai
    )


def _text_fits(text: object) -> bool:
    return isinstance(text, str) and 1 <= len(text) <= TEXT_MAX


def _localization_problems(owner: JSON, path: str, kind: str) -> list[Problem]:
    """The problems of the localizations of ``owner``, a ``command``, an ``option`` or a ``choice`` (whose
    localized names are texts of 1-100 characters, and which has no description)."""
    problems: list[Problem] = []
    fields = ("name_localizations",) if kind == "choice" else ("name_localizations", "description_localizations")
    for field in fields:
        localizations = owner.get(field)
        if localizations is None:
            continue
        if not isinstance(localizations, dict):
            problems.append((f"{path}.{field}", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"))
            continue
        for locale, text in localizations.items():
            here = f"{path}.{field}.{locale}"
            if locale not in LOCALES:
                choices = ", ".join(f"'{known}'" for known in LOCALES)
                problems.append((here, "BASE_TYPE_CHOICES", f"Value must be one of ({choices})."))
            elif field == "description_localizations" or kind == "choice":
                if not _text_fits(text):
                    problems.append((here, *_TEXT_LENGTH))
            elif not valid_name(text):
                # Discord names the locale of a bad option name, not of a bad command name.
                problems.append((f"{path}.{field}" if kind == "command" else here, *_INVALID_NAME))
    return problems


def validate_commands(commands: list[Any]) -> None:
    """Raise Discord's 400 "Invalid Form Body" for a bulk overwrite it would refuse."""
    problems: list[Problem] = []
    seen: set[tuple[str, int]] = set()
    chat_input = 0
    for index, command in enumerate(commands):
        if not isinstance(command, dict) or "name" not in command:
            problems.append((f"{index}.name", "BASE_TYPE_REQUIRED", "This field is required"))
            continue
        command_type = int(command.get("type", 1))
        key = (command["name"], command_type)
        if key in seen:
            problems.append((f"{index}.name", "APPLICATION_COMMANDS_DUPLICATE_NAME", "Duplicate command name"))
        seen.add(key)
        if command_type == 1:
            chat_input += 1
            if not valid_name(command["name"]):
                problems.append((f"{index}.name", "APPLICATION_COMMAND_INVALID_NAME", "Invalid command name"))
            if not _text_fits(command.get("description")):
                problems.append((f"{index}.description", *_TEXT_LENGTH))
            problems.extend(_localization_problems(command, str(index), "command"))
        problems.extend(_option_problems(command.get("options") or [], f"{index}.options"))
    if chat_input > 100:
        problems.append(("_root", "APPLICATION_COMMANDS_TOO_MANY", "Maximum number of commands reached (100)"))
    if problems:
        raise _form_error(problems)


def _option_problems(options: list[JSON], path: str) -> list[Problem]:
    problems: list[Problem] = []
    if len(options) > 25:
        problems.append((path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."))
    for index, option in enumerate(options):
        here = f"{path}.{index}"
        if not _text_fits(option.get("description")):
            problems.append((f"{here}.description", *_TEXT_LENGTH))
        problems.extend(_localization_problems(option, here, "option"))
        choices = option.get("choices") or []
        if len(choices) > MAX_CHOICES:
            problems.append((f"{here}.choices", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length."))
        for position, choice in enumerate(choices):
            if isinstance(choice, dict):
                where = f"{here}.choices.{position}"
                problems.extend(_localization_problems(choice, where, "choice"))
        if choices and option.get("autocomplete"):
            problems.append(
                (f"{here}.autocomplete", "AUTOCOMPLETE_AND_CHOICES", "Autocomplete cannot be set with choices")
            )
        if option.get("type") in (_OPTION_SUBCOMMAND, _OPTION_GROUP):
            problems.extend(_option_problems(option.get("options") or [], f"{here}.options"))
    return problems
