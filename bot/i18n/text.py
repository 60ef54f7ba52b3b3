"""Translatable texts: an English message id and its values, rendered in a language when it is shown."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from bot.i18n.catalogs import translations

log = logging.getLogger(__name__)


@runtime_checkable
class Text(Protocol):
    """Anything that can be shown in a language (``None``: English)."""

    def render(self, locale: str | None = None) -> str: ...


def render(value: object, locale: str | None = None) -> str:
    """``value`` as the reader in ``locale`` should read it: a :class:`Text` translated, anything else as ``str``."""
    if isinstance(value, Text):
        return value.render(locale)
    return str(value)


@dataclass(frozen=True, slots=True)
class Message:
    """One catalog message and the values of its placeholders."""

    msgid: str
    params: Mapping[str, object] = field(default_factory=dict)
    plural: str | None = None
    """The English plural form (``tr_n``); ``count`` chooses between the forms."""
    count: int = 1

    def render(self, locale: str | None = None) -> str:
        values = {name: render(value, locale) for name, value in self.params.items()}
        catalog = translations(locale)
        if self.plural is None:
            template = catalog.gettext(self.msgid)
        else:
            template = catalog.ngettext(self.msgid, self.plural, self.count)
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError):
            log.warning("the %s translation of %r breaks its placeholders; shown in English", locale, self.msgid)
            english = self.msgid if self.plural is None or self.count == 1 else self.plural
            return english.format(**values)

    def __str__(self) -> str:
        return self.render(None)


@dataclass(frozen=True, slots=True)
class Joined:
    """Several texts shown one after another with a separator (each part rendered in the reader's language)."""

    parts: tuple[object, ...]
    separator: str = ""

    def render(self, locale: str | None = None) -> str:
        return self.separator.join(render(part, locale) for part in self.parts)

    def __str__(self) -> str:
        return self.render(None)


def tr(msgid: str, /, **params: object) -> Message:
    """A text to show: ``msgid`` is the English text, with ``{name}`` placeholders filled from ``params``."""
    return Message(msgid, params)


def tr_n(singular: str, plural: str, count: int, /, **params: object) -> Message:
    """A text with plural forms chosen by ``count`` (also available to the text as ``{n}``)."""
    params.setdefault("n", count)
    return Message(singular, params, plural=plural, count=count)


def joined(parts: Iterable[object], separator: str = "") -> Joined:
    """Texts (or plain strings) shown together, each in the reader's language."""
    return Joined(tuple(parts), separator)
