"""``/imagine`` through a real discord.py client, the fake Discord and the fake prediction API."""

from __future__ import annotations

import io
import re
import time

from PIL import Image

from bot.core import Tuning
from tests.e2e.conftest import LORA_REF, TEST_TUNING, Stack, StackFactory, field_of, imagine_in, status_of
from tests.fakes.discord import CallbackType, Routes
from tests.fakes.replicate import NSFW_ERROR, Scenario


async def test_happy_path_with_progress(stack: Stack) -> None:
    stack.api.set_default_scenario(Scenario.manual())
    started = time.monotonic()
    handle = await stack.imagine(seed=1234)
    callback = await handle.wait_callback()
    assert callback.type == CallbackType.CHANNEL_MESSAGE and not callback.ephemeral
    assert callback.at - started < 3.0
    placeholder = await handle.wait_message()
    embed = placeholder.embeds[0]
    assert embed["description"] == "a red fox"
    assert "black-forest-labs/flux-schnell" in (field_of(placeholder, "Model") or "")
    assert status_of(placeholder)
    assert any(cid.startswith("imagine:cancel:") for cid in placeholder.current.custom_ids)

    prediction = await stack.api.wait_for_prediction()
    stack.api.set_progress(prediction.id, 2)
    await handle.wait_message(lambda m: "50%" in status_of(m))
    stack.api.finish(prediction.id)
    final = await stack.final_message(handle)

    assert "Done" in status_of(final)
    assert [a.data for a in final.attachments] == [f.data for f in stack.api.last_prediction.files]
    assert field_of(final, "Seed") == "1234"
    assert field_of(final, "Time")
    assert {"imagine:reroll", "imagine:delete"} <= {":".join(c.split(":")[:2]) for c in final.current.custom_ids}
    stack.assert_paced(final)  # Discord: 5 edits per 5 s, the final never behind progress
    assert stack.api.count("POST", "create") == 1


async def test_versioned_model_and_several_outputs(stack: Stack) -> None:
    handle = await stack.imagine(model=LORA_REF)
    final = await stack.final_message(handle)
    assert "Done" in status_of(final), final.embeds
    assert stack.api.creates[0].path == "/v1/predictions"

    handle = await stack.imagine(count=3)
    final = await stack.final_message(handle)
    assert len(final.attachments) == 3


async def test_gateway_prefix(make_stack: StackFactory) -> None:
    stack = await make_stack(api_prefix="/replicate")
    final = await stack.final_message(await stack.imagine())
    assert "Done" in status_of(final)
    assert all(r.path.startswith("/replicate/v1/") for r in stack.api.api_requests)


async def test_fewer_outputs_than_asked(stack: Stack) -> None:
    stack.api.set_default_scenario(nsfw_dropped=1)
    final = await stack.final_message(await stack.imagine(count=2))
    assert "Done" in status_of(final)
    assert len(final.attachments) == 1
    assert "1 of 2" in (field_of(final, "Note") or "")


async def test_failure_shows_the_api_error(stack: Stack) -> None:
    stack.api.set_default_scenario(nsfw_dropped=1)
    final = await stack.final_message(await stack.imagine())
    assert "Failed" in status_of(final)
    assert field_of(final, "What happened") == NSFW_ERROR
    assert not final.attachments


async def test_aborted(stack: Stack) -> None:
    stack.api.set_default_scenario(final_status="aborted")
    final = await stack.final_message(await stack.imagine())
    assert "Failed" in status_of(final)
    assert "aborted" in (field_of(final, "What happened") or "")


async def test_timeout(make_stack: StackFactory) -> None:
    stack = await make_stack(job_timeout=0.5)
    stack.api.set_default_scenario(Scenario.manual())
    final = await stack.final_message(await stack.imagine())
    assert "Timed out" in status_of(final)
    assert stack.api.last_prediction.status == "canceled"


async def test_cancel_button_only_for_the_requester(stack: Stack) -> None:
    stack.api.set_default_scenario(Scenario.manual())
    handle = await stack.imagine()
    placeholder = await handle.wait_message()
    await stack.api.wait_for_prediction()
    cancel_id = next(c for c in placeholder.current.custom_ids if c.startswith("imagine:cancel:"))

    other = stack.guild.add_member("stranger")
    refused = await stack.discord.click(placeholder, cancel_id, user=other)
    answer = await refused.wait_callback()
    assert answer.ephemeral and "Only the member" in (answer.content or "")
    assert stack.api.last_prediction.status != "canceled"

    pressed = await stack.discord.click(placeholder, cancel_id, user=stack.guild.member("member"))
    assert (await pressed.wait_callback()).type == CallbackType.DEFERRED_UPDATE_MESSAGE
    final = await stack.final_message(handle)
    assert "Canceled" in status_of(final)
    assert stack.api.last_prediction.status == "canceled"


