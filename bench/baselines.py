"""The two baselines, each run in its own process: ``python -m bench.baselines {official|naive} BASE_URL``.

* ``official``: Replicate's own Python client as its README shows it:
  ``await replicate.Client(api_token=..., base_url=BASE_URL).async_run(model, input=...)`` with
  every default (it sends ``Prefer: wait``, which holds the create call up to 60 s, and polls every
  ``REPLICATE_POLL_INTERVAL`` = 0.5 s if the prediction is still running after that), then
  ``await output.aread()`` on each ``FileOutput``.
* ``naive``: the loop most bots are written with: create (no ``Prefer`` header), then
  ``sleep(1)`` and get until the prediction ends, then download the outputs.

A job is delivered when its last output file is in hand (``time.time()`` right after reading it).

The worker reads the token from ``REPLICATE_API_TOKEN``, then one JSON line per batch from stdin,
``{"prompts": [...], "timeout": seconds}``, runs the batch's jobs all at once and answers one JSON
line, a list of :class:`Delivery` objects. It stops at the end of its input. Running the baselines
in their own process, like the bot, keeps them from competing with the fakes for the benchmark
process's event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import aiohttp
from replicate.client import Client as ReplicateClient
from replicate.helpers import FileOutput

MODEL = "black-forest-labs/flux-schnell"
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
BASELINE_NAMES = {"official": "replicate (official)", "naive": "naive 1 s loop"}


@dataclass(frozen=True)
class Delivery:
    """What became of one job, as its client saw it (every client answers with these)."""

    prompt: str
    delivered_at: float | None
    """``time.time()`` when the image was delivered (``None``: it was not)."""
    error: str | None = None
    previous_version_gap: float | None = None
    """The bot only: seconds between the message version with the image and the version before it."""
    answered_after: float | None = None
    """The bot only: seconds from the interaction's dispatch to the bot's first answer (accepted or not)."""
    percentages: list[tuple[float, int]] | None = None
    """A bot that shows progress only: ``(time.monotonic(), percentage)`` of each version of the job's message that
    showed a percentage, before the image (the fake Discord's ``MessageVersion.at``, in the benchmark's process;
    empty: none did); ``None``: the client shows no progress."""


class Baseline(Protocol):
    """A library client that turns prompts into files in hand."""

    async def one(self, prompt: str) -> Delivery:
        """One job, start to file in hand."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def file_output(item: Any, client: ReplicateClient) -> FileOutput:
    """The ``FileOutput`` the client made, or the one it would have made for an ``https:`` URL.

    The client wraps only ``https:`` and ``data:`` strings, and the fake serves files over plain
    ``http://127.0.0.1``; wrapping them the same way downloads them through the same code (the
    client's own httpx connection pool, its headers included).
    """
    if isinstance(item, FileOutput):
        return item
    if isinstance(item, str) and item.startswith(("http:", "https:", "data:")):
        return FileOutput(item, client)
    raise ValueError(f"not a file output: {item!r}")


class OfficialClient:
    """``replicate.Client.async_run`` with its defaults."""

    def __init__(self, base_url: str, token: str) -> None:
        self._client = ReplicateClient(api_token=token, base_url=base_url)

    async def one(self, prompt: str) -> Delivery:
        """``async_run``, then read every output file."""
        output = await self._client.async_run(MODEL, input={"prompt": prompt})
        items = output if isinstance(output, list) else [output]
        files = [file_output(item, self._client) for item in items]
        if not files:
            return Delivery(prompt, None, f"no file output: {output!r}")
        for file in files:
            await file.aread()
        return Delivery(prompt, time.time())

    async def close(self) -> None:
        """Close its HTTP connections."""
        await self._client._async_client.aclose()


class NaiveClient:
    """Create, then ``sleep(1)`` and get until the prediction ends, then download; no ``Prefer: wait``."""

    def __init__(self, base_url: str, token: str, interval: float = 1.0) -> None:
        self._base = base_url.rstrip("/")
        self._interval = interval
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session: aiohttp.ClientSession | None = None

    @staticmethod
    async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
        response.raise_for_status()
        data = await response.json()
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data

    async def one(self, prompt: str) -> Delivery:
        """The loop."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        session = self._session
        create = f"{self._base}/v1/models/{MODEL}/predictions"
        async with session.post(create, json={"input": {"prompt": prompt}}, headers=self._headers) as response:
            prediction = await self._json(response)
        while prediction.get("status") not in TERMINAL:
            await asyncio.sleep(self._interval)
            url = f"{self._base}/v1/predictions/{prediction['id']}"
            async with session.get(url, headers=self._headers) as response:
                prediction = await self._json(response)
        if prediction["status"] != "succeeded":
            return Delivery(prompt, None, f"prediction {prediction['status']}: {prediction.get('error')}")
        output = prediction.get("output")
        for file_url in output if isinstance(output, list) else [output]:
            async with session.get(str(file_url)) as response:
                response.raise_for_status()
                await response.read()
        return Delivery(prompt, time.time())

    async def close(self) -> None:
        """Close its HTTP session."""
        if self._session is not None:
            await self._session.close()


async def run_batch(client: Baseline, prompts: Sequence[str], timeout: float) -> list[Delivery]:
    """Every prompt at once; a job that raises or overruns ``timeout`` is reported with the reason."""

    async def guarded(prompt: str) -> Delivery:
        try:
            async with asyncio.timeout(timeout):
                return await client.one(prompt)
        except Exception as exc:
            return Delivery(prompt, None, f"{type(exc).__name__}: {exc}")

    return list(await asyncio.gather(*(guarded(prompt) for prompt in prompts)))


async def serve(kind: str, base_url: str) -> int:
    """Answer batches from stdin until it ends."""
    token = os.environ.get("REPLICATE_API_TOKEN", "")
    client: Baseline = OfficialClient(base_url, token) if kind == "official" else NaiveClient(base_url, token)
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            batch = json.loads(line)
            deliveries = await run_batch(client, batch["prompts"], float(batch["timeout"]))
            print(json.dumps([asdict(d) for d in deliveries]), flush=True)
    finally:
        await client.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] not in BASELINE_NAMES:
        print("usage: python -m bench.baselines {official|naive} BASE_URL", file=sys.stderr)
        return 2
    return asyncio.run(serve(args[0], args[1]))


if __name__ == "__main__":
    sys.exit(main())
