"""One input's value against the model's schema: a CLI string read as the type the model expects, and a value
checked against the input's enum and bounds (:class:`~bot.base.errors.InputRejected` says what is wrong)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from bot.base.errors import InputRejected
from bot.i18n import tr


@dataclass(frozen=True)
class Property:
    """One input of a model, with the constraints the bot checks before sending."""

    name: str
    type: str | None = None
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    default: Any = None
    format: str | None = None
    """A string's format (``uri`` for files such as images)."""


def coerce_value(key: str, value: Any, prop: Property | None) -> Any:
    """Turn a CLI ``KEY=VALUE`` string into the type the model expects."""
    if not isinstance(value, str):
        return value
    kind = prop.type if prop else None
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean":
            lowered = value.lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError(value)
        if kind == "string":
            return value
    except ValueError:
        raise InputRejected(tr("{key} must be a {type}, not {value}.", key=key, type=kind, value=repr(value))) from None
    try:
        return json.loads(value)
    except ValueError:
        return value


def check_value(prop: Property, value: Any) -> None:
    """Refuse ``value`` where the model's schema says it may not be given for ``prop``."""
    if prop.enum is not None and value not in prop.enum:
        allowed = ", ".join(str(item) for item in prop.enum)
        text = tr(
            "This model does not accept {name} {value}; it takes one of: {allowed}.",
            name=prop.name,
            value=repr(value),
            allowed=allowed,
        )
        raise InputRejected(text)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if prop.type == "integer" and not (isinstance(value, int) and not isinstance(value, bool)):
        raise InputRejected(tr("{name} must be a whole number, not {value}.", name=prop.name, value=repr(value)))
    if is_number and not math.isfinite(value):
        raise InputRejected(tr("{name} must be a finite number, not {value}.", name=prop.name, value=repr(value)))
    if is_number and prop.minimum is not None and value < prop.minimum:
        least = _fmt(prop.minimum)
        text = tr(
            "This model needs {name} to be at least {minimum}, not {value}.", name=prop.name, minimum=least, value=value
        )
        raise InputRejected(text)
    if is_number and prop.maximum is not None and value > prop.maximum:
        most = _fmt(prop.maximum)
        raise InputRejected(
            tr("This model allows {name} up to {maximum}, not {value}.", name=prop.name, maximum=most, value=value)
        )


def _fmt(number: float) -> str:
    return str(int(number)) if number.is_integer() else str(number)
