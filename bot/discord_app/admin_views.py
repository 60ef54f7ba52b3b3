"""How ``/imagine-admin`` answers look: a server's settings, limits, budget and usage as embeds and lines.

Pure rendering from the repository's records and the usage report; the cog fetches, decides and answers.
Roles, channels and members appear as mentions (the cog answers with no one pinged).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Literal

import discord

from bot.api.modelref import ModelRef
from bot.base.money import MAX_CAP_USD, next_month, parse_cap, usd
from bot.discord_app.modlog import change_text
from bot.discord_app.setting_texts import budget_text, limits_text
from bot.i18n import Text, joined, tr
from bot.moderation.policy import role_mentions
from bot.moderation.usage import (
    TOP,
    TOP_MEMBERS,
    UsageReport,
    aligned,
    column_names,
    figures,
    report_tables,
    report_title,
)
from bot.storage import AuditEntry, Budget, GuildConfig, Limits, RoleLimits, Spend

FIELD_LIMIT = 1024
"""Discord's longest embed field value."""
DESCRIPTION_LIMIT = 4000
"""Kept under Discord's 4096 for an embed description."""


def limit_text(value: int) -> Text:
    """One limit's value as moderators read it: ``5``, or ``no limit`` for 0."""
    return tr("no limit") if value == 0 else joined([str(value)])


def cooldown_value(seconds: int) -> Text:
    """The cooldown's value on its own: ``30 s`` or ``no cooldown``."""
    return tr("no cooldown") if seconds == 0 else tr("{seconds} s", seconds=seconds)


def cap_value(amount: int) -> Text:
    """A cap's value on its own: ``$50.00`` or ``no cap``."""
    return tr("no cap") if amount == 0 else joined([usd(amount)])


def audit_line(entry: AuditEntry) -> Text:
    """One recorded change, with how long ago it was made."""
    return joined([f"<t:{int(entry.at.timestamp())}:R>", change_text(entry)], " ")


def model_lines(config: GuildConfig, allowed: tuple[ModelRef, ...]) -> list[Text]:
    """One line per model, default first, with the roles a model is only for."""
    restricted = {ModelRef.parse(model): roles for model, roles in config.model_roles}
    lines: list[Text] = []
    for index, model in enumerate(allowed):
        roles = restricted.get(model)
        name = tr("`{model}` (default)", model=model) if index == 0 else joined([f"`{model}`"])
        only = [tr("only {roles}", roles=role_mentions(roles))] if roles else []
        lines.append(joined([name, *only], " — "))
    return lines


def role_limit_lines(config: GuildConfig) -> list[Text]:
    """One line per role with limits of its own."""
    return [joined([role_mentions([limits.role_id]), limits_text(limits)], " — ") for limits in config.role_limits]


def model_allowed_answer(
    model: ModelRef, config: GuildConfig, *, was_for: Collection[int], changed: bool, exists: bool | None
) -> Text:
    """The answer to ``models allow``: who may use ``model`` now (``config`` is after the change, ``was_for`` its
    roles before), and whether the API knew it."""
    roles = config.roles_for(str(model))
    mentions = role_mentions(roles)
    parts: list[Text] = []
    if not changed:
        parts.append(
            tr("`{model}` was already allowed to {roles}.", model=model, roles=mentions)
            if roles
            else tr("`{model}` was already allowed to everyone.", model=model)
        )
    elif len(roles) == 1:
        parts.append(
            tr("✅ `{model}` is now allowed only to members with the {role} role.", model=model, role=mentions)
        )
    elif roles:
        parts.append(
            tr(
                "✅ `{model}` is now allowed only to members with one of the roles {roles}.",
                model=model,
                roles=mentions,
            )
        )
    elif was_for:
        parts.append(
            tr(
                "✅ `{model}` is now allowed to everyone (it was only for {roles}).",
                model=model,
                roles=role_mentions(was_for),
            )
        )
    else:
        parts.append(tr("✅ `{model}` is now allowed to everyone.", model=model))
    if changed and not exists:
        parts.append(joined([" ", tr("The API did not say whether it exists; it was added anyway.")]))
    if changed and config.every_model_restricted():
        parts.append(
            joined(
                [
                    "\n",
                    tr(
                        "Every model on this server's list is only for some roles: "
                        "members without them can't use /imagine."
                    ),
                ]
            )
        )
    return joined(parts)


