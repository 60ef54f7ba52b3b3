"""The freezable TCP proxy of the hostile-database tests: it forwards, holds bytes while frozen, and can be silent."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.tcp import FreezableProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_the_proxy_forwards_holds_while_frozen_and_passes_on_thaw() -> None:
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    proxy = await FreezableProxy(("127.0.0.1", echo.sockets[0].getsockname()[1])).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"one")
        assert await asyncio.wait_for(reader.readexactly(3), 10) == b"one"
        proxy.freeze()
        writer.write(b"two")
        pending = asyncio.ensure_future(reader.readexactly(3))
        done, _ = await asyncio.wait({pending}, timeout=0.3)
        assert not done  # held, the connection still open
        proxy.thaw()
        assert await asyncio.wait_for(pending, 10) == b"two"
        assert proxy.connections == 1
        writer.close()
    finally:
        await proxy.close()
        echo.close()
        await echo.wait_closed()


async def test_without_a_target_it_accepts_and_never_answers() -> None:
    silent = await FreezableProxy().start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", silent.port)
        writer.write(b"hello")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.3)
        assert silent.connections == 1
        writer.close()
    finally:
        await silent.close()
