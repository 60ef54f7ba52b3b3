"""A quiet start: ``python -m bot`` against the fakes says nothing an owner need not read (no voice warnings)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.e2e.bot_process import BotProcess
from tests.e2e.conftest import DISCORD_TOKEN
from tests.fakes.discord import FakeDiscord
from tests.fakes.replicate import FakeReplicate


async def test_a_start_logs_no_warning_and_python_warns_of_nothing(tmp_path: Path) -> None:
    async with FakeReplicate(seed=3) as api, FakeDiscord(token=DISCORD_TOKEN) as fake:
        guild = fake.add_guild("Quiet", shard=0)
        # Every Python warning shown (deprecations too), and every log record from INFO up.
        process = BotProcess(api, fake, guild, tmp_path, LOG_LEVEL="INFO", PYTHONWARNINGS="default")
        try:
            await process.start()
            for _ in range(100):  # on_ready (after discord.py waits for the guilds), at most 10 s
                if "logged in as" in process.output():
                    break
                await asyncio.sleep(0.1)
        finally:
            await process.stop()
        output = process.output()
        assert "logged in as" in output, output
        assert "voice will NOT be supported" not in output, output
        noisy = [line for line in output.splitlines() if " WARNING " in line or "Warning" in line]
        assert noisy == [], output
