"""How a job view looks in Discord: the progress bar, the status line and the embed, within Discord's limits."""

from __future__ import annotations

from dataclasses import replace

import discord
import pytest

from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.api.predictions import Progress
from bot.discord_app.render import ALT_TEXT_LIMIT, alt_text, progress_bar, render_embed, status_text
from bot.jobs.engine import JobRequest, JobState, JobView
from bot.media.images import ImageFile

MODEL = ModelRef("black-forest-labs", "flux-schnell")
DESCRIPTION_LIMIT = 4096
FIELD_VALUE_LIMIT = 1024
FIELD_NAME_LIMIT = 256
TOTAL_LIMIT = 6000


def make_view(
    state: JobState = JobState.QUEUED,
    *,
    prompt: str = "a lighthouse at dusk, oil painting",
    model: ModelRef = MODEL,
    requester_id: int | None = 1234,
    **changes: object,
) -> JobView:
    request = JobRequest(
        model=model,
        options=ImagineOptions(prompt),
        inputs={"prompt": prompt},
        requester_id=requester_id,
        guild_id=99,
        channel_id=77,
    )
    view = JobView("job123abc", request, state)
    return replace(view, **changes)  # type: ignore[arg-type]


def fields(embed: discord.Embed) -> dict[str, str]:
    return {str(field.name): str(field.value) for field in embed.fields}


def assert_within_discord_limits(embed: discord.Embed) -> None:
    assert len(embed.description or "") <= DESCRIPTION_LIMIT
    assert len(embed.fields) <= 25
    for field in embed.fields:
        assert 0 < len(str(field.name)) <= FIELD_NAME_LIMIT
        assert 0 < len(str(field.value)) <= FIELD_VALUE_LIMIT
    assert len(embed.footer.text or "") <= 2048
    assert len(embed) <= TOTAL_LIMIT


# --------------------------------------------------------------------------- progress_bar


@pytest.mark.parametrize(
    ("fraction", "bar"),
    [
        (0.3, "▰▰▰▱▱▱▱▱▱▱ 30%"),
        (0.0, "▱▱▱▱▱▱▱▱▱▱ 0%"),
        (1.0, "▰▰▰▰▰▰▰▰▰▰ 100%"),
        (0.75, "▰▰▰▰▰▰▰▰▱▱ 75%"),
        (0.04, "▱▱▱▱▱▱▱▱▱▱ 4%"),
        (0.96, "▰▰▰▰▰▰▰▰▰▰ 96%"),
        (-0.5, "▱▱▱▱▱▱▱▱▱▱ 0%"),
        (1.7, "▰▰▰▰▰▰▰▰▰▰ 100%"),
    ],
)
def test_progress_bar(fraction: float, bar: str) -> None:
    assert progress_bar(fraction) == bar


@pytest.mark.parametrize("fraction", [i / 100 for i in range(101)])
def test_progress_bar_always_ten_cells(fraction: float) -> None:
    cells, percent = progress_bar(fraction).split(" ")
    assert len(cells) == 10
    assert set(cells) <= {"▰", "▱"}
    assert percent == f"{round(fraction * 100)}%"


# --------------------------------------------------------------------------- status_text


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        (make_view(JobState.QUEUED), "⏳ Queued"),
        (make_view(JobState.QUEUED, queue_position=3), "⏳ Queued (position 3)"),
        (make_view(JobState.QUEUED, queue_position=5), "⏳ Queued (position 5)"),
        (make_view(JobState.QUEUED, queue_position=87), "⏳ Queued (86 jobs ahead)"),  # edited only as it halves
        (make_view(JobState.STARTING), "🚀 Starting…"),
        (make_view(JobState.PROCESSING), "🎨 Processing…"),
        (make_view(JobState.PROCESSING, progress=Progress(0.3, 3, 10)), "🎨 Processing ▰▰▰▱▱▱▱▱▱▱ 30%"),
        (make_view(JobState.SUCCEEDED), "✅ Done"),
        (make_view(JobState.FAILED, error="boom"), "❌ Failed"),
        (make_view(JobState.CANCELED), "⏹️ Canceled"),
        (make_view(JobState.CANCELED, canceled_by=555), "⏹️ Canceled by <@555>"),
        (make_view(JobState.TIMED_OUT), "⌛ Timed out"),
        (make_view(JobState.QUEUED, queue_position=2, cancel_requested=True), "⏹️ Canceling…"),
        (make_view(JobState.PROCESSING, cancel_requested=True), "⏹️ Canceling…"),
        (make_view(JobState.CANCELED, cancel_requested=True, canceled_by=9), "⏹️ Canceled by <@9>"),
        (make_view(JobState.SUCCEEDED, cancel_requested=True), "✅ Done"),
    ],
)
def test_status_text(view: JobView, expected: str) -> None:
    assert status_text(view) == expected


@pytest.mark.parametrize("state", list(JobState))
def test_status_text_for_every_state(state: JobState) -> None:
    text = status_text(make_view(state))
    assert text
    assert len(text) <= FIELD_VALUE_LIMIT


# --------------------------------------------------------------------------- render_embed


