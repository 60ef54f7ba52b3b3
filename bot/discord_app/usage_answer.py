"""``/imagine-admin usage``'s answer: the tables' embed with the chart (PNG) drawn beside them.

The chart takes a moment to draw (on a worker thread), so the answer is deferred privately first. A period
with no job gets no chart (the embed says so); a chart that fails to draw leaves the tables alone.
"""

from __future__ import annotations

import io
import logging

import discord

from bot.moderation.usage import UsageReport
from bot.moderation.usage_chart import usage_chart_png

log = logging.getLogger(__name__)

CHART_NAME = "usage.png"


async def defer_usage(interaction: discord.Interaction) -> None:
    """Show the private "thinking…" before the report is read: reading a year of jobs may pass Discord's 3 s."""
    await interaction.response.defer(ephemeral=True, thinking=True)


async def answer_usage(interaction: discord.Interaction, report: UsageReport, embed: discord.Embed) -> None:
    """Send ``embed`` (the report's tables) privately, with the report's chart as its image."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)
    files: list[discord.File] = []
    if report.total.jobs:
        try:
            png = await usage_chart_png(report, locale=interaction.locale.value)
        except Exception:  # the figures are in the tables all the same
            log.exception("could not draw the usage chart of guild %s", report.guild_id)
        else:
            files.append(discord.File(io.BytesIO(png), filename=CHART_NAME))
            embed.set_image(url=f"attachment://{CHART_NAME}")
    # The answer takes the private "thinking…"'s place.
    await interaction.edit_original_response(
        embed=embed, attachments=files, allowed_mentions=discord.AllowedMentions.none()
    )
