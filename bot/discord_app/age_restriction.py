"""Whether Discord marks a channel age-restricted (``nsfw``): a thread is what its channel is; DMs, and channels
whose flag the bot cannot see, are not (the safe answer). See :mod:`bot.moderation.age_restriction`."""

from __future__ import annotations

import discord


def is_age_restricted(channel: object) -> bool:
    """Whether ``channel`` (an interaction's, a message's) is age-restricted."""
    if channel is None or isinstance(channel, discord.DMChannel | discord.GroupChannel | discord.PartialMessageable):
        return False
    is_nsfw = getattr(channel, "is_nsfw", None)  # a thread answers for its parent (False if it is not known)
    return callable(is_nsfw) and is_nsfw() is True
