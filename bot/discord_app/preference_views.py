"""How ``/imagine-settings`` answers look: a member's preferences as one embed, and the lines its changes and
refusals say.

Pure rendering from the member's :class:`~bot.storage.Preferences` and the models they may use where they
asked; the cog checks, changes and answers (privately, with no one pinged).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import discord

from bot.api.modelref import InvalidModelRef, ModelRef
from bot.storage import MAX_NAMED_OPTIONS, Preferences

CLEAR = "none"
"""What a member gives ``model`` or ``suffix`` to forget that preference (Discord sends no empty text)."""
DESCRIPTION_LIMIT = 4000
"""Kept under Discord's 4096 for an embed description."""
FIELD_LIMIT = 1024
"""Discord's longest embed field value."""
MODEL_LISTED = 10
"""Models named in a refusal at most."""

_ABOUT = (
    "Your own defaults for `/imagine`, the same in every server of this bot. An option you give `/imagine` "
    "beats them; they beat the server's defaults; the server's rules always apply."
)
_NOT_SET = "not set: the server's default"
SET_HELP = (
    "Change them with `/imagine-settings set`, add a `--name` with `/imagine-settings option`, "
    "start again with `/imagine-settings reset`."
)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown(text: str, limit: int = FIELD_LIMIT) -> str:
    """A member's text as typed (markdown shown, not applied), on one line, at most ``limit`` characters."""
    # Escaping can double the text: clip first to what fits once escaped, so the result stays within limit.
    clipped = _clip(text, limit)
    while len(escaped := discord.utils.escape_markdown(clipped)) > limit:
        clipped = _clip(clipped, max(1, len(clipped) - (len(escaped) - limit) - 1))
    return escaped


def model_listing(models: Sequence[ModelRef], limit: int = MODEL_LISTED) -> str:
    """``a``, ``b`` and ``3 more``: the models a member may use, for a refusal."""
    names = [f"`{model}`" for model in models[:limit]]
    more = len(models) - limit
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _model_line(preferences: Preferences, usable: Collection[ModelRef]) -> str:
    if preferences.model is None:
        return _NOT_SET
    line = f"`{preferences.model}`"
    try:
        usable_here = ModelRef.parse(preferences.model) in usable
    except InvalidModelRef:  # stored by an older bot in a form no longer read: never usable
        usable_here = False
    if not usable_here:
        line += "\n⚠️ not one you may use on this server: `/imagine` uses the server's default here"
    return line


def options_text(held: Mapping[str, str], limit: int = DESCRIPTION_LIMIT) -> str:
    """One line per named option, ``--name`` → its text, each shortened alike until all fit in ``limit``."""
    if not held:
        return "none yet"
    clip = FIELD_LIMIT
    while True:
        lines = [f"`--{name}` → {shown(value, clip)}" for name, value in held.items()]
        text = "\n".join(lines)
        if len(text) <= limit or clip <= 20:
            return text[:limit]
        clip = clip * 2 // 3


def preferences_embed(preferences: Preferences, usable: Collection[ModelRef], *, title: str) -> discord.Embed:
    """The member's preferences, with whether their model is one they may use in this server (``usable``)."""
    embed = discord.Embed(title=title, colour=discord.Colour.blurple())
    held = len(preferences.options)
    options_heading = f"\n\n**Named options** ({held} of {MAX_NAMED_OPTIONS})\n"
    # The description holds the options (up to 20 texts of 500 characters): they get what the rest leaves.
    embed.description = _ABOUT + options_heading
    embed.description += options_text(preferences.options, DESCRIPTION_LIMIT - len(embed.description))
    embed.add_field(name="Model", value=_model_line(preferences, usable), inline=False)
    embed.add_field(name="Aspect ratio", value=preferences.aspect_ratio or _NOT_SET)
    embed.add_field(name="Count", value=str(preferences.count) if preferences.count else _NOT_SET)
    remix = "on: `V1`…`V4` open the Remix editor first" if preferences.remix else "off"
    embed.add_field(name="Remix", value=remix)
    suffix = shown(preferences.suffix) if preferences.suffix else "none"
    embed.add_field(name="Suffix (added to every prompt)", value=suffix, inline=False)
    embed.set_footer(text=SET_HELP.replace("`", ""))
    return embed


# ------------------------------------------------------------------ answers to changes


def option_set_answer(name: str, value: str) -> str:
    """A named option saved."""
    return (
        f"✅ `--{name}` now stands for: {shown(value, 600)}\n"
        f"Add it to a prompt: `/imagine prompt: a harbour at dawn --{name}`."
    )


def option_removed_answer(name: str) -> str:
    """A named option removed."""
    return f"✅ `--{name}` is removed."


def option_missing_answer(name: str, held: Collection[str]) -> str:
    """A removal of a named option the member does not have."""
    yours = ", ".join(f"`--{each}`" for each in sorted(held)) if held else "none"
    return f"❌ You have no named option `--{name}`, so nothing was removed. Yours: {yours}."


def option_limit_answer(name: str) -> str:
    """A new named option past the limit."""
    return (
        f"❌ `--{name}` was not saved: you already keep {MAX_NAMED_OPTIONS} named options, the most there is room "
        "for. Remove one first (`/imagine-settings option name:NAME` with no value), or give one you have a new "
        "value."
    )


def model_refused_answer(typed: str, usable: Sequence[ModelRef]) -> str:
    """A preferred model the member may not use in this server."""
    if not usable:
        return f"❌ `{_clip(typed, 100)}` can't be your model: you may use no model on this server."
    return (
        f"❌ `{_clip(typed, 100)}` is not a model you may use on this server. You may use {model_listing(usable)}. "
        f"(`model:{CLEAR}` forgets your preferred model.)"
    )


def not_saved_answer(reason: str) -> str:
    """A ``set`` refused for one of its changes: none of the others given with it were saved either."""
    return f"{reason}\nNothing was saved: correct that and run `/imagine-settings set` again with all you gave."


RESET_ANSWER = "✅ Your preferences and named options are forgotten: `/imagine` uses each server's defaults again."
NOTHING_TO_RESET = "You had no preferences or named options: nothing to forget."
DM_ANSWER = (
    "Use `/imagine-settings` in a server where this bot is: your preferences are the same in every one of them, "
    "and the models you may choose are the server's."
)
