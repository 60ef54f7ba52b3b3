"""What the bot reads about the member behind an interaction."""

from __future__ import annotations

import discord


def member_role_ids(interaction: discord.Interaction) -> frozenset[int]:
    """The ids of the roles of the member who made ``interaction`` (empty outside a server).

    Read from the member object the interaction itself carries rather than
    :attr:`discord.Member.roles`, which drops any role the guild cache does not
    know (a role made moments ago, a guild not cached yet) and adds @everyone.
    """
    user = interaction.user
    if not isinstance(user, discord.Member):
        return frozenset()
    return frozenset(user._roles)  # the payload's role ids, as discord.py keeps them


def may_moderate(interaction: discord.Interaction) -> bool:
    """Manage Messages where the button was pressed (channel overwrites included)."""
    return bool(interaction.permissions.manage_messages)
