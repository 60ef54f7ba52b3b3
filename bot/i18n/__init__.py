"""Texts members and moderators read, in their own language.

Code writes each text once, in English, as a message id with named placeholders and renders it late,
when it knows who reads it::

    refusal = tr("Slow down: you can use {command} again in {wait}.", command=name, wait=duration)
    refusal.render("de")      # the member's Discord locale
    str(refusal)              # English

- :func:`tr` and :func:`tr_n` (plural forms: ``tr_n("{n} image", "{n} images", n)``) make a :class:`Message`;
  :class:`Joined` strings several texts together. A placeholder's value may itself be a text: it is rendered
  in the same language. Literal braces in a message id are doubled (``{{a,b}}``), as in :meth:`str.format`.
- Catalogs are gettext ``.po`` files under ``bot/i18n/locales/<code>/`` (every ``*.po`` of a language is
  one catalog), compiled in memory the first time a language is asked for (:mod:`.catalogs`).
- A language without a catalog, a message missing from one, or a translation that breaks its placeholders
  falls back to English, message by message.

``tests/i18n`` fails when a catalog misses a message of the code or breaks a placeholder.
"""

from __future__ import annotations

from bot.i18n.catalogs import available_languages, catalog_code
from bot.i18n.text import Joined, Message, Text, joined, render, tr, tr_n

__all__ = ["Joined", "Message", "Text", "available_languages", "catalog_code", "joined", "render", "tr", "tr_n"]