def removal_answer(kind: Literal["models", "channels"], name: str, *, removed: bool, left: bool) -> Text:
    """The answer to removing ``name`` from the ``kind`` list, given whether the list still has entries."""
    if not removed:
        if kind == "models":
            return tr("{name} is not on this server's list.", name=name)
        return tr("{name} was not on the list.", name=name)
    if left:
        return tr("✅ {name} removed.", name=name)
    if kind == "models":
        return tr("✅ {name} removed. The list is empty now, so the bot-wide models apply.", name=name)
    return tr("✅ {name} removed. No channels are listed now, so /imagine works everywhere.", name=name)


def not_a_model_answer(model: str) -> Text:
    """The answer to a ``model`` that is no model reference."""
    shown = model.strip() if len(model.strip()) <= 80 else model.strip()[:77] + "..."
    return tr(
        "❌ `{model}` is not a model reference: write owner/name or owner/name:version (for example {example}).",
        model=discord.utils.escape_markdown(shown).replace("`", "'"),
        example="`black-forest-labs/flux-schnell`",
    )


def bad_cap_answer(*caps: float | None) -> Text:
    """The answer to caps :func:`~bot.base.money.parse_cap` refused: the first one out of range, said in dollars."""
    for cap in caps:
        if cap is None:
            continue
        try:
            parse_cap(cap)
        except ValueError:
            amount = format(Decimal(str(cap)).normalize(), "f")
            if cap > MAX_CAP_USD:
                largest = f"{MAX_CAP_USD:f}"
                return tr(
                    "❌ {amount} dollars is more than the largest cap, {largest} dollars; 0 means no cap.",
                    amount=amount,
                    largest=largest,
                )
            return tr("❌ {amount} dollars is less than the smallest cap, $0.000001; 0 means no cap.", amount=amount)
    return tr("❌ A cap goes from $0.000001 to $1,000,000; 0 means no cap.")


def default_model_answer(model: ModelRef, *, changed: bool) -> Text:
    """The answer to ``models default``."""
    return (
        tr("✅ `{model}` is now the default.", model=model)
        if changed
        else tr("`{model}` already is the default.", model=model)
    )


def channel_allowed_answer(mention: str, *, added: bool) -> Text:
    """The answer to ``channels allow``."""
    if added:
        return tr("✅ /imagine is allowed in {channel}.", channel=mention)
    return tr("{channel} was already allowed.", channel=mention)


def word_answer(word: str, *, blocked: bool, changed: bool) -> Text:
    """The answer to ``words add`` (``blocked``) or ``words remove``; the word behind a spoiler."""
    hidden = f"||{word.strip()}||"
    if blocked:
        return tr("✅ Blocked {word}.", word=hidden) if changed else tr("That word was already blocked.")
    return tr("✅ Unblocked {word}.", word=hidden) if changed else tr("That word was not blocked.")


def role_cleared_answer(mention: str, *, cleared: bool) -> Text:
    """The answer to ``limits role:@r clear:True``."""
    if cleared:
        return tr("✅ {role} has no limits of its own now.", role=mention)
    return tr("{role} had no limits of its own.", role=mention)


def log_channel_answer(mention: str, *, changed: bool, can_post: bool) -> Text:
    """The answer to setting the mod-log channel, with what the bot lacks there if it cannot post."""
    text = (
        tr("✅ The mod-log goes to {channel}: blocked-word refusals and every settings change.", channel=mention)
        if changed
        else tr("The mod-log already goes to {channel}.", channel=mention)
    )
    if not can_post:
        warning = tr("⚠️ I can't post there yet: give me View Channel, Send Messages and Embed Links in it.")
        return joined([text, warning], " ")
    return text


def role_limits_answer(role_mention: str, own: RoleLimits, server: Limits) -> Text:
    """One role's limits beside the server's, and how a member's are worked out from them."""
    own_text = limits_text(own)
    return joined(
        [
            tr("**Limits for {role}**", role=role_mention),
            own_text if own_text.parts else tr("none of its own"),
            tr("**The server's limits**"),
            limits_text(server),
            tr(
                "A member gets the most generous of the server's and their roles' limits "
                "(no limit is the most generous)."
            ),
        ],
        "\n",
    )


