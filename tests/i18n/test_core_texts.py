"""The core packages' texts reach a member in their language: a refusal keeps its text, renders it in the
reader's locale and stays English for logs (``str``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.api.flags import FlagRejected, parse_prompt_flags
from bot.base.errors import ImagineError, Refusal
from bot.i18n import render
from bot.moderation.policy import Policy
from bot.moderation.queue_caps import full_refusal
from bot.storage import Limits

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


def _cooldown_refusal(seconds_ago: int) -> Refusal:
    with pytest.raises(Refusal) as refused:
        Policy._check_usage(Limits(cooldown_seconds=300), NOW - timedelta(seconds=seconds_ago), 0, 1, NOW, "/imagine")
    return refused.value


def test_a_refusal_is_shown_in_german_and_french_and_logged_in_english() -> None:
    refusal = _cooldown_refusal(175)  # 125 s left

    assert str(refusal) == refusal.message == "Slow down: you can use /imagine again in 2 min 5 s."
    assert render(refusal, "de") == "Immer langsam: Du kannst /imagine in 2 Min. 5 Sek. wieder verwenden."
    assert render(refusal, "fr") == "Doucement : tu pourras de nouveau utiliser /imagine dans 2 min 5 s."
    assert render(refusal, "en-US") == render(refusal.text, None) == str(refusal)


def test_a_plural_takes_the_languages_own_form() -> None:
    """French counts 0 and 1 as singular; the catalogs' two forms are used, not CLDR's three (no English
    fallback for "many")."""
    one, many = full_refusal(0, 1, 1), full_refusal(0, 1, 200)
    assert one.render("fr") == "La file d'attente est pleine (1 tâche en attente) ; réessaie dans quelques minutes."
    assert many.render("fr") == "La file d'attente est pleine (200 tâches en attente) ; réessaie dans quelques minutes."
    assert many.render("pt-BR").startswith("A fila está cheia (200 tarefas aguardando)")
    assert one.render("de").startswith("Die Warteschlange ist voll (1 wartender Auftrag)")


def test_a_flag_refusal_names_the_flag_as_typed_in_every_language() -> None:
    with pytest.raises(FlagRejected) as refused:
        parse_prompt_flags("a castle --seed banana")
    for locale in ("de", "fr", "es-ES", "pt-BR"):
        shown = render(refused.value, locale)
        assert "--seed" in shown and "'banana'" in shown and shown != str(refused.value)


def test_notes_and_plain_messages_pass_through() -> None:
    """A plain string (an API's own error text) is shown as it is, in every language."""
    assert render(ImagineError("upstream said no"), "de") == "upstream said no"
