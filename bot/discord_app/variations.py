"""What a variation button asks for: which image of a result, and with which strength.

``V<n>`` varies image n with the model's own strength; ``Vary (Subtle)`` and ``Vary (Strong)`` vary the
only image of a single-image result with ``IMAGINE_VARY_SUBTLE``/``IMAGINE_VARY_STRONG``. A :class:`Variation`
travels in a custom id (:attr:`Variation.token`), so a form opened for it still knows it after a restart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bot.settings import Settings


class VaryStrength(StrEnum):
    """``Vary (Subtle)`` or ``Vary (Strong)``."""

    SUBTLE = "subtle"
    STRONG = "strong"

    @property
    def label(self) -> str:
        """The button's label: ``Vary (Subtle)``."""
        return f"Vary ({self.value.title()})"

    def value_in(self, settings: Settings) -> float:
        """The strength this deployment sends for it."""
        return settings.vary_subtle if self is VaryStrength.SUBTLE else settings.vary_strong


_IMAGE_TOKEN = re.compile(r"v([1-9])")


@dataclass(frozen=True)
class Variation:
    """A variation of image ``number`` of a result; ``strength`` ``None`` keeps the model's own."""

    number: int
    strength: VaryStrength | None = None

    @property
    def token(self) -> str:
        """How it is written in a custom id: ``v2``, ``subtle``, ``strong``."""
        return str(self.strength) if self.strength is not None else f"v{self.number}"

    @classmethod
    def from_token(cls, token: str) -> Variation:
        """The inverse of :attr:`token`; ``ValueError`` for anything else."""
        if token in {strength.value for strength in VaryStrength}:
            return cls(1, VaryStrength(token))
        match = _IMAGE_TOKEN.fullmatch(token)
        if match is None:
            raise ValueError(f"not a variation: {token!r}")
        return cls(int(match[1]))

    @property
    def name(self) -> str:
        """What the member pressed, in a sentence or a title: ``V2``, ``Vary (Subtle)``."""
        return self.strength.label if self.strength is not None else f"V{self.number}"