def lines(texts: Sequence[Text], locale: str | None, separator: str = "\n") -> str:
    """Texts rendered in ``locale``, one per line (or with ``separator`` between them)."""
    return separator.join(text.render(locale) for text in texts)


def models_embed(config: GuildConfig, allowed: tuple[ModelRef, ...], *, locale: str | None = None) -> discord.Embed:
    """``models list``: the models members may use, default first."""
    embed = discord.Embed(title=tr("Models").render(locale), colour=discord.Colour.blurple())
    embed.description = lines(model_lines(config, allowed), locale)[:DESCRIPTION_LIMIT]
    if not config.models:
        footer = tr("This server has no list of its own: the bot-wide IMAGINE_MODELS apply.")
        embed.set_footer(text=footer.render(locale))
    return embed


def channels_embed(config: GuildConfig, *, locale: str | None = None) -> discord.Embed:
    """``channels list``: where ``/imagine`` may be used."""
    text = ", ".join(f"<#{c}>" for c in sorted(config.channels)) or tr("Everywhere (no channels listed).").render(
        locale
    )
    return discord.Embed(title=tr("Channels").render(locale), description=text, colour=discord.Colour.blurple())


def words_embed(config: GuildConfig, *, locale: str | None = None) -> discord.Embed:
    """``words list``: the blocked words, hidden behind spoilers."""
    text = ", ".join(f"||{w}||" for w in config.blocked_words) or tr("No words are blocked.").render(locale)
    return discord.Embed(title=tr("Blocked words").render(locale), description=text[:DESCRIPTION_LIMIT])


def limits_embed(title: Text, limits: Limits, config: GuildConfig, *, locale: str | None = None) -> discord.Embed:
    """The server's per-member limits, one field each, then the roles' own."""
    embed = discord.Embed(title=title.render(locale), colour=discord.Colour.blurple())
    embed.add_field(name=tr("Cooldown").render(locale), value=cooldown_value(limits.cooldown_seconds).render(locale))
    embed.add_field(
        name=tr("Images per member per day").render(locale), value=limit_text(limits.daily_images).render(locale)
    )
    embed.add_field(name=tr("Jobs at once").render(locale), value=limit_text(limits.concurrent_jobs).render(locale))
    roles = role_limit_lines(config)
    if roles:
        embed.add_field(
            name=tr("Roles (the most generous applies)").render(locale),
            value=lines(roles, locale)[:FIELD_LIMIT],
            inline=False,
        )
    return embed


def budget_embed(
    title: Text, budget: Budget, spend: Spend, now: datetime, *, priced: bool, locale: str | None = None
) -> discord.Embed:
    """The caps and this month's spend, with when it resets; a warning when no job can cost anything."""
    unpriced = tr("⚠️ The bot's owner has set no prices (IMAGINE_PRICES): every job costs nothing.")
    resets = f"<t:{int(next_month(now.date()).timestamp())}:R>"
    embed = discord.Embed(
        title=title.render(locale),
        colour=discord.Colour.blurple(),
        description=None if priced else unpriced.render(locale),
    )
    embed.add_field(name=tr("Monthly cap (server)").render(locale), value=cap_value(budget.monthly).render(locale))
    embed.add_field(
        name=tr("Daily cap (each member)").render(locale), value=cap_value(budget.member_daily).render(locale)
    )
    spent = (
        tr("{spent} of {cap}, resets {when}", spent=usd(spend.month), cap=usd(budget.monthly), when=resets)
        if budget.monthly
        else tr("{spent}, resets {when}", spent=usd(spend.month), when=resets)
    )
    embed.add_field(name=tr("Spent this month").render(locale), value=spent.render(locale), inline=False)
    return embed


