"""Replicate's 422 "Input validation failed": a prediction's ``input`` checked against the model's cog
schema (:func:`validate_input`) and a create's ``webhook`` fields, as :class:`InvalidField` entries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from tests.fakes.replicate.vocabulary import WEBHOOK_EVENTS

if TYPE_CHECKING:
    from tests.fakes.replicate.vocabulary import JsonDict


@dataclass(frozen=True)
class InvalidField:
    """One entry of a 422 body's ``invalid_fields`` (``type``, ``field``, ``description``)."""

    type: str
    field: str
    description: str

    def to_json(self) -> JsonDict:
        """Return the JSON object Replicate sends for this entry."""
        return {"type": self.type, "field": self.field, "description": self.description}

    def detail_line(self) -> str:
        """Return this entry as a line of the 422 ``detail`` text, e.g. ``- input.seed: …\\n``."""
        return f"- {self.field or 'input'}: {self.description}\n"


def _resolve(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> JsonDict:
    """Inline ``$ref`` and single-``$ref`` ``allOf`` entries of ``schema`` (cog's enum style)."""
    out: JsonDict = {k: v for k, v in schema.items() if k not in ("allOf", "$ref")}
    refs = [schema["$ref"]] if "$ref" in schema else []
    refs += [part["$ref"] for part in schema.get("allOf", []) if "$ref" in part]
    for ref in refs:
        target: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        for key, value in _resolve(doc, target).items():
            out.setdefault(key, value)
    return out


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_ok(expected: str, value: Any) -> bool:
    actual = _json_type(value)
    return actual == expected or (expected == "number" and actual == "integer")


def _fmt_num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def validate_input(openapi_schema: Mapping[str, Any], value: Any) -> list[InvalidField]:
    """Validate a prediction ``input`` against a cog ``openapi_schema`` as Replicate does.

    Checks, in order: ``input`` is an object, required properties, unknown properties
    (``additional_property_not_allowed``), JSON type (``invalid_type``), ``enum``, ``minimum``
    (``number_gte``) and ``maximum`` (``number_lte``). Returns an empty list when the input is valid.
    ``null`` is only accepted for properties marked ``nullable``.
    """
    input_schema = openapi_schema["components"]["schemas"]["Input"]
    if not isinstance(value, dict):
        return [InvalidField("invalid_type", "input", f"Invalid type. Expected: object, given: {_json_type(value)}")]
    errors: list[InvalidField] = [
        InvalidField("required", "input", f"{name} is required")
        for name in input_schema.get("required", [])
        if name not in value
    ]
    properties: Mapping[str, Any] = input_schema.get("properties", {})
    for key, item in value.items():
        if key not in properties:
            errors.append(
                InvalidField("additional_property_not_allowed", "", f"Additional property {key} is not allowed")
            )
            continue
        prop = _resolve(openapi_schema, properties[key])
        where = f"input.{key}"
        if item is None and prop.get("nullable"):
            continue
        expected = prop.get("type")
        if isinstance(expected, str) and not _type_ok(expected, item):
            errors.append(
                InvalidField("invalid_type", where, f"Invalid type. Expected: {expected}, given: {_json_type(item)}")
            )
            continue
        if "enum" in prop and item not in prop["enum"]:
            allowed = ", ".join(json.dumps(v) for v in prop["enum"])
            errors.append(InvalidField("enum", where, f"{key} must be one of the following: {allowed}"))
            continue
        if isinstance(item, int | float) and not isinstance(item, bool):
            if "minimum" in prop and item < prop["minimum"]:
                errors.append(
                    InvalidField("number_gte", where, f"Must be greater than or equal to {_fmt_num(prop['minimum'])}")
                )
            if "maximum" in prop and item > prop["maximum"]:
                errors.append(
                    InvalidField("number_lte", where, f"Must be less than or equal to {_fmt_num(prop['maximum'])}")
                )
    return errors


def _input_defaults(openapi_schema: Mapping[str, Any]) -> JsonDict:
    props: Mapping[str, Any] = openapi_schema["components"]["schemas"]["Input"].get("properties", {})
    return {name: spec["default"] for name, spec in props.items() if "default" in spec}


_LOOPBACK_HOSTS: Final[frozenset[str]] = frozenset({"127.0.0.1", "localhost", "::1"})


def _webhook_errors(body: Mapping[str, Any]) -> list[InvalidField]:
    """Check a create body's ``webhook`` and ``webhook_events_filter`` (the fake only calls loopback URLs)."""
    errors: list[InvalidField] = []
    hook = body.get("webhook")
    if hook is not None:
        if not isinstance(hook, str):
            errors.append(
                InvalidField("invalid_type", "webhook", f"Invalid type. Expected: string, given: {_json_type(hook)}")
            )
        else:
            parts = urlsplit(hook)
            try:
                port_ok = parts.port is None or parts.port > 0
            except ValueError:
                port_ok = False
            if parts.scheme not in ("http", "https") or parts.hostname not in _LOOPBACK_HOSTS or not port_ok:
                errors.append(
                    InvalidField(
                        "format",
                        "webhook",
                        "webhook must be an HTTPS URL (this fake accepts only http(s) URLs on 127.0.0.1 or localhost)",
                    )
                )
    events = body.get("webhook_events_filter")
    if events is not None:
        if not isinstance(events, list):
            errors.append(
                InvalidField(
                    "invalid_type",
                    "webhook_events_filter",
                    f"Invalid type. Expected: array, given: {_json_type(events)}",
                )
            )
        else:
            allowed = ", ".join(json.dumps(v) for v in WEBHOOK_EVENTS)
            errors.extend(
                InvalidField(
                    "enum",
                    f"webhook_events_filter.{i}",
                    f"webhook_events_filter.{i} must be one of the following: {allowed}",
                )
                for i, value in enumerate(events)
                if value not in WEBHOOK_EVENTS
            )
    return errors
