"""How ``/imagine-settings`` draws a member's preferences: everything fits Discord's limits, whatever they typed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.api.modelref import ModelRef
from bot.api.named_options import OPTION_VALUE_MAX, SUFFIX_MAX
from bot.discord_app.preference_views import (
    DESCRIPTION_LIMIT,
    model_refused_answer,
    options_text,
    preferences_embed,
    shown,
)
from bot.storage import MAX_NAMED_OPTIONS, Preferences

PROPERTY = settings(max_examples=100, deadline=None, derandomize=True, database=None)
FLUX = ModelRef.parse("black-forest-labs/flux-schnell")
EMBED_TOTAL = 6000
"""Discord's most characters in one message's embeds."""


def embed_size(preferences: Preferences) -> int:
    embed = preferences_embed(preferences, (FLUX,), title="Your preferences")
    return len(embed)


def test_twenty_of_the_longest_options_and_suffix_fit_one_embed() -> None:
    worst = "*_`|~>" * (OPTION_VALUE_MAX // 6)  # every character escaped: twice as long once shown
    preferences = Preferences(
        1,
        model=str(FLUX),
        suffix="*" * SUFFIX_MAX,
        options={f"option{index:02d}" + "x" * 24: worst for index in range(MAX_NAMED_OPTIONS)},
    )
    embed = preferences_embed(preferences, (FLUX,), title="Your preferences")
    assert embed.description is not None and len(embed.description) <= DESCRIPTION_LIMIT
    assert all(len(field.value or "") <= 1024 for field in embed.fields)
    assert embed_size(preferences) <= EMBED_TOTAL
    assert embed.description.count("\n`--option") == MAX_NAMED_OPTIONS  # every option named, values shortened


@PROPERTY
@given(st.text(max_size=700), st.integers(min_value=1, max_value=1024))
def test_a_shown_text_is_one_line_within_its_limit(text: str, limit: int) -> None:
    result = shown(text, limit)
    assert len(result) <= limit and "\n" not in result


def test_short_options_are_shown_whole_in_name_order_as_given() -> None:
    assert options_text({"film": "grain", "wide": "--ar 21:9"}) == "`--film` → grain\n`--wide` → \\--ar 21:9"
    assert options_text({}) == "none yet"


def test_a_model_not_usable_here_is_flagged_and_refusals_list_what_is() -> None:
    embed = preferences_embed(Preferences(1, model="someone/else"), (FLUX,), title="t")
    assert "not one you may use on this server" in (embed.fields[0].value or "")
    many = tuple(ModelRef.parse(f"owner/model{index}") for index in range(12))
    text = str(model_refused_answer("someone/else", many))
    assert "`owner/model0`" in text and "`owner/model9`" in text and "and 2 more" in text
    assert "you may use no model on this server" in str(model_refused_answer("someone/else", ()))