def usage_embed(report: UsageReport, *, locale: str | None = None) -> discord.Embed:
    """The report at a glance: figures in code blocks (aligned), members as mentions beside theirs."""
    embed = discord.Embed(title=report_title(report).render(locale), colour=discord.Colour.blurple())
    top_members = TOP_MEMBERS.render(locale)
    for title, table in report_tables(report, member_name=str, locale=locale).items():
        if title == top_members:
            # Mentions do not render inside code blocks: each member's figures in inline code, then the member.
            top = report.members[:TOP]
            header, *rows = aligned(("", *column_names(locale)), [("", *figures(tally)) for _, tally in top])
            unknown = tr("(unknown)").render(locale)
            mentions = [f"<@{member}>" if member else unknown for member, _ in top]
            lines = [f"`{header}`", *(f"`{row}` {who}" for row, who in zip(rows, mentions, strict=True))]
            text = _whole_rows(lines, "", "")
        else:
            text = _whole_rows(table, "```\n", "\n```")
        embed.add_field(name=title, value=text, inline=False)
    if not report.total.jobs:
        embed.description = tr("No /imagine jobs in this period.").render(locale)
    return embed


EMBED_LIMIT = 6000
"""Discord refuses an embed whose texts add up to more (title, description, fields' names and values, footer)."""


def fit_embed(embed: discord.Embed) -> discord.Embed:
    """``embed`` cut to Discord's total: the longest field's value gives way first, line by line (``show`` of a
    server with many models, channels, words and roles would otherwise be refused whole)."""
    while len(embed) > EMBED_LIMIT and embed.fields:
        excess = len(embed) - EMBED_LIMIT
        index, field = max(enumerate(embed.fields), key=lambda item: len(item[1].value or ""))
        value = field.value or ""
        if len(value) <= 1:
            break
        kept = value[: max(1, len(value) - excess - 2)]
        kept = kept.rsplit("\n", 1)[0] if "\n" in kept else kept
        embed.set_field_at(index, name=field.name, value=kept + "\n…", inline=field.inline)
    return embed


def _whole_rows(rows: Sequence[str], opening: str, closing: str) -> str:
    """``rows`` between ``opening`` and ``closing``, as many whole rows as fit a field (a cut row would break the
    table, and a cut code block the whole field); a last row says how many were left out."""
    for shown in range(len(rows), 0, -1):
        more = len(rows) - shown
        tail = [f"… +{more}"] if more else []
        text = opening + "\n".join([*rows[:shown], *tail]) + closing
        if len(text) <= FIELD_LIMIT:
            return text
    return (opening + closing) or "…"


def settings_embed(
    config: GuildConfig,
    allowed: tuple[ModelRef, ...],
    budget: Budget,
    changes: Sequence[AuditEntry],
    *,
    locale: str | None = None,
) -> discord.Embed:
    """``show``: every setting of the server at a glance, with its latest changes (newest first)."""
    embed = discord.Embed(title=tr("/imagine settings").render(locale), colour=discord.Colour.blurple())
    models = lines(model_lines(config, allowed), locale)
    if not config.models:
        models += "\n" + tr("*bot-wide list (this server has none of its own)*").render(locale)
    embed.add_field(name=tr("Models").render(locale), value=models[:FIELD_LIMIT], inline=False)
    channels = ", ".join(f"<#{c}>" for c in sorted(config.channels)) or tr("everywhere").render(locale)
    embed.add_field(name=tr("Channels").render(locale), value=channels[:FIELD_LIMIT], inline=False)
    words = ", ".join(f"||{w}||" for w in config.blocked_words) or tr("no words blocked").render(locale)
    words_title = tr("Blocked words ({n})", n=len(config.blocked_words))
    embed.add_field(name=words_title.render(locale), value=words[:FIELD_LIMIT], inline=False)
    embed.add_field(name=tr("Limits").render(locale), value=limits_text(config.limits).render(locale), inline=False)
    role_limits = role_limit_lines(config)
    if role_limits:
        embed.add_field(
            name=tr("Limits per role (the most generous applies)").render(locale),
            value=lines(role_limits, locale)[:FIELD_LIMIT],
            inline=False,
        )
    log_channel = f"<#{config.log_channel_id}>" if config.log_channel_id is not None else tr("off").render(locale)
    embed.add_field(name=tr("Mod-log").render(locale), value=log_channel, inline=False)
    embed.add_field(name=tr("Budget").render(locale), value=budget_text(budget).render(locale), inline=False)
    history = lines([audit_line(entry) for entry in changes], locale) or tr("no changes yet").render(locale)
    embed.add_field(name=tr("Latest changes").render(locale), value=history[:FIELD_LIMIT], inline=False)
    return embed
