"""Model references: ``owner/name`` (an official model) or ``owner/name:version``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.base.errors import ImagineError
from bot.i18n import tr

_REF = re.compile(
    r"^(?P<owner>[A-Za-z0-9][A-Za-z0-9._-]{0,99})/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,99})"
    r"(?::(?P<version>[A-Za-z0-9][A-Za-z0-9._-]{0,127}))?$"
)


class InvalidModelRef(ImagineError):
    """A string that is not a model reference."""


@dataclass(frozen=True, order=True)
class ModelRef:
    """A model on the prediction API.

    Without a version it names an official model, run through
    ``POST /v1/models/{owner}/{name}/predictions``; with one it is run through
    ``POST /v1/predictions`` with that version.
    """

    owner: str
    name: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse ``owner/name`` or ``owner/name:version``, or raise :class:`InvalidModelRef`."""
        candidate = text.strip()
        match = _REF.match(candidate)
        if match is None:
            shown = candidate if len(candidate) <= 80 else candidate[:77] + "..."
            raise InvalidModelRef(
                tr(
                    "{typed} is not a model reference: use owner/name or owner/name:version "
                    "(for example black-forest-labs/flux-schnell)",
                    typed=repr(shown),
                )
            )
        return cls(match["owner"], match["name"], match["version"])

    @property
    def base(self) -> str:
        """``owner/name`` without the version."""
        return f"{self.owner}/{self.name}"

    def __str__(self) -> str:
        return f"{self.base}:{self.version}" if self.version else self.base
