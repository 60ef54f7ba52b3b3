"""The ``/describe`` command Discord is given: one required attachment, in servers only."""

from __future__ import annotations

from typing import Any, cast

import discord
from discord.ext import commands

from cogs.describe import Describe


class _BareDescribe(Describe):
    """The cog without its start-up work (the core's services, the buttons): only its command matters."""

    async def cog_load(self) -> None:
        pass


async def test_describe_takes_one_required_image_in_servers_only() -> None:
    bot = commands.Bot(command_prefix=(), intents=discord.Intents.none())
    await bot.add_cog(_BareDescribe(cast(Any, bot)))
    (command,) = bot.tree.get_commands()
    payload = command.to_dict(bot.tree)
    assert payload["name"] == "describe"
    assert payload["contexts"] == [0]  # guild only
    (image,) = payload["options"]
    assert image["name"] == "image" and image["required"] is True
    assert image["type"] == discord.AppCommandOptionType.attachment.value
