"""``/imagine-admin``: a server's moderators control models, channels, blocked words, limits, budgets and the mod-log.

Hidden from members without Manage Server (``default_permissions``) and
checked again on every call, since server admins can change who sees a command.
Every change is recorded (who, what, old → new, when) and shown by ``show``.
The cog checks, changes and answers; :mod:`bot.discord_app.admin_views` draws the answers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.api.modelref import InvalidModelRef, ModelRef
from bot.base.money import parse_cap
from bot.discord_app.admin_views import (
    bad_cap_answer,
    budget_embed,
    channel_allowed_answer,
    channels_embed,
    default_model_answer,
    fit_embed,
    limits_embed,
    log_channel_answer,
    model_allowed_answer,
    models_embed,
    not_a_model_answer,
    removal_answer,
    role_cleared_answer,
    role_limits_answer,
    settings_embed,
    usage_embed,
    word_answer,
    words_embed,
)
from bot.discord_app.answers import reply_privately
from bot.discord_app.usage_answer import answer_usage, defer_usage
from bot.i18n import tr
from bot.moderation.usage import DEFAULT_DAYS, MAX_DAYS, usage_report
from bot.storage import LimitChanges
from cogs.admin_apikey import ApiKeyCommands, add_key_field
from cogs.admin_base import locale_of as _locale
from cogs.admin_safety import AdminSafety

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

log = logging.getLogger(__name__)

AUTOCOMPLETE_LIMIT = 25
DollarCap = app_commands.Range[float, 0, 1_000_000]
"""A budget cap option, in US dollars (0: no cap; :data:`bot.base.money.MAX_CAP_USD` at most)."""


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Admin(
    ApiKeyCommands, AdminSafety, group_name="imagine-admin", group_description="Control /imagine on this server"
):
    """Moderator settings for ``/imagine``."""

    models = app_commands.Group(name="models", description="Which models members may use")
    channels = app_commands.Group(name="channels", description="Where /imagine may be used")
    words = app_commands.Group(name="words", description="Words blocked in prompts")
    # A group, not one command: discord.py cannot have `log` take options and also have a `log off` subcommand.
    modlog = app_commands.Group(name="log", description="The mod-log: blocked-word refusals and settings changes")

    async def _server_models(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        typed = current.strip().lower()
        models = await self.bot.core.policy.allowed_models(interaction.guild_id)
        return [
            app_commands.Choice(name=str(m), value=str(m))
            for m in models
            if typed in str(m).lower() and len(str(m)) <= 100
        ][:AUTOCOMPLETE_LIMIT]

    # ------------------------------------------------------------------ models

    @models.command(name="allow", description="Allow a model on this server (with a role: only to that role)")
    @app_commands.describe(
        model="owner/name or owner/name:version",
        role="Allow it only to members with this role (several allows add roles); none: to everyone",
        nsfw="True: only for age-restricted channels (refused elsewhere, images as spoilers); False: everywhere",
    )
    async def models_allow(
        self, interaction: discord.Interaction, model: str, role: discord.Role | None = None, nsfw: bool | None = None
    ) -> None:
        """Add a model to this server's allowlist (checked against the API where it can tell).

        With ``role`` the model is only for members with one of its roles; allowing it without a
        role again opens it to everyone.
        """
        guild_id, actor = self._ids(interaction)
        try:
            ref = ModelRef.parse(model)
        except InvalidModelRef:
            await self._say(interaction, not_a_model_answer(model))
            return
        if role is not None and role.is_default():
            await self._say(
                interaction, tr("❌ @everyone is every member: leave `role` out to allow a model to everyone.")
            )
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        exists = await self.bot.core.client.model_known(ref, known=self.bot.settings.default_model)
        if exists is False:
            unknown = tr("❌ The API has no model `{model}`. Check the spelling (owner/name).", model=ref)
            await interaction.followup.send(unknown.render(_locale(interaction)), ephemeral=True)
            return
        before = (await self._repository.guild_config(guild_id)).roles_for(str(ref))
        changed = await self._repository.allow_model(
            guild_id, str(ref), actor_id=actor, role_id=role.id if role is not None else None
        )
        config = await self._repository.guild_config(guild_id)
        text = model_allowed_answer(ref, config, was_for=before, changed=changed, exists=exists)
        await interaction.followup.send(
            text.render(_locale(interaction)), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )
        await self.tell_model_nsfw(interaction, ref, nsfw)

    @models.command(name="remove", description="Remove a model from this server's list")
    @app_commands.describe(model="A model on this server's list")
    async def models_remove(self, interaction: discord.Interaction, model: str) -> None:
        """Remove a model; removing the last one falls back to the bot-wide list."""
        guild_id, actor = self._ids(interaction)
        removed = await self._repository.remove_model(guild_id, model.strip(), actor_id=actor)
        left = bool((await self._repository.guild_config(guild_id)).models)
        await self._say(interaction, removal_answer("models", f"`{model}`", removed=removed, left=left))

    @models.command(name="list", description="Show the models members may use here")
    async def models_list(self, interaction: discord.Interaction) -> None:
        """The allowlist, default first."""
        guild_id, _ = self._ids(interaction)
        config, allowed = (
            await self._repository.guild_config(guild_id),
            await self.bot.core.policy.allowed_models(guild_id),
        )
        embed = models_embed(config, allowed, locale=_locale(interaction))
        await reply_privately(interaction, embed=self.with_nsfw_models(embed, config, _locale(interaction)))

    @models.command(name="default", description="Set the model used when /imagine names none")
    @app_commands.describe(model="One of the allowed models")
    async def models_default(self, interaction: discord.Interaction, model: str) -> None:
        """Set the server's default; it must be an allowed model."""
        guild_id, actor = self._ids(interaction)
        allowed = await self.bot.core.policy.allowed_models(guild_id)
        try:
            ref = ModelRef.parse(model)
        except InvalidModelRef:
            await self._say(interaction, not_a_model_answer(model))
            return
        if ref not in allowed:
            names = ", ".join(f"`{m}`" for m in allowed[:10])
            refusal = tr(
                "❌ `{model}` is not allowed here; allow it first. Allowed: {models}.", model=ref, models=names
            )
            await self._say(interaction, refusal)
            return
        changed = await self._repository.set_default_model(guild_id, str(ref), actor_id=actor)
        await self._say(interaction, default_model_answer(ref, changed=changed))

    models_remove.autocomplete("model")(_server_models)
    models_default.autocomplete("model")(_server_models)

    # ------------------------------------------------------------------ channels

    @channels.command(name="allow", description="Allow /imagine in a channel (none listed: everywhere)")
    @app_commands.describe(channel="The channel where /imagine may be used (its threads too)")
    async def channels_allow(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Add a channel where /imagine may be used."""
        guild_id, actor = self._ids(interaction)
        added = await self._repository.allow_channel(guild_id, channel.id, actor_id=actor)
        await self._say(interaction, channel_allowed_answer(channel.mention, added=added))

    @channels.command(name="remove", description="Stop allowing /imagine in a channel")
    @app_commands.describe(channel="A channel on the list")
    async def channels_remove(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Remove a channel; with none left, /imagine works everywhere."""
        guild_id, actor = self._ids(interaction)
        removed = await self._repository.remove_channel(guild_id, channel.id, actor_id=actor)
        left = bool((await self._repository.guild_config(guild_id)).channels)
        await self._say(interaction, removal_answer("channels", channel.mention, removed=removed, left=left))

    @channels.command(name="list", description="Show where /imagine may be used")
    async def channels_list(self, interaction: discord.Interaction) -> None:
        """The allowed channels."""
        guild_id, _ = self._ids(interaction)
        config = await self._repository.guild_config(guild_id)
        await reply_privately(interaction, embed=channels_embed(config, locale=_locale(interaction)))

    # ------------------------------------------------------------------ words

    @words.command(name="add", description="Block a word or phrase in prompts")
    @app_commands.describe(word="The word or phrase (any case, accents and look-alike letters match it too)")
    async def words_add(self, interaction: discord.Interaction, word: app_commands.Range[str, 1, 100]) -> None:
        """Block a word (matching sees through case, accents, look-alikes, leetspeak and separators)."""
        guild_id, actor = self._ids(interaction)
        added = await self._repository.add_word(guild_id, word, actor_id=actor)
        await self._say(interaction, word_answer(word, blocked=True, changed=added))

    @words.command(name="remove", description="Unblock a word")
    @app_commands.describe(word="A blocked word")
    async def words_remove(self, interaction: discord.Interaction, word: app_commands.Range[str, 1, 100]) -> None:
        """Unblock a word."""
        guild_id, actor = self._ids(interaction)
        removed = await self._repository.remove_word(guild_id, word, actor_id=actor)
        await self._say(interaction, word_answer(word, blocked=False, changed=removed))

    @words.command(name="list", description="Show the blocked words")
    async def words_list(self, interaction: discord.Interaction) -> None:
        """The blocked words, hidden behind spoilers."""
        guild_id, _ = self._ids(interaction)
        config = await self._repository.guild_config(guild_id)
        await reply_privately(interaction, embed=words_embed(config, locale=_locale(interaction)))

    # ------------------------------------------------------------------ mod-log

    @modlog.command(name="channel", description="Post blocked-word refusals and settings changes to a channel")
    @app_commands.describe(channel="The mod-log channel (the bot needs to send messages and embeds there)")
    async def log_channel(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Set the mod-log channel; the change itself is its first entry."""
        guild_id, actor = self._ids(interaction)
        changed = await self._repository.set_log_channel(guild_id, channel.id, actor_id=actor)
        me = channel.guild.me
        allowed = channel.permissions_for(me) if me is not None else None
        # Set all the same where the bot cannot post: the moderator may be about to fix the channel's permissions.
        can_post = allowed is None or (allowed.view_channel and allowed.send_messages and allowed.embed_links)
        await self._say(interaction, log_channel_answer(channel.mention, changed=changed, can_post=can_post))

    @modlog.command(name="off", description="Stop posting to the mod-log")
    async def log_off(self, interaction: discord.Interaction) -> None:
        """Turn the mod-log off (changes stay recorded and readable in ``show``)."""
        guild_id, actor = self._ids(interaction)
        changed = await self._repository.set_log_channel(guild_id, None, actor_id=actor)
        await self._say(interaction, tr("✅ The mod-log is off.") if changed else tr("The mod-log was already off."))

    # ------------------------------------------------------------------ limits and show

    @app_commands.command(name="limits", description="Per-member limits (0: no limit); no option shows them")
    @app_commands.describe(
        cooldown="Seconds a member waits between requests",
        daily="Images a member may make per UTC day",
        concurrent="Jobs a member may have going at once",
        role="Set these for members with this role (a member gets the most generous of the server's and roles')",
        clear="With role: forget that role's limits",
    )
    async def limits(
        self,
        interaction: discord.Interaction,
        cooldown: app_commands.Range[int, 0, 86_400] | None = None,
        daily: app_commands.Range[int, 0, 10_000] | None = None,
        concurrent: app_commands.Range[int, 0, 100] | None = None,
        role: discord.Role | None = None,
        clear: bool = False,
    ) -> None:
        """Show or change the per-member limits, the server's or one role's."""
        guild_id, actor = self._ids(interaction)
        changes = LimitChanges(cooldown_seconds=cooldown, daily_images=daily, concurrent_jobs=concurrent)
        if role is not None:
            await self._role_limits(interaction, role, changes, clear=clear)
            return
        if clear:
            await self._say(interaction, tr("❌ `clear` forgets a role's limits: name the `role`."))
            return
        if changes == LimitChanges():
            current, title = (await self._repository.guild_config(guild_id)).limits, tr("Limits")
        else:
            current = await self._repository.set_limits(guild_id, changes, actor_id=actor)
            title = tr("Limits changed")
        config = await self._repository.guild_config(guild_id)
        await reply_privately(interaction, embed=limits_embed(title, current, config, locale=_locale(interaction)))

    @app_commands.command(name="budget", description="Spending caps in US dollars (0: no cap); no option shows spend")
    @app_commands.describe(
        monthly="The server's spend per calendar month (UTC), in US dollars",
        member_daily="Each member's spend per UTC day, in US dollars",
    )
    async def budget(
        self,
        interaction: discord.Interaction,
        monthly: DollarCap | None = None,
        member_daily: DollarCap | None = None,
    ) -> None:
        """Show the caps and this month's spend, or change the caps."""
        guild_id, actor = self._ids(interaction)
        if monthly is None and member_daily is None:
            budget, title = await self._repository.budget(guild_id), tr("Budget")
        else:
            try:
                caps = {
                    name: None if value is None else parse_cap(value)
                    for name, value in (("monthly", monthly), ("member_daily", member_daily))
                }
            except ValueError:
                await self._say(interaction, bad_cap_answer(monthly, member_daily))
                return
            budget = await self._repository.set_budget(guild_id, actor_id=actor, **caps)
            title = tr("Budget changed")
        now = self.bot.core.clock.now()
        spend = await self._repository.spend(guild_id, None, now=now)
        priced = bool(self.bot.core.pricing.prices)
        embed = budget_embed(title, budget, spend, now, priced=priced, locale=_locale(interaction))
        await reply_privately(interaction, embed=embed)

    @app_commands.command(name="usage", description="Jobs, predictions, images, failures and spend over the last days")
    @app_commands.describe(days=f"How many days back (1-{MAX_DAYS}, default {DEFAULT_DAYS})")
    async def usage(
        self, interaction: discord.Interaction, days: app_commands.Range[int, 1, MAX_DAYS] = DEFAULT_DAYS
    ) -> None:
        """Totals, top members and models, from the jobs journal."""
        guild_id, _ = self._ids(interaction)
        if not 1 <= days <= MAX_DAYS:
            await self._say(
                interaction, tr("❌ `days` goes from 1 to {most}; you gave {days}.", most=MAX_DAYS, days=days)
            )
            return
        await defer_usage(interaction)
        report = await usage_report(self._repository, guild_id, days=days, now=self.bot.core.clock.now())
        await answer_usage(interaction, report, usage_embed(report, locale=_locale(interaction)))

    async def _role_limits(
        self, interaction: discord.Interaction, role: discord.Role, changes: LimitChanges, *, clear: bool
    ) -> None:
        """``limits role:@r``: show, set or (with ``clear``) forget one role's limits."""
        guild_id, actor = self._ids(interaction)
        if role.is_default():
            await self._say(
                interaction, tr("❌ @everyone is every member: leave `role` out to set the server's limits.")
            )
            return
        if clear:
            if changes != LimitChanges():
                await self._say(interaction, tr("❌ `clear` forgets the role's limits: give it without other limits."))
                return
            cleared = await self._repository.clear_role_limits(guild_id, role.id, actor_id=actor)
            await self._say(interaction, role_cleared_answer(role.mention, cleared=cleared))
            return
        if changes == LimitChanges():
            current = (await self._repository.guild_config(guild_id)).limits_of_role(role.id)
        else:
            current = await self._repository.set_role_limits(guild_id, role.id, changes, actor_id=actor)
        server = (await self._repository.guild_config(guild_id)).limits
        await self._say(interaction, role_limits_answer(role.mention, current, server))

    @app_commands.command(name="show", description="Every /imagine setting of this server")
    async def show(self, interaction: discord.Interaction) -> None:
        """Everything at a glance, with the latest changes."""
        guild_id, _ = self._ids(interaction)
        config = await self._repository.guild_config(guild_id)
        allowed = await self.bot.core.policy.allowed_models(guild_id)
        budget = await self._repository.budget(guild_id)
        changes = await self._repository.audit_log(guild_id, limit=10)
        embed = settings_embed(config, allowed, budget, changes, locale=_locale(interaction))
        embed = self.with_safety(embed, config, _locale(interaction))
        await add_key_field(self.bot, embed, guild_id, _locale(interaction))
        await reply_privately(interaction, embed=fit_embed(embed))


async def setup(bot: ImagineBot) -> None:
    """Load the Admin cog."""
    await bot.add_cog(Admin(bot))
