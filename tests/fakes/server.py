"""What both fakes share: an aiohttp application served on 127.0.0.1, started and stopped as an async context."""

from __future__ import annotations

from typing import Self

from aiohttp import web


class LoopbackServer:
    """Base of a fake served by aiohttp on 127.0.0.1 (on ``port``, or a free one for ``0``).

    A subclass builds its application in :meth:`_application`; its ``start`` and ``close`` wrap :meth:`_serve`
    and :meth:`_stop_serving` with whatever it opens besides the server.
    """

    #: Seconds aiohttp gives open requests to end when the server stops.
    shutdown_timeout: float = 1.0

    def __init__(self, port: int = 0) -> None:
        self._runner: web.AppRunner | None = None
        self._port = port
        self._bound = False

    def _application(self) -> web.Application:
        raise NotImplementedError

    async def _serve(self) -> None:
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        runner = web.AppRunner(
            self._application(),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=self.shutdown_timeout,
        )
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self._port).start()
        self._port = int(runner.addresses[0][1])
        self._bound = True
        self._runner = runner

    async def _stop_serving(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def start(self) -> None:
        """Start serving."""
        await self._serve()

    async def close(self) -> None:
        """Stop serving."""
        await self._stop_serving()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if not self._bound:
            raise RuntimeError(f"{type(self).__name__} not started")
        return self._port

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:{port}``."""
        return f"http://127.0.0.1:{self.port}"
