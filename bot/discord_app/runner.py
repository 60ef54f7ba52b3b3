"""Starting the bot and syncing its commands, for the command line."""

from __future__ import annotations

import logging
import sys

import aiohttp
import discord

from bot.discord_app.client import ImagineBot, configure_endpoints
from bot.settings import Settings

log = logging.getLogger(__name__)


def _token(settings: Settings) -> str:
    assert settings.discord_token is not None  # load_settings(require_discord=True) guarantees it
    return settings.discord_token.reveal()


async def run_bot(settings: Settings) -> int:
    """Run until stopped; exit status 2 if Discord refuses the token."""
    configure_endpoints(settings)
    bot = ImagineBot(settings)
    async with bot:
        try:
            await bot.start(_token(settings))
        except discord.LoginFailure:
            print("error: DISCORD_TOKEN: Discord refused the token (improper token)", file=sys.stderr)
            return 2
        except (aiohttp.ClientError, OSError) as exc:
            print(f"error: could not reach Discord ({type(exc).__name__}); check DISCORD_API_BASE", file=sys.stderr)
            return 1
        except discord.PrivilegedIntentsRequired:
            print("error: the bot asks for an intent not enabled in the developer portal", file=sys.stderr)
            return 2
    return 0


async def sync_commands(settings: Settings, guild_id: int | None) -> int:
    """Register the slash commands globally, or in one guild (instant)."""
    configure_endpoints(settings)
    bot = ImagineBot(settings)
    async with bot:
        try:
            await bot.login(_token(settings))
        except discord.LoginFailure:
            print("error: DISCORD_TOKEN: Discord refused the token (improper token)", file=sys.stderr)
            return 2
        guild = discord.Object(guild_id) if guild_id else None
        if guild is not None:
            bot.tree.copy_global_to(guild=guild)
        synced = await bot.tree.sync(guild=guild)
        where = f"guild {guild_id}" if guild_id else "globally"
        print(f"synced {len(synced)} commands {where}: {', '.join('/' + c.name for c in synced)}")
    return 0
