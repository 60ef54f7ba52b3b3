"""The members' command trees Discord is given (``/imagine``, ``/imagine-history``, ``/imagine-info``): names,
options, choices, autocomplete.

``imagine_commands.json`` is the payload of each command as ``python -m bot sync`` sends it; a change to
the tree must show up here on purpose. After an intended change, regenerate it with
``python -m tests.unit.test_imagine_commands > tests/unit/imagine_commands.json``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import discord
from discord.ext import commands

from cogs.history import History
from cogs.imagine import Imagine

EXPECTED = Path(__file__).with_name("imagine_commands.json")


class _BareImagine(Imagine):
    """The cog without its start-up work (buttons, schema warming, resumed jobs): only its commands matter."""

    async def cog_load(self) -> None:
        pass

    async def cog_unload(self) -> None:
        pass


async def member_payloads() -> list[dict[str, Any]]:
    """Each top-level command's payload once the cogs are loaded into a bare bot (nothing connects)."""
    bot = commands.Bot(command_prefix=(), intents=discord.Intents.none())
    await bot.add_cog(_BareImagine(cast(Any, bot)))  # the cogs reach the bot's services only when a command runs
    await bot.add_cog(History(cast(Any, bot)))
    return [command.to_dict(bot.tree) for command in bot.tree.get_commands()]


async def test_the_command_tree_is_unchanged() -> None:
    assert await member_payloads() == json.loads(EXPECTED.read_text(encoding="utf-8"))


if __name__ == "__main__":
    print(json.dumps(asyncio.run(member_payloads()), indent=1, sort_keys=True))
