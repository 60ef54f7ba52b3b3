"""Members' preferences on both backends: set, cleared, reset, named options up to the limit even when two
changes race, and a database of the previous version upgraded to hold them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.storage import Repository, open_repository
from bot.storage.postgres import PostgresRepository
from bot.storage.records import MAX_NAMED_OPTIONS, PreferenceChanges, Preferences
from bot.storage.schema import MIGRATIONS
from bot.storage.sqlite import SqliteRepository

MEMBER, OTHER = 2002, 2003
PREVIOUS = 13
"""The schema version before preferences existed."""


async def fill_options(repository: Repository, member_id: int, count: int, *, prefix: str = "o") -> None:
    for index in range(count):
        assert await repository.set_named_option(member_id, f"{prefix}{index}", f"text {index}")


async def test_a_member_who_set_nothing_has_every_default(repository: Repository) -> None:
    assert await repository.preferences(MEMBER) == Preferences(MEMBER)


async def test_preferences_are_set_a_few_at_a_time_and_read_back(repository: Repository) -> None:
    first = await repository.set_preferences(MEMBER, PreferenceChanges(model="owner/model", count=2))
    assert first == Preferences(MEMBER, model="owner/model", count=2)
    # None leaves a preference as it is; the others change.
    second = await repository.set_preferences(
        MEMBER, PreferenceChanges(aspect_ratio="16:9", remix=True, suffix="oil painting")
    )
    assert second == Preferences(
        MEMBER, model="owner/model", aspect_ratio="16:9", count=2, remix=True, suffix="oil painting"
    )
    assert await repository.preferences(MEMBER) == second
    assert await repository.preferences(OTHER) == Preferences(OTHER)  # one member's are theirs alone


async def test_an_empty_model_or_suffix_clears_it_and_remix_turns_off(repository: Repository) -> None:
    await repository.set_preferences(MEMBER, PreferenceChanges(model="owner/model", suffix="x", remix=True, count=3))
    cleared = await repository.set_preferences(MEMBER, PreferenceChanges(model="", suffix="  ", remix=False))
    assert cleared == Preferences(MEMBER, count=3)


async def test_no_change_at_all_creates_nothing(repository: Repository) -> None:
    assert await repository.set_preferences(MEMBER, PreferenceChanges()) == Preferences(MEMBER)


@pytest.mark.parametrize(
    "changes",
    [
        PreferenceChanges(count=0),
        PreferenceChanges(count=True),
    ],
)
async def test_a_preference_no_member_could_choose_is_a_bug(repository: Repository, changes: Any) -> None:
    with pytest.raises(ValueError):
        await repository.set_preferences(MEMBER, changes)
    assert await repository.preferences(MEMBER) == Preferences(MEMBER)


async def test_named_options_are_set_replaced_and_removed(repository: Repository) -> None:
    assert await repository.set_named_option(MEMBER, "film", "35mm film, grain")
    assert await repository.set_named_option(MEMBER, "wide", "--ar 21:9 --no people")
    assert await repository.set_named_option(MEMBER, "film", "--no digital")  # replaced
    assert (await repository.preferences(MEMBER)).options == {"film": "--no digital", "wide": "--ar 21:9 --no people"}
    assert await repository.set_named_option(MEMBER, "film", None)
    assert not await repository.set_named_option(MEMBER, "film", None)  # gone already
    assert not await repository.set_named_option(OTHER, "wide", None)  # another member's is not theirs
    assert (await repository.preferences(MEMBER)).options == {"wide": "--ar 21:9 --no people"}


@pytest.mark.parametrize(("name", "value"), [("Film", "x"), ("", "x"), (" film", "x"), ("film", "  ")])
async def test_a_name_or_value_not_as_stored_is_a_bug(repository: Repository, name: str, value: str) -> None:
    with pytest.raises(ValueError):
        await repository.set_named_option(MEMBER, name, value)


async def test_past_the_limit_a_new_option_is_refused_but_one_held_may_change(repository: Repository) -> None:
    await fill_options(repository, MEMBER, MAX_NAMED_OPTIONS)
    assert not await repository.set_named_option(MEMBER, "onemore", "text")
    assert await repository.set_named_option(MEMBER, "o0", "changed")
    assert await repository.set_named_option(MEMBER, "o1", None)
    assert await repository.set_named_option(MEMBER, "onemore", "text")  # room again
    options = (await repository.preferences(MEMBER)).options
    assert len(options) == MAX_NAMED_OPTIONS and options["o0"] == "changed" and "o1" not in options


async def test_two_new_options_at_once_never_pass_the_limit(repository: Repository) -> None:
    await fill_options(repository, MEMBER, MAX_NAMED_OPTIONS - 1)
    results = await asyncio.gather(*(repository.set_named_option(MEMBER, f"race{i}", "text") for i in range(2)))
    assert sorted(results) == [False, True]
    assert len((await repository.preferences(MEMBER)).options) == MAX_NAMED_OPTIONS


async def test_two_processes_racing_on_a_new_member_never_pass_the_limit(database_url: str) -> None:
    """Two repositories (two processes) on one database: the first option of a member with no row yet too."""
    first, second = await open_repository(database_url), await open_repository(database_url)
    try:
        for _ in range(3):
            await first.reset_preferences(MEMBER)
            await fill_options(first, MEMBER, MAX_NAMED_OPTIONS - 1)
            results = await asyncio.gather(
                first.set_named_option(MEMBER, "left", "a"), second.set_named_option(MEMBER, "right", "b")
            )
            assert sorted(results) == [False, True]
            assert len((await second.preferences(MEMBER)).options) == MAX_NAMED_OPTIONS
        await first.reset_preferences(MEMBER)
        results = await asyncio.gather(
            first.set_named_option(MEMBER, "left", "a"), second.set_named_option(MEMBER, "right", "b")
        )
        assert results == [True, True]
        assert (await first.preferences(MEMBER)).options == {"left": "a", "right": "b"}
    finally:
        await first.close()
        await second.close()


async def test_reset_forgets_everything_of_that_member_only(repository: Repository) -> None:
    for member_id in (MEMBER, OTHER):
        await repository.set_preferences(member_id, PreferenceChanges(model="owner/model", remix=True))
        await fill_options(repository, member_id, 3)
    await repository.reset_preferences(MEMBER)
    assert await repository.preferences(MEMBER) == Preferences(MEMBER)
    kept = await repository.preferences(OTHER)
    assert kept.model == "owner/model" and kept.remix and len(kept.options) == 3
    await repository.reset_preferences(MEMBER)  # nothing left to forget: no error
    await fill_options(repository, MEMBER, MAX_NAMED_OPTIONS)  # the limit counts from zero again


async def test_a_database_of_the_previous_version_is_upgraded_to_hold_preferences(database_url: str) -> None:
    assert MIGRATIONS[PREVIOUS - 1].version == PREVIOUS and MIGRATIONS[PREVIOUS].version == PREVIOUS + 1
    old: Any
    if database_url.startswith("sqlite"):
        old = await SqliteRepository.open(database_url.removeprefix("sqlite:///"), migrations=MIGRATIONS[:PREVIOUS])
    else:
        old = await PostgresRepository.open(database_url, migrations=MIGRATIONS[:PREVIOUS])
    await old.allow_model(1001, "owner/model", actor_id=3003)  # a server's settings from before the upgrade
    await old.close()
    repository: Any = await open_repository(database_url)
    try:
        assert PREVIOUS + 1 in repository.applied_migrations
        assert await repository.preferences(MEMBER) == Preferences(MEMBER)
        await repository.set_preferences(MEMBER, PreferenceChanges(model="owner/model", aspect_ratio="3:2"))
        assert await repository.set_named_option(MEMBER, "film", "grain")
        assert (await repository.guild_config(1001)).models == ("owner/model",)
    finally:
        await repository.close()
    reopened: Any = await open_repository(database_url)
    try:
        assert reopened.applied_migrations == ()
        assert await reopened.preferences(MEMBER) == Preferences(
            MEMBER, model="owner/model", aspect_ratio="3:2", options={"film": "grain"}
        )
    finally:
        await reopened.close()
