"""The Discord side of ``/healthz``: is the gateway connected, on every shard this process runs?"""

from __future__ import annotations

import discord

from bot.health import Check, HealthCheck


def shards_connected(client: discord.Client) -> tuple[int, int]:
    """``(connected, total)`` gateway connections of ``client`` (one, for an unsharded client)."""
    if isinstance(client, discord.AutoShardedClient):
        shards = list(client.shards.values())
        total = len(shards) or len(client.shard_ids or ()) or (client.shard_count or 1)
        return sum(not shard.is_closed() for shard in shards), total
    # ws is the live connection, or the last one while discord.py reconnects; ready stays set across reconnects.
    ws = client.ws
    connected = client.is_ready() and not client.is_closed() and ws is not None and ws.open
    return int(connected), 1


def gateway_check(client: discord.Client) -> HealthCheck:
    """Healthy when every shard of ``client`` is connected to the gateway."""

    async def check() -> Check:
        connected, total = shards_connected(client)
        fields = {"shards": {"connected": connected, "total": total}}
        if connected < total:
            return Check(fields, f"discord: gateway connected on {connected} of {total} shards")
        return Check(fields)

    return check