def test_queued_embed_shows_prompt_model_and_status() -> None:
    embed = render_embed(make_view(JobState.QUEUED, queue_position=2))
    assert embed.description == "a lighthouse at dusk, oil painting"
    shown = fields(embed)
    assert shown["Model"] == "`black-forest-labs/flux-schnell`"
    assert shown["Status"] == "⏳ Queued (position 2)"
    assert shown["Requested by"] == "<@1234>"
    assert "Seed" not in shown and "Time" not in shown and "Note" not in shown
    assert embed.footer.text == "job job123abc"
    assert embed.author.name == "/imagine"
    assert_within_discord_limits(embed)


def test_versioned_model_shown_in_full() -> None:
    model = ModelRef(
        "lucataco", "flux-schnell-lora", "2a6b576af31790b470f0a8442e1e9791213fa13799cbb65a9fc1436e96389574"
    )
    embed = render_embed(make_view(JobState.STARTING, model=model))
    assert fields(embed)["Model"] == f"`{model}`"


def test_no_requester_field_without_requester() -> None:
    assert "Requested by" not in fields(render_embed(make_view(requester_id=None)))


def test_success_shows_seed_and_time() -> None:
    image = ImageFile("imagine-job123abc-1.webp", b"RIFF....WEBP", "image/webp")
    view = make_view(
        JobState.SUCCEEDED,
        seed=62182,
        predict_time=0.557916184,
        elapsed=3.04,
        images=(image,),
        notes=("1 of 2 images came back; the model's safety checker may have held some back.",),
    )
    embed = render_embed(view)
    shown = fields(embed)
    assert shown["Status"] == "✅ Done"
    assert shown["Seed"] == "62182"
    assert shown["Time"] == "model 0.6s, total 3.0s"
    assert "safety checker" in shown["Note"]
    assert "What happened" not in shown
    assert embed.colour == discord.Colour.green()
    assert_within_discord_limits(embed)


@pytest.mark.parametrize(
    ("predict_time", "elapsed", "time"),
    [(1.25, None, "model 1.2s"), (None, 12.0, "total 12.0s"), (None, None, None)],
)
def test_success_time_parts(predict_time: float | None, elapsed: float | None, time: str | None) -> None:
    shown = fields(render_embed(make_view(JobState.SUCCEEDED, predict_time=predict_time, elapsed=elapsed)))
    assert shown.get("Time") == time
    assert "Seed" not in shown


def test_seed_zero_is_shown() -> None:
    assert fields(render_embed(make_view(JobState.SUCCEEDED, seed=0)))["Seed"] == "0"


def test_seed_and_time_only_on_success() -> None:
    shown = fields(render_embed(make_view(JobState.PROCESSING, seed=5, predict_time=1.0, elapsed=2.0)))
    assert "Seed" not in shown and "Time" not in shown


@pytest.mark.parametrize("state", [JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELED])
def test_failure_shows_error_text(state: JobState) -> None:
    error = "All generated images contained NSFW content. Try running it again with a different prompt."
    embed = render_embed(make_view(state, error=error, notes=("This model does not take a seed.",)))
    shown = fields(embed)
    assert shown["What happened"] == error
    assert shown["Note"] == "This model does not take a seed."
    assert_within_discord_limits(embed)


def test_notes_only_on_terminal_views() -> None:
    notes = ("This model has no aspect ratio setting, so 16:9 was ignored.", "second note")
    assert "Note" not in fields(render_embed(make_view(JobState.PROCESSING, notes=notes)))
    assert fields(render_embed(make_view(JobState.SUCCEEDED, notes=notes)))["Note"] == "\n".join(notes)


def test_every_state_has_a_colour() -> None:
    colours = {state: render_embed(make_view(state)).colour for state in JobState}
    assert all(colour is not None for colour in colours.values())
    assert colours[JobState.FAILED] == discord.Colour.red()
    assert colours[JobState.SUCCEEDED] != colours[JobState.FAILED]


def test_long_prompt_error_and_notes_are_clipped() -> None:
    view = make_view(
        JobState.FAILED,
        prompt="p" * 1500,
        error="e" * 5000,
        notes=tuple("n" * 400 for _ in range(10)),
    )
    embed = render_embed(view)
    shown = fields(embed)
    assert embed.description == "p" * 1500
    assert shown["What happened"].startswith("e" * 1000)
    assert shown["What happened"].endswith("…")
    assert len(shown["What happened"]) == FIELD_VALUE_LIMIT
    assert len(shown["Note"]) == FIELD_VALUE_LIMIT
    assert_within_discord_limits(embed)


def test_prompt_beyond_description_limit_is_clipped() -> None:
    embed = render_embed(make_view(JobState.PROCESSING, prompt="word " * 2000))
    assert embed.description is not None
    assert len(embed.description) <= DESCRIPTION_LIMIT
    assert embed.description.endswith("…")
    assert_within_discord_limits(embed)


def test_total_embed_length_within_limit_for_extreme_inputs() -> None:
    view = make_view(JobState.FAILED, prompt="p" * 5000, error="e" * 5000, notes=("n" * 5000,))
    assert_within_discord_limits(render_embed(view))


@pytest.mark.parametrize("length", [1, 1023, 1024, 1025, 1500])
def test_alt_text_is_the_prompt_within_discords_limit(length: int) -> None:
    prompt = "p" * length
    text = alt_text(make_view(JobState.SUCCEEDED, prompt=prompt))
    assert len(text) <= ALT_TEXT_LIMIT == 1024
    assert text == prompt if length <= ALT_TEXT_LIMIT else text == prompt[: ALT_TEXT_LIMIT - 1] + "…"
