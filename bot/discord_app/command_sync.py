"""Syncing the slash commands: globally at start-up only when they changed, or when the owner asks.

The digest is a sha256 of the sync payload as discord.py's ``CommandTree.sync`` builds it (through the
tree's translator when one is set, so a changed translation is a change too), as canonical JSON.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import datetime
from typing import Any

import discord
from discord import app_commands

from bot.storage import Repository, StorageError

log = logging.getLogger(__name__)

GLOBAL = "global"
"""The ``command_syncs`` scope of the global commands (with the application's id: a database shared with, or
copied to, another Discord application does not vouch for that one's commands)."""
SYNC_BOUND = 45.0
"""Seconds a start-up sync may take (discord.py would wait out any 429 Discord sends, however long): past them
the bot starts without it, and the next start tries again."""


async def sync_payload(tree: app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None = None) -> list[Any]:
    """What ``tree.sync(guild=guild)`` would send, computed the way it does."""
    commands = tree._get_all_commands(guild=guild)  # the very list sync sends
    translator = tree.translator
    if translator is not None:
        return [await command.get_translated_payload(tree, translator) for command in commands]
    return [command.to_dict(tree) for command in commands]


def payload_digest(payload: list[Any]) -> str:
    """sha256 of the payload as sorted, compact JSON: equal trees, equal digests."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def scope_of(guild: discord.abc.Snowflake | None, application_id: int | None = None) -> str:
    """The ``command_syncs`` scope of the application's global commands or of one guild's."""
    scope = GLOBAL if guild is None else f"guild:{guild.id}"
    return scope if application_id is None else f"{scope}:app:{application_id}"


async def tree_digest(tree: app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None = None) -> str:
    """The digest of the global commands' sync payload, or of one guild's."""
    return payload_digest(await sync_payload(tree, guild))


async def _sync_once(
    tree: app_commands.CommandTree[Any],
    repository: Repository,
    guild: discord.abc.Snowflake | None,
    *,
    now: datetime,
    force: bool,
) -> tuple[bool, list[app_commands.AppCommand]]:
    if guild is not None:
        tree.copy_global_to(guild=guild)  # a development guild gets every command at once
    synced: list[app_commands.AppCommand] = []

    async def sync() -> None:
        synced.extend(await tree.sync(guild=guild))

    digest = await tree_digest(tree, guild)
    scope = scope_of(guild, tree.client.application_id)
    ran = await repository.sync_commands_once(scope, digest, sync, now=now, force=force)
    return ran, synced


async def sync_if_changed(
    tree: app_commands.CommandTree[Any],
    repository: Repository,
    guild: discord.abc.Snowflake | None = None,
    *,
    now: datetime,
) -> bool:
    """Sync the global commands (or one guild's: ``IMAGINE_SYNC_GUILD``) unless the last sync recorded had the
    same payload; ``True`` if this process synced. A refusal from Discord or a sync another process holds too
    long is logged, never raised: the bot runs with the commands it had, and the next start tries again."""
    where = "globally" if guild is None else f"to guild {guild.id}"
    try:
        ran, synced = await asyncio.wait_for(_sync_once(tree, repository, guild, now=now, force=False), SYNC_BOUND)
    except TimeoutError:
        log.warning(
            "the command sync %s took over %g s; starting without it (the next start tries again)", where, SYNC_BOUND
        )
        return False
    except discord.HTTPException as exc:
        hint = "" if guild is None else "; is the bot in it, invited with the applications.commands scope?"
        log.error("could not sync the commands %s (%s)%s; they stay as they were", where, exc.text or exc.status, hint)
        return False
    except StorageError as exc:  # another process held the sync too long, or the database failed: next start
        log.warning("did not sync the commands %s: %s", where, exc)
        return False
    except Exception:  # never a reason not to start: the commands stay as they were
        log.exception("could not sync the commands %s", where)
        return False
    if ran:
        log.info("synced %d commands %s (they changed since the last sync)", len(synced), where)
    else:
        log.info("the commands are as last synced %s; nothing to sync", where)
    return ran


async def forced_sync(
    tree: app_commands.CommandTree[Any], repository: Repository, guild: discord.abc.Snowflake | None, *, now: datetime
) -> list[app_commands.AppCommand]:
    """Sync globally or to one guild whatever was synced before, recording what was synced."""
    return (await _sync_once(tree, repository, guild, now=now, force=True))[1]
