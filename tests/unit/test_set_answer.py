"""The member's private answer to a set of jobs: each job numbered, with its message's link, always within
Discord's 2000 characters."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from bot.discord_app.job_sets import ANSWER_LIMIT, set_answer
from bot.discord_app.message_target import MessageTarget

GUILD, CHANNEL = 1, 2


def posted(message_id: int) -> MessageTarget:
    return MessageTarget(7, "", datetime(2025, 1, 1, tzinfo=UTC), CHANNEL, message_id, 3, 10_000_000)


def test_each_job_is_listed_in_order_with_its_link() -> None:
    text = set_answer(GUILD, ["a *red* bird", "a green bird"], [posted(10), posted(11)])
    assert text.splitlines() == [
        "Your prompt makes 2 jobs, each in its own message:",
        "1. a \\*red\\* bird — [open](https://discord.com/channels/1/2/10)",
        "2. a green bird — [open](https://discord.com/channels/1/2/11)",
    ]


@given(st.lists(st.text(min_size=1, max_size=1500), min_size=2, max_size=30))
def test_the_answer_always_fits_a_message_and_keeps_every_link_it_can(prompts: list[str]) -> None:
    text = set_answer(GUILD, prompts, [posted(100 + n) for n in range(len(prompts))])
    assert len(text) <= ANSWER_LIMIT
    if len(prompts) <= 20:  # a line without its prompt is short: twenty always fit whole
        assert all(f"/{100 + n})" in text for n in range(len(prompts)))
