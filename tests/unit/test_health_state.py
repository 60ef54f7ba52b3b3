"""The health checks' answer kept for a second: a burst of askers shares one run, whatever its outcome."""

from __future__ import annotations

import asyncio

from bot.ops.health import Check, HealthState


async def test_askers_share_one_run_and_its_answer_for_a_second() -> None:
    now = [100.0]
    runs: list[float] = []
    release = asyncio.Event()

    async def database() -> Check:
        runs.append(now[0])
        await release.wait()
        return Check({"database": "ok"})

    state = HealthState({"database": database}, timeout=5, clock=lambda: now[0])
    askers = [asyncio.create_task(state.current()) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    answers = await asyncio.gather(*askers)
    assert all(answer.ok for answer in answers)
    assert len(runs) == 1
    now[0] += 0.9
    assert (await state.current()).ok and len(runs) == 1  # still fresh
    now[0] += 0.2
    assert (await state.current()).ok and len(runs) == 2  # a second on: asked again


async def test_an_asker_going_away_does_not_cancel_the_others_run() -> None:
    release = asyncio.Event()

    async def slow() -> Check:
        await release.wait()
        return Check({"database": "ok"})

    state = HealthState({"database": slow}, timeout=5)
    leaving = asyncio.create_task(state.current())
    staying = asyncio.create_task(state.current())
    await asyncio.sleep(0)
    leaving.cancel()
    release.set()
    assert (await staying).ok
    await state.close()
