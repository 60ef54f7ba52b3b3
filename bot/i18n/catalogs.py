"""The message catalogs: gettext ``.po`` files per language, compiled in memory when first used."""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES = Path(__file__).resolve().parent / "locales"
"""One folder per language, named by its gettext code (``de``, ``pt_BR``); each ``*.po`` in it is read."""

ENGLISH = "en"


@functools.cache
def available_languages() -> tuple[str, ...]:
    """The gettext codes that have a catalog (English, the code's own language, needs none)."""
    return tuple(sorted(path.name for path in LOCALES.iterdir() if path.is_dir() and any(path.glob("*.po"))))


@functools.lru_cache(maxsize=256)
def catalog_code(locale: str | None) -> str | None:
    """The catalog for a Discord locale (``pt-BR``, ``de``, ``es-419``); ``None``: English.

    An exact match wins; otherwise another catalog of the same language (``es-419`` reads ``es_ES``).
    """
    if not locale:
        return None
    code = str(locale).replace("-", "_")
    language = code.split("_", 1)[0].lower()
    if language == ENGLISH:
        return None
    available = available_languages()
    if code in available:
        return code
    return next((found for found in available if found.split("_", 1)[0].lower() == language), None)


def read_catalog(code: str) -> Catalog:
    """Every ``.po`` file of one language, as one catalog."""
    merged = Catalog(locale=code, domain="messages")
    for path in sorted((LOCALES / code).glob("*.po")):
        with path.open("rb") as source:
            part = read_po(source, locale=code)
        # The files' Plural-Forms, not the locale's own (CLDR gives French, Spanish and Portuguese a third form,
        # "many", that the catalogs do not write: with it a plural would fall back to English).
        merged.mime_headers = [(name, value) for name, value in part.mime_headers if name.lower() == "plural-forms"]
        for message in part:
            if message.id:
                merged[message.id] = message
    return merged


@functools.cache
def _compiled(code: str) -> gettext.NullTranslations:
    compiled = io.BytesIO()
    write_mo(compiled, read_catalog(code))
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


@functools.cache
def _entries(code: str) -> frozenset[tuple[str | None, str]]:
    return frozenset(
        (message.context, message.id if isinstance(message.id, str) else message.id[0])
        for message in read_catalog(code)
        if message.id and not message.fuzzy
    )


def has_entry(locale: str | None, msgid: str, context: str | None = None) -> bool:
    """Whether the catalog for a Discord locale translates ``msgid`` (perhaps as itself: a product's name)."""
    code = catalog_code(locale)
    return code is not None and (context, msgid) in _entries(code)


def translations(locale: str | None) -> gettext.NullTranslations:
    """The translations for a Discord locale; English (the message ids themselves) where there is no catalog."""
    code = catalog_code(locale)
    return gettext.NullTranslations() if code is None else _compiled(code)