async def test_autocomplete_offers_at_most_25_matching(make_stack: StackFactory) -> None:
    many = tuple(f"someone/model-{n}" for n in range(40))
    stack = await make_stack(models=many)
    matching = await stack.models_offered(typed="model-1")
    assert 0 < len(matching) <= 25
    assert all("model-1" in model for model in matching)
    offered = await stack.models_offered()
    assert len(offered) == 25
    assert offered[0] == "black-forest-labs/flux-schnell"


async def test_discord_429s_on_edits_still_deliver(make_stack: StackFactory) -> None:
    stack = await make_stack(tuning=Tuning(poll=TEST_TUNING.poll, prefer_wait=0, edit_window=0.8))
    stack.api.set_default_scenario(Scenario(start_delay=0.1, duration=0.8))
    without_via = stack.discord.rate_limit_next(Routes.EDIT_ORIGINAL, times=3, retry_after=0.1, via=False)
    with_via = stack.discord.rate_limit_next(Routes.EDIT_ORIGINAL, times=2, retry_after=0.1, via=True)
    final = await stack.final_message(await stack.imagine())
    assert "Done" in status_of(final)
    assert final.attachments
    assert (without_via.hits, with_via.hits) == (3, 2)


async def test_token_expired_mid_job_edits_through_the_channel(make_stack: StackFactory) -> None:
    stack = await make_stack()
    stack.api.set_default_scenario(Scenario.manual())
    handle = await stack.imagine()
    await handle.wait_message()
    prediction = await stack.api.wait_for_prediction()
    handle.expire_token()
    stack.api.finish(prediction.id)
    final = await stack.final_message(handle)
    assert final.attachments
    assert final.routes[-1] == Routes.EDIT_MESSAGE


async def test_message_deleted_mid_job_reposts_for_the_requester(stack: Stack) -> None:
    await stack.imagine_deleted_before_the_end()
    member = stack.guild.member("member")
    channel = stack.guild.channel("general")
    repost = await stack.discord.wait_for(
        lambda: next((m for m in stack.discord.messages_in(channel) if m.attachments), None), 10, what="repost"
    )
    assert f"<@{member.id}>" in repost.content
    assert member.id in repost.current.mentions
    edits_after_delete = [r for r in stack.discord.requests if r.method == "PATCH" and r.status == 404]
    assert len(edits_after_delete) <= 2  # tried, learned, stopped: no error loop


async def test_oversized_output_is_fitted_under_the_limit(stack: Stack) -> None:
    stack.api.set_default_scenario(huge_image_mib=3)
    handle = await imagine_in(stack.discord, stack.guild, {"prompt": "fox"}, attachment_size_limit=1024 * 1024)
    final = await stack.final_message(handle, timeout=20)
    assert "Done" in status_of(final)
    [attachment] = final.attachments
    assert attachment.size <= 1024 * 1024
    Image.open(io.BytesIO(attachment.data)).verify()


async def test_bad_option_is_refused_ephemerally_and_nothing_is_sent(stack: Stack) -> None:
    handle = await stack.imagine(model="someone/not-allowed")
    callback = await handle.wait_callback()
    assert callback.ephemeral and "not allowed" in (callback.content or "")
    assert stack.api.count("POST", "create") == 0


async def test_short_lived_token_still_gets_the_final_message(stack: Stack) -> None:
    stack.api.set_default_scenario(Scenario(start_delay=0.1, duration=2.5))
    handle = await imagine_in(stack.discord, stack.guild, {"prompt": "fox"}, token_lifetime=1.0)
    final = await stack.final_message(handle)
    assert "Done" in status_of(final) and final.attachments
    assert final.routes[-1] == Routes.EDIT_MESSAGE


async def test_the_progress_bar_moves_between_polls_without_extra_requests(make_stack: StackFactory) -> None:
    """A 4 s prediction: a fresh percentage at (nearly) every edit, from the model's own tqdm rate."""
    stack = await make_stack(tuning=Tuning(prefer_wait=0))
    stack.api.set_default_scenario(Scenario(start_delay=0.3, duration=4.0))
    handle = await stack.imagine()
    final = await stack.final_message(handle, timeout=20)
    assert "Done" in status_of(final)
    percents = [
        int(match.group(1))
        for version in final.history
        for field in version.embeds[0]["fields"]
        if field["name"] == "Status" and (match := re.search(r"Processing .* (\d+)%", field["value"]))
    ]
    print(f"\nprogress shown: {percents}; polls: {stack.api.count('GET', 'get')}")
    assert len(set(percents)) >= 2, percents
    assert percents == sorted(percents), f"the bar went backwards: {percents}"
    assert all(p < 100 for p in percents)
    stack.assert_paced(final)
    # Polls aimed at the model's own estimate: a handful for 4 s, the same as without the moving bar.
    assert stack.api.count("GET", "get") <= 6, stack.api.count("GET", "get")
