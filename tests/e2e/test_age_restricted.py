"""Age-restricted channels (issue 21): outside them no input that turns a model's safety checker off is ever sent,
whatever the member typed or clicked; inside them the server decides (``/imagine-admin safety checker:off``); a
model marked ``nsfw:True`` is refused elsewhere with the reason, not offered, and spoilered inside."""

from __future__ import annotations

from typing import Any

from bot.storage import PreferenceChanges
from tests.e2e.conftest import Stack, StackFactory, is_terminal, status_of
from tests.e2e.test_member_images import buttons
from tests.e2e.test_moderation import answer
from tests.e2e.test_remix import open_form
from tests.e2e.test_vary import replies, vary
from tests.fakes.discord import InteractionHandle, StoredMessage
from tests.fakes.replicate import FLUX_DEV, FLUX_PRO, FLUX_SCHNELL, Scenario


async def imagine_in(stack: Stack, channel: str, user: str = "member", **options: Any) -> InteractionHandle:
    """``/imagine`` as ``user`` in ``channel`` (``general``; ``nsfw`` is age-restricted)."""
    return await stack.discord.slash(
        "imagine",
        {"prompt": "a red fox", **options},
        user=stack.guild.member(user),
        guild=stack.guild,
        channel=stack.guild.channel(channel),
    )


async def final_in(stack: Stack, channel: str, **options: Any) -> StoredMessage:
    return await (await imagine_in(stack, channel, **options)).wait_message(is_terminal, timeout=10)


def sent_inputs(stack: Stack) -> list[dict[str, Any]]:
    """The inputs of every prediction the API was asked for, in order."""
    return [dict(prediction.input) for prediction in stack.api.predictions.values()]


async def checker(stack: Stack, state: str) -> str:
    return await answer(stack, "safety", checker=state)


async def test_outside_age_restricted_channels_the_checker_stays_on(make_stack: StackFactory) -> None:
    stack = await make_stack(models=(FLUX_PRO, FLUX_DEV))
    assert "now off" in await checker(stack, "off")
    # Whatever the member types: flags the bot does not know are refused, and never reach the model.
    typed = await imagine_in(stack, "general", prompt="a fox --disable_safety_checker true --safety_tolerance 6")
    assert (await typed.wait_callback()).ephemeral
    # Whatever the member prefers: a named option standing for the same flags.
    assert stack.bot is not None
    await stack.bot.core.repository.set_named_option(stack.guild.member("member").id, "wild", "--safety_tolerance 6")
    await imagine_in(stack, "general", prompt="a fox --wild")
    for model in (FLUX_SCHNELL, FLUX_PRO):
        final = await final_in(stack, "general", model=model, prompt="a fox --no people")
        assert final.attachments and not final.attachments[0].filename.startswith("SPOILER_")
    # A Re-roll from the buttons, in the same channel.
    click = await stack.discord.click(final, buttons(final, "reroll")[0], user=stack.guild.member("member"))
    assert "Done" in status_of(await stack.final_message(click))
    # Vary and Remix from the buttons of a model that takes an image.
    dev = await final_in(stack, "general", model=FLUX_DEV)
    await vary(stack, dev, "subtle")
    click = await open_form(stack, dev, buttons(dev, "remix")[0])
    await stack.discord.submit_modal(click, {"prompt": "a blue fox --disable_safety_checker true"})
    click = await open_form(stack, dev, buttons(dev, "remix")[0])
    await stack.discord.submit_modal(click, {"prompt": "a blue fox"})
    await stack.discord.wait_for(lambda: len(replies(stack, dev)) > 1, 10, what="the remix")
    inputs = sent_inputs(stack)
    assert len(inputs) == 6 and inputs[4]["image"] and inputs[5]["prompt"] == "a blue fox"
    for sent in inputs:
        assert sent.get("disable_safety_checker") in (None, False), sent
        assert sent.get("safety_tolerance") in (None, 2), sent
    assert "now on everywhere" in await checker(stack, "on")


async def test_in_an_age_restricted_channel_the_server_decides(make_stack: StackFactory) -> None:
    stack = await make_stack(models=(FLUX_PRO,))
    await final_in(stack, "nsfw")  # checker on (the default): nothing turned off
    assert sent_inputs(stack)[-1].get("disable_safety_checker") in (None, False)
    assert "is on everywhere" in await answer(stack, "safety")

    assert "now off" in await checker(stack, "off")
    final = await final_in(stack, "nsfw")
    assert sent_inputs(stack)[-1]["disable_safety_checker"] is True
    await final_in(stack, "nsfw", model=FLUX_PRO)
    assert sent_inputs(stack)[-1]["safety_tolerance"] == 6
    # A Re-roll clicked in the age-restricted channel: the server's decision again.
    click = await stack.discord.click(final, buttons(final, "reroll")[0], user=stack.guild.member("member"))
    assert "Done" in status_of(await stack.final_message(click))
    assert sent_inputs(stack)[-1]["disable_safety_checker"] is True
    await final_in(stack, "general")  # and never outside
    assert sent_inputs(stack)[-1].get("disable_safety_checker") in (None, False)

    assert "now on everywhere" in await checker(stack, "on")
    await final_in(stack, "nsfw")
    assert sent_inputs(stack)[-1].get("disable_safety_checker") in (None, False)
    shown = await answer(stack, "show")
    assert "Safety checker" in shown and "on everywhere" in shown
    audit = await stack.bot.core.repository.audit_log(stack.guild.id)  # type: ignore[union-attr]
    assert [entry.after for entry in audit if entry.action == "safety checker"] == ["on", "off"]


