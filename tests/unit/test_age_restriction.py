"""Which models a channel may use and what its requests do with the safety checker (bot.moderation.age_restriction)."""

from __future__ import annotations

import pytest

from bot.api.modelref import ModelRef
from bot.api.safety import Checker
from bot.moderation.age_restriction import AgeRestrictedRefusal, ChannelSafety
from bot.storage import GuildConfig

ADULT = "acme/adult"
PLAIN = "acme/plain"
CONFIG = GuildConfig(1, models=(ADULT, PLAIN), default_model=ADULT, nsfw_models=frozenset({ADULT}))


def safety(config: GuildConfig = CONFIG, *, age_restricted: bool) -> ChannelSafety:
    return ChannelSafety.of(config, age_restricted=age_restricted)


def test_the_checker_is_off_only_where_both_say_so() -> None:
    off = GuildConfig(1, safety_checker_off=True)
    assert safety(off, age_restricted=True).checker is Checker.OFF
    assert safety(off, age_restricted=False).checker is Checker.ON
    assert safety(GuildConfig(1), age_restricted=True).checker is Checker.ON


def test_outside_the_age_restricted_models_are_gone_and_refused_by_name() -> None:
    outside = safety(age_restricted=False)
    seen = outside.models_for_channel(CONFIG, None, "/imagine")
    assert seen.models == (PLAIN,) and seen.default_model is None
    with pytest.raises(AgeRestrictedRefusal, match="only for age-restricted channels"):
        outside.models_for_channel(CONFIG, ADULT, "/imagine")
    assert outside.models_for_channel(CONFIG, ADULT, "/describe", owner_model=ModelRef.parse("o/captioner")) is CONFIG
    assert not outside.spoiler(ModelRef.parse(ADULT))


def test_a_list_of_age_restricted_models_only_refuses_everything_outside() -> None:
    only = GuildConfig(1, models=(ADULT,), nsfw_models=frozenset({ADULT}))
    with pytest.raises(AgeRestrictedRefusal, match="Every model"):
        safety(only, age_restricted=False).models_for_channel(only, None, "/imagine")


def test_inside_everything_is_allowed_and_spoilered() -> None:
    inside = safety(age_restricted=True)
    assert inside.models_for_channel(CONFIG, ADULT, "/imagine") is CONFIG
    inside.check(ModelRef.parse(ADULT))
    assert inside.spoiler(ModelRef.parse(ADULT)) and inside.spoiler(ModelRef.parse("o/upscaler"), ModelRef.parse(ADULT))
    assert not inside.spoiler(ModelRef.parse(PLAIN), None)
