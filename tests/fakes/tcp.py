"""A TCP peer that can go silent: a proxy in front of a real server that can be frozen mid-session.

Models a database behind a network that stops answering without closing anything (a half-open
connection: a cable pulled, a firewall dropping state, a host frozen): connections stay open, bytes
sent are accepted, and nothing comes back. Without a target it is a server that accepts and never
answers at all.

Also :func:`reset_connection`, for the fakes' HTTP servers: a peer that drops a request with a TCP reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import NoReturn

from aiohttp import web


class FreezableProxy:
    """Forwards 127.0.0.1 connections to ``target`` until :meth:`freeze`; then holds every byte, both ways."""

    def __init__(self, target: tuple[str, int] | None = None) -> None:
        self._target = target
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        if target is not None:
            self._flowing.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0
        """Connections accepted so far."""

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> FreezableProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    def freeze(self) -> None:
        """Stop passing bytes on every connection, open or new (none is closed)."""
        self._flowing.clear()

    def thaw(self) -> None:
        """Pass bytes again (what was held goes through)."""
        if self._target is not None:
            self._flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            await self._flowing.wait()  # a silent server stays here: the client's bytes are read by nobody
            assert self._target is not None
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
            self._writers.add(upstream_writer)
            await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # closed by a peer or by close(): nothing to report
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await self._flowing.wait()  # frozen: the bytes are held, the connection stays open
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()


def reset_connection(request: web.Request) -> NoReturn:
    """Abort the client connection of an aiohttp ``request`` with a TCP RST and stop the handler (no response)."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    raise asyncio.CancelledError
