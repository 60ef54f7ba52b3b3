"""How ``/imagine-history`` shows a member's jobs: one line each, links where known, within Discord's limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.discord_app.history import DESCRIPTION_LIMIT, HISTORY_SIZE, history_embed, history_line, message_link, outcome
from bot.storage import JobRecord

GUILD = 10
AT = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def record(state: str = "succeeded", **fields: object) -> JobRecord:
    values: dict[str, object] = {
        "job_id": "j1",
        "model": "black-forest-labs/flux-schnell",
        "prompt": "a fox",
        "request": {},
        "state": state,
        "created_at": AT,
        "guild_id": GUILD,
        "channel_id": 20,
        "requester_id": 30,
        "message_id": 40,
        "images_delivered": 1,
    }
    values.update(fields)
    return JobRecord(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (record(images_delivered=1), "✅ 1 image"),
        (record(images_delivered=4), "✅ 4 images"),
        (record("failed", error="NSFW content\ndetected"), "❌ Failed: NSFW content detected"),
        (record("failed"), "❌ Failed"),
        (record("canceled"), "⏹️ Canceled"),
        (record("timed_out"), "⌛ Timed out"),
        (record("queued"), "⏳ In progress"),
        (record("running"), "⏳ In progress"),
        (record("finishing"), "⏳ In progress"),
    ],
)
def test_outcomes_in_a_few_words(job: JobRecord, expected: str) -> None:
    assert outcome(job) == expected


def test_a_line_has_when_outcome_model_link_and_prompt() -> None:
    assert history_line(record(), GUILD) == (
        f"<t:{int(AT.timestamp())}:R> · ✅ 1 image · `black-forest-labs/flux-schnell` · "
        "[open](https://discord.com/channels/10/20/40)\n> a fox"
    )


def test_no_link_where_the_message_is_not_known() -> None:
    assert message_link(GUILD, 20, None) is None and message_link(GUILD, None, 40) is None
    assert "[open]" not in history_line(record(message_id=None), GUILD)


def test_prompts_are_one_line_clipped_and_markdown_shown_as_typed() -> None:
    line = history_line(record(prompt="a **fox**\n\nin [snow](https://x)" + " very" * 100), GUILD)
    prompt = line.split("\n> ", 1)[1]
    assert "\n" not in prompt and prompt.endswith("…")
    assert prompt.startswith(r"a \*\*fox\*\* in \[snow](https://x)")  # no masked link either


def test_ten_worst_case_jobs_fit_in_one_embed() -> None:
    nasty = "*_`|~>" * 300
    jobs = [
        record("failed", prompt=nasty, error=nasty, model="o/" + "m" * 200, channel_id=2**63 - 1, message_id=2**63 - 1)
        for _ in range(HISTORY_SIZE)
    ]
    embed = history_embed(jobs, 2**63 - 1)
    assert len(embed.description or "") <= DESCRIPTION_LIMIT
    assert len(embed) <= 6000
    assert (embed.description or "").count("[open](") == HISTORY_SIZE  # shortened prompts, never lost links


def test_title_says_how_many() -> None:
    assert history_embed([record()], GUILD).title == "Your /imagine job here"
    assert history_embed([record(), record()], GUILD).title == "Your latest 2 /imagine jobs here"
