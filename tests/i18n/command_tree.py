"""The bot's slash commands as it syncs them, read from its cogs without starting a bot."""

from __future__ import annotations

import importlib
import inspect

from discord.ext import commands

from bot.discord_app.client import EXTENSIONS
from bot.discord_app.translator import AppCommand


def tree_commands() -> list[AppCommand]:
    """The top-level app commands of every cog the bot loads, as it syncs them (a cog made without its
    ``__init__``: discord.py builds a cog's commands in ``__new__``)."""
    found: list[AppCommand] = []
    for extension in EXTENSIONS:
        module = importlib.import_module(extension)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, commands.Cog) and cls.__module__ == module.__name__:
                cog = cls.__new__(cls)
                found.extend([cog.app_command] if cog.app_command is not None else cog.get_app_commands())
    return found
