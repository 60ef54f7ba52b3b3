"""What moderators read about age-restricted channels: the ``safety`` command's answers, the age-restricted models'
marks in ``models list`` and ``show``, the answer to ``models allow … nsfw:``. Texts only; the commands are in
``cogs/admin_safety.py``."""

from __future__ import annotations

import discord

from bot.api.modelref import ModelRef
from bot.i18n import Text, tr
from bot.storage import GuildConfig

FIELD_LIMIT = 1024


def checker_state(config: GuildConfig) -> Text:
    """Where the models' safety checker is on, as ``show`` says it."""
    if config.safety_checker_off:
        return tr("off in age-restricted channels, on everywhere else")
    return tr("on everywhere")


def checker_answer(*, off: bool, changed: bool) -> Text:
    """The answer to ``/imagine-admin safety checker:…``."""
    if off and changed:
        return tr(
            "🔞 The models' safety checker is now off in this server's age-restricted channels, and only there: "
            "everywhere else it stays on, whatever members ask."
        )
    if off:
        return tr("The models' safety checker was already off in this server's age-restricted channels.")
    if changed:
        return tr("✅ The models' safety checker is now on everywhere, age-restricted channels included.")
    return tr("The models' safety checker was already on everywhere.")


def nsfw_answer(model: ModelRef, *, nsfw: bool, changed: bool) -> Text:
    """The answer to ``models allow … nsfw:…`` about the model's age restriction."""
    if nsfw and changed:
        return tr(
            "🔞 `{model}` is now only for age-restricted channels: elsewhere it is refused and not offered, and "
            "its images are attached as spoilers.",
            model=str(model),
        )
    if nsfw:
        return tr("`{model}` was already only for age-restricted channels.", model=str(model))
    if changed:
        return tr("✅ `{model}` is no longer only for age-restricted channels.", model=str(model))
    return tr("`{model}` was not only for age-restricted channels.", model=str(model))


def nsfw_models_text(config: GuildConfig) -> str:
    """The server's age-restricted models, as a list of code spans ("" for none)."""
    return ", ".join(f"`{model}`" for model in config.models if model in config.nsfw_models)


def add_nsfw_models(embed: discord.Embed, config: GuildConfig, locale: str | None) -> discord.Embed:
    """``models list``: a field naming the models only for age-restricted channels, if any."""
    listed = nsfw_models_text(config)
    if listed:
        name = tr("🔞 Only for age-restricted channels").render(locale)
        embed.add_field(name=name, value=listed[:FIELD_LIMIT], inline=False)
    return embed


def add_safety_fields(embed: discord.Embed, config: GuildConfig, locale: str | None) -> discord.Embed:
    """``show``: the safety checker, and the models only for age-restricted channels."""
    embed.add_field(name=tr("Safety checker").render(locale), value=checker_state(config).render(locale), inline=False)
    return add_nsfw_models(embed, config, locale)
