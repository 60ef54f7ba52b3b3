"""The Discord bot: one sharded ``commands`` bot that owns the core services and hands them to cogs."""

from __future__ import annotations

import gc
import logging
from typing import Any

import discord
import yarl
from discord.ext import commands

from bot.base.clock import Clock
from bot.core import Core, Tuning
from bot.discord_app.buttons import ButtonHandler
from bot.discord_app.health import gateway_check
from bot.discord_app.modlog import DiscordModLogSink
from bot.discord_app.sharding import IdentifyPacer
from bot.discord_app.translator import CatalogTranslator
from bot.jobs.webhooks import MAX_WEBHOOK_BYTES
from bot.ops.health import database_check, jobs_check
from bot.ops.http_server import HttpServer
from bot.settings import Settings

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.imagine", "cogs.admin", "cogs.history", "cogs.describe", "cogs.preferences")


def rest_base(url: str) -> str:
    """A REST root for discord.py: the URL as given if it names an API version, else with ``/api/v10``."""
    url = url.rstrip("/")
    return url if "/api/v" in url else f"{url}/api/v10"


def configure_endpoints(settings: Settings) -> None:
    """Point discord.py at ``DISCORD_API_BASE`` / ``DISCORD_GATEWAY_URL`` (proxies, or a local fake).

    discord.py keeps these as class attributes, so this is process-wide by nature.
    """
    if settings.discord_api_base:
        discord.http.Route.BASE = rest_base(settings.discord_api_base)
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


class ImagineBot(commands.AutoShardedBot):
    """The bot. ``core`` (the job engine and API client) exists from ``setup_hook`` on.

    It runs the shards of ``DISCORD_SHARD_COUNT`` named by ``DISCORD_SHARD_IDS`` (every one when
    none are named), or, with no count set, as many as Discord recommends, all in this process.
    ``setup_hook`` runs once per process whatever the number of shards, so what it does (the
    core, the HTTP server, the ``IMAGINE_SYNC_GUILD`` sync) happens once.
    """

    core: Core

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        tuning: Tuning | None = None,
        resume_jobs: bool = True,
        serve_http: bool = False,
        **options: Any,
    ) -> None:
        """``resume_jobs``: finish the jobs a previous run left unfinished (not for ``sync``);
        ``serve_http``: start the HTTP server if ``IMAGINE_HTTP_LISTEN`` is set (only for ``run``).

        ``options`` go to :class:`discord.ext.commands.AutoShardedBot` (tests pass ``guild_ready_timeout``).
        """
        intents = discord.Intents.none()
        intents.guilds = True
        if settings.shard_ids is not None:
            options["shard_ids"] = list(settings.shard_ids)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            shard_count=settings.shard_count,
            **options,
        )
        self.identify_pacer = IdentifyPacer()
        self.settings = settings
        self._clock = clock
        self._tuning = tuning
        self.resume_jobs = resume_jobs
        self.serve_http = serve_http
        self.http_server: HttpServer | None = None
        # What the persistent buttons do when pressed; set while the /imagine cog is loaded.
        self.button_handler: ButtonHandler | None = None

    async def setup_hook(self) -> None:
        self.core = await Core.open(self.settings, clock=self._clock, tuning=self._tuning)
        self._share_identify_turns()
        self.core.modlog.start(DiscordModLogSink(self))
        if self.serve_http and self.settings.http_listen is not None:
            # Before jobs resume (in cog_load): their webhooks must find the route.
            self.http_server = self._http_server()
            if self.settings.webhook_url is not None:
                receiver = await self.core.enable_webhooks()
                self.http_server.add_routes(receiver.routes(), max_body_bytes=MAX_WEBHOOK_BYTES)
            await self.http_server.start()
        # Before any sync: the commands' descriptions go to Discord in every language the catalogs have.
        await self.tree.set_translator(CatalogTranslator())
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.settings.sync_guild:
            guild = discord.Object(self.settings.sync_guild)
            self.tree.copy_global_to(guild=guild)
            try:
                synced = await self.tree.sync(guild=guild)
            except discord.HTTPException as exc:
                log.error(
                    "IMAGINE_SYNC_GUILD: could not sync commands to guild %s (%s); is the bot in it, "
                    "invited with the applications.commands scope?",
                    self.settings.sync_guild,
                    exc.text or exc.status,
                )
            else:
                log.info("synced %d commands to guild %s", len(synced), self.settings.sync_guild)

    async def launch_shards(self) -> None:
        """Learn Discord's shard recommendation and identify concurrency, then connect the shards.

        ``GET /gateway/bot`` is read here rather than by discord.py, which would, with no shard
        count set, also take the gateway URL from it and so bypass ``DISCORD_GATEWAY_URL``; with
        the count set here discord.py connects to the configured gateway (by default Discord's own).
        """
        if self.is_closed():
            return
        try:
            recommended, _url, limits = await self.http.get_bot_gateway()
        except discord.GatewayNotFound:
            if self.shard_count is None:
                raise
            # The count is known; only the pacing is not: identify one shard per 5 s, always allowed.
            log.warning("could not read GET /gateway/bot; identifying one shard every 5 s")
        else:
            self.identify_pacer.set_max_concurrency(limits["max_concurrency"])
            if self.shard_count is None:
                self.shard_count = recommended
        shards = self.shard_ids if self.shard_ids is not None else range(self.shard_count or 1)
        log.info("connecting shards %s of %d", ", ".join(map(str, shards)), self.shard_count)
        await super().launch_shards()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Wait only as long as Discord's identify limit needs, in turn with the bot's other processes.

        discord.py's own hook waits 5 s before every shard but the first, and knows nothing of other processes.
        """
        shard = shard_id or 0
        # A shard discord.py already holds is reconnecting: it gives up after 60 s, not its connect timeout.
        await self.identify_pacer.wait(shard, reconnect=self.get_shard(shard) is not None)

    def _share_identify_turns(self) -> None:
        """Take identify turns through the database, keyed by the bot (login has told us who we are)."""
        repository = self.core.repository
        bot_id = self.user.id if self.user is not None else 0

        async def take_turn(bucket: int, spacing: float, within: float) -> float | None:
            return await repository.take_identify_turn(bot_id, bucket, spacing=spacing, within=within)

        self.identify_pacer.share(take_turn)

    def _http_server(self) -> HttpServer:
        checks = {
            "discord": gateway_check(self),
            "database": database_check(self.core.repository),
            "jobs": jobs_check(self.core.engine),
        }
        assert self.settings.http_listen is not None
        return HttpServer(self.settings.http_listen, checks=checks, metrics=self.core.metrics.exposition)

    async def on_ready(self) -> None:
        # Everything loaded so far lives as long as the process: keep the collector off it, which
        # shortens its pauses when a burst of jobs arrives.
        gc.freeze()
        user = self.user
        log.info("logged in as %s (%s) in %d servers", user, user.id if user else "?", len(self.guilds))

    async def close(self) -> None:
        if self.http_server is not None:
            await self.http_server.stop()
        core = getattr(self, "core", None)
        if core is not None:
            await core.close()
        await super().close()
