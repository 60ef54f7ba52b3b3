"""The command line: the SPEC's commands and flags, usage errors (exit 2), and the terminal status lines."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from bot.api.inputs import ASPECT_RATIOS, ImagineOptions
from bot.api.modelref import ModelRef
from bot.api.predictions import Progress
from bot.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, LABEL_PROMPT_CLIP, TerminalPresenter, build_parser, job_label
from bot.jobs.engine import JobRequest, JobState, JobView
from bot.media.images import ImageFile


def test_migrate_command() -> None:
    assert build_parser().parse_args(["migrate"]).command == "migrate"


def test_exit_codes() -> None:
    assert (EXIT_OK, EXIT_FAILED, EXIT_USAGE) == (0, 1, 2)


def test_full_imagine_command_line() -> None:
    args = build_parser().parse_args(
        [
            "imagine",
            "a cat in a hat",
            "--model",
            "owner/name:v1",
            "--aspect-ratio",
            "16:9",
            "--count",
            "2",
            "--seed",
            "5",
            "--input",
            "a=1",
            "--input",
            "b=x",
            "--out",
            "some/dir",
        ]
    )
    assert args.command == "imagine"
    assert args.prompt == "a cat in a hat"
    assert args.model == "owner/name:v1"
    assert args.aspect_ratio == "16:9"
    assert args.count == 2
    assert args.seed == 5
    assert args.input == [("a", "1"), ("b", "x")]
    assert args.out == Path("some/dir")


def test_imagine_defaults() -> None:
    args = build_parser().parse_args(["imagine", "just a prompt"])
    assert args.prompt == "just a prompt"
    assert args.model is None
    assert args.aspect_ratio is None
    assert args.count is None
    assert args.seed is None
    assert args.input == []
    assert args.out == Path(".")


def test_input_values_may_contain_equals_and_be_empty() -> None:
    args = build_parser().parse_args(["imagine", "p", "--input", "extra= a=b ", "--input", " key =", "--seed", "0"])
    assert args.input == [("extra", " a=b "), ("key", "")]
    assert args.seed == 0


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_every_aspect_ratio_accepted(ratio: str) -> None:
    assert build_parser().parse_args(["imagine", "p", "--aspect-ratio", ratio]).aspect_ratio == ratio


@pytest.mark.parametrize("count", ["1", "4"])
def test_count_bounds_accepted(count: str) -> None:
    assert build_parser().parse_args(["imagine", "p", "--count", count]).count == int(count)


@pytest.mark.parametrize(
    ("argv", "guild"),
    [
        (["sync"], None),
        (["sync", "--guild", "123"], 123),
        (["sync", "--guild", "123456789012345678"], 123456789012345678),
    ],
)
def test_sync(argv: list[str], guild: int | None) -> None:
    args = build_parser().parse_args(argv)
    assert args.command == "sync"
    assert args.guild == guild


@pytest.mark.parametrize(("argv", "command"), [([], None), (["run"], "run")])
def test_no_command_means_run(argv: list[str], command: str | None) -> None:
    args = build_parser().parse_args(argv)
    assert args.command == command
    assert (args.command or "run") == "run"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["imagine", "p", "--count", "0"], "--count"),
        (["imagine", "p", "--count", "5"], "--count"),
        (["imagine", "p", "--count", "two"], "--count"),
        (["imagine", "p", "--count", "1.5"], "--count"),
        (["imagine", "p", "--count=-1"], "--count"),
        (["imagine", "p", "--seed", "-1"], "--seed"),
        (["imagine", "p", "--seed=-1"], "--seed"),
        (["imagine", "p", "--seed", "abc"], "--seed"),
        (["imagine", "p", "--aspect-ratio", "7:3"], "--aspect-ratio"),
        (["imagine", "p", "--aspect-ratio", "16x9"], "--aspect-ratio"),
        (["imagine", "p", "--input", "novalue"], "--input"),
        (["imagine", "p", "--input", "=x"], "--input"),
        (["imagine", "p", "--input", " =x"], "--input"),
        (["imagine"], "prompt"),
        (["imagine", "p", "--unknown"], "--unknown"),
        (["sync", "--guild", "abc"], "--guild"),
        (["dance"], "dance"),
    ],
)
def test_bad_usage_exits_2(argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err
    assert words in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["imagine", "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--model", "--aspect-ratio", "--count", "--seed", "--input", "--out"):
        assert flag in out


# --------------------------------------------------------------------------- TerminalPresenter.line


def make_view(state: JobState, **changes: object) -> JobView:
    request = JobRequest(
        model=ModelRef("black-forest-labs", "flux-schnell"), options=ImagineOptions("p"), inputs={"prompt": "p"}
    )
    return replace(JobView("job1", request, state), **changes)  # type: ignore[arg-type]


def image(n: int) -> ImageFile:
    return ImageFile(f"imagine-job1-{n}.png", b"\x89PNG\r\n\x1a\n", "image/png")


@pytest.mark.parametrize(
    ("view", "line"),
    [
        (make_view(JobState.QUEUED), "queued"),
        (make_view(JobState.QUEUED, queue_position=4), "queued (position 4)"),
        (make_view(JobState.STARTING), "starting"),
        (
            make_view(JobState.STARTING, prediction_id="qpt5jq1fssrmc0cmd5hvy31mdg"),
            "starting (prediction qpt5jq1fssrmc0cmd5hvy31mdg)",
        ),
        (make_view(JobState.PROCESSING), "processing"),
        (make_view(JobState.PROCESSING, progress=Progress(0.75, 3, 4)), "processing 75% (3/4)"),
        (make_view(JobState.SUCCEEDED, images=(image(1),)), "succeeded: 1 image"),
        (
            make_view(JobState.SUCCEEDED, images=(image(1), image(2)), seed=62182, predict_time=0.5579, elapsed=2.04),
            "succeeded: 2 images, seed 62182, model time 0.6s, total 2.0s",
        ),
        (make_view(JobState.SUCCEEDED), "succeeded: 0 images"),
        (make_view(JobState.SUCCEEDED, seed=0), "succeeded: 0 images, seed 0"),
        (
            make_view(JobState.FAILED, error="You did not pass a valid authentication token"),
            "failed: You did not pass a valid authentication token",
        ),
        (make_view(JobState.CANCELED), "canceled"),
        (
            make_view(JobState.CANCELED, error="The prediction was canceled on the API's side."),
            "canceled: The prediction was canceled on the API's side.",
        ),
        (
            make_view(JobState.TIMED_OUT, error="The prediction ran longer than 600 seconds, so it was canceled."),
            "timed out: The prediction ran longer than 600 seconds, so it was canceled.",
        ),
    ],
)
def test_terminal_presenter_line(view: JobView, line: str) -> None:
    assert TerminalPresenter(io.StringIO()).line(view) == line


@pytest.mark.parametrize("state", list(JobState))
def test_terminal_presenter_line_for_every_state(state: JobState) -> None:
    line = TerminalPresenter(io.StringIO()).line(make_view(state, error="why"))
    assert line
    assert "\n" not in line


async def test_terminal_presenter_show_prints_changes_and_notes() -> None:
    out = io.StringIO()
    presenter = TerminalPresenter(out)
    await presenter.show(make_view(JobState.QUEUED, queue_position=1))
    await presenter.show(make_view(JobState.QUEUED, queue_position=1))
    await presenter.show(make_view(JobState.PROCESSING, progress=Progress(0.5, 2, 4)))
    await presenter.show(make_view(JobState.PROCESSING, progress=Progress(0.5, 2, 4)))
    await presenter.show(make_view(JobState.SUCCEEDED, images=(image(1),), notes=("count 3 was ignored",)))
    assert out.getvalue().splitlines() == [
        "queued (position 1)",
        "processing 50% (2/4)",
        "succeeded: 1 image",
        "note: count 3 was ignored",
    ]


@pytest.mark.parametrize(
    ("number", "total", "prompt", "label"),
    [
        (1, 1, "a red fox", ""),
        (2, 4, "a  blue\nfox --ar 16:9", "[2/4 a blue fox --ar 16:9] "),
        (3, 3, "x" * 50, f"[3/3 {'x' * (LABEL_PROMPT_CLIP - 1)}…] "),
    ],
    ids=["a lone job has none", "one line, spaces kept single", "long prompts clipped"],
)
def test_job_labels(number: int, total: int, prompt: str, label: str) -> None:
    assert job_label(number, total, prompt) == label


async def test_each_line_of_a_job_of_several_carries_its_label() -> None:
    out = io.StringIO()
    presenter = TerminalPresenter(out, label=job_label(2, 2, "a blue fox"))
    await presenter.show(make_view(JobState.SUCCEEDED, images=(image(1),), notes=("a note",)))
    presenter.say("saved out/x.png")
    assert out.getvalue().splitlines() == [
        "[2/2 a blue fox] succeeded: 1 image",
        "[2/2 a blue fox] note: a note",
        "[2/2 a blue fox] saved out/x.png",
    ]


def test_help_names_permutations_and_repeat(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["imagine", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "{a, b}" in out and "--repeat N" in out and "IMAGINE_MAX_PERMUTATIONS" in out
