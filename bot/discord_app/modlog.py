"""The mod-log in Discord: how an entry looks, and the sink that posts it to a server's log channel."""

from __future__ import annotations

import re

import discord

from bot.discord_app.setting_texts import audit_value_text
from bot.i18n import Text, tr
from bot.moderation.modlog import BlockedWordEvent, ModLogChannelUnavailable, ModLogEvent
from bot.moderation.policy import role_mentions
from bot.storage import AuditEntry
from bot.storage.common import LOG_CHANNEL_ACTION

_NOTHING = "—"
_CHANNEL_VALUED = ("channels allow", "channels remove", LOG_CHANNEL_ACTION)
"""Audit actions whose before and after are channel ids, shown as channel mentions."""
_ROLE_VALUED = ("models allow", "limits role")
"""Audit actions whose before and after name roles by id (``roles=1,2``, ``role=1``), shown as role mentions."""
_AUDITED_ROLES = re.compile(r"\broles?=([\d,]+)")
_WORD_VALUED = ("words add", "words remove")
"""Audit actions whose before or after is a blocked word, hidden behind a spoiler as everywhere else."""


def _value(action: str, value: str | None) -> Text | str:
    if value is None:
        return _NOTHING
    if (words := audit_value_text(action, value)) is not None:
        return words
    if action in _CHANNEL_VALUED and value.isdigit():
        return f"<#{value}>"
    if action in _WORD_VALUED:
        return f"||{discord.utils.escape_markdown(value)}||"
    if action in _ROLE_VALUED:
        return _AUDITED_ROLES.sub(lambda found: role_mentions([int(role) for role in found[1].split(",")]), value)
    return value


def change_text(entry: AuditEntry) -> Text:
    """Who changed what, old → new: ``<@1> **limits**: Cooldown: none · … → Cooldown: 30 s · …``; roles and
    channels as mentions."""
    moderator = f"<@{entry.actor_id}>"
    return tr(
        "{moderator} **{setting}**: {before} → {after}",
        moderator=moderator,
        setting=entry.action,
        before=_value(entry.action, entry.before),
        after=_value(entry.action, entry.after),
    )


def modlog_embed(event: ModLogEvent, locale: str | None = None) -> discord.Embed:
    """One mod-log entry in the server's language (``locale``): a blocked-word refusal (member, channel, word;
    never the prompt) or a settings change."""
    if isinstance(event, BlockedWordEvent):
        member, word = f"<@{event.member_id}>", f"||{discord.utils.escape_markdown(event.word)}||"
        channel = f"<#{event.channel_id}>"
        description = (
            tr("{member} in {channel}: {word}", member=member, channel=channel, word=word)
            if event.channel_id is not None
            else tr("{member}: {word}", member=member, word=word)
        )
        return discord.Embed(
            title=tr("Prompt refused: blocked word").render(locale),
            description=description.render(locale),
            colour=discord.Colour.red(),
            timestamp=event.at,
        )
    return discord.Embed(
        title=tr("Setting changed").render(locale),
        description=change_text(event).render(locale)[:4000],
        colour=discord.Colour.blurple(),
        timestamp=event.at,
    )


class DiscordModLogSink:
    """Posts mod-log entries with discord.py; a deleted or forbidden channel is reported, never retried."""

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def post(self, channel_id: int, event: ModLogEvent) -> None:
        """One message with the entry's embed; mentions shown, nobody pinged."""
        channel = self._client.get_partial_messageable(channel_id)
        guild = self._client.get_guild(event.guild_id)
        # The whole channel reads it: the server's language, not the language of whoever caused it.
        locale = str(guild.preferred_locale) if guild is not None else None
        try:
            await channel.send(embed=modlog_embed(event, locale), allowed_mentions=discord.AllowedMentions.none())
        except discord.NotFound as exc:  # 10003 Unknown Channel: deleted
            raise ModLogChannelUnavailable(f"the channel no longer exists ({exc.code} {exc.text})") from None
        except discord.Forbidden as exc:  # 50001 Missing Access, 50013 Missing Permissions
            raise ModLogChannelUnavailable(f"the bot may not post there ({exc.code} {exc.text})") from None
