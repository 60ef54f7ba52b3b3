"""How ``/imagine-admin`` answers look: a server's settings, limits, budget and usage as embeds and lines.

Pure rendering from the repository's records and the usage report; the cog fetches, decides and answers.
Roles, channels and members appear as mentions (the cog answers with no one pinged).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Literal

import discord

from bot.api.modelref import ModelRef
from bot.base.money import cap_text, next_month, usd
from bot.discord_app.modlog import change_text
from bot.moderation.policy import role_mentions, roles_phrase
from bot.moderation.usage import COLUMNS, TOP, UsageReport, aligned, figures, report_tables, report_title
from bot.storage import AuditEntry, Budget, GuildConfig, Limits, RoleLimits, Spend

NO_LIMIT = "no limit"
FIELD_LIMIT = 1024
"""Discord's longest embed field value."""
DESCRIPTION_LIMIT = 4000
"""Kept under Discord's 4096 for an embed description."""


def limit_text(value: int, unit: str = "") -> str:
    """One limit as members read it: ``30 s``, or ``no limit`` for 0."""
    return NO_LIMIT if value == 0 else f"{value}{unit}"


def budget_text(budget: Budget) -> str:
    """Both caps on one line."""
    return f"{cap_text(budget.monthly)} a month for the server, {cap_text(budget.member_daily)} a day per member"


def audit_line(entry: AuditEntry) -> str:
    """One recorded change, with how long ago it was made."""
    return f"<t:{int(entry.at.timestamp())}:R> {change_text(entry)}"


def model_lines(config: GuildConfig, allowed: tuple[ModelRef, ...]) -> list[str]:
    """One line per model, default first, with the roles a model is only for."""
    restricted = {ModelRef.parse(model): roles for model, roles in config.model_roles}
    lines = []
    for index, model in enumerate(allowed):
        roles = restricted.get(model)
        only = f" — only {role_mentions(roles)}" if roles else ""
        lines.append(f"`{model}`" + (" (default)" if index == 0 else "") + only)
    return lines


def limits_text(limits: Limits | RoleLimits) -> str:
    """``cooldown 30 s, 5 images a day, 1 jobs at once``; a limit a role does not set is left out."""
    shown = (
        ("cooldown {}", limits.cooldown_seconds, " s"),
        ("{} images a day", limits.daily_images, ""),
        ("{} jobs at once", limits.concurrent_jobs, ""),
    )
    return ", ".join(text.format(limit_text(value, unit)) for text, value, unit in shown if value is not None)


def role_limit_lines(config: GuildConfig) -> list[str]:
    """One line per role with limits of its own."""
    return [f"{role_mentions([limits.role_id])}: {limits_text(limits)}" for limits in config.role_limits]


def model_allowed_answer(
    model: ModelRef, config: GuildConfig, *, was_for: Collection[int], changed: bool, exists: bool | None
) -> str:
    """The answer to ``models allow``: who may use ``model`` now (``config`` is after the change, ``was_for`` its
    roles before), and whether the API knew it."""
    roles = config.roles_for(str(model))
    note = "" if exists else " (the API did not say whether it exists; it was added anyway)"
    if not changed:
        text = f"`{model}` was already allowed" + (f" to {role_mentions(roles)}." if roles else " to everyone.")
    elif roles:
        text = f"✅ `{model}` is now allowed only to members with {roles_phrase(roles)}{note}."
    else:
        was = f" (it was only for {role_mentions(was_for)})" if was_for else ""
        text = f"✅ `{model}` is now allowed to everyone{was}{note}."
    if changed and config.every_model_restricted():
        text += "\nEvery model on this server's list is only for some roles: members without them can't /imagine."
    return text


_REMOVALS = {
    "models": ("is not on this server's list.", "The list is empty now, so the bot-wide models apply."),
    "channels": ("was not on the list.", "No channels are listed now, so /imagine works everywhere."),
}
"""Per list a moderator removes from: what it says when the entry was not there, and once the list is empty."""


def removal_answer(kind: Literal["models", "channels"], name: str, *, removed: bool, left: bool) -> str:
    """The answer to removing ``name`` from the ``kind`` list, given whether the list still has entries."""
    absent, emptied = _REMOVALS[kind]
    if not removed:
        return f"{name} {absent}"
    return f"✅ {name} removed." + ("" if left else f" {emptied}")


def log_channel_answer(mention: str, *, changed: bool, can_post: bool) -> str:
    """The answer to setting the mod-log channel, with what the bot lacks there if it cannot post."""
    text = (
        f"✅ The mod-log goes to {mention}: blocked-word refusals and every settings change."
        if changed
        else f"The mod-log already goes to {mention}."
    )
    if not can_post:
        text += " ⚠️ I can't post there yet: give me View Channel, Send Messages and Embed Links in it."
    return text


