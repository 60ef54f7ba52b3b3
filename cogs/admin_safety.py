"""``/imagine-admin safety``, and the age restriction of ``models allow … nsfw:``: what a server allows in its
age-restricted channels (see :mod:`bot.moderation.age_restriction`).

A mixin of :class:`cogs.admin.Admin` (discord.py collects a cog's app commands from its bases too), so its
commands are subcommands of ``/imagine-admin`` and share its permission check.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands

from bot.api.modelref import ModelRef
from bot.discord_app.answers import reply_privately
from bot.discord_app.safety_views import add_nsfw_models, add_safety_fields, checker_answer, checker_state, nsfw_answer
from bot.i18n import tr
from cogs.admin_base import AdminBase

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


class AdminSafety(AdminBase):
    """The age-restricted channels' settings of ``/imagine-admin`` (the group's name is :class:`cogs.admin.Admin`'s)."""

    @app_commands.command(
        name="safety", description="The models' safety checker: off only in age-restricted channels, or on everywhere"
    )
    @app_commands.describe(
        checker="off: off in age-restricted channels only; on (the default): on everywhere; none: show it"
    )
    async def safety(self, interaction: discord.Interaction, checker: Literal["on", "off"] | None = None) -> None:
        """Turn the models' safety checker off in the server's age-restricted channels, or back on everywhere;
        without ``checker``, say where it is on."""
        assert interaction.guild_id is not None  # the cog's check refused DMs
        locale = str(interaction.locale)
        if checker is None:
            config = await self.bot.core.repository.guild_config(interaction.guild_id)
            state = tr("The models' safety checker is {state}.", state=checker_state(config))
            await reply_privately(interaction, state.render(locale))
            return
        off = checker == "off"
        changed = await self.bot.core.repository.set_safety_checker(
            interaction.guild_id, off=off, actor_id=interaction.user.id
        )
        await reply_privately(interaction, checker_answer(off=off, changed=changed).render(locale))

    async def tell_model_nsfw(self, interaction: discord.Interaction, model: ModelRef, nsfw: bool | None) -> None:
        """After ``models allow``: mark the model age-restricted (``nsfw``: ``None`` leaves it as it was) and say so
        in a follow-up (the interaction was answered already)."""
        if nsfw is None or interaction.guild_id is None:
            return
        changed = await self.bot.core.repository.set_model_nsfw(
            interaction.guild_id, str(model), nsfw=nsfw, actor_id=interaction.user.id
        )
        text = nsfw_answer(model, nsfw=nsfw, changed=changed).render(str(interaction.locale))
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    with_nsfw_models = staticmethod(add_nsfw_models)
    """``models list``'s embed with the age-restricted models."""
    with_safety = staticmethod(add_safety_fields)
    """``show``'s embed with the safety checker and the age-restricted models."""
