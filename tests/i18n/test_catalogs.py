"""Every text of the code is in every catalog, whole: a missing message or a broken placeholder fails here.

The code's texts are read the way translators' tools read them (Babel's extractor, keywords ``tr`` and
``tr_n``), so a text written any other way (an f-string, a variable) is caught too. The slash commands' texts are
read from the command tree itself (every cog's app commands), each under its ``msgctxt``
(:mod:`bot.discord_app.translator`): every description and worded choice must be translated, within Discord's
limits.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_file
from discord import app_commands

from bot.discord_app.translator import CHOICE, DESCRIPTION, NAME, TEXT_MAX, AppCommand, command_texts, valid_name
from bot.i18n.catalogs import LOCALES, read_catalog
from tests.i18n.command_tree import tree_commands

REPO = Path(__file__).resolve().parents[2]
REQUIRED_LANGUAGES = ("de", "fr", "es_ES", "pt_BR")
"""SPEC: at least en-US (the code's own), de, fr, es-ES and pt-BR."""
KEYWORDS = {"tr": None, "tr_n": (1, 2)}

MessageId = str | tuple[str, str]


def code_messages() -> dict[MessageId, list[str]]:
    """Every ``tr``/``tr_n`` message of the product, with where it is written."""
    found: dict[MessageId, list[str]] = {}
    for path in sorted([*(REPO / "bot").rglob("*.py"), *(REPO / "cogs").rglob("*.py")]):
        for line, message, _comments, _context in extract_from_file("python", str(path), keywords=KEYWORDS):
            found.setdefault(message, []).append(f"{path.relative_to(REPO)}:{line}")
    return found


def placeholders(text: str) -> set[str]:
    """The names a text fills in; ``ValueError`` for braces :meth:`str.format` cannot read."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(text) if name}


def _translations(message: Message) -> Iterator[str]:
    yield from (message.string if isinstance(message.string, tuple | list) else (message.string,))


CODE = code_messages()
COMMAND_TEXTS = set(command_texts(tree_commands()))
"""Every ``(msgctxt, English text)`` of the command tree the translator may be asked for."""
REQUIRED_COMMAND_TEXTS = sorted(
    (context, text)
    for context, text in COMMAND_TEXTS
    if context == NAME or (context in (DESCRIPTION, CHOICE) and any(character.isalpha() for character in text))
)
"""What every catalog translates: every command, group and option name (the top-level commands' as themselves:
product names), descriptions and worded choices (``16:9`` and discord.py's ``…`` need none)."""


def test_every_text_is_a_literal_message() -> None:
    """``tr(variable)`` cannot be translated: the extractor sees no message (``None``) there."""
    bad = {where for message, places in CODE.items() for where in places if not _is_literal(message)}
    assert not bad, f"tr()/tr_n() needs literal English texts: {sorted(bad)}"


def _is_literal(message: MessageId) -> bool:
    return isinstance(message, str) or (isinstance(message, tuple) and all(isinstance(m, str) for m in message))


def test_every_message_id_is_a_valid_template() -> None:
    broken = []
    for message, places in CODE.items():
        for text in (message,) if isinstance(message, str) else message:
            try:
                placeholders(text)
            except ValueError as exc:
                broken.append(f"{places[0]}: {text!r}: {exc}")
    assert not broken, "\n".join(broken)


@pytest.fixture(scope="module", params=REQUIRED_LANGUAGES)
def catalog(request: pytest.FixtureRequest) -> Catalog:
    assert (LOCALES / request.param).is_dir(), f"no catalog folder bot/i18n/locales/{request.param}"
    return read_catalog(request.param)


def test_the_catalog_has_every_message_of_the_code(catalog: Catalog) -> None:
    missing = []
    for message, places in CODE.items():
        if not _is_literal(message):
            continue
        key = message if isinstance(message, str) else message[0]
        entry = catalog.get(key)
        if entry is None or entry.fuzzy or not all(_translations(entry)):
            missing.append(f"{places[0]}: {key!r}")
    assert not missing, f"{len(missing)} messages not translated in {catalog.locale}:\n" + "\n".join(missing)


def test_the_catalog_keeps_every_placeholder(catalog: Catalog) -> None:
    broken = []
    for message, _places in CODE.items():
        if not _is_literal(message):
            continue
        key = message if isinstance(message, str) else message[0]
        entry = catalog.get(key)
        if entry is None:
            continue
        english = placeholders(key) if isinstance(message, str) else placeholders(message[0]) | placeholders(message[1])
        for text in _translations(entry):
            try:
                names = placeholders(text)
            except ValueError as exc:
                broken.append(f"{key!r}: {text!r}: {exc}")
                continue
            # A plural form may leave the count out ("ein Bild"); a simple message keeps every value.
            if (names != english) if isinstance(message, str) else not names <= english:
                broken.append(f"{key!r}: {text!r} has {sorted(names)}, English has {sorted(english)}")
    assert not broken, f"placeholders broken in {catalog.locale}:\n" + "\n".join(broken)


def test_the_catalog_has_no_message_the_code_no_longer_has(catalog: Catalog) -> None:
    known = {message if isinstance(message, str) else message[0] for message in CODE}
    stale = sorted(
        repr(entry.id) if entry.context is None else f"{entry.context}: {entry.id!r}"
        for entry in catalog
        if entry.id and not (_is_command_text(entry) if entry.context is not None else _key(entry) in known)
    )
    assert not stale, f"{catalog.locale} translates texts the code no longer has: {stale}"


@pytest.mark.parametrize("language", REQUIRED_LANGUAGES)
def test_a_message_in_several_files_of_a_language_reads_the_same_in_each(language: str) -> None:
    """Catalog files are merged per language: one message translated two ways would depend on file order."""
    from babel.messages.pofile import read_po

    seen: dict[tuple[str | None, str], tuple[str, object]] = {}
    clashes = []
    for path in sorted((LOCALES / language).glob("*.po")):
        with path.open("rb") as source:
            for entry in read_po(source, locale=language):
                if not entry.id:
                    continue
                key = (entry.context, entry.id if isinstance(entry.id, str) else entry.id[0])
                first = seen.setdefault(key, (path.name, entry.string))
                if first[1] != entry.string:
                    clashes.append(f"{key[1]!r}: {first[0]} says {first[1]!r}, {path.name} says {entry.string!r}")
    assert not clashes, "\n".join(clashes)


def _key(entry: Message) -> str:
    return entry.id if isinstance(entry.id, str) else entry.id[0]


def _is_command_text(entry: Message) -> bool:
    """Command names and descriptions come from the command tree, not from ``tr()``, under their ``msgctxt``."""
    return (entry.context, _key(entry)) in COMMAND_TEXTS


def test_the_catalog_has_every_command_text(catalog: Catalog) -> None:
    missing = [
        f"{context}: {text!r}"
        for context, text in REQUIRED_COMMAND_TEXTS
        if (entry := catalog.get(text, context=context)) is None or entry.fuzzy or not entry.string
    ]
    assert not missing, f"{len(missing)} command texts not translated in {catalog.locale}:\n" + "\n".join(missing)


def test_the_command_translations_fit_discord(catalog: Catalog) -> None:
    """Names 1-32 characters, lowercase, no spaces; descriptions and choices 1-100 characters (the translator
    would leave out one that does not fit: this says which)."""
    unfit = []
    for entry in catalog:
        if entry.context not in (NAME, DESCRIPTION, CHOICE) or not entry.string:
            continue
        translation = str(entry.string)
        fits = valid_name(translation) if entry.context == NAME else 1 <= len(translation) <= TEXT_MAX
        if not fits:
            unfit.append(f"{entry.context}: {entry.id!r} -> {translation!r} ({len(translation)} characters)")
    assert not unfit, f"{catalog.locale} has command texts Discord would refuse:\n" + "\n".join(unfit)


def _siblings(commands: Iterable[AppCommand]) -> Iterator[list[str]]:
    """The names of each set of siblings: the top-level commands, a group's children, a command's options."""
    commands = list(commands)
    yield [command.name for command in commands]
    for command in commands:
        if isinstance(command, app_commands.Group):
            yield from _siblings(command.commands)
        else:
            yield [parameter.name for parameter in command.parameters]


def test_sibling_names_stay_unique_in_the_catalog(catalog: Catalog) -> None:
    """Discord refuses two commands, subcommands or options of the same parent with one name, localized too."""
    clashes = []
    for names in _siblings(tree_commands()):
        localized = [
            str(entry.string) if (entry := catalog.get(name, context=NAME)) is not None and entry.string else name
            for name in names
        ]
        if len(set(localized)) != len(localized):
            clashes.append(f"{names} -> {localized}")
    assert not clashes, f"{catalog.locale} gives siblings one name:\n" + "\n".join(clashes)
