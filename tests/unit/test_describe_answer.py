"""``/describe``'s answer shows every suggestion as typed (no markdown, link or mention), and a press reads it
back exactly."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import discord
from hypothesis import given
from hypothesis import strategies as st

from bot.discord_app.describe_answer import describe_answer, prompt_of, read_back, shown

_prompts = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=300).filter(
    str.strip
)


@given(_prompts)
def test_shown_reads_back_exactly(prompt: str) -> None:
    assert read_back(shown(prompt)) == prompt


@given(st.lists(_prompts, min_size=1, max_size=4))
def test_a_press_reads_each_suggestion_back_as_it_was(prompts: list[str]) -> None:
    prompts = [prompt.strip() for prompt in prompts]
    embed: discord.Embed = describe_answer(prompts)["embed"]
    message = cast(Any, SimpleNamespace(embeds=[embed]))
    assert [prompt_of(message, number) for number in range(1, len(prompts) + 1)] == prompts


def test_markdown_shows_as_typed() -> None:
    embed: discord.Embed = describe_answer(["a **bold** fox [x](y) <@1> `code` #1 ~~no~~ \\ end"])["embed"]
    assert embed.description == r"**1.** a \*\*bold\*\* fox \[x\]\(y\) \<\@1\> \`code\` \#1 \~\~no\~\~ \\ end"


def test_prompts_thick_with_escapes_keep_the_embed_within_its_size() -> None:
    embed: discord.Embed = describe_answer(["*" * 950] * 4)["embed"]
    assert len(embed.description or "") <= 4096
    assert len(describe_answer(["*" * 950] * 4)["view"].children) == len((embed.description or "").splitlines())
