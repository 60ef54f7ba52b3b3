"""The real entry point, ``python -m bot``, configured only by environment variables, against both fakes."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.e2e.bot_process import bot_env, start_python_m_bot
from tests.e2e.conftest import DISCORD_TOKEN, imagine_in, status_of
from tests.fakes.discord import FakeDiscord
from tests.fakes.replicate import FakeReplicate


async def test_python_m_bot_runs_imagine_to_the_final_image(tmp_path: Path) -> None:
    async with FakeReplicate(seed=9) as api, FakeDiscord(token=DISCORD_TOKEN) as fake_discord:
        guild = fake_discord.add_guild("Entry")
        env = bot_env(api, fake_discord, tmp_path, IMAGINE_SYNC_GUILD=str(guild.id), LOG_LEVEL="DEBUG")
        process = await start_python_m_bot(env=env, cwd=tmp_path, stderr=asyncio.subprocess.STDOUT)
        # Read the output as it comes: a DEBUG start-up writes more than a pipe holds, and a full pipe stops the bot.
        printed = asyncio.create_task(process.communicate())
        try:
            await fake_discord.wait_until_identified(timeout=30)
            await fake_discord.wait_for(lambda: fake_discord.guild_commands.get(guild.id), 30, what="guild sync")
            handle = await imagine_in(fake_discord, guild, {"prompt": "a red fox", "count": 2})
            final = await handle.wait_message(lambda m: "Done" in status_of(m) or "Failed" in status_of(m), 30)
            assert "Done" in status_of(final), final.embeds
            assert [a.data for a in final.attachments] == [f.data for f in api.last_prediction.files]
        finally:
            process.send_signal(signal.SIGINT)
            output, _ = await asyncio.wait_for(printed, 30)
        log = output.decode()
        assert DISCORD_TOKEN not in log and api.token not in log
        assert "Traceback" not in log, log
