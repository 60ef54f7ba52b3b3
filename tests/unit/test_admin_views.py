"""How ``/imagine-admin`` answers look: limits, caps, models with their roles, budget, usage and ``show``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import discord
import pytest

from bot.api.modelref import ModelRef
from bot.discord_app.admin_views import (
    FIELD_LIMIT,
    audit_line,
    budget_embed,
    budget_text,
    channels_embed,
    fit_embed,
    limits_embed,
    limits_text,
    model_allowed_answer,
    model_lines,
    models_embed,
    role_limits_answer,
    settings_embed,
    usage_embed,
    words_embed,
)
from bot.i18n import tr
from bot.moderation.usage import Tally, UsageReport
from bot.storage import AuditEntry, Budget, GuildConfig, Limits, RoleLimits, Spend

GUILD, MOD, VIP, STAFF = 1, 900, 70, 71
FLUX, LORA = "black-forest-labs/flux-schnell", "lucataco/flux-schnell-lora"
NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
APRIL = int(datetime(2025, 4, 1, tzinfo=UTC).timestamp())


def allowed(*models: str) -> tuple[ModelRef, ...]:
    return tuple(ModelRef.parse(model) for model in models)


def fields(embed: discord.Embed) -> dict[str, str]:
    return {field.name or "": field.value or "" for field in embed.fields}


def test_limits_read_as_labelled_values_and_leave_out_what_a_role_does_not_set() -> None:
    assert str(limits_text(Limits(30, 5, 1))) == "Cooldown: 30 s · Images per member per day: 5 · Jobs at once: 1"
    assert str(limits_text(Limits())) == (
        "Cooldown: none · Images per member per day: no limit · Jobs at once: no limit"
    )
    assert str(limits_text(RoleLimits(VIP, daily_images=0))) == "Images per member per day: no limit"
    assert str(limits_text(RoleLimits(VIP))) == ""


def test_a_role_without_limits_of_its_own_says_so_beside_the_servers() -> None:
    text = str(role_limits_answer("<@&70>", RoleLimits(VIP), Limits(daily_images=5)))
    assert text.startswith(
        "**Limits for <@&70>**\nnone of its own\n"
        "**The server's limits**\nCooldown: none · Images per member per day: 5 ·"
    )
    own = str(role_limits_answer("<@&70>", RoleLimits(VIP, cooldown_seconds=0), Limits()))
    assert own.startswith("**Limits for <@&70>**\nCooldown: none\n")
    assert "most generous" in text


def test_models_default_first_with_the_roles_they_are_only_for() -> None:
    config = GuildConfig(GUILD, models=(FLUX, LORA), model_roles=((LORA, frozenset({STAFF, VIP})),))
    lines = [str(line) for line in model_lines(config, allowed(FLUX, LORA))]
    assert lines == [f"`{FLUX}` (default)", f"`{LORA}` — only <@&70>, <@&71>"]
    assert models_embed(config, allowed(FLUX, LORA)).footer.text is None
    assert "bot-wide IMAGINE_MODELS" in (models_embed(GuildConfig(GUILD), allowed(FLUX)).footer.text or "")


def test_allowing_a_model_says_who_may_use_it_now() -> None:
    ref = ModelRef.parse(LORA)
    only_vip = GuildConfig(GUILD, models=(LORA,), model_roles=((LORA, frozenset({VIP})),))
    everyone = GuildConfig(GUILD, models=(FLUX, LORA))

    text = str(model_allowed_answer(ref, only_vip, was_for=frozenset(), changed=True, exists=True))
    assert text.startswith(f"✅ `{LORA}` is now allowed only to members with the <@&70> role.")
    assert "Every model on this server's list is only for some roles" in text
    opened = str(model_allowed_answer(ref, everyone, was_for={VIP}, changed=True, exists=None))
    assert opened == (
        f"✅ `{LORA}` is now allowed to everyone (it was only for <@&70>)."
        " The API did not say whether it exists; it was added anyway."
    )
    assert str(model_allowed_answer(ref, only_vip, was_for={VIP}, changed=False, exists=True)) == (
        f"`{LORA}` was already allowed to <@&70>."
    )
    assert str(model_allowed_answer(ref, everyone, was_for=(), changed=False, exists=True)) == (
        f"`{LORA}` was already allowed to everyone."
    )


def test_channels_and_words_lists() -> None:
    assert channels_embed(GuildConfig(GUILD, channels=frozenset({12, 11}))).description == "<#11>, <#12>"
    assert channels_embed(GuildConfig(GUILD)).description == "Everywhere (no channels listed)."
    assert words_embed(GuildConfig(GUILD, blocked_words=("a", "b"))).description == "||a||, ||b||"
    assert words_embed(GuildConfig(GUILD)).description == "No words are blocked."


def test_limits_embed_lists_the_roles_own_limits_only_when_there_are_some() -> None:
    config = GuildConfig(GUILD, role_limits=(RoleLimits(VIP, daily_images=50),))
    shown = fields(limits_embed(tr("Limits changed"), Limits(cooldown_seconds=30), config))
    assert shown["Cooldown"] == "30 s" and shown["Images per member per day"] == "no limit"
    assert shown["Roles (the most generous applies)"] == "<@&70> — Images per member per day: 50"
    assert "Roles (the most generous applies)" not in fields(limits_embed(tr("Limits"), Limits(), GuildConfig(GUILD)))


def test_budget_shows_caps_spend_and_when_the_month_resets() -> None:
    budget = Budget(monthly=50_000_000, member_daily=0)
    assert str(budget_text(budget)) == "Monthly cap: $50.00 · Daily cap per member: none"
    embed = budget_embed(tr("Budget"), budget, Spend(month=1_250_000), NOW, priced=True)
    assert embed.description is None
    assert fields(embed) == {
        "Monthly cap (server)": "$50.00",
        "Daily cap (each member)": "no cap",
        "Spent this month": f"$1.25 of $50.00, resets <t:{APRIL}:R>",
    }
    unpriced = budget_embed(tr("Budget"), Budget(), Spend(), NOW, priced=False)
    assert "IMAGINE_PRICES" in (unpriced.description or "")
    assert fields(unpriced)["Spent this month"] == f"$0.00, resets <t:{APRIL}:R>"


def test_usage_names_members_by_mention_beside_their_figures() -> None:
    tally = Tally(jobs=3, predictions=3, images=5, failures=1, cost=30_000)
    report = UsageReport(
        GUILD,
        30,
        NOW - timedelta(days=30),
        NOW,
        tally,
        members=((MOD, tally), (None, Tally())),
        models=((FLUX, tally),),
    )
    embed = usage_embed(report)
    members = fields(embed)["Top members"].splitlines()
    assert members[0].startswith("`") and members[1].endswith(f"` <@{MOD}>") and members[2].endswith("` (unknown)")
    assert fields(embed)["Per model"].startswith("```\n") and embed.description is None
    empty = UsageReport(GUILD, 1, NOW - timedelta(days=1), NOW, Tally(), members=(), models=())
    assert usage_embed(empty).description == "No /imagine jobs in this period."


def test_show_has_every_setting_and_the_latest_changes() -> None:
    change = AuditEntry(GUILD, MOD, "words add", None, "spoiler", NOW)
    config = GuildConfig(
        GUILD,
        channels=frozenset({11}),
        blocked_words=("x" * 2000,),
        log_channel_id=12,
        role_limits=(RoleLimits(VIP, concurrent_jobs=2),),
    )
    shown = fields(settings_embed(config, allowed(FLUX), Budget(), [change]))
    assert shown["Models"] == f"`{FLUX}` (default)\n*bot-wide list (this server has none of its own)*"
    assert shown["Channels"] == "<#11>" and shown["Mod-log"] == "<#12>"
    assert len(shown["Blocked words (1)"]) == FIELD_LIMIT
    assert shown["Limits per role (the most generous applies)"] == "<@&70> — Jobs at once: 2"
    assert shown["Limits"] == "Cooldown: none · Images per member per day: no limit · Jobs at once: no limit"
    assert shown["Budget"] == "Monthly cap: none · Daily cap per member: none"
    assert (
        shown["Latest changes"]
        == str(audit_line(change))
        == f"<t:{int(NOW.timestamp())}:R> <@900> **words add**: — → ||spoiler||"
    )

    bare = fields(settings_embed(GuildConfig(GUILD), allowed(FLUX), Budget(), []))
    assert bare["Channels"] == "everywhere" and bare["Mod-log"] == "off" and bare["Latest changes"] == "no changes yet"
    assert "Limits per role (the most generous applies)" not in bare


@pytest.mark.parametrize("locale", [None, "de", "fr", "es-ES", "pt-BR"])
def test_a_long_usage_table_keeps_whole_rows_and_its_code_block_in_every_language(locale: str | None) -> None:
    tally = Tally(jobs=12_345, predictions=12_345, images=49_380, failures=1_234, cost=123_456_789)
    models = tuple((f"some-owner/a-rather-long-model-name-{n:02}", tally) for n in range(40))
    report = UsageReport(GUILD, 30, NOW - timedelta(days=30), NOW, tally, members=(), models=models)
    values = [field.value or "" for field in usage_embed(report, locale=locale).fields]
    for value in values:
        assert len(value) <= 1024
        if value.startswith("```"):
            assert value.endswith("\n```") and value.count("```") == 2, value[-80:]
            last = value.removesuffix("\n```").splitlines()[-1]
            assert last.endswith("$123.46") or last.startswith("… +"), last  # whole rows, or how many were left out


def test_an_embed_past_discords_total_is_cut_field_by_field_to_fit() -> None:
    embed = discord.Embed(title="/imagine settings")
    for n in range(8):
        embed.add_field(name=f"Field {n}", value="\n".join(f"`model-{n}-{row:03}`" for row in range(60))[:1024])
    assert len(embed) > 6000
    fitted = fit_embed(embed)
    assert len(fitted) <= 6000 and len(fitted.fields) == 8
    assert all((field.value or "").endswith("\n…") or len(field.value or "") <= 1024 for field in fitted.fields)
    small = discord.Embed(title="t").add_field(name="a", value="b")
    assert fit_embed(small).fields[0].value == "b"
