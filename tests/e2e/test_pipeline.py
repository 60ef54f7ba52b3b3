"""The job pipeline (client → engine → delivery) against the fake prediction API."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable

import pytest

from bot.api.inputs import ImagineOptions
from bot.api.modelref import ModelRef
from bot.jobs.engine import JobState, JobView
from tests.conftest import Pipeline, RecordingPresenter
from tests.fakes.replicate import (
    FLUX_SCHNELL,
    FLUX_SCHNELL_LORA,
    FLUX_SCHNELL_LORA_VERSION,
    NSFW_ERROR,
    FakeReplicate,
    Scenario,
)

FLUX = ModelRef.parse(FLUX_SCHNELL)
LORA = ModelRef.parse(f"{FLUX_SCHNELL_LORA}:{FLUX_SCHNELL_LORA_VERSION}")

Build = Callable[..., Pipeline]


async def run(pipeline: Pipeline, options: ImagineOptions | None = None, model: ModelRef = FLUX) -> RecordingPresenter:
    """Submit one job and wait for its end."""
    presenter = RecordingPresenter()
    request = await pipeline.engine.prepare(model, options or ImagineOptions(prompt="a red fox"))
    job = await pipeline.engine.submit(request, presenter)
    await job.wait()
    return presenter


def served_bytes(fake: FakeReplicate) -> list[bytes]:
    """The bytes of every output file the fake made for its last prediction."""
    return [file.data for file in fake.last_prediction.files]


async def test_fast_model_finishes_in_the_create_call(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    presenter = await run(make_pipeline(prefer_wait=5), ImagineOptions(prompt="a red fox", seed=42))
    final = presenter.views[-1]
    assert final.state is JobState.SUCCEEDED, final.error
    assert [image.data for image in final.images] == served_bytes(fake_api)
    assert final.seed == 42
    assert final.predict_time is not None
    assert fake_api.count("POST", "create") == 1
    assert fake_api.count("GET", "get") == 0
    create = fake_api.creates[0]
    assert create.headers["Prefer"] == "wait=5"
    assert create.path == "/v1/models/black-forest-labs/flux-schnell/predictions"
    assert create.json == {"input": {"prompt": "a red fox", "seed": 42}}


async def test_statuses_and_progress_are_reported(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    fake_api.set_default_scenario(Scenario.manual())
    pipeline = make_pipeline()
    presenter = RecordingPresenter()
    job = await pipeline.engine.submit(await pipeline.engine.prepare(FLUX, ImagineOptions(prompt="fox")), presenter)
    prediction = await fake_api.wait_for_prediction()
    fake_api.set_progress(prediction.id, 2)
    halfway = await presenter.wait_for(lambda v: v.progress is not None and v.progress.fraction == 0.5)
    assert halfway.state is JobState.PROCESSING
    fake_api.finish(prediction.id)
    final = await job.wait()
    assert final.state is JobState.SUCCEEDED
    # A job that starts at once may skip showing "queued": the newest state wins.
    assert presenter.states[0] in (JobState.QUEUED, JobState.STARTING)
    assert presenter.states[-2:] == [JobState.PROCESSING, JobState.SUCCEEDED]
    assert final.seed == prediction.seed  # read from the model's "Using seed" log line


async def test_gateway_prefix(make_pipeline: Build) -> None:
    async with FakeReplicate(prefix="/replicate") as gateway:
        pipeline = make_pipeline(base_url=gateway.base_url, token=gateway.token)
        presenter = await run(pipeline)
        assert presenter.views[-1].state is JobState.SUCCEEDED
        api_paths = [r.path for r in gateway.api_requests]
        assert api_paths and all(path.startswith("/replicate/v1/") for path in api_paths)


async def test_versioned_model_uses_the_predictions_route(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    presenter = await run(make_pipeline(), ImagineOptions(prompt="fox", aspect_ratio="16:9", count=2), model=LORA)
    final = presenter.views[-1]
    assert final.state is JobState.SUCCEEDED, final.error
    create = fake_api.creates[0]
    assert create.path == "/v1/predictions"
    assert create.json is not None and create.json["version"] == FLUX_SCHNELL_LORA_VERSION
    sent = create.json["input"]
    assert "aspect_ratio" not in sent and "num_outputs" not in sent  # the model has neither
    assert sent["width"] > sent["height"]  # 16:9 became the model's own width and height
    assert any("count" in str(note) for note in final.notes)


@pytest.mark.parametrize("shape", ["list", "string", "data"])
async def test_output_shapes(fake_api: FakeReplicate, make_pipeline: Build, shape: str) -> None:
    fake_api.set_default_scenario(output_shape=shape)
    presenter = await run(make_pipeline())
    final = presenter.views[-1]
    assert final.state is JobState.SUCCEEDED, final.error
    assert [image.data for image in final.images] == served_bytes(fake_api)[: 1 if shape == "string" else None]


async def test_several_outputs(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    presenter = await run(make_pipeline(), ImagineOptions(prompt="fox", count=3))
    final = presenter.views[-1]
    assert len(final.images) == 3
    assert len({image.data for image in final.images}) == 3
    assert fake_api.creates[0].json["input"]["num_outputs"] == 3  # type: ignore[index]
    assert not final.notes


async def test_fewer_outputs_than_asked_is_a_success_with_a_note(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    fake_api.set_default_scenario(nsfw_dropped=1)
    presenter = await run(make_pipeline(), ImagineOptions(prompt="fox", count=2))
    final = presenter.views[-1]
    assert final.state is JobState.SUCCEEDED
    assert len(final.images) == 1
    assert any("1 of 2" in str(note) for note in final.notes)


async def test_all_outputs_flagged_fails_with_the_models_text(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    fake_api.set_default_scenario(nsfw_dropped=1)
    final = (await run(make_pipeline())).views[-1]
    assert final.state is JobState.FAILED
    assert final.error == NSFW_ERROR


async def test_failure_carries_the_api_error(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    fake_api.set_default_scenario(final_status="failed", error="CUDA out of memory")
    final = (await run(make_pipeline())).views[-1]
    assert (final.state, final.error) == (JobState.FAILED, "CUDA out of memory")


async def test_aborted_is_terminal(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    fake_api.set_default_scenario(final_status="aborted")
    final = (await run(make_pipeline())).views[-1]
    assert final.state is JobState.FAILED
    assert final.error is not None and "aborted" in str(final.error)


async def test_cancel_running_job_cancels_the_prediction(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    fake_api.set_default_scenario(Scenario.manual())
    pipeline = make_pipeline()
    job = await pipeline.engine.submit(
        await pipeline.engine.prepare(FLUX, ImagineOptions(prompt="fox")), RecordingPresenter()
    )
    prediction = await fake_api.wait_for_prediction()
    await fake_api.wait_for_requests("get", 1)
    assert await job.cancel(by=7)
    final = await job.wait()
    assert final.state is JobState.CANCELED
    assert final.canceled_by == 7
    assert fake_api.predictions[prediction.id].status == "canceled"
    assert fake_api.count("POST", "cancel") == 1


async def test_cancel_while_queued_sends_nothing(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    fake_api.set_default_scenario(Scenario.manual())
    pipeline = make_pipeline(max_running=1)
    request = await pipeline.engine.prepare(FLUX, ImagineOptions(prompt="fox"))
    first = await pipeline.engine.submit(request, RecordingPresenter())
    waiting_presenter = RecordingPresenter()
    waiting = await pipeline.engine.submit(request, waiting_presenter)
    await fake_api.wait_for_prediction()
    assert waiting.view.queue_position == 1
    assert await waiting.cancel()
    assert (await waiting.wait()).state is JobState.CANCELED
    assert fake_api.count("POST", "create") == 1
    await first.cancel()
    await first.wait()


async def test_timeout_cancels_remotely(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    fake_api.set_default_scenario(Scenario.manual())
    final = (await run(make_pipeline(job_timeout=0.3))).views[-1]
    assert final.state is JobState.TIMED_OUT
    assert final.error is not None and "0.3 seconds" in str(final.error)
    assert fake_api.count("POST", "cancel") == 1
    assert fake_api.last_prediction.status == "canceled"


async def test_gets_retry_through_server_errors_and_bad_json(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    fake_api.set_default_scenario(duration=0.3)
    fake_api.fail_next("get", 500)
    fake_api.fail_next("get", 503)
    fake_api.malformed_next("get")
    fake_api.reset_next("get")
    final = (await run(make_pipeline())).views[-1]
    assert final.state is JobState.SUCCEEDED, final.error
    assert fake_api.count("POST", "create") == 1


async def test_create_throttled_is_retried_after_the_hint(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    fake_api.throttle_next("create", resets_in=0)
    fake_api.fail_next("create", 429, retry_after="0.05")
    final = (await run(make_pipeline())).views[-1]
    assert final.state is JobState.SUCCEEDED
    assert len(fake_api.predictions) == 1


def inject_create_fault(fake_api: FakeReplicate, fault: str) -> None:
    if fault == "reset_after_create":
        fake_api.reset_next("create", processed=True)
    elif fault == "reset_before_create":
        fake_api.reset_next("create")
    elif fault == "server_error_after_create":
        fake_api.fail_next("create", 500, processed=True)
    elif fault == "server_error_before_create":
        fake_api.fail_next("create", 502)
    else:
        fake_api.malformed_next("create")


async def succeeded_despite(fake_api: FakeReplicate, make_pipeline: Build, fault: str) -> JobView:
    """The last view of one job whose create met ``fault``: it succeeded, with a single prediction made."""
    inject_create_fault(fake_api, fault)
    final = (await run(make_pipeline())).views[-1]
    assert final.state is JobState.SUCCEEDED, final.error
    assert len(fake_api.predictions) == 1
    return final


@pytest.mark.parametrize("fault", ["reset_after_create", "server_error_after_create", "malformed"])
async def test_a_lost_create_answer_is_found_in_the_list_and_finished(
    fake_api: FakeReplicate, make_pipeline: Build, fault: str
) -> None:
    """The create made its prediction but its answer was lost: the job finds it and ends with its image."""
    final = await succeeded_despite(fake_api, make_pipeline, fault)
    assert fake_api.count("POST", "create") == 1
    assert final.prediction_id == fake_api.last_prediction.id
    assert fake_api.count("GET", "list") >= 1
    assert final.images and served_bytes(fake_api) == [image.data for image in final.images]


@pytest.mark.parametrize("fault", ["reset_before_create", "server_error_before_create"])
async def test_a_create_that_made_nothing_is_sent_again_after_the_list_proves_it(
    fake_api: FakeReplicate, make_pipeline: Build, fault: str
) -> None:
    await succeeded_despite(fake_api, make_pipeline, fault)
    assert fake_api.count("POST", "create") == 2
    first_list = next(r for r in fake_api.requests if r.kind == "list")
    second_create = fake_api.creates[1]
    assert first_list.time < second_create.time  # looked up before asking again


@pytest.mark.parametrize(
    "fault", ["reset_after_create", "reset_before_create", "server_error_after_create", "malformed"]
)
async def test_without_a_list_route_a_lost_create_is_never_sent_again(
    fake_api: FakeReplicate, make_pipeline: Build, fault: str
) -> None:
    """A gateway that serves only the prediction routes: the job ends with a clear message, one create."""
    fake_api.serve_list = False
    inject_create_fault(fake_api, fault)
    final = (await run(make_pipeline())).views[-1]
    assert final.state is JobState.FAILED
    assert final.error and "cannot list predictions" in str(final.error) and "not sent again" in str(final.error)
    assert fake_api.count("POST", "create") == 1


async def test_a_list_that_keeps_failing_is_not_taken_for_absence(
    fake_api: FakeReplicate, make_pipeline: Build
) -> None:
    fake_api.fail_next("create", 502)  # nothing made, but the bot cannot know: the list fails too
    fake_api.fail_next("list", 500, count=50)
    final = (await run(make_pipeline())).views[-1]
    assert final.state is JobState.FAILED
    assert final.error and "could not be read" in str(final.error)
    assert fake_api.count("POST", "create") == 1


async def test_the_lookup_pages_through_the_list_on_the_configured_base(
    fake_api: FakeReplicate, make_pipeline: Build
) -> None:
    """``next`` links point at Replicate (as gateways pass them through): only their cursor is used."""
    pipeline = make_pipeline()
    for index in range(4):  # newer predictions of other prompts push this job's to the second page
        fake_api.set_default_scenario(duration=0.01)
        await run(pipeline, ImagineOptions(prompt=f"other {index}"))
    fake_api.list_page_size = 2
    fake_api.scenario_chooser = None
    fake_api.reset_next("create", processed=True)
    task = run(pipeline, ImagineOptions(prompt="mine"))
    final = (await task).views[-1]
    assert final.state is JobState.SUCCEEDED, final.error
    assert fake_api.predictions[final.prediction_id or ""].input["prompt"] == "mine"
    lists = [r for r in fake_api.requests if r.kind == "list"]
    assert lists and all(r.path == "/v1/predictions" for r in lists)


async def test_two_lost_creates_with_the_same_input_take_one_prediction_each(
    fake_api: FakeReplicate, make_pipeline: Build
) -> None:
    pipeline = make_pipeline()
    fake_api.reset_next("create", processed=True, count=2)
    finals = await asyncio.gather(
        run(pipeline, ImagineOptions(prompt="twins", seed=7)), run(pipeline, ImagineOptions(prompt="twins", seed=7))
    )
    views = [presenter.views[-1] for presenter in finals]
    assert all(view.state is JobState.SUCCEEDED for view in views), [view.error for view in views]
    assert len(fake_api.predictions) == 2
    assert {view.prediction_id for view in views} == set(fake_api.predictions)


async def test_connection_refused_is_retried_then_reported(make_pipeline: Build) -> None:
    final = (await run(make_pipeline(base_url="http://127.0.0.1:9"))).views[-1]
    assert final.state is JobState.FAILED
    assert final.error is not None and "connect" in str(final.error)


@pytest.mark.parametrize(
    ("status", "words"),
    [(401, "authentication token"), (402, "insufficient credit")],
)
async def test_api_refusals_show_the_api_text(
    fake_api: FakeReplicate, make_pipeline: Build, status: int, words: str
) -> None:
    fake_api.fail_next("create", status)
    final = (await run(make_pipeline())).views[-1]
    assert final.state is JobState.FAILED
    assert final.error is not None and words in str(final.error).lower()


async def test_without_a_schema_the_apis_422_is_shown(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    fake_api.model(FLUX_SCHNELL).serve_schema = False
    final = (await run(make_pipeline(), ImagineOptions(prompt="fox", count=4), model=FLUX)).views[-1]
    assert final.state is JobState.SUCCEEDED  # 4 is fine for flux
    fake_api.clear_requests()
    final = (await run(make_pipeline(), ImagineOptions(prompt="fox", extra={"num_inference_steps": "9"}))).views[-1]
    assert final.state is JobState.FAILED
    assert final.error is not None and "num_inference_steps" in str(final.error)


async def test_schema_refusal_sends_nothing(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    from bot.base.errors import InputRejected

    pipeline = make_pipeline()
    with pytest.raises(InputRejected, match="num_inference_steps"):
        await pipeline.engine.prepare(FLUX, ImagineOptions(prompt="fox", extra={"num_inference_steps": "9"}))
    assert fake_api.count("POST", "create") == 0


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"file_status": 404}, "could not be downloaded (output 1): it has expired"),
        ({"file_not_image": True}, "not an image"),
        ({"file_stall": True}, "could not be downloaded (output 1)."),
    ],
)
async def test_bad_output_files_fail_clearly(
    fake_api: FakeReplicate, make_pipeline: Build, changes: dict[str, object], words: str
) -> None:
    fake_api.set_default_scenario(**changes)
    final = (await run(make_pipeline())).views[-1]
    assert final.state is JobState.FAILED
    assert final.error is not None and words in str(final.error)


async def test_file_host_never_sees_the_token(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    await run(make_pipeline(), ImagineOptions(prompt="fox", count=2))
    assert len(fake_api.file_requests) == 2
    assert fake_api.file_requests_with_auth == []
    assert all(r.authorization == f"Bearer {fake_api.token}" for r in fake_api.api_requests)


async def test_data_url_output_is_decoded() -> None:
    from bot.media.delivery import decode_data_url
    from tests.fakes.images import image_bytes

    png = image_bytes("png")
    assert decode_data_url("data:image/png;base64," + base64.b64encode(png).decode()) == png


async def test_cancel_while_waiting_for_the_budget_creates_nothing(
    fake_api: FakeReplicate, make_pipeline: Build
) -> None:
    pipeline = make_pipeline()
    pipeline.client.budget.creates.pause(0.5)  # as after a 429: every create waits
    presenter = RecordingPresenter()
    job = await pipeline.engine.submit(await pipeline.engine.prepare(FLUX, ImagineOptions(prompt="fox")), presenter)
    await presenter.wait_for(lambda v: v.state is JobState.STARTING)
    assert await job.cancel()
    assert (await job.wait()).state is JobState.CANCELED
    assert fake_api.count("POST", "create") == 0


async def test_a_passing_schema_failure_is_not_remembered(fake_api: FakeReplicate, make_pipeline: Build) -> None:
    pipeline = make_pipeline()
    fake_api.fail_next("model", 503, count=20)
    assert await pipeline.client.input_schema(FLUX) is None
    fake_api.clear_faults()
    assert await pipeline.client.input_schema(FLUX) is not None
