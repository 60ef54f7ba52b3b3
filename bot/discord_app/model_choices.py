"""The models a member may use here, offered as autocomplete choices (``/imagine``'s ``model``, and the preferred
model of ``/imagine-settings set``): one list, so both offer the same."""

from __future__ import annotations

from collections.abc import Collection

from discord import app_commands

from bot.moderation.policy import Policy

AUTOCOMPLETE_LIMIT = 25
"""Discord's most choices in one autocomplete answer."""
CHOICE_MAX = 100
"""Discord's longest choice value: a longer model reference cannot be offered."""


async def usable_model_choices(
    policy: Policy, guild_id: int, role_ids: Collection[int], typed: str, *, age_restricted: bool = False
) -> list[app_commands.Choice[str]]:
    """The models a member with ``role_ids`` may use in ``guild_id`` whose name holds ``typed`` (any case), the
    server's default first, at most :data:`AUTOCOMPLETE_LIMIT`; the age-restricted ones only in an
    ``age_restricted`` channel."""
    wanted = typed.strip().lower()
    choices: list[app_commands.Choice[str]] = []
    for ref in await policy.usable_models(guild_id, role_ids, age_restricted=age_restricted):
        value = str(ref)
        if wanted in value.lower() and len(value) <= CHOICE_MAX:
            choices.append(app_commands.Choice(name=value, value=value))
        if len(choices) == AUTOCOMPLETE_LIMIT:
            break
    return choices