async def test_an_age_restricted_model_stays_in_age_restricted_channels(make_stack: StackFactory) -> None:
    stack = await make_stack(models=(FLUX_PRO,))
    await answer(stack, "models allow", model=FLUX_SCHNELL)
    await answer(stack, "models allow", model=FLUX_PRO)
    before = await final_in(stack, "general", model=FLUX_PRO)  # made before the model was marked
    handle = await stack.admin("models allow", model=FLUX_PRO, nsfw=True)

    def told() -> bool:
        return any("now only for age-restricted channels" in message.content for message in handle.followups)

    assert await stack.discord.wait_for(told, 10, what="the age restriction's answer")
    listed = await answer(stack, "models list")
    assert "Only for age-restricted channels" in listed and FLUX_PRO in listed

    refused = await imagine_in(stack, "general", model=FLUX_PRO)
    callback = await refused.wait_callback()
    assert callback.ephemeral and "only for age-restricted channels" in (callback.content or "")
    refused = await stack.discord.slash(
        "imagine",
        {"prompt": "a red fox", "model": FLUX_PRO},
        user=stack.guild.member("member"),
        guild=stack.guild,
        channel=stack.guild.channel("general"),
        locale="de",
    )
    assert "nur für altersbeschränkte Kanäle" in ((await refused.wait_callback()).content or "")  # in their language
    assert await stack.models_offered() == [FLUX_SCHNELL]
    offered = await stack.discord.autocomplete(
        "imagine",
        {"prompt": "x", "model": ""},
        focused="model",
        user=stack.guild.member("member"),
        guild=stack.guild,
        channel=stack.guild.channel("nsfw"),
    )
    assert FLUX_PRO in [choice["value"] for choice in (await offered.wait_callback()).data["choices"]]
    # Never a default: with it first on the list, a request naming no model outside gets flux-schnell.
    await answer(stack, "models default", model=FLUX_PRO)
    await final_in(stack, "general")
    assert stack.api.last_prediction.model == FLUX_SCHNELL
    # Nor a member's preferred model there.
    assert stack.bot is not None
    await stack.bot.core.repository.set_preferences(stack.guild.member("member").id, PreferenceChanges(model=FLUX_PRO))
    await final_in(stack, "general")
    assert stack.api.last_prediction.model == FLUX_SCHNELL

    final = await final_in(stack, "nsfw", model=FLUX_PRO)
    assert final.attachments and all(a.filename.startswith("SPOILER_") for a in final.attachments)
    assert stack.api.last_prediction.model == FLUX_PRO
    plain = await final_in(stack, "nsfw", model=FLUX_SCHNELL)
    assert not any(a.filename.startswith("SPOILER_") for a in plain.attachments)

    # A Re-roll of its image made before it was marked, outside: refused with the reason.
    click = await stack.discord.click(before, buttons(before, "reroll")[0], user=stack.guild.member("member"))
    callback = await click.wait_callback()
    assert callback.ephemeral and "only for age-restricted channels" in (callback.content or "")


async def test_a_thread_is_what_its_channel_is(make_stack: StackFactory) -> None:
    stack = await make_stack()
    await checker(stack, "off")
    for parent, safety_off in (("nsfw", True), ("general", False)):
        thread = stack.guild.add_thread(f"{parent} thread", stack.guild.channel(parent))
        assert thread.payload()["nsfw"] is safety_off and thread.payload()["parent_id"] == str(thread.parent_id)
        handle = await stack.discord.slash(
            "imagine", {"prompt": "a red fox"}, user=stack.guild.member("member"), guild=stack.guild, channel=thread
        )
        await handle.wait_message(is_terminal, timeout=10)
        assert sent_inputs(stack)[-1].get("disable_safety_checker", False) is safety_off


async def test_a_spoilered_job_stays_spoilered_after_a_restart(make_stack: StackFactory) -> None:
    stack = await make_stack(models=(FLUX_PRO,))
    await answer(stack, "models allow", model=FLUX_PRO, nsfw=True)
    await checker(stack, "off")
    stack.api.set_default_scenario(Scenario.manual())
    handle = await imagine_in(stack, "nsfw", model=FLUX_PRO)
    prediction = await stack.api.wait_for_prediction()
    await stack.api.wait_for_requests("get", 1, timeout=15)  # the bot has the id (journaled before polling)
    await stack.restart()
    stack.api.finish(prediction.id)
    final = await handle.wait_message(is_terminal, timeout=20)
    assert final.attachments and all(a.filename.startswith("SPOILER_") for a in final.attachments)
    assert [p.input["safety_tolerance"] for p in stack.api.predictions.values()] == [6]