def role_limits_answer(role_mention: str, own: RoleLimits, server: Limits) -> str:
    """One role's limits beside the server's, and how a member's are worked out from them."""
    return (
        f"Limits for {role_mention}: {limits_text(own) or 'none of its own'}.\n"
        f"The server's: {limits_text(server)}. "
        "A member gets the most generous of the server's and their roles' limits (no limit is the most)."
    )


def models_embed(config: GuildConfig, allowed: tuple[ModelRef, ...]) -> discord.Embed:
    """``models list``: the models members may use, default first."""
    embed = discord.Embed(title="Models", colour=discord.Colour.blurple())
    embed.description = "\n".join(model_lines(config, allowed))[:DESCRIPTION_LIMIT]
    if not config.models:
        embed.set_footer(text="This server has no list of its own: the bot-wide IMAGINE_MODELS apply.")
    return embed


def channels_embed(config: GuildConfig) -> discord.Embed:
    """``channels list``: where ``/imagine`` may be used."""
    text = ", ".join(f"<#{c}>" for c in sorted(config.channels)) or "Everywhere (no channels listed)."
    return discord.Embed(title="Channels", description=text, colour=discord.Colour.blurple())


def words_embed(config: GuildConfig) -> discord.Embed:
    """``words list``: the blocked words, hidden behind spoilers."""
    text = ", ".join(f"||{w}||" for w in config.blocked_words) or "No words are blocked."
    return discord.Embed(title="Blocked words", description=text[:DESCRIPTION_LIMIT])


def limits_embed(title: str, limits: Limits, config: GuildConfig) -> discord.Embed:
    """The server's per-member limits, one field each, then the roles' own."""
    embed = discord.Embed(title=title, colour=discord.Colour.blurple())
    embed.add_field(name="Cooldown", value=limit_text(limits.cooldown_seconds, " s"))
    embed.add_field(name="Images per day", value=limit_text(limits.daily_images))
    embed.add_field(name="Jobs at once", value=limit_text(limits.concurrent_jobs))
    roles = role_limit_lines(config)
    if roles:
        embed.add_field(name="Roles (the most generous applies)", value="\n".join(roles)[:FIELD_LIMIT], inline=False)
    return embed


def budget_embed(title: str, budget: Budget, spend: Spend, now: datetime, *, priced: bool) -> discord.Embed:
    """The caps and this month's spend, with when it resets; a warning when no job can cost anything."""
    unpriced = None if priced else "⚠️ The bot's owner has set no prices (IMAGINE_PRICES): every job costs nothing."
    resets = int(next_month(now.date()).timestamp())
    embed = discord.Embed(title=title, colour=discord.Colour.blurple(), description=unpriced)
    embed.add_field(name="Per month (server)", value=cap_text(budget.monthly))
    embed.add_field(name="Per day (each member)", value=cap_text(budget.member_daily))
    embed.add_field(
        name="Spent this month",
        value=f"{usd(spend.month)}"
        + (f" of {usd(budget.monthly)}" if budget.monthly else "")
        + f", resets <t:{resets}:R>",
        inline=False,
    )
    return embed


def usage_embed(report: UsageReport) -> discord.Embed:
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
        embed.add_field(name=title, value=text[:FIELD_LIMIT], inline=False)
    if not report.total.jobs:
        embed.description = "No /imagine jobs in this period."
    return embed


def settings_embed(
    config: GuildConfig, allowed: tuple[ModelRef, ...], budget: Budget, changes: Sequence[AuditEntry]
) -> discord.Embed:
    """``show``: every setting of the server at a glance, with its latest changes (newest first)."""
    embed = discord.Embed(title="/imagine settings", colour=discord.Colour.blurple())
    models = "\n".join(model_lines(config, allowed))
    if not config.models:
        models += "\n*bot-wide list (this server has none of its own)*"
    embed.add_field(name="Models", value=models[:FIELD_LIMIT], inline=False)
    channels = ", ".join(f"<#{c}>" for c in sorted(config.channels)) or "everywhere"
    embed.add_field(name="Channels", value=channels[:FIELD_LIMIT], inline=False)
    words = ", ".join(f"||{w}||" for w in config.blocked_words) or "none"
    embed.add_field(name=f"Blocked words ({len(config.blocked_words)})", value=words[:FIELD_LIMIT], inline=False)
    embed.add_field(name="Limits", value=limits_text(config.limits), inline=False)
    role_limits = role_limit_lines(config)
    if role_limits:
        embed.add_field(
            name="Limits per role (most generous applies)", value="\n".join(role_limits)[:FIELD_LIMIT], inline=False
        )
    log_channel = f"<#{config.log_channel_id}>" if config.log_channel_id is not None else "off"
    embed.add_field(name="Mod-log", value=log_channel, inline=False)
    embed.add_field(name="Budget", value=budget_text(budget), inline=False)
    history = "\n".join(audit_line(entry) for entry in changes) or "no changes yet"
    embed.add_field(name="Latest changes", value=history[:FIELD_LIMIT], inline=False)
    return embed
