"""Syncing the slash commands: globally at start-up only when they changed, or when the owner asks.

The digest is a sha256 of the sync payload as discord.py's ``CommandTree.sync`` builds it (through the
tree's translator when one is set, so a changed translation is a change too), as canonical JSON.
"""

from __future__ import annotations

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
"""The ``command_syncs`` scope of the global commands."""


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


async def tree_digest(tree: app_commands.CommandTree[Any]) -> str:
    """The digest of the global commands' sync payload."""
    return payload_digest(await sync_payload(tree))


async def sync_globally_if_changed(
    tree: app_commands.CommandTree[Any], repository: Repository, *, now: datetime
) -> bool:
    """Sync the global commands unless the last sync recorded had the same payload; ``True`` if this process
    synced. A refusal from Discord or a sync another process holds too long is logged, never raised: the
    bot runs with the commands it had, and the next start tries again."""
    digest = await tree_digest(tree)
    synced: list[app_commands.AppCommand] = []

    async def sync() -> None:
        synced.extend(await tree.sync())

    try:
        ran = await repository.sync_commands_once(GLOBAL, digest, sync, now=now)
    except discord.HTTPException as exc:
        log.error("could not sync the commands globally (%s); they stay as they were", exc.text or exc.status)
        return False
    except StorageError as exc:  # another process held the sync too long, or the database failed: next start
        log.warning("did not sync the commands globally: %s", exc)
        return False
    if ran:
        log.info("synced %d commands globally (they changed since the last sync)", len(synced))
    else:
        log.info("the commands are as last synced globally; nothing to sync")
    return ran


async def forced_sync(
    tree: app_commands.CommandTree[Any], repository: Repository, guild: discord.abc.Snowflake | None, *, now: datetime
) -> list[app_commands.AppCommand]:
    """Sync globally (recording the digest) or to one guild, whatever was synced before."""
    if guild is not None:
        tree.copy_global_to(guild=guild)
        return await tree.sync(guild=guild)
    synced: list[app_commands.AppCommand] = []

    async def sync() -> None:
        synced.extend(await tree.sync())

    await repository.sync_commands_once(GLOBAL, await tree_digest(tree), sync, now=now, force=True)
    return synced
