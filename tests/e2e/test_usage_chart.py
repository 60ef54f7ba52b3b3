"""``/imagine-admin usage`` with its chart, and ``python -m bot usage --chart FILE`` writing the same PNG."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from bot.moderation.usage_chart import HEIGHT_PX, WIDTH_PX
from tests.e2e.conftest import StackFactory
from tests.e2e.test_budget import priced_stack
from tests.e2e.test_cli import base_env, cli
from tests.fakes.discord import CallbackType


def png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        image.verify()
        return image.size


async def test_the_usage_answer_carries_the_chart_and_the_command_line_writes_it(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = await priced_stack(make_stack)
    await stack.final_message(await stack.imagine(count=3))
    await stack.final_message(await stack.imagine(user="moderator"))

    handle = await stack.admin("usage", days=7)
    callback = await handle.wait_callback(accepted_only=True)
    assert callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE
    message = await handle.wait_message(lambda m: not m.current.loading, timeout=20)
    assert message.ephemeral
    (chart,) = message.attachments
    assert chart.filename == "usage.png"
    assert png_size(chart.data) == (WIDTH_PX, HEIGHT_PX)
    assert message.embeds[0]["image"]["url"] == "attachment://usage.png"
    assert "Totals" in str(message.embeds)

    out = tmp_path / "chart.png"
    env = base_env(DATABASE_URL=stack.settings.database_url)
    result = await cli(
        "usage", "--guild", str(stack.guild.id), "--days", "7", "--chart", str(out), env=env, cwd=tmp_path
    )
    assert result.code == 0, result.err
    assert "Totals" in result.out and str(out) in result.out
    assert png_size(out.read_bytes()) == (WIDTH_PX, HEIGHT_PX)


async def test_a_period_without_jobs_has_no_chart_in_discord_and_a_chart_saying_so_on_the_command_line(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = await make_stack()
    handle = await stack.admin("usage")
    await handle.wait_callback(accepted_only=True)
    message = await handle.wait_message(lambda m: not m.current.loading, timeout=20)
    assert message.attachments == ()
    assert "No /imagine jobs in this period." in str(message.embeds)

    out = tmp_path / "empty.png"
    env = base_env(DATABASE_URL=stack.settings.database_url)
    result = await cli("usage", "--guild", str(stack.guild.id), "--chart", str(out), env=env, cwd=tmp_path)
    assert result.code == 0, result.err
    assert png_size(out.read_bytes()) == (WIDTH_PX, HEIGHT_PX)
