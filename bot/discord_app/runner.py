"""Starting the bot and syncing its commands, for the command line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable

import aiohttp
import discord

from bot.core import StartupError
from bot.discord_app.client import ImagineBot, configure_endpoints
from bot.discord_app.command_sync import forced_sync
from bot.ops.http_server import ListenError
from bot.settings import Settings
from bot.storage import StorageError

log = logging.getLogger(__name__)


def _token(settings: Settings) -> str:
    assert settings.discord_token is not None  # load_settings(require_discord=True) guarantees it
    return settings.discord_token.reveal()


async def _with_bot(settings: Settings, action: Callable[[ImagineBot], Awaitable[int]], *, running: bool) -> int:
    """Run ``action`` on a bot pointed at the configured endpoints, turning known failures into one line.

    ``running``: the bot itself (resumes jobs, serves HTTP), not a one-off command.
    """
    configure_endpoints(settings)
    bot = ImagineBot(settings, resume_jobs=running, serve_http=running, sync_at_start=running)
    try:
        async with bot:
            return await action(bot)
    except discord.LoginFailure:
        print("error: DISCORD_TOKEN: Discord refused the token (improper token)", file=sys.stderr)
        return 2
    except StorageError as exc:
        print(f"error: DATABASE_URL: {exc}", file=sys.stderr)
        return 2
    except ListenError as exc:
        print(f"error: IMAGINE_HTTP_LISTEN: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except discord.GatewayNotFound:
        # Discord answered GET /gateway/bot (the shard count it recommends) with an error, after retries.
        print("error: Discord did not say how many shards to run (GET /gateway/bot failed)", file=sys.stderr)
        return 1
    except discord.PrivilegedIntentsRequired:
        print("error: the bot asks for an intent not enabled in the developer portal", file=sys.stderr)
        return 2
    except (aiohttp.ClientError, OSError) as exc:
        print(f"error: could not reach Discord ({type(exc).__name__}); check DISCORD_API_BASE", file=sys.stderr)
        return 1


async def run_bot(settings: Settings) -> int:
    """Run until stopped."""

    async def run(bot: ImagineBot) -> int:
        await bot.start(_token(settings))
        return 0

    return await _with_bot(settings, run, running=True)


async def sync_commands(settings: Settings, guild_id: int | None) -> int:
    """Register the slash commands globally (recording what was synced, as a start-up sync does), or in one
    guild (instant), whether or not they changed."""

    async def sync(bot: ImagineBot) -> int:
        await bot.login(_token(settings))
        guild = discord.Object(guild_id) if guild_id else None
        where = f"guild {guild_id}" if guild_id else "globally"
        try:
            synced = await forced_sync(bot.tree, bot.core.repository, guild, now=bot.core.clock.now())
        except discord.HTTPException as exc:
            hint = " (is the bot in that server, invited with the applications.commands scope?)" if guild_id else ""
            print(f"error: Discord refused the sync {where}: {exc.status} {exc.text}{hint}", file=sys.stderr)
            return 1
        print(f"synced {len(synced)} commands {where}: {', '.join('/' + c.name for c in synced)}")
        return 0

    return await _with_bot(settings, sync, running=False)
