"""The harness of the fault tests: the fakes' switches (seeded chaos, stalls, malicious hosts) and the watch."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from tests.fakes.discord import DiscordChaos, FakeDiscord, Routes
from tests.fakes.replicate import CHAOS_FAULTS, FLUX_SCHNELL, Chaos, ChaosFault, FakeReplicate, RouteKind, Scenario
from tests.faults.conftest import UnhandledWatch

CREATE = f"/v1/models/{FLUX_SCHNELL}/predictions"


def make_chaos(rate: float = 0.1, seed: int = 1, **changes: object) -> Chaos:
    options: dict[str, object] = {
        "seed": seed,
        "kinds": ("create", "get", "cancel", "model", "file"),
        "faults": CHAOS_FAULTS,
        "after_share": 0.5,
        "retry_after": 1,
        "stall_seconds": None,
        **changes,
    }
    return Chaos(rate, **options)  # type: ignore[arg-type]


def test_chaos_is_seeded_and_keeps_to_its_rate() -> None:
    kinds: list[RouteKind] = ["create", "get", "file", "model"] * 1000

    def run(seed: int) -> list[tuple[ChaosFault, bool] | None]:
        chaos = make_chaos(seed=seed)
        return [(drawn[0], drawn[2]) if drawn else None for drawn in map(chaos.draw, kinds)]

    first, again, other = run(1), run(1), run(2)
    assert first == again and first != other
    hits = [hit for hit in first if hit]
    assert 0.08 * len(kinds) < len(hits) < 0.12 * len(kinds)
    assert {name for name, _ in hits} == set(CHAOS_FAULTS)


def test_chaos_faults_fit_their_routes() -> None:
    chaos = make_chaos(rate=1.0)
    kinds: tuple[RouteKind, ...] = ("create", "get", "cancel", "model", "file")
    for kind in kinds:
        for _ in range(300):
            drawn = chaos.draw(kind)
            assert drawn is not None
            name, fault, processed = drawn
            assert name != "stall" or kind == "file"
            assert name != "malformed" or kind != "file"
            assert not (name in ("429", "stall") and processed)
            assert processed == fault.processed or name == "malformed"
            assert not processed or kind in ("create", "cancel") or name == "malformed"
            if name == "429":
                assert fault.headers["Retry-After"] == "1"
    assert make_chaos(kinds=("file",)).draw("get") is None
    with pytest.raises(ValueError):
        make_chaos(faults=("teapot",))


async def test_chaos_on_the_wire(http: aiohttp.ClientSession) -> None:
    async with FakeReplicate(seed=3) as fake:
        chaos = fake.chaos(1.0, seed=4, kinds=("create",), faults=("500",), after_share=1.0)
        headers = {"Authorization": f"Bearer {fake.token}"}
        async with http.post(fake.base_url + CREATE, json={"input": {"prompt": "x"}}, headers=headers) as response:
            assert response.status == 500
        assert len(fake.predictions) == 1, "a processed 500 still made the prediction"
        (event,) = chaos.events
        assert event.fault == "500" and event.processed and not event.safe_to_retry
        assert fake.creates[0].chaos == "500" and fake.creates[0].chaos_processed
        prediction = fake.last_prediction
        async with http.get(f"{fake.base_url}/v1/predictions/{prediction.id}", headers=headers) as response:
            assert response.status == 200, "gets are not chaotic here"
        assert fake.stop_chaos() is chaos and fake.active_chaos is None


async def test_stall_next_and_the_malicious_hosts(http: aiohttp.ClientSession) -> None:
    async with FakeReplicate(seed=3) as fake:
        fake.push_scenario(start_delay=0.0, duration=0.0)
        headers = {"Authorization": f"Bearer {fake.token}"}
        async with http.post(fake.base_url + CREATE, json={"input": {"prompt": "x"}}, headers=headers) as response:
            assert response.status == 201
        prediction = await fake.wait_for_status(fake.last_prediction.id, "succeeded")
        fake.stall_next("file", after_bytes=4, seconds=0.2)
        async with http.get(prediction.files[0].url) as response:
            assert response.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
        assert fake.file_requests[-1].body_bytes_sent == 4

        target = "http://169.254.169.254/latest/meta-data"
        async with http.get(fake.redirect_url(target, status=307), allow_redirects=False) as response:
            assert response.status == 307 and response.headers["Location"] == target
        async with http.get(fake.not_image_url()) as response:
            assert response.content_type == "image/png" and not (await response.read()).startswith(b"\x89PNG")
        async with http.get(fake.endless_url()) as response:
            assert (await response.content.readexactly(8)) == b"\x89PNG\r\n\x1a\n"
            await response.content.readexactly(1024 * 1024)
        await fake.wait_until(lambda: fake.endless_bytes_sent > 1024 * 1024, what="the endless body to be counted")
        async with http.get(fake.endless_url(declared_length=123)) as response:
            assert response.content_length == 123


async def test_output_override_sync_wait_cap_and_scenario_chooser(http: aiohttp.ClientSession) -> None:
    async with FakeReplicate(seed=3, scenario=Scenario.manual()) as fake:
        fake.max_sync_wait = 0
        fake.scenario_chooser = lambda inputs: (
            Scenario(start_delay=0.0, duration=0.0, output_override=["ftp://x/y.png"])
            if inputs["prompt"] == "ftp"
            else None
        )
        headers = {"Authorization": f"Bearer {fake.token}", "Prefer": "wait=60"}
        for prompt in ("ftp", "manual"):
            started = asyncio.get_running_loop().time()
            async with http.post(fake.base_url + CREATE, json={"input": {"prompt": prompt}}, headers=headers) as answer:
                assert answer.status == 201
            assert asyncio.get_running_loop().time() - started < 2
        ftp, manual = fake.predictions.values()
        assert (await fake.wait_for_status(ftp.id, "succeeded")).output == ["ftp://x/y.png"]
        assert manual.status == "starting"


async def test_discord_chaos_is_seeded_and_only_on_its_routes() -> None:
    def run(seed: int) -> list[tuple[str, int, bool]]:
        chaos = DiscordChaos(
            0.1, seed=seed, routes=Routes.WEBHOOK_EDITS, statuses=(429, 500), retry_after=0.05, via_share=0.5
        )
        for _ in range(2000):
            chaos.draw("PATCH", "/webhooks/1/t/messages/@original", Routes.EDIT_ORIGINAL)
            assert chaos.draw("POST", "/channels/1/messages", Routes.CREATE_MESSAGE) is None
        return chaos.hits

    first, again = run(5), run(5)
    assert first == again != run(6)
    assert 150 < len(first) < 250
    assert {status for _, status, _ in first} == {429, 500}
    assert {via for _, status, via in first if status == 429} == {True, False}
    async with FakeDiscord() as fake:
        chaos = fake.chaos(0.5, seed=1)
        assert fake.active_chaos is chaos and fake.stop_chaos() is chaos and fake.active_chaos is None
        with pytest.raises(ValueError):
            fake.chaos(0.1, statuses=(404,))


async def test_the_watch_sees_what_escapes(unhandled: UnhandledWatch) -> None:
    """The watch the fault tests end with: logged errors and forgotten failed tasks, not warnings."""
    logging.getLogger("bot.jobs.engine").warning("a retried poll: fine")
    assert unhandled.problems() == []

    async def boom() -> None:
        raise RuntimeError("nobody awaits me")

    task = asyncio.get_running_loop().create_task(boom())
    await asyncio.sleep(0)
    del task
    logging.getLogger("bot.jobs.engine").error("job x failed unexpectedly")
    problems = unhandled.problems()
    assert any("failed unexpectedly" in line for line in problems), problems
    assert any("never retrieved" in line for line in problems), problems
    unhandled.collector.records.clear()
    unhandled.loop_reports.clear()
