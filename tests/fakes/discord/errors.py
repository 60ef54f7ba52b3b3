"""Discord's error answers (:class:`DiscordError` and the named ones the routes raise) and the payload
checks that answer 400/50035 "Invalid Form Body" (messages, choices, modals; application commands: :mod:`.commands`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tests.fakes.discord.components import message_component_problems, modal_problems
from tests.fakes.discord.protocol import (
    MAX_ACTION_ROWS,
    MAX_ATTACHMENTS,
    MAX_CHOICES,
    MAX_CONTENT,
    MAX_EMBED_TOTAL,
    MAX_EMBEDS,
    MessageFlag,
)

if TYPE_CHECKING:
    from tests.fakes.discord.messages import MessageVersion
    from tests.fakes.discord.protocol import JSON


class DiscordError(Exception):
    """An API error the fake answers with: HTTP ``status`` and a JSON error body."""

    def __init__(self, status: int, code: int, message: str, errors: JSON | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> JSON:
        """Return the JSON body Discord would send."""
        body: JSON = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def _named(status: int, code: int, message: str) -> Callable[[], DiscordError]:
    """A maker of one of Discord's named errors (a fresh exception each time it is raised)."""
    return lambda: DiscordError(status, code, message)


_unknown_interaction = _named(404, 10062, "Unknown interaction")
_invalid_webhook_token = _named(401, 50027, "Invalid Webhook Token")
_unknown_message = _named(404, 10008, "Unknown Message")
_unknown_channel = _named(404, 10003, "Unknown Channel")
_unauthorized = _named(401, 0, "401: Unauthorized")
_missing_permissions = _named(403, 50013, "Missing Permissions")
_missing_access = _named(403, 50001, "Missing Access")


def _form_error(problems: Sequence[tuple[str, str, str]]) -> DiscordError:
    """Build a 50035 "Invalid Form Body" error from ``(dotted.path, CODE, message)`` triples."""
    errors: JSON = {}
    for path, code, message in problems:
        node = errors
        for part in path.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return DiscordError(400, 50035, "Invalid Form Body", errors)


def _validate_message(version: MessageVersion, *, allow_empty: bool, creating: bool) -> None:
    problems: list[tuple[str, str, str]] = []
    if len(version.content) > MAX_CONTENT:
        problems.append(("content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."))
    if len(version.embeds) > MAX_EMBEDS:
        problems.append(("embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length."))
    total = 0
    for index, embed in enumerate(version.embeds):
        limits = {"title": 256, "description": 4096}
        for key, limit in limits.items():
            text = str(embed.get(key) or "")
            total += len(text)
            if len(text) > limit:
                problems.append(
                    (f"embeds.{index}.{key}", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
                )
        footer = str((embed.get("footer") or {}).get("text") or "")
        author = str((embed.get("author") or {}).get("name") or "")
        total += len(footer) + len(author)
        if len(footer) > 2048:
            problems.append((f"embeds.{index}.footer.text", "BASE_TYPE_MAX_LENGTH", "Must be 2048 or fewer in length."))
        if len(author) > 256:
            problems.append((f"embeds.{index}.author.name", "BASE_TYPE_MAX_LENGTH", "Must be 256 or fewer in length."))
        fields = embed.get("fields") or []
        if len(fields) > 25:
            problems.append((f"embeds.{index}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."))
        for position, item in enumerate(fields):
            name, value = str(item.get("name") or ""), str(item.get("value") or "")
            total += len(name) + len(value)
            if len(name) > 256:
                problems.append(
                    (
                        f"embeds.{index}.fields.{position}.name",
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 256 or fewer in length.",
                    )
                )
            if len(value) > 1024:
                problems.append(
                    (
                        f"embeds.{index}.fields.{position}.value",
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 1024 or fewer in length.",
                    )
                )
    if total > MAX_EMBED_TOTAL:
        problems.append(("embeds", "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}"))
    if len(version.attachments) > MAX_ATTACHMENTS:
        problems.append(("attachments", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ATTACHMENTS} or fewer in length."))
    if not version.flags & MessageFlag.IS_COMPONENTS_V2:
        if len(version.components) > MAX_ACTION_ROWS:
            problems.append(("components", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ACTION_ROWS} or fewer in length."))
        problems += message_component_problems(list(version.components))
    if problems:
        raise _form_error(problems)
    empty = not (version.content or version.embeds or version.attachments or version.components)
    if empty and not allow_empty and creating:
        raise DiscordError(400, 50006, "Cannot send an empty message")


def _validate_blank_fields(version: MessageVersion) -> None:
    problems = [
        (f"embeds.{index}.fields.{position}.{key}", "BASE_TYPE_REQUIRED", "This field is required")
        for index, embed in enumerate(version.embeds)
        for position, item in enumerate(embed.get("fields") or [])
        for key in ("name", "value")
        if not str(item.get(key) or "").strip()
    ]
    if problems:
        raise _form_error(problems)


def _validate_choices(choices: Any) -> None:
    if not isinstance(choices, list):
        raise _form_error([("data.choices", "BASE_TYPE_REQUIRED", "This field is required")])
    problems: list[tuple[str, str, str]] = []
    if len(choices) > MAX_CHOICES:
        problems.append(("data.choices", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length."))
    for index, choice in enumerate(choices):
        name = str(choice.get("name") or "")
        if not 1 <= len(name) <= 100:
            problems.append(
                (f"data.choices.{index}.name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            )
        value = choice.get("value")
        if isinstance(value, str) and len(value) > 100:
            problems.append((f"data.choices.{index}.value", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length."))
    if problems:
        raise _form_error(problems)


def _validate_modal(data: JSON) -> None:
    """A modal callback's data, as :func:`~tests.fakes.discord.components.modal_problems` checks it."""
    problems = modal_problems(data)
    if problems:
        raise _form_error(problems)
