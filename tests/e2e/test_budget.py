"""Budgets and usage through the fake Discord: caps set, jobs refused before anything is sent, real costs booked;
and ``python -m bot usage`` printing the same figures."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.api.modelref import ModelRef
from bot.moderation.costs import parse_prices
from tests.e2e.conftest import LORA_REF, Stack, StackFactory
from tests.e2e.test_cli import base_env, cli
from tests.e2e.test_moderation import answer, refusal
from tests.fakes.discord import Routes
from tests.fakes.replicate import FLUX_SCHNELL

PRICES = parse_prices(f"{FLUX_SCHNELL}=0.004/image,{LORA_REF}=0.5/s")


async def priced_stack(make_stack: StackFactory) -> Stack:
    return await make_stack(prices=PRICES)  # type: ignore[no-any-return]


async def test_a_job_past_the_monthly_budget_is_refused_with_spend_and_reset(make_stack: StackFactory) -> None:
    stack = await priced_stack(make_stack)
    shown = await answer(stack, "budget", monthly=0.01)
    assert "Budget changed" in shown and "$0.01" in shown
    await stack.final_message(await stack.imagine(count=2))  # $0.008 booked: 2 images delivered

    text = await refusal(stack)  # $0.004 more would make $0.012
    assert "this month is $0.01" in text and "$0.008" in text and "about $0.004" in text and "<t:" in text
    assert stack.api.count("POST", "create") == 1

    text = await refusal(stack, model=FLUX_SCHNELL, count=1, user="moderator")
    assert "this month" in text  # the server's cap holds for everyone
    spent = await answer(stack, "budget")
    assert "$0.008 of $0.01" in spent
    shown = await answer(stack, "show")
    assert "Monthly cap: $0.01" in shown and "budget" in shown


async def test_member_daily_budget_and_real_costs_booked(make_stack: StackFactory) -> None:
    stack = await priced_stack(make_stack)
    await answer(stack, "budget", member_daily=0.005)
    await stack.final_message(await stack.imagine())
    text = await refusal(stack)
    assert "Your budget for today is $0.005" in text and "midnight UTC" in text
    await stack.final_message(await stack.imagine(user="moderator"))  # another member's day is their own

    # Per second: the fake API's metrics.predict_time × $0.50, whatever was reserved.
    await answer(stack, "budget", member_daily=0)
    await stack.final_message(await stack.imagine(model=LORA_REF))
    repository = stack.bot.core.repository  # type: ignore[union-attr]
    predict_time = stack.api.last_prediction.metrics["predict_time"]
    expected = PRICES.cost(ModelRef.parse(LORA_REF), images=0, seconds=predict_time)
    assert expected > 0
    since = stack.bot.core.clock.now() - timedelta(minutes=1)  # type: ignore[union-attr]
    booked = {(t.member_id, t.model): t.cost for t in await repository.job_tallies(stack.guild.id, since=since)}
    member, moderator = stack.guild.member("member").id, stack.guild.member("moderator").id
    assert booked == {(member, FLUX_SCHNELL): 4_000, (moderator, FLUX_SCHNELL): 4_000, (member, LORA_REF): expected}
    spend = await repository.spend(stack.guild.id, None, now=stack.bot.core.clock.now())  # type: ignore[union-attr]
    assert spend.month == 4_000 + 4_000 + expected


async def test_a_job_whose_message_cannot_be_shown_gives_its_reservation_back(make_stack: StackFactory) -> None:
    stack = await priced_stack(make_stack)
    await answer(stack, "budget", member_daily=0.004)
    stack.discord.fail_next(Routes.CALLBACK, status=403, code=50013, message="Missing Permissions")
    assert "can't post in this channel" in await refusal(stack)
    assert stack.api.count("POST", "create") == 0
    spend = await stack.bot.core.repository.spend(  # type: ignore[union-attr]
        stack.guild.id,
        stack.guild.member("member").id,
        now=stack.bot.core.clock.now(),  # type: ignore[union-attr]
    )
    assert (spend.month, spend.member_today) == (0, 0)
    await stack.final_message(await stack.imagine())  # the whole day's budget is there again


async def test_bad_budget_and_usage_values_are_refused(make_stack: StackFactory) -> None:
    stack = await priced_stack(make_stack)
    assert "largest cap" in await answer(stack, "budget", monthly=2_000_000.0)
    assert await stack.bot.core.repository.audit_log(stack.guild.id) == []  # type: ignore[union-attr]
    assert "Manage Server" in await answer(stack, "budget", "member", monthly=1.0)
    assert "Manage Server" in await answer(stack, "usage", "member")


async def test_usage_embed_and_command_line_show_the_same_figures(make_stack: StackFactory, tmp_path: Path) -> None:
    stack = await priced_stack(make_stack)
    await stack.final_message(await stack.imagine(count=3))
    await stack.final_message(await stack.imagine(user="moderator"))
    shown = await answer(stack, "usage", days=7)
    assert "Usage over the last 7 days" in shown and "Totals" in shown and "Per model" in shown
    member, moderator = (f"<@{stack.guild.member(name).id}>" for name in ("member", "moderator"))
    assert member in shown and "$0.016" in shown
    assert shown.index(member) < shown.index(moderator)  # the bigger spender first

    result = await cli(
        "usage",
        "--guild",
        str(stack.guild.id),
        "--days",
        "7",
        env=base_env(DATABASE_URL=stack.settings.database_url),
        cwd=tmp_path,
    )
    assert result.code == 0, result.err
    totals = result.out.split("Totals")[1].splitlines()[2].split()
    assert totals == ["all", "2", "2", "4", "0", "$0.016"]
    assert FLUX_SCHNELL in result.out and str(stack.guild.member("member").id) in result.out

    bad = await cli("usage", "--guild", str(stack.guild.id), "--days", "400", env=base_env(), cwd=tmp_path)
    assert bad.code == 2 and "--days" in bad.err
    missing = await cli("usage", env=base_env(), cwd=tmp_path)
    assert missing.code == 2 and "--guild" in missing.err
