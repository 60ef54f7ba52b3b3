"""The ``/imagine-admin`` tree Discord is given: names, options, types, descriptions, permissions, guild only.

``admin_commands.json`` is the payload of every command as ``python -m bot sync`` sends it; a change to the
tree must show up here on purpose. After an intended change, regenerate it with
``python -m tests.unit.test_admin_commands > tests/unit/admin_commands.json``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import discord
from discord.ext import commands

from cogs.admin import Admin

EXPECTED = Path(__file__).with_name("admin_commands.json")


async def admin_payloads() -> list[dict[str, Any]]:
    """Each top-level command's payload once the cog is loaded into a bare bot (nothing connects)."""
    bot = commands.Bot(command_prefix=(), intents=discord.Intents.none())
    await bot.add_cog(Admin(cast(Any, bot)))  # the cog reaches the bot's services only when a command runs
    return [command.to_dict(bot.tree) for command in bot.tree.get_commands()]


async def test_the_command_tree_is_unchanged() -> None:
    assert await admin_payloads() == json.loads(EXPECTED.read_text(encoding="utf-8"))


if __name__ == "__main__":
    print(json.dumps(asyncio.run(admin_payloads()), indent=1, sort_keys=True))
