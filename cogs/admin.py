"""``/imagine-admin``: a server's moderators control models, channels, blocked words, limits, budgets and the mod-log.

Hidden from members without Manage Server (``default_permissions``) and
checked again on every call, since server admins can change who sees a command.
Every change is recorded (who, what, old → new, when) and shown by ``show``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.costs import next_month, parse_cap, usd
from bot.discord_app.modlog import change_text
from bot.modelref import InvalidModelRef, ModelRef
from bot.policy import roles_phrase
from bot.replicate import ApiError
from bot.storage import AuditEntry, Budget, GuildConfig, Limits, Repository, RoleLimits
from bot.usage import (
    COLUMNS,
    DEFAULT_DAYS,
    MAX_DAYS,
    TOP,
    UsageReport,
    aligned,
    figures,
    report_tables,
    report_title,
    usage_report,
)

if TYPE_CHECKING:
    from bot.discord_app.client import ImagineBot

log = logging.getLogger(__name__)

AUTOCOMPLETE_LIMIT = 25
_NO_LIMIT = "no limit"


def _limit(value: int, unit: str = "") -> str:
    return _NO_LIMIT if value == 0 else f"{value}{unit}"


def _cap(amount: int) -> str:
    return "no cap" if amount == 0 else usd(amount)


def _budget_text(budget: Budget) -> str:
    return f"{_cap(budget.monthly)} a month for the server, {_cap(budget.member_daily)} a day per member"


def _usage_embed(report: UsageReport) -> discord.Embed:
    """The report at a glance: figures in code blocks (aligned), members as mentions beside theirs."""
    embed = discord.Embed(title=report_title(report), colour=discord.Colour.blurple())
    for title, lines in report_tables(report, member_name=str).items():
        if title == "Top members":
            # Mentions do not render inside code blocks: each member's figures in inline code, then the member.
            top = report.members[:TOP]
            header, *rows = aligned(("", *COLUMNS), [("", *figures(tally)) for _, tally in top])
            mentions = [f"<@{member}>" if member else "(unknown)" for member, _ in top]
            text = "\n".join([f"`{header}`", *(f"`{row}` {who}" for row, who in zip(rows, mentions, strict=True))])
        else:
            text = "```\n" + "\n".join(lines) + "\n```"
        embed.add_field(name=title, value=text[:1024], inline=False)
    if not report.total.jobs:
        embed.description = "No /imagine jobs in this period."
    return embed


def _mentions(roles: Collection[int]) -> str:
    return ", ".join(f"<@&{role}>" for role in sorted(roles))


def _audit_line(entry: AuditEntry) -> str:
    return f"<t:{int(entry.at.timestamp())}:R> {change_text(entry)}"


def _model_lines(config: GuildConfig, allowed: tuple[ModelRef, ...]) -> list[str]:
    """One line per model, default first, with the roles a model is only for."""
    restricted = {ModelRef.parse(model): roles for model, roles in config.model_roles}
    lines = []
    for index, model in enumerate(allowed):
        roles = restricted.get(model)
        only = f" — only {_mentions(roles)}" if roles else ""
        lines.append(f"`{model}`" + (" (default)" if index == 0 else "") + only)
    return lines


def _limits_text(limits: Limits | RoleLimits) -> str:
    """``cooldown 30 s, 5 images a day, 1 jobs at once``; a limit a role does not set is left out."""
    parts = []
    if limits.cooldown_seconds is not None:
        parts.append(f"cooldown {_limit(limits.cooldown_seconds, ' s')}")
    if limits.daily_images is not None:
        parts.append(f"{_limit(limits.daily_images)} images a day")
    if limits.concurrent_jobs is not None:
        parts.append(f"{_limit(limits.concurrent_jobs)} jobs at once")
    return ", ".join(parts)


def _role_limit_lines(config: GuildConfig) -> list[str]:
    return [f"<@&{limits.role_id}>: {_limits_text(limits)}" for limits in config.role_limits]


async def _reply(
    interaction: discord.Interaction, content: str | None = None, *, embed: discord.Embed | None = None
) -> None:
    """Admin answers are for the moderator only."""
    await interaction.response.send_message(
        content=content,
        embed=embed or discord.utils.MISSING,
        ephemeral=True,
        allowed_mentions=discord.AllowedMentions.none(),
    )


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Admin(commands.GroupCog, group_name="imagine-admin", group_description="Control /imagine on this server"):
    """Moderator settings for ``/imagine``."""

    models = app_commands.Group(name="models", description="Which models members may use")
    channels = app_commands.Group(name="channels", description="Where /imagine may be used")
    words = app_commands.Group(name="words", description="Words blocked in prompts")
    # A group, not one command: discord.py cannot have `log` take options and also have a `log off` subcommand.
    modlog = app_commands.Group(name="log", description="The mod-log: blocked-word refusals and settings changes")

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Manage Server, checked on every call whatever the command's visibility says."""
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        if not interaction.permissions.manage_guild:
            raise app_commands.MissingPermissions(["manage_guild"])
        return True

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.MissingPermissions):
            message = "You need the Manage Server permission to change /imagine settings."
        elif isinstance(error, app_commands.NoPrivateMessage):
            message = "These settings belong to a server: use the command there."
        else:
            log.error("admin command failed", exc_info=error)
            message = "Something went wrong saving that; nothing was changed."
        if interaction.response.is_done():
            await interaction.followup.send(message, ephemeral=True)
        else:
            await interaction.response.send_message(message, ephemeral=True)

    # ------------------------------------------------------------------ helpers

    @property
    def _repository(self) -> Repository:
        return self.bot.core.repository

    @staticmethod
    def _ids(interaction: discord.Interaction) -> tuple[int, int]:
        assert interaction.guild_id is not None  # interaction_check refused DMs
        return interaction.guild_id, interaction.user.id

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

    def _models_embed(self, config: GuildConfig, allowed: tuple[ModelRef, ...]) -> discord.Embed:
        embed = discord.Embed(title="Models", colour=discord.Colour.blurple())
        embed.description = "\n".join(_model_lines(config, allowed))[:4000]
        if not config.models:
            embed.set_footer(text="This server has no list of its own: the bot-wide IMAGINE_MODELS apply.")
        return embed

    # ------------------------------------------------------------------ models

    @models.command(name="allow", description="Allow a model on this server (with a role: only to that role)")
    @app_commands.describe(
        model="owner/name or owner/name:version",
        role="Allow it only to members with this role (several allows add roles); none: to everyone",
    )
    async def models_allow(
        self, interaction: discord.Interaction, model: str, role: discord.Role | None = None
    ) -> None:
        """Add a model to this server's allowlist (checked against the API where it can tell).

        With ``role`` the model is only for members with one of its roles; allowing it without a
        role again opens it to everyone.
        """
        guild_id, actor = self._ids(interaction)
        try:
            ref = ModelRef.parse(model)
        except InvalidModelRef as exc:
            await _reply(interaction, f"❌ {exc}")
            return
        if role is not None and role.is_default():
            await _reply(interaction, "❌ @everyone is every member: leave `role` out to allow a model to everyone.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        client = self.bot.core.client
        try:
            exists = await client.model_exists(ref)
            if exists is False and not await client.model_exists(self.bot.settings.default_model):
                exists = None  # not even the default model is "found": a gateway without model routes
        except ApiError as exc:
            exists = None
            log.warning("could not check model %s: %s", ref, exc)
        if exists is False:
            await interaction.followup.send(
                f"❌ The API has no model `{ref}`. Check the spelling (owner/name).", ephemeral=True
            )
            return
        before = (await self._repository.guild_config(guild_id)).roles_for(str(ref))
        changed = await self._repository.allow_model(
            guild_id, str(ref), actor_id=actor, role_id=role.id if role is not None else None
        )
        config = await self._repository.guild_config(guild_id)
        roles = config.roles_for(str(ref))
        note = "" if exists else " (the API did not say whether it exists; it was added anyway)"
        if not changed:
            text = f"`{ref}` was already allowed" + (f" to {_mentions(roles)}." if roles else " to everyone.")
        elif roles:
            text = f"✅ `{ref}` is now allowed only to members with {roles_phrase(roles)}{note}."
        else:
            was = f" (it was only for {_mentions(before)})" if before else ""
            text = f"✅ `{ref}` is now allowed to everyone{was}{note}."
        if changed and all(config.roles_for(name) for name in config.models):
            text += "\nEvery model on this server's list is only for some roles: members without them can't /imagine."
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    @models.command(name="remove", description="Remove a model from this server's list")
    @app_commands.describe(model="A model on this server's list")
    async def models_remove(self, interaction: discord.Interaction, model: str) -> None:
        """Remove a model; removing the last one falls back to the bot-wide list."""
        guild_id, actor = self._ids(interaction)
        removed = await self._repository.remove_model(guild_id, model.strip(), actor_id=actor)
        if not removed:
            await _reply(interaction, f"`{model}` is not on this server's list.")
            return
        config = await self._repository.guild_config(guild_id)
        tail = "" if config.models else " The list is empty now, so the bot-wide models apply."
        await _reply(interaction, f"✅ `{model}` removed.{tail}")

    @models.command(name="list", description="Show the models members may use here")
    async def models_list(self, interaction: discord.Interaction) -> None:
        """The allowlist, default first."""
        guild_id, _ = self._ids(interaction)
        config = await self._repository.guild_config(guild_id)
        await _reply(interaction, embed=self._models_embed(config, await self.bot.core.policy.allowed_models(guild_id)))

    @models.command(name="default", description="Set the model used when /imagine names none")
    @app_commands.describe(model="One of the allowed models")
    async def models_default(self, interaction: discord.Interaction, model: str) -> None:
        """Set the server's default; it must be an allowed model."""
        guild_id, actor = self._ids(interaction)
        allowed = await self.bot.core.policy.allowed_models(guild_id)
        try:
            ref = ModelRef.parse(model)
        except InvalidModelRef as exc:
            await _reply(interaction, f"❌ {exc}")
            return
        if ref not in allowed:
            names = ", ".join(f"`{m}`" for m in allowed[:10])
            await _reply(interaction, f"❌ `{ref}` is not allowed here; allow it first. Allowed: {names}.")
            return
        changed = await self._repository.set_default_model(guild_id, str(ref), actor_id=actor)
        await _reply(interaction, f"✅ `{ref}` is now the default." if changed else f"`{ref}` already is the default.")

    models_remove.autocomplete("model")(_server_models)
    models_default.autocomplete("model")(_server_models)

    # ------------------------------------------------------------------ channels

    @channels.command(name="allow", description="Allow /imagine in a channel (none listed: everywhere)")
    async def channels_allow(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Add a channel where /imagine may be used."""
        guild_id, actor = self._ids(interaction)
        added = await self._repository.allow_channel(guild_id, channel.id, actor_id=actor)
        text = f"✅ /imagine is allowed in {channel.mention}." if added else f"{channel.mention} was already allowed."
        await _reply(interaction, text)

    @channels.command(name="remove", description="Stop allowing /imagine in a channel")
    async def channels_remove(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Remove a channel; with none left, /imagine works everywhere."""
        guild_id, actor = self._ids(interaction)
        removed = await self._repository.remove_channel(guild_id, channel.id, actor_id=actor)
        if not removed:
            await _reply(interaction, f"{channel.mention} was not on the list.")
            return
        config = await self._repository.guild_config(guild_id)
        tail = "" if config.channels else " No channels are listed now, so /imagine works everywhere."
        await _reply(interaction, f"✅ {channel.mention} removed.{tail}")

    @channels.command(name="list", description="Show where /imagine may be used")
    async def channels_list(self, interaction: discord.Interaction) -> None:
        """The allowed channels."""
        guild_id, _ = self._ids(interaction)
        config = await self._repository.guild_config(guild_id)
        text = ", ".join(f"<#{c}>" for c in sorted(config.channels)) or "Everywhere (no channels listed)."
        await _reply(
            interaction, embed=discord.Embed(title="Channels", description=text, colour=discord.Colour.blurple())
        )

    # ------------------------------------------------------------------ words

    @words.command(name="add", description="Block a word or phrase in prompts")
    async def words_add(self, interaction: discord.Interaction, word: app_commands.Range[str, 1, 100]) -> None:
        """Block a word (matching sees through case, accents, look-alikes, leetspeak and separators)."""
        guild_id, actor = self._ids(interaction)
        added = await self._repository.add_word(guild_id, word, actor_id=actor)
        await _reply(interaction, f"✅ Blocked ||{word.strip()}||." if added else "That word was already blocked.")

    @words.command(name="remove", description="Unblock a word")
    async def words_remove(self, interaction: discord.Interaction, word: app_commands.Range[str, 1, 100]) -> None:
        """Unblock a word."""
        guild_id, actor = self._ids(interaction)
        removed = await self._repository.remove_word(guild_id, word, actor_id=actor)
        await _reply(interaction, f"✅ Unblocked ||{word.strip()}||." if removed else "That word was not blocked.")

    @words.command(name="list", description="Show the blocked words")
    async def words_list(self, interaction: discord.Interaction) -> None:
        """The blocked words, hidden behind spoilers."""
        guild_id, _ = self._ids(interaction)
        config = await self._repository.guild_config(guild_id)
        text = ", ".join(f"||{w}||" for w in config.blocked_words) or "No words are blocked."
        await _reply(interaction, embed=discord.Embed(title="Blocked words", description=text[:4000]))

    # ------------------------------------------------------------------ mod-log

    @modlog.command(name="channel", description="Post blocked-word refusals and settings changes to a channel")
    @app_commands.describe(channel="The mod-log channel (the bot needs to send messages and embeds there)")
    async def log_channel(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Set the mod-log channel; the change itself is its first entry."""
        guild_id, actor = self._ids(interaction)
        changed = await self._repository.set_log_channel(guild_id, channel.id, actor_id=actor)
        text = (
            f"✅ The mod-log goes to {channel.mention}: blocked-word refusals and every settings change."
            if changed
            else f"The mod-log already goes to {channel.mention}."
        )
        me = channel.guild.me
        if me is not None:
            allowed = channel.permissions_for(me)
            if not (allowed.view_channel and allowed.send_messages and allowed.embed_links):
                # Set all the same: the moderator may be about to fix the channel's permissions.
                text += " ⚠️ I can't post there yet: give me View Channel, Send Messages and Embed Links in it."
        await _reply(interaction, text)

    @modlog.command(name="off", description="Stop posting to the mod-log")
    async def log_off(self, interaction: discord.Interaction) -> None:
        """Turn the mod-log off (changes stay recorded and readable in ``show``)."""
        guild_id, actor = self._ids(interaction)
        changed = await self._repository.set_log_channel(guild_id, None, actor_id=actor)
        await _reply(interaction, "✅ The mod-log is off." if changed else "The mod-log was already off.")

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
        if role is not None:
            await self._role_limits(interaction, role, cooldown, daily, concurrent, clear=clear)
            return
        if clear:
            await _reply(interaction, "❌ `clear` forgets a role's limits: name the `role`.")
            return
        if cooldown is None and daily is None and concurrent is None:
            current = (await self._repository.guild_config(guild_id)).limits
            title = "Limits"
        else:
            current = await self._repository.set_limits(
                guild_id, actor_id=actor, cooldown_seconds=cooldown, daily_images=daily, concurrent_jobs=concurrent
            )
            title = "Limits changed"
        embed = discord.Embed(title=title, colour=discord.Colour.blurple())
        embed.add_field(name="Cooldown", value=_limit(current.cooldown_seconds, " s"))
        embed.add_field(name="Images per day", value=_limit(current.daily_images))
        embed.add_field(name="Jobs at once", value=_limit(current.concurrent_jobs))
        roles = _role_limit_lines(await self._repository.guild_config(guild_id))
        if roles:
            embed.add_field(name="Roles (the most generous applies)", value="\n".join(roles)[:1024], inline=False)
        await _reply(interaction, embed=embed)

    @app_commands.command(name="budget", description="Spending caps in US dollars (0: no cap); no option shows spend")
    @app_commands.describe(
        monthly="The server's spend per calendar month (UTC), in US dollars",
        member_daily="Each member's spend per UTC day, in US dollars",
    )
    async def budget(
        self,
        interaction: discord.Interaction,
        monthly: app_commands.Range[float, 0, 1_000_000] | None = None,
        member_daily: app_commands.Range[float, 0, 1_000_000] | None = None,
    ) -> None:
        """Show the caps and this month's spend, or change the caps."""
        guild_id, actor = self._ids(interaction)
        if self.bot.core.pricing.prices:
            unpriced = ""
        else:
            unpriced = "\n⚠️ The bot's owner has set no prices (IMAGINE_PRICES): every job costs nothing."
        if monthly is None and member_daily is None:
            budget, title = await self._repository.budget(guild_id), "Budget"
        else:
            try:
                caps = {
                    name: None if value is None else parse_cap(value)
                    for name, value in (("monthly", monthly), ("member_daily", member_daily))
                }
            except ValueError as exc:
                await _reply(interaction, f"❌ {exc}")
                return
            budget = await self._repository.set_budget(guild_id, actor_id=actor, **caps)
            title = "Budget changed"
        now = self.bot.core.clock.now()
        spend = await self._repository.spend(guild_id, actor, now=now)
        resets = int(next_month(now.date()).timestamp())
        embed = discord.Embed(title=title, colour=discord.Colour.blurple(), description=unpriced.strip() or None)
        embed.add_field(name="Per month (server)", value=_cap(budget.monthly))
        embed.add_field(name="Per day (each member)", value=_cap(budget.member_daily))
        embed.add_field(
            name="Spent this month",
            value=f"{usd(spend.month)}"
            + (f" of {usd(budget.monthly)}" if budget.monthly else "")
            + f", resets <t:{resets}:R>",
            inline=False,
        )
        await _reply(interaction, embed=embed)

    @app_commands.command(name="usage", description="Jobs, predictions, images, failures and spend over the last days")
    @app_commands.describe(days=f"How many days back (1-{MAX_DAYS}, default {DEFAULT_DAYS})")
    async def usage(
        self, interaction: discord.Interaction, days: app_commands.Range[int, 1, MAX_DAYS] = DEFAULT_DAYS
    ) -> None:
        """Totals, top members and models, from the jobs journal."""
        guild_id, _ = self._ids(interaction)
        if not 1 <= days <= MAX_DAYS:
            await _reply(interaction, f"❌ days must be from 1 to {MAX_DAYS}, got {days}.")
            return
        report = await usage_report(self._repository, guild_id, days=days, now=self.bot.core.clock.now())
        await _reply(interaction, embed=_usage_embed(report))

    async def _role_limits(
        self,
        interaction: discord.Interaction,
        role: discord.Role,
        cooldown: int | None,
        daily: int | None,
        concurrent: int | None,
        *,
        clear: bool,
    ) -> None:
        """``limits role:@r``: show, set or (with ``clear``) forget one role's limits."""
        guild_id, actor = self._ids(interaction)
        if role.is_default():
            await _reply(interaction, "❌ @everyone is every member: leave `role` out to set the server's limits.")
            return
        if clear:
            if cooldown is not None or daily is not None or concurrent is not None:
                await _reply(interaction, "❌ `clear` forgets the role's limits: give it without other limits.")
                return
            cleared = await self._repository.clear_role_limits(guild_id, role.id, actor_id=actor)
            text = f"✅ {role.mention} has no limits of its own now." if cleared else f"{role.mention} had none."
            await _reply(interaction, text)
            return
        if cooldown is None and daily is None and concurrent is None:
            config = await self._repository.guild_config(guild_id)
            current = next((r for r in config.role_limits if r.role_id == role.id), RoleLimits(role.id))
        else:
            current = await self._repository.set_role_limits(
                guild_id,
                role.id,
                actor_id=actor,
                cooldown_seconds=cooldown,
                daily_images=daily,
                concurrent_jobs=concurrent,
            )
        server = (await self._repository.guild_config(guild_id)).limits
        own = _limits_text(current) or "none of its own"
        await _reply(
            interaction,
            f"Limits for {role.mention}: {own}.\nThe server's: {_limits_text(server)}. "
            "A member gets the most generous of the server's and their roles' limits (no limit is the most).",
        )

    @app_commands.command(name="show", description="Every /imagine setting of this server")
    async def show(self, interaction: discord.Interaction) -> None:
        """Everything at a glance, with the latest changes."""
        guild_id, _ = self._ids(interaction)
        config = await self._repository.guild_config(guild_id)
        allowed = await self.bot.core.policy.allowed_models(guild_id)
        embed = discord.Embed(title="/imagine settings", colour=discord.Colour.blurple())
        models = "\n".join(_model_lines(config, allowed))
        if not config.models:
            models += "\n*bot-wide list (this server has none of its own)*"
        embed.add_field(name="Models", value=models[:1024], inline=False)
        channels = ", ".join(f"<#{c}>" for c in sorted(config.channels)) or "everywhere"
        embed.add_field(name="Channels", value=channels[:1024], inline=False)
        words = ", ".join(f"||{w}||" for w in config.blocked_words) or "none"
        embed.add_field(name=f"Blocked words ({len(config.blocked_words)})", value=words[:1024], inline=False)
        embed.add_field(name="Limits", value=_limits_text(config.limits), inline=False)
        role_limits = _role_limit_lines(config)
        if role_limits:
            embed.add_field(
                name="Limits per role (most generous applies)", value="\n".join(role_limits)[:1024], inline=False
            )
        log_channel = f"<#{config.log_channel_id}>" if config.log_channel_id is not None else "off"
        embed.add_field(name="Mod-log", value=log_channel, inline=False)
        embed.add_field(name="Budget", value=_budget_text(await self._repository.budget(guild_id)), inline=False)
        entries = await self._repository.audit_log(guild_id, limit=10)
        history = "\n".join(_audit_line(entry) for entry in entries) or "no changes yet"
        embed.add_field(name="Latest changes", value=history[:1024], inline=False)
        await _reply(interaction, embed=embed)


async def setup(bot: ImagineBot) -> None:
    """Load the Admin cog."""
    await bot.add_cog(Admin(bot))
