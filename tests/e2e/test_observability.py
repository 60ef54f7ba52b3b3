"""``python -m bot`` with LOG_FORMAT=json and IMAGINE_HTTP_LISTEN, between both fakes.

/healthz answers 200 once the gateway is connected and 503 once Discord is
gone; /metrics counts the job; every line the process printed is JSON.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.bot_process import bot_env, start_python_m_bot
from tests.e2e.conftest import DISCORD_TOKEN, imagine_in, status_of
from tests.fakes.discord import FakeDiscord
from tests.fakes.replicate import FakeReplicate
from tests.helpers import free_port


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as response:
        return response.status, await response.text()


async def wait_for_health(session: aiohttp.ClientSession, url: str, status: int, timeout: float) -> dict[str, Any]:
    """Poll ``url`` until it answers ``status``; its JSON body."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: object = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            code, text = await get(session, url)
        except aiohttp.ClientError as exc:
            last = exc
        else:
            last = (code, text)
            if code == status:
                body: dict[str, Any] = json.loads(text)
                return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered {status}; last: {last!r}")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_health_metrics_and_json_logs(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with FakeReplicate(seed=11) as api, FakeDiscord(token=DISCORD_TOKEN) as fake_discord:
        guild = fake_discord.add_guild("Observed")
        env = bot_env(
            api,
            fake_discord,
            tmp_path,
            IMAGINE_SYNC_GUILD=str(guild.id),
            LOG_LEVEL="DEBUG",  # discord.py and aiohttp have their say too
            LOG_FORMAT="json",
            IMAGINE_HTTP_LISTEN=f"127.0.0.1:{port}",
        )
        # Its output goes to files, read at the end: a pipe nobody reads while it runs (64 KiB) fills with DEBUG
        # lines and the failed reconnects' tracebacks, and the bot then blocks on a log write, /healthz with it.
        with (tmp_path / "stdout").open("wb") as out, (tmp_path / "stderr").open("wb") as err:
            process = await start_python_m_bot(env=env, cwd=tmp_path, stdout=out, stderr=err)
        try:
            async with aiohttp.ClientSession() as session:
                await fake_discord.wait_until_identified(timeout=30)
                health = await wait_for_health(session, f"{base}/healthz", 200, 30)
                assert health["status"] == "ok"
                assert health["shards"] == {"connected": 1, "total": 1, "state": {"0": "connected"}}
                assert health["database"] == "ok"
                assert health["jobs"] == {"running": 0, "queued": 0}

                await fake_discord.wait_for(lambda: fake_discord.guild_commands.get(guild.id), 30, what="guild sync")
                handle = await imagine_in(fake_discord, guild, {"prompt": "a red fox"})
                final = await handle.wait_message(lambda m: "Done" in status_of(m) or "Failed" in status_of(m), 30)
                assert "Done" in status_of(final), final.embeds

                # The count lands right after the final message is shown, the slot is freed just after: poll.
                deadline = asyncio.get_running_loop().time() + 10
                while True:
                    status, text = await get(session, f"{base}/metrics")
                    assert status == 200
                    scraped = samples(text)
                    succeeded = scraped.get(("imagine_jobs_total", (("state", "succeeded"),)))
                    if succeeded == 1.0 and scraped[("imagine_jobs_running", ())] == 0:
                        break
                    assert asyncio.get_running_loop().time() < deadline, text
                    await asyncio.sleep(0.1)
                assert scraped[("imagine_jobs_queued", ())] == 0
                assert scraped[("imagine_job_duration_seconds_count", ())] == 1
                assert scraped[("imagine_delivery_overhead_seconds_count", ())] == 1
                routes = {labels for (name, labels) in scraped if name == "imagine_api_requests_total"}
                assert (("route", "POST /v1/models/{owner}/{name}/predictions"), ("status", "201")) in routes, routes
                assert not any(
                    "/predictions/" in dict(labels)["route"] and "{id}" not in dict(labels)["route"]
                    for labels in routes
                )

                # Discord goes away: the gateway cannot reconnect, and the bot says so.
                await fake_discord.close()
                health = await wait_for_health(session, f"{base}/healthz", 503, 30)
                assert health["status"] == "unavailable"
                assert any(reason.startswith("discord:") for reason in health["reasons"]), health
        finally:
            process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.wait(), 30)
    stdout, stderr = (tmp_path / "stdout").read_bytes(), (tmp_path / "stderr").read_bytes()
    assert process.returncode == 0, stderr.decode()[-2000:]
    lines = [line for line in (stdout + stderr).decode().splitlines()]
    assert lines
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    for entry in entries:
        assert isinstance(entry, dict) and {"time", "level", "logger", "message"} <= entry.keys(), entry
    loggers = {entry["logger"].split(".")[0] for entry in entries}
    assert {"bot", "discord"} <= loggers, loggers
    assert any("exception" in entry for entry in entries)  # the failed reconnects' tracebacks
    output = (stdout + stderr).decode()
    assert DISCORD_TOKEN not in output and api.token not in output


async def run_bot(env: dict[str, str], workdir: Path) -> tuple[int, list[str]]:
    """Run ``python -m bot`` to its end; exit status and every line it printed."""
    process = await start_python_m_bot(env=env, cwd=workdir, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, output.decode().splitlines()


async def test_a_taken_port_stops_start_up_naming_the_variable(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with FakeReplicate(seed=1) as api, FakeDiscord(token=DISCORD_TOKEN) as fake_discord:
            env = bot_env(api, fake_discord, tmp_path, IMAGINE_HTTP_LISTEN=f"127.0.0.1:{port}")
            status, lines = await run_bot(env, tmp_path)
    assert status == 2, lines
    assert [line for line in lines if line.startswith("error:")] == [
        f"error: IMAGINE_HTTP_LISTEN: cannot listen on 127.0.0.1:{port}: Address already in use"
    ], lines


async def test_settings_errors_are_json_too(tmp_path: Path) -> None:
    async with FakeReplicate(seed=1) as api, FakeDiscord(token=DISCORD_TOKEN) as fake_discord:
        env = bot_env(api, fake_discord, tmp_path, LOG_FORMAT="json", LOG_LEVEL="loud", DISCORD_SHARD_IDS="0-1")
        status, lines = await run_bot(env, tmp_path)
    assert status == 2
    messages = [json.loads(line)["message"] for line in lines]
    assert [message.split(":")[1].strip() for message in messages] == ["LOG_LEVEL", "DISCORD_SHARD_IDS"], messages
