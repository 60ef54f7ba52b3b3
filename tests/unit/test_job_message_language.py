"""A job's message in the server's language: the embed, the core's texts in it, the buttons, and the locale kept
with the job's target through the journal (old entries without one read as English)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.api.predictions import Progress
from bot.discord_app.buttons import job_components
from bot.discord_app.message_target import MessageTarget
from bot.discord_app.render import render_embed, status_text
from bot.discord_app.uploads import REFUSED_AS_TOO_LARGE
from bot.i18n import tr
from bot.jobs.model import JobState, JobView
from tests.unit.test_render import assert_within_discord_limits, fields
from tests.unit.test_render import make_view as make_any_view


def make_view(state: JobState, **changes: Any) -> JobView:
    return replace(make_any_view(state, **changes), job_id="abc123")  # buttons take hex job ids


def labels(view: JobView, locale: str | None) -> list[str]:
    rows = job_components(view, locale=locale).to_components()
    return [str(button["label"]) for row in rows for button in row["components"]]


@pytest.mark.parametrize(
    ("locale", "status", "model", "cancel"),
    [
        ("de", "🎨 Wird erstellt ▰▰▰▱▱▱▱▱▱▱ 30%", "Modell", "Abbrechen"),
        ("fr", "🎨 Génération ▰▰▰▱▱▱▱▱▱▱ 30%", "Modèle", "Annuler"),
        ("es-ES", "🎨 Generando ▰▰▰▱▱▱▱▱▱▱ 30%", "Modelo", "Cancelar"),
        ("es-419", "🎨 Generando ▰▰▰▱▱▱▱▱▱▱ 30%", "Modelo", "Cancelar"),
        ("pt-BR", "🎨 Gerando ▰▰▰▱▱▱▱▱▱▱ 30%", "Modelo", "Cancelar"),
        ("en-US", "🎨 Processing ▰▰▰▱▱▱▱▱▱▱ 30%", "Model", "Cancel"),
        ("ja", "🎨 Processing ▰▰▰▱▱▱▱▱▱▱ 30%", "Model", "Cancel"),  # no catalog: English
        (None, "🎨 Processing ▰▰▰▱▱▱▱▱▱▱ 30%", "Model", "Cancel"),
    ],
)
def test_a_running_job_in_the_servers_language(locale: str | None, status: str, model: str, cancel: str) -> None:
    view = make_view(JobState.PROCESSING, progress=Progress(0.3, 3, 10))
    shown = fields(render_embed(view, locale))
    assert shown[model] == "`black-forest-labs/flux-schnell`" and status in shown.values()
    assert status_text(view, locale) == status
    assert labels(view, locale) == [cancel]


def test_the_queue_place_and_the_core_texts_are_rendered_in_the_servers_language() -> None:
    assert (
        status_text(make_view(JobState.QUEUED, queue_position=87), "de")
        == "⏳ In der Warteschlange (86 Aufträge davor)"
    )
    assert status_text(make_view(JobState.QUEUED, queue_position=3), "fr") == "⏳ En file d'attente (position 3)"
    note = tr("⏹️ Canceled")  # any catalog text a note may be
    view = make_view(JobState.FAILED, error=REFUSED_AS_TOO_LARGE, notes=(note, "plain English note"))
    embed = render_embed(view, "de")
    shown = fields(embed)
    assert shown["Was passiert ist"].startswith("Discord hat die fertigen Bilder auch nach dem Verkleinern")
    assert shown["Hinweis"] == "⏹️ Abgebrochen\nplain English note"
    assert embed.footer.text == "Auftrag abc123"
    assert_within_discord_limits(embed)
    assert fields(render_embed(view))["What happened"] == str(REFUSED_AS_TOO_LARGE)


def test_a_finished_job_keeps_the_product_names_on_its_buttons() -> None:
    view = make_view(JobState.SUCCEEDED)
    assert labels(view, "de") == ["Re-roll", "Remix", "Löschen"]


def target(**changes: object) -> MessageTarget:
    base = MessageTarget(7, "token", datetime(2025, 1, 1, tzinfo=UTC), 11, 12, 3, 10_000_000)
    return MessageTarget.from_json({**base.to_json(), **changes})


def test_the_locale_goes_through_the_journal_and_old_entries_read_as_english() -> None:
    assert target(locale="de").locale == "de"
    assert MessageTarget.from_json(target(locale="pt-BR").to_json()).locale == "pt-BR"
    old = target().to_json()
    del old["locale"]
    assert MessageTarget.from_json(old).locale is None
    assert target(locale="x" * 100).locale is None  # no locale is that long: a journal entry is not trusted
    assert target(locale=5).locale is None
    assert target(a_later_field=1).channel_id == 11  # a later version's key is left aside
