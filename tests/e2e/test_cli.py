"""``python -m bot imagine`` and the start-up checks, as a user runs them (a subprocess)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.e2e.bot_process import start_python_m_bot
from tests.fakes.replicate import FakeReplicate, Scenario

SECRET_REPLICATE = "r8_CANARY_replicate_7f3a9c1e"
SECRET_DISCORD = "MTk4NjIyNDgzNDcxOTI1MjQ4.CANARY.discord_5b2d8e0f"


@dataclass
class Result:
    """What a finished command left behind."""

    code: int
    out: str
    err: str


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment: nothing from the developer's shell or a .env leaks in."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.update(extra)
    return env


async def cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = 30) -> Result:
    """Run ``python -m bot ARGS`` without blocking the loop that serves the fakes."""
    process = await start_python_m_bot(*args, env=env, cwd=cwd)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


@pytest.fixture
async def api() -> FakeReplicate:
    async with FakeReplicate(token=SECRET_REPLICATE, seed=3) as fake:
        yield fake  # type: ignore[misc]


def api_env(api: FakeReplicate, **extra: str) -> dict[str, str]:
    return base_env(**{"REPLICATE_API_TOKEN": SECRET_REPLICATE, "REPLICATE_BASE_URL": api.base_url, **extra})


async def test_imagine_saves_images_and_prints_transitions(api: FakeReplicate, tmp_path: Path) -> None:
    # Longer than the create call's Prefer: wait (3 s), so progress comes from polling.
    api.set_default_scenario(start_delay=0.2, duration=4.0)
    result = await cli(
        "imagine", "a red fox", "--count", "2", "--seed", "7", "--out", "out", env=api_env(api), cwd=tmp_path
    )
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert any(line.startswith("starting") for line in lines)
    assert any(line.startswith("processing") and "%" in line for line in lines)
    assert any(line.startswith("succeeded: 2 images, seed 7") for line in lines)
    saved = [Path(tmp_path, line.removeprefix("saved ")) for line in lines if line.startswith("saved ")]
    assert [path.read_bytes() for path in saved] == [file.data for file in api.last_prediction.files]
    assert api.creates[0].json == {"input": {"prompt": "a red fox", "num_outputs": 2, "seed": 7}}


async def test_failed_prediction_exits_1_with_the_api_message(api: FakeReplicate, tmp_path: Path) -> None:
    api.set_default_scenario(final_status="failed", error="The GPU caught fire")
    result = await cli("imagine", "fox", env=api_env(api), cwd=tmp_path)
    assert result.code == 1
    assert "The GPU caught fire" in result.out + result.err


async def test_api_refusal_exits_1(api: FakeReplicate, tmp_path: Path) -> None:
    api.insufficient_credit_next()
    result = await cli("imagine", "fox", env=api_env(api), cwd=tmp_path)
    assert result.code == 1
    assert "insufficient credit" in (result.out + result.err).lower()


@pytest.mark.parametrize(
    ("args", "extra", "names"),
    [
        (("imagine", "fox", "--count", "9"), {}, "--count"),
        (("imagine", "fox", "--aspect-ratio", "7:5"), {}, "--aspect-ratio"),
        (("imagine", "fox", "--model", "not a model"), {}, "--model"),
        (("imagine", "fox", "--input", "num_inference_steps=99"), {}, "num_inference_steps"),
        (("imagine", "fox"), {"REPLICATE_BASE_URL": "ftp://example.com"}, "REPLICATE_BASE_URL"),
        (("imagine", "fox"), {"IMAGINE_DEFAULT_MODEL": "flux"}, "IMAGINE_DEFAULT_MODEL"),
        (("imagine", "fox"), {"DATABASE_URL": "postgres://x"}, "DATABASE_URL"),
        (("imagine", "fox"), {"IMAGINE_MAX_RUNNING": "many"}, "IMAGINE_MAX_RUNNING"),
        (("imagine", "fox"), {"REPLICATE_API_TOKEN": ""}, "REPLICATE_API_TOKEN"),
        (("imagine", "fox"), {"IMAGINE_MAX_PERMUTATIONS": "0"}, "IMAGINE_MAX_PERMUTATIONS"),
        (("imagine", "fox"), {"IMAGINE_VARY_SUBTLE": "nan"}, "IMAGINE_VARY_SUBTLE"),
        (("imagine", "fox"), {"IMAGINE_VARY_STRONG": "1.5"}, "IMAGINE_VARY_STRONG"),
        (("run",), {"DISCORD_TOKEN": SECRET_DISCORD, "IMAGINE_DESCRIBE_MODEL": "blip"}, "IMAGINE_DESCRIBE_MODEL"),
        (("run",), {}, "DISCORD_TOKEN"),
    ],
)
async def test_bad_usage_and_configuration_exit_2(
    api: FakeReplicate, tmp_path: Path, args: tuple[str, ...], extra: dict[str, str], names: str
) -> None:
    result = await cli(*args, env=api_env(api, **extra), cwd=tmp_path)
    assert result.code == 2, result.err
    assert names in result.err
    assert api.count("POST", "create") == 0
    assert "Traceback" not in result.err


async def test_permutations_and_repeats_run_each_job_labelled_and_save_each(api: FakeReplicate, tmp_path: Path) -> None:
    result = await cli("imagine", "a {red, blue} fox --repeat 2", "--out", "out", env=api_env(api), cwd=tmp_path)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[:5] == ["4 jobs:", "  1. a red fox", "  2. a red fox", "  3. a blue fox", "  4. a blue fox"]
    labels = ["[1/4 a red fox] ", "[2/4 a red fox] ", "[3/4 a blue fox] ", "[4/4 a blue fox] "]
    outputs = {file.data for prediction in api.predictions.values() for file in prediction.files}
    for label in labels:
        assert any(line.startswith(f"{label}succeeded: 1 image") for line in lines), result.out
        saved = [Path(tmp_path, line.removeprefix(f"{label}saved ")) for line in lines if f"{label}saved " in line]
        assert len(saved) == 1 and saved[0].read_bytes() in outputs
    assert all(line.startswith(("[", "4 jobs:", "  ")) for line in lines)
    assert sorted(request.json["input"]["prompt"] for request in api.creates) == ["a blue fox"] * 2 + ["a red fox"] * 2


@pytest.mark.parametrize(
    ("prompt", "extra", "words"),
    [
        ("a {red, green, blue, gold, grey} fox", {}, "Your prompt makes 5 combinations"),
        ("{a, b, c} fox --repeat 2", {}, "Your prompt makes 6 jobs"),
        ("a fox --repeat 3", {"IMAGINE_MAX_PERMUTATIONS": "2"}, "--repeat 3 makes 3 jobs"),
        ("a {red, blue fox", {}, "`{`"),
        ("a fox --seed {1, x}", {}, "[2/2 a fox --seed x] --seed needs a whole number"),
    ],
)
async def test_a_set_refused_whole_exits_2_and_runs_nothing(
    api: FakeReplicate, tmp_path: Path, prompt: str, extra: dict[str, str], words: str
) -> None:
    result = await cli("imagine", prompt, env=api_env(api, **extra), cwd=tmp_path)
    assert result.code == 2, result.err
    assert words in result.err
    assert api.count("POST", "create") == 0
    assert "Traceback" not in result.err


async def test_one_failed_job_of_a_set_exits_1_and_the_others_are_saved(api: FakeReplicate, tmp_path: Path) -> None:
    api.push_scenario(final_status="failed", error="The GPU caught fire")
    result = await cli("imagine", "a {red, blue} fox", "--out", "out", env=api_env(api), cwd=tmp_path)
    assert result.code == 1
    failed = [line for line in result.out.splitlines() if "failed: The GPU caught fire" in line]
    assert len(failed) == 1 and failed[0].startswith(("[1/2 a red fox] ", "[2/2 a blue fox] "))
    assert len([line for line in result.out.splitlines() if "] saved " in line]) == 1
    assert len(list((tmp_path / "out").iterdir())) == 1


async def test_dotenv_is_read_but_never_overrides(api: FakeReplicate, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"REPLICATE_API_TOKEN=wrong\nREPLICATE_BASE_URL={api.base_url}\n")
    result = await cli("imagine", "fox", env=base_env(REPLICATE_API_TOKEN=SECRET_REPLICATE), cwd=tmp_path)
    assert result.code == 0, result.err


async def test_secrets_never_appear_in_output(api: FakeReplicate, tmp_path: Path) -> None:
    api.set_default_scenario(Scenario(start_delay=0.05, duration=0.2))
    env = api_env(api, LOG_LEVEL="DEBUG", DISCORD_TOKEN=SECRET_DISCORD)
    results = [
        await cli("imagine", "fox", env=env, cwd=tmp_path),
        await cli("imagine", "fox", "--count", "7", env=env, cwd=tmp_path),
        await cli("imagine", "fox", env={**env, "REPLICATE_BASE_URL": "nope"}, cwd=tmp_path),
        # Discord unreachable: the bot's start-up fails, and must not show the token doing so.
        await cli("run", env={**env, "DISCORD_API_BASE": "http://127.0.0.1:9/api/v10"}, cwd=tmp_path),
    ]
    api.fail_next("create", 401)
    results.append(await cli("imagine", "fox", env=env, cwd=tmp_path))
    for result in results:
        for secret in (SECRET_REPLICATE, SECRET_DISCORD):
            assert secret not in result.out + result.err
            assert secret[-12:] not in result.out + result.err
    assert results[0].code == 0
    assert results[3].code == 1


async def test_imagine_on_postgresql_journals_the_job(api: FakeReplicate, tmp_path: Path, postgres_url: str) -> None:
    """The whole pipeline on the PostgreSQL store: migrated at start, the job journaled to its end."""
    result = await cli(
        "imagine", "a red fox", "--out", "out", env=api_env(api, DATABASE_URL=postgres_url), cwd=tmp_path
    )
    assert result.code == 0, result.err
    conn = await asyncpg.connect(postgres_url)
    try:
        rows = await conn.fetch("SELECT prompt, state, prediction_id, ended_at FROM jobs")
    finally:
        await conn.close()
    assert [(row["prompt"], row["state"]) for row in rows] == [("a red fox", "succeeded")]
    assert rows[0]["prediction_id"] == api.last_prediction.id
    assert rows[0]["ended_at"] is not None
