"""Model references: ``owner/name`` and ``owner/name:version``, and the errors for anything else."""

from __future__ import annotations

import pytest

from bot.api.modelref import InvalidModelRef, ModelRef
from bot.base.errors import ImagineError

HEX64 = "2a6b576af31790b470f0a8442e1e9791213fa13799cbb65a9fc1436e96389574"


@pytest.mark.parametrize(
    ("text", "owner", "name", "version"),
    [
        ("black-forest-labs/flux-schnell", "black-forest-labs", "flux-schnell", None),
        ("stability-ai/sdxl", "stability-ai", "sdxl", None),
        ("a/b", "a", "b", None),
        ("Owner_1/name.v2", "Owner_1", "name.v2", None),
        (f"lucataco/flux-schnell-lora:{HEX64}", "lucataco", "flux-schnell-lora", HEX64),
        (
            "black-forest-labs/flux-schnell:dp-4d0bcc010b3049749a251855f12800be",
            "black-forest-labs",
            "flux-schnell",
            "dp-4d0bcc010b3049749a251855f12800be",
        ),
        ("owner/name:hidden", "owner", "name", "hidden"),
        ("  owner/name  ", "owner", "name", None),
        ("owner/name\n", "owner", "name", None),
    ],
)
def test_valid(text: str, owner: str, name: str, version: str | None) -> None:
    ref = ModelRef.parse(text)
    assert (ref.owner, ref.name, ref.version) == (owner, name, version)
    assert ref.base == f"{owner}/{name}"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "name",
        "flux-schnell",
        "a/b/c",
        "a/b:",
        ":v",
        "/b",
        "a/",
        "a//b",
        "a/b:c:d",
        "black forest labs/flux",
        "owner/flux schnell",
        "owner/name: v1",
        "https://replicate.com/black-forest-labs/flux-schnell",
        "http://x/y",
        "-owner/name",
        "owner/.name",
        "owner/name:-v",
        "owner/name\nother/name",
        "ówner/name",
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(InvalidModelRef):
        ModelRef.parse(text)


@pytest.mark.parametrize("text", ["name", "a/b/c", "https://replicate.com/a/b", "owner/flux schnell"])
def test_error_names_the_bad_text(text: str) -> None:
    with pytest.raises(InvalidModelRef) as caught:
        ModelRef.parse(text)
    message = str(caught.value)
    assert repr(text) in message
    assert "owner/name" in message
    assert isinstance(caught.value, ImagineError)
    assert caught.value.message == message


def test_very_long_bad_text_is_shortened() -> None:
    text = "x" * 500
    with pytest.raises(InvalidModelRef) as caught:
        ModelRef.parse(text)
    message = str(caught.value)
    assert "x" * 77 + "..." in message
    assert "x" * 81 not in message


@pytest.mark.parametrize(
    "text",
    ["black-forest-labs/flux-schnell", f"lucataco/flux-schnell-lora:{HEX64}", "o/n:dp-4d0bcc01", "A.b/C_d-e:1.0"],
)
def test_str_round_trip(text: str) -> None:
    ref = ModelRef.parse(text)
    assert str(ref) == text
    assert ModelRef.parse(str(ref)) == ref


def test_equality_ordering_and_hashing() -> None:
    plain = ModelRef.parse("a/b")
    versioned = ModelRef.parse("a/b:v1")
    assert plain == ModelRef("a", "b")
    assert plain != versioned
    assert plain.base == versioned.base
    assert len({plain, ModelRef.parse(" a/b "), versioned}) == 2
    assert sorted([ModelRef.parse("b/a"), ModelRef.parse("a/z")]) == [ModelRef("a", "z"), ModelRef("b", "a")]
