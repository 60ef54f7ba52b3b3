"""Limits, caps and recorded changes in words, in the reader's language (issue 21)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.api.modelref import ModelRef
from bot.discord_app.admin_views import bad_cap_answer, settings_embed, usage_embed
from bot.discord_app.modlog import change_text, modlog_embed
from bot.discord_app.setting_texts import audit_value_text, budget_text, limits_text
from bot.moderation.modlog import BlockedWordEvent
from bot.moderation.usage import Tally, UsageReport, report_tables
from bot.storage import AuditEntry, Budget, GuildConfig, Limits, RoleLimits

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
FLUX = "black-forest-labs/flux-schnell"


def test_recorded_limits_and_caps_read_as_words() -> None:
    assert str(audit_value_text("limits", "cooldown=0 daily=5 concurrent=1")) == (
        "Cooldown: none · Images per member per day: 5 · Jobs at once: 1"
    )
    assert str(audit_value_text("limits role", "role=70 cooldown=- daily=3 concurrent=-")) == (
        "<@&70> — Images per member per day: 3"
    )
    assert str(audit_value_text("limits role", "role=70 cooldown=- daily=- concurrent=-")) == (
        "<@&70> — no limits of its own"
    )
    assert str(audit_value_text("budget", "monthly=$5.00 member_daily=no cap")) == (
        "Monthly cap: $5.00 · Daily cap per member: none"
    )
    # Anything else (or a form it does not know) is left to the caller as it was recorded.
    assert audit_value_text("limits", "something else") is None
    assert audit_value_text("models default", "a/b") is None


def test_a_change_reads_old_to_new_in_the_servers_language() -> None:
    entry = AuditEntry(1, 900, "limits", "cooldown=0 daily=0 concurrent=0", "cooldown=30 daily=0 concurrent=0", NOW)
    assert str(change_text(entry)) == (
        "<@900> **limits**: Cooldown: none · Images per member per day: no limit · Jobs at once: no limit"
        " → Cooldown: 30 s · Images per member per day: no limit · Jobs at once: no limit"
    )
    german = modlog_embed(entry, "de")
    assert german.title == "Einstellung geändert"
    assert "Wartezeit: keine · Bilder pro Mitglied und Tag: kein Limit" in (german.description or "")
    refused = modlog_embed(BlockedWordEvent(1, 5, 6, "we*sel", NOW), "pt-BR")
    assert refused.title == "Prompt recusado: palavra bloqueada"
    assert refused.description == r"<@5> em <#6>: ||we\*sel||"


def test_limits_and_caps_in_each_language() -> None:
    limits, caps = limits_text(Limits(30, 0, 2)), budget_text(Budget(monthly=50_000_000))
    assert limits.render("fr") == "Délai entre deux demandes : 30 s · Images par membre et par jour : aucune limite" + (
        " · Tâches simultanées : 2"
    )
    assert caps.render("es-ES") == "Tope mensual: $50.00 · Tope diario por miembro: ninguno"
    assert caps.render("es-419") == caps.render("es-ES")  # another Spanish reads the Spanish catalog
    assert limits_text(RoleLimits(70, daily_images=4)).render("pt-BR") == "Imagens por membro por dia: 4"
    assert caps.render("ja") == str(caps)  # no catalog: English


def test_show_in_german() -> None:
    embed = settings_embed(GuildConfig(1), (ModelRef.parse(FLUX),), Budget(), [], locale="de")
    shown = {field.name: field.value for field in embed.fields}
    assert embed.title == "Einstellungen von /imagine"
    assert shown["Modelle"] == f"`{FLUX}` (Standard)\n*Liste des gesamten Bots (dieser Server hat keine eigene)*"
    assert shown["Kanäle"] == "überall" and shown["Mod-Log"] == "aus"
    assert shown["Budget"] == "Monatliche Obergrenze: keine · Tägliche Obergrenze pro Mitglied: keine"


def test_usage_in_french_keeps_its_columns_aligned() -> None:
    tally = Tally(jobs=3, predictions=3, images=5, failures=1, cost=30_000)
    report = UsageReport(1, 7, NOW - timedelta(days=7), NOW, tally, members=((900, tally),), models=((FLUX, tally),))
    tables = report_tables(report, member_name=str, locale="fr")
    assert list(tables) == ["Totaux", "Principaux membres", "Par modèle"]
    header, row = tables["Totaux"]
    assert header.split() == ["tâches", "prédictions", "images", "échecs", "dépense"]
    assert len(header) == len(row) and row.startswith("tous")
    embed = usage_embed(report, locale="fr")
    assert embed.title == "Utilisation sur les 7 derniers jours (du 2025-03-07 au 2025-03-14, UTC)"
    assert "<@900>" in {field.name: field.value for field in embed.fields}["Principaux membres"]
    one_day = UsageReport(1, 1, NOW - timedelta(days=1), NOW, Tally(), members=(), models=())
    assert usage_embed(one_day, locale="de").description == "Keine /imagine-Aufträge in diesem Zeitraum."


def test_caps_out_of_range_say_which_and_why() -> None:
    assert str(bad_cap_answer(None, 2_000_000.0)) == (
        "❌ 2000000 dollars is more than the largest cap, 1000000 dollars; 0 means no cap."
    )
    assert "0.0000001 Dollar" in bad_cap_answer(1e-7).render("de")
