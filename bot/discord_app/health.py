"""The Discord side of ``/healthz``: is the gateway connected, on every shard this process runs?"""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.ops.health import Check, HealthCheck

CONNECTED = "connected"
DISCONNECTED = "disconnected"
"""Launched, but its connection is closed (discord.py is reconnecting it, or gave up)."""
CONNECTING = "connecting"
"""Not launched yet: discord.py connects a process's shards one after the other."""


def shard_states(client: discord.Client) -> dict[int, str]:
    """The state of each shard this process runs, by shard id (shard 0 alone for an unsharded client)."""
    if isinstance(client, discord.AutoShardedClient):
        launched = client.shards
        expected: Sequence[int]
        if client.shard_ids is not None:
            expected = client.shard_ids
        elif client.shard_count is not None:
            expected = range(client.shard_count)
        else:  # before Discord told the recommended count: at least shard 0 is due
            expected = sorted(launched) or [0]
        return {shard_id: _launched_state(launched.get(shard_id)) for shard_id in expected}
    # ws is the live connection, or the last one while discord.py reconnects; ready stays set across reconnects.
    ws = client.ws
    connected = client.is_ready() and not client.is_closed() and ws is not None and ws.open
    return {0: CONNECTED if connected else DISCONNECTED}


def _launched_state(shard: discord.ShardInfo | None) -> str:
    if shard is None:
        return CONNECTING
    return DISCONNECTED if shard.is_closed() else CONNECTED


def gateway_check(client: discord.Client) -> HealthCheck:
    """Healthy when every shard of ``client`` is connected to the gateway; reports each shard's state."""

    async def check() -> Check:
        states = shard_states(client)
        connected = sum(state == CONNECTED for state in states.values())
        fields = {
            "shards": {
                "connected": connected,
                "total": len(states),
                "state": {str(shard_id): state for shard_id, state in states.items()},
            }
        }
        if connected < len(states):
            down = ", ".join(f"shard {i} {state}" for i, state in states.items() if state != CONNECTED)
            return Check(fields, f"discord: gateway connected on {connected} of {len(states)} shards ({down})")
        return Check(fields)

    return check
