"""``/imagine-info``'s figures: a member's standing worked out from the records, drawn within Discord's limits,
and the engine's list of a member's live jobs with their queue places."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.api.modelref import ModelRef
from bot.api.predictions import Progress
from bot.discord_app.admin_views import FIELD_LIMIT
from bot.discord_app.member_info import headline, info_embed, job_line, jobs_text, models_text, month_text
from bot.jobs.model import JobState
from bot.jobs.scheduling import FairQueue, MemberJob, member_jobs
from bot.moderation.member_status import MemberStatus, cooldown_end, member_status
from bot.storage import Budget, GuildConfig, Limits, RoleLimits, Spend, Usage
from tests.unit.test_scheduling import make_job

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
FLUX = ModelRef("black-forest-labs", "flux-schnell")
SDXL = ModelRef("stability-ai", "sdxl")
VIP = 7
NO_LIMITS, NO_CAPS, NOTHING_SPENT = Limits(), Budget(), Spend()


def status_from(
    *,
    limits: Limits = NO_LIMITS,
    role_limits: tuple[RoleLimits, ...] = (),
    roles: frozenset[int] = frozenset(),
    usage: Usage | None = None,
    budget: Budget = NO_CAPS,
    spend: Spend = NOTHING_SPENT,
    active: int = 0,
    here: int = 0,
    queued_elsewhere: int = 0,
    preferred_model: str | None = None,
) -> MemberStatus:
    config = GuildConfig(guild_id=1, limits=limits, role_limits=role_limits)
    return member_status(
        config,
        roles,
        usage or Usage(day=NOW.date()),
        budget,
        spend,
        (FLUX, SDXL),
        now=NOW,
        active=active,
        here=here,
        queued_elsewhere=queued_elsewhere,
        preferred_model=preferred_model,
    )


# --------------------------------------------------------------------------- the figures


def test_no_limits_leave_nothing_to_count_down() -> None:
    status = status_from()
    assert (status.images_left, status.budget_left_today, status.budget_left_this_month, status.jobs_left) == (
        None,
        None,
        None,
        None,
    )
    assert status.cooldown_ends is None


def test_a_roles_limits_are_the_members_and_left_never_goes_below_zero() -> None:
    limits, vip = Limits(daily_images=2, concurrent_jobs=1), (RoleLimits(VIP, daily_images=10),)
    used = Usage(day=NOW.date(), images_today=4)
    assert status_from(limits=limits, role_limits=vip, usage=used).images_left == 0
    assert status_from(limits=limits, role_limits=vip, usage=used, roles=frozenset({VIP})).images_left == 6
    assert status_from(limits=limits, active=3).jobs_left == 0


def test_budgets_left_today_and_this_month() -> None:
    status = status_from(budget=Budget(monthly=1_000_000, member_daily=50_000), spend=Spend(990_000, 60_000))
    assert (status.budget_left_today, status.budget_left_this_month) == (0, 10_000)


@pytest.mark.parametrize(
    ("last", "expected"),
    [(None, None), (NOW - timedelta(seconds=20), NOW + timedelta(seconds=10)), (NOW - timedelta(seconds=30), None)],
)
def test_cooldown_ends_while_it_is_to_come(last: datetime | None, expected: datetime | None) -> None:
    assert cooldown_end(Limits(cooldown_seconds=30), last, NOW) == expected
    assert cooldown_end(Limits(), last, NOW) is None


@pytest.mark.parametrize(
    ("active", "here", "queued", "elsewhere", "waiting"),
    [(0, 0, 0, 0, 0), (3, 1, 1, 2, 1), (1, 2, 0, 0, 0), (2, 0, 5, 2, 2)],
    ids=["none", "some elsewhere", "ended between the reads", "queued count larger than the rest"],
)
def test_jobs_on_other_processes_are_the_databases_count_less_this_process(
    active: int, here: int, queued: int, elsewhere: int, waiting: int
) -> None:
    status = status_from(active=active, here=here, queued_elsewhere=queued)
    assert (status.elsewhere, status.queued_elsewhere) == (elsewhere, waiting)
    assert status.active >= here


# --------------------------------------------------------------------------- the embed


def test_headline_names_every_blocker() -> None:
    status = status_from(
        limits=Limits(cooldown_seconds=60, daily_images=1, concurrent_jobs=1),
        usage=Usage(day=NOW.date(), images_today=1, last_request_at=NOW - timedelta(seconds=5)),
        budget=Budget(monthly=10, member_daily=10),
        spend=Spend(10, 10),
        active=1,
        here=1,
    )
    lines = headline(replace(status, models=())).splitlines()
    assert [line.split(" ")[1] for line in lines] == ["Every", "You", "You", "This", "You", "You"]
    assert headline(status_from()) == "✅ You can use /imagine now."


def test_the_month_says_only_whether_it_has_room() -> None:
    used_up = status_from(budget=Budget(monthly=10), spend=Spend(10, 0))
    assert month_text(used_up) == "Used up · resets on <t:1743465600:D>"  # 1 April 2025, 00:00 UTC
    assert month_text(status_from(budget=Budget(monthly=10), spend=Spend(9, 0))) == "Has room"
    assert month_text(status_from()) == "Has room"


def queued(position: int, prompt: str = "a fox") -> MemberJob:
    return MemberJob("j", prompt, str(FLUX), JobState.QUEUED, position)


def test_job_lines() -> None:
    assert job_line(queued(3, "a *bold*\nfox")) == f"⏳ Queued, position 3 · `{FLUX}` · a \\*bold\\* fox"
    processing = MemberJob("j", "p", str(FLUX), JobState.PROCESSING, progress=Progress(0.5, 5, 10).fraction)
    assert job_line(processing).startswith("🎨 Processing ▰▰▰▰▰▱▱▱▱▱ 50%")
    assert job_line(MemberJob("j", "p", "a/b`c", JobState.STARTING)) == "🚀 Starting · `a/bc` · p"


@given(st.lists(st.text(min_size=0, max_size=300), max_size=30), st.integers(0, 5))
def test_jobs_always_fit_a_field_and_keep_the_count_elsewhere(prompts: list[str], elsewhere: int) -> None:
    status = status_from(active=len(prompts) + elsewhere, here=len(prompts))
    text = jobs_text(status, [queued(n, prompt * 3) for n, prompt in enumerate(prompts, start=1)])
    assert 0 < len(text) <= FIELD_LIMIT
    assert (f"➕ {elsewhere} more on other processes" in text) == bool(elsewhere)


def test_models_the_one_taken_first_and_none_said_plainly() -> None:
    assert models_text(status_from()) == f"`{FLUX}` (server default), `{SDXL}`"
    assert models_text(status_from(preferred_model=str(SDXL))) == f"`{SDXL}` (your preference), `{FLUX}`"
    for not_usable in ("other/model", "not a model", ""):
        assert models_text(status_from(preferred_model=not_usable)) == f"`{FLUX}` (server default), `{SDXL}`"
    assert models_text(replace(status_from(), models=())).startswith("None")
    many = tuple(ModelRef("owner", f"model-{n}") for n in range(40))
    assert models_text(replace(status_from(), models=many)).endswith("and 15 more")


def test_the_embed_is_private_in_words_and_shows_the_concurrent_limit() -> None:
    embed = info_embed(status_from(limits=Limits(concurrent_jobs=2)), [])
    assert embed.footer.text == "Only you can see this."
    assert "Your jobs here (at most 2 at once)" in [field.name for field in embed.fields]


# --------------------------------------------------------------------------- the engine's list


def test_member_jobs_running_first_then_waiting_by_place_and_only_theirs() -> None:
    queue = FairQueue()
    running, started, ended = make_job("run", 1), make_job("popped", 1), make_job("ended", 1)
    running.view = replace(running.view, state=JobState.PROCESSING, progress=Progress(0.25, 1, 4))
    ended.done.set()
    other, later, first = make_job("other", 2), make_job("later", 1), make_job("first", 1)
    elsewhere = make_job("elsewhere", 1, guild=2)
    for job in (other, first, later, elsewhere):
        queue.push(job)
    live = [running, started, ended, other, later, first, elsewhere]
    listed = member_jobs(live, queue, (1, 1))
    assert [(job.job_id, job.state, job.position) for job in listed] == [
        ("run", JobState.PROCESSING, None),
        ("popped", JobState.STARTING, None),
        ("first", JobState.QUEUED, 2),
        ("later", JobState.QUEUED, 4),
    ]
    assert listed[0].progress == 0.25 and listed[0].prompt == "prompt run"
