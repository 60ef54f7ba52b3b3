"""The small exception hierarchy whose messages are meant for people.

Anything raised as an :class:`ImagineError` carries a message that can be shown
as-is to a member, a moderator or a CLI user. Everything else is a bug: it is
logged with context and shown as a generic failure with a short reference id.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Shown(Protocol):
    """A text rendered in its reader's language (``bot.i18n.Text``, which this layer cannot import)."""

    def render(self, locale: str | None = None) -> str: ...


class ImagineError(Exception):
    """An error whose message is fit to show to the person who caused it: ``text`` in the reader's language
    (a translatable text, or a plain string), ``message`` and ``str()`` in English."""

    def __init__(self, message: str | Shown) -> None:
        english = message if isinstance(message, str) else message.render(None)
        super().__init__(english)
        self.message = english
        self.text: str | Shown = message

    def __str__(self) -> str:
        return self.message


class Refusal(ImagineError):
    """A request refused before anything was sent to the API (policy or bad options)."""


class BlockedWordRefusal(Refusal):
    """A prompt refused for a blocked word; ``word`` (as the moderators wrote it) is for the mod-log, not the member."""

    def __init__(self, message: str | Shown, *, word: str) -> None:
        super().__init__(message)
        self.word = word


class InputRejected(Refusal):
    """An option value the chosen model would reject, or one outside ``/imagine``'s own range."""


class DeliveryError(ImagineError):
    """An output file could not be downloaded or is not a usable image."""
