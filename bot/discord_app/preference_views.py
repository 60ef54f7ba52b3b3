"""How ``/imagine-settings`` answers look: a member's preferences as one embed, and the lines its changes and
refusals say.

Pure rendering from the member's :class:`~bot.storage.Preferences` and the models they may use where they
asked; the cog checks, changes and answers (privately, with no one pinged).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import discord

from bot.api.modelref import InvalidModelRef, ModelRef
from bot.i18n import Text, render, tr
from bot.storage import MAX_NAMED_OPTIONS, Preferences

CLEAR = "none"
"""What a member gives ``model`` or ``suffix`` to forget that preference (Discord sends no empty text)."""
DESCRIPTION_LIMIT = 4000
"""Kept under Discord's 4096 for an embed description."""
FIELD_LIMIT = 1024
"""Discord's longest embed field value."""
MODEL_LISTED = 10
"""Models named in a refusal at most."""

_ABOUT = tr(
    "Your own defaults for `/imagine`, the same in every server this bot is in. An option you give `/imagine` "
    "wins over them; they win over the server's defaults; the server's rules always apply."
)
_NOT_SET = tr("not set: the server's default")
SET_HELP = tr(
    "Change them with `/imagine-settings set`, add a `--name` with `/imagine-settings option`, "
    "start over with `/imagine-settings reset`."
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


def model_listing(models: Sequence[ModelRef], limit: int = MODEL_LISTED) -> str | Text:
    """``a``, ``b`` and ``3 more``: the models a member may use, for a refusal."""
    names = ", ".join(f"`{model}`" for model in models[:limit])
    more = len(models) - limit
    return tr("{models} and {count} more", models=names, count=more) if more > 0 else names


def _model_line(preferences: Preferences, usable: Collection[ModelRef], locale: str | None) -> str:
    if preferences.model is None:
        return _NOT_SET.render(locale)
    line = f"`{preferences.model}`"
    try:
        usable_here = ModelRef.parse(preferences.model) in usable
    except InvalidModelRef:  # stored by an older bot in a form no longer read: never usable
        usable_here = False
    if not usable_here:
        warning = tr("⚠️ not one you may use on this server: `/imagine` uses the server's default here")
        line += "\n" + warning.render(locale)
    return line


def options_text(held: Mapping[str, str], limit: int = DESCRIPTION_LIMIT, locale: str | None = None) -> str:
    """One line per named option, ``--name`` → its text, each shortened alike until all fit in ``limit``."""
    if not held:
        return tr("none yet").render(locale)
    clip = FIELD_LIMIT
    while True:
        lines = [f"`--{name}` → {shown(value, clip)}" for name, value in held.items()]
        text = "\n".join(lines)
        if len(text) <= limit or clip <= 20:
            return text[:limit]
        clip = clip * 2 // 3


def preferences_embed(
    preferences: Preferences, usable: Collection[ModelRef], *, title: str | Text, locale: str | None = None
) -> discord.Embed:
    """The member's preferences, in their language (``locale``), with whether their model is one they may use in
    this server (``usable``)."""
    embed = discord.Embed(title=render(title, locale), colour=discord.Colour.blurple())
    held = len(preferences.options)
    heading = tr("Named options").render(locale)
    counted = tr("{held} of {most}", held=held, most=MAX_NAMED_OPTIONS).render(locale)
    options_heading = f"\n\n**{heading}** ({counted})\n"
    # The description holds the options (up to 20 texts of 500 characters): they get what the rest leaves.
    embed.description = _ABOUT.render(locale) + options_heading
    embed.description += options_text(preferences.options, DESCRIPTION_LIMIT - len(embed.description), locale)
    not_set = _NOT_SET.render(locale)
    embed.add_field(name=tr("Model").render(locale), value=_model_line(preferences, usable, locale), inline=False)
    embed.add_field(name=tr("Aspect ratio").render(locale), value=preferences.aspect_ratio or not_set)
    embed.add_field(name=tr("Count").render(locale), value=str(preferences.count) if preferences.count else not_set)
    remix = tr("on: `V1`…`V4` open the Remix editor first") if preferences.remix else tr("off")
    embed.add_field(name=tr("Remix").render(locale), value=remix.render(locale))
    suffix = shown(preferences.suffix) if preferences.suffix else tr("none").render(locale)
    embed.add_field(name=tr("Suffix (added to every prompt)").render(locale), value=suffix, inline=False)
    embed.set_footer(text=SET_HELP.render(locale).replace("`", ""))
    return embed


# ------------------------------------------------------------------ answers to changes


def option_set_answer(name: str, value: str) -> Text:
    """A named option saved."""
    return tr(
        "✅ `--{name}` now stands for: {value}\nAdd it to a prompt: `/imagine prompt: a harbour at dawn --{name}`.",
        name=name,
        value=shown(value, 600),
    )


def option_removed_answer(name: str) -> Text:
    """A named option removed."""
    return tr("✅ `--{name}` is removed.", name=name)


def option_missing_answer(name: str, held: Collection[str]) -> Text:
    """A removal of a named option the member does not have."""
    if not held:
        return tr("❌ You have no named option `--{name}`, so nothing was removed. You have none.", name=name)
    yours = ", ".join(f"`--{each}`" for each in sorted(held))
    return tr("❌ You have no named option `--{name}`, so nothing was removed. Yours: {yours}.", name=name, yours=yours)


def option_limit_answer(name: str) -> Text:
    """A new named option past the limit."""
    return tr(
        "❌ `--{name}` wasn't saved: you already have {most} named options, the most there's room for. Remove one "
        "first (`/imagine-settings option name:NAME` with no value), or give one you have a new value.",
        name=name,
        most=MAX_NAMED_OPTIONS,
    )


def model_refused_answer(typed: str, usable: Sequence[ModelRef]) -> Text:
    """A preferred model the member may not use in this server."""
    if not usable:
        return tr("❌ `{model}` can't be your model: you may use no model on this server.", model=_clip(typed, 100))
    return tr(
        "❌ `{model}` is not a model you may use on this server. You may use {models}. "
        "(`model:{clear}` forgets your preferred model.)",
        model=_clip(typed, 100),
        models=model_listing(usable),
        clear=CLEAR,
    )


def not_saved_answer(reason: str | Text) -> Text:
    """A ``set`` refused for one of its changes: none of the others given with it were saved either."""
    return tr(
        "{reason}\nNothing was saved: correct that and run `/imagine-settings set` again with everything you gave.",
        reason=reason,
    )


RESET_ANSWER = tr("✅ Your preferences and named options are forgotten: `/imagine` uses each server's defaults again.")
NOTHING_TO_RESET = tr("You had no preferences or named options: nothing to forget.")
DM_ANSWER = tr(
    "Use `/imagine-settings` in a server this bot is in: your preferences are the same in all of them, "
    "and the models you may choose are the server's."
)
