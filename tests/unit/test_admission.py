"""The policy's admission: one read of a server's settings decides a request, and the charge holds to it."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from bot.api.modelref import ModelRef
from bot.base.errors import BlockedWordRefusal, Refusal
from bot.moderation.policy import Admission, Policy, RequestContext
from bot.storage import LimitChanges, Limits, Repository
from bot.storage.sqlite import MEMORY, SqliteRepository
from tests.storage import FakeClock

GUILD, MOD, MEMBER = 1, 2, 3
VIP = 10
HERE, ELSEWHERE = 5, 6
OPEN, PRO = "a/open", "a/pro"


class CountingRepository:
    """A repository that counts the calls of each of its methods."""

    def __init__(self, repository: SqliteRepository) -> None:
        self.inner = repository
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attribute(*args, **kwargs)

        return call


@pytest.fixture
async def repository() -> AsyncIterator[CountingRepository]:
    inner = await SqliteRepository.open(MEMORY, clock=FakeClock())
    yield CountingRepository(inner)
    await inner.close()


@pytest.fixture
def policy(repository: CountingRepository) -> Policy:
    async def one_job(guild_id: int, member_id: int) -> int:
        return 1

    return Policy(
        cast(Repository, repository), bot_models=(ModelRef.parse(OPEN),), clock=FakeClock(), active_jobs=one_job
    )


def asking(prompt: str = "a fox", *, model: str | None = None, roles: frozenset[int] = frozenset()) -> RequestContext:
    return RequestContext(GUILD, MEMBER, HERE, prompt, model_text=model, role_ids=roles)


async def test_one_read_of_the_settings_decides_the_whole_request(
    policy: Policy, repository: CountingRepository
) -> None:
    await repository.inner.allow_model(GUILD, OPEN, actor_id=MOD)
    await repository.inner.allow_model(GUILD, PRO, actor_id=MOD, role_id=VIP)
    await repository.inner.set_default_model(GUILD, PRO, actor_id=MOD)
    await repository.inner.set_limits(
        GUILD, LimitChanges(cooldown_seconds=60, daily_images=10, concurrent_jobs=2), actor_id=MOD
    )
    await repository.inner.set_role_limits(GUILD, VIP, LimitChanges(daily_images=40), actor_id=MOD)

    admission = await policy.admit(asking())
    await policy.check_usage(admission, 2)
    await policy.charge(admission.priced(2, 0))

    assert repository.calls == Counter(guild_config=1, usage=1, charge=1)
    assert admission.model == ModelRef.parse(OPEN)
    assert (
        str(admission.note)
        == f"This server's default model `{PRO}` is only for members with the <@&{VIP}> role; used `{OPEN}`."
    )
    assert admission.limits == Limits(cooldown_seconds=60, daily_images=10, concurrent_jobs=2)


async def test_the_admission_holds_the_members_own_limits_and_the_default_for_their_roles(
    policy: Policy, repository: CountingRepository
) -> None:
    await repository.inner.allow_model(GUILD, PRO, actor_id=MOD, role_id=VIP)
    await repository.inner.allow_model(GUILD, OPEN, actor_id=MOD)
    await repository.inner.set_limits(GUILD, LimitChanges(cooldown_seconds=60, daily_images=10), actor_id=MOD)
    await repository.inner.set_role_limits(GUILD, VIP, LimitChanges(cooldown_seconds=0, daily_images=40), actor_id=MOD)
    vip = await policy.admit(asking(roles=frozenset({VIP})))
    assert (vip.model, vip.note) == (ModelRef.parse(PRO), None)
    assert vip.limits == Limits(cooldown_seconds=0, daily_images=40)


async def test_an_admission_is_a_decision_not_changed_after_it_is_made(policy: Policy) -> None:
    admission = await policy.admit(asking())
    with pytest.raises(dataclasses.FrozenInstanceError):
        admission.model = ModelRef.parse(PRO)  # type: ignore[misc]
    priced = admission.priced(3, 1_500)
    assert (priced.images, priced.cost) == (3, 1_500)
    assert (admission.images, admission.cost) == (0, 0)
    assert dataclasses.replace(priced, images=0, cost=0) == admission


async def test_the_charge_holds_to_the_limits_the_request_was_admitted_under(
    policy: Policy, repository: CountingRepository
) -> None:
    admission = (await policy.admit(asking())).priced(1, 0)
    await repository.inner.set_limits(
        GUILD, LimitChanges(daily_images=1), actor_id=MOD
    )  # changed while the job was set up
    assert isinstance(admission, Admission) and admission.limits == Limits()
    await policy.charge(admission)
    await policy.charge(admission)
    with pytest.raises(Refusal, match="used your only image for today"):
        await policy.charge((await policy.admit(asking())).priced(1, 0))


async def test_the_first_refusal_in_order_wins_channel_model_word_then_usage(
    policy: Policy, repository: CountingRepository
) -> None:
    await repository.inner.allow_model(GUILD, OPEN, actor_id=MOD)
    await repository.inner.allow_channel(GUILD, ELSEWHERE, actor_id=MOD)
    await repository.inner.add_word(GUILD, "weasel", actor_id=MOD)
    everything_wrong = asking("a weasel", model="a/unknown")
    with pytest.raises(Refusal, match="can't be used in this channel"):
        await policy.admit(everything_wrong)
    with pytest.raises(Refusal, match="is not allowed here"):
        await policy.admit(dataclasses.replace(everything_wrong, channel_id=ELSEWHERE))
    with pytest.raises(BlockedWordRefusal):
        await policy.admit(dataclasses.replace(everything_wrong, channel_id=ELSEWHERE, model_text=OPEN))

    await repository.inner.set_limits(GUILD, LimitChanges(daily_images=1, concurrent_jobs=1), actor_id=MOD)
    admission = await policy.admit(RequestContext(GUILD, MEMBER, ELSEWHERE, "a fox"))
    with pytest.raises(Refusal, match="That would make 2 images today"):
        await policy.check_usage(admission, 2)
    with pytest.raises(Refusal, match="You already have 1 /imagine job going"):
        await policy.check_usage(admission, 1)


async def test_a_thread_of_an_allowed_channel_is_admitted(policy: Policy, repository: CountingRepository) -> None:
    await repository.inner.allow_channel(GUILD, ELSEWHERE, actor_id=MOD)
    thread = RequestContext(GUILD, MEMBER, 99, "a fox", parent_channel_id=ELSEWHERE)
    assert (await policy.admit(thread)).model == ModelRef.parse(OPEN)


# ---------------------------------------------------------------------------- sets and preferences


async def test_a_blocked_word_in_any_prompt_of_a_set_refuses_it_from_one_read(
    policy: Policy, repository: CountingRepository
) -> None:
    await repository.inner.add_word(GUILD, "weasel", actor_id=MOD)
    repository.calls.clear()
    a_set = dataclasses.replace(asking("a fox"), prompts=("a fox", "a weasel", "a hare"))
    with pytest.raises(BlockedWordRefusal):
        await policy.admit(a_set)
    assert repository.calls["guild_config"] == 1
    assert (await policy.admit(dataclasses.replace(a_set, prompts=("a fox", "a hare")))).model == ModelRef.parse(OPEN)


async def test_a_set_counts_each_of_its_jobs_against_the_jobs_at_once(
    policy: Policy, repository: CountingRepository
) -> None:
    await repository.inner.set_limits(GUILD, LimitChanges(concurrent_jobs=3), actor_id=MOD)
    admission = await policy.admit(asking())
    await policy.check_usage(admission, 2, jobs=2)  # one going (the fixture's), two more: three at once
    with pytest.raises(Refusal) as refused:
        await policy.check_usage(admission, 3, jobs=3)
    assert str(refused.value) == (
        "Your prompt makes 3 /imagine jobs; you already have 1 going, and you may have 3 at once. "
        "Ask for fewer (fewer options in the braces, or a smaller --repeat), or wait for yours to finish."
    )


async def test_the_preferred_model_is_taken_where_the_member_may_use_it(
    policy: Policy, repository: CountingRepository
) -> None:
    await repository.inner.allow_model(GUILD, OPEN, actor_id=MOD)
    await repository.inner.allow_model(GUILD, PRO, actor_id=MOD, role_id=VIP)
    preferring = dataclasses.replace(asking(roles=frozenset({VIP})), preferred_model=PRO)
    admission = await policy.admit(preferring)
    assert (admission.model, admission.note) == (ModelRef.parse(PRO), None)
    named = await policy.admit(dataclasses.replace(preferring, model_text=OPEN))
    assert (named.model, named.note) == (ModelRef.parse(OPEN), None)  # a model named beats the preference


async def test_a_preferred_model_not_available_here_gives_the_servers_with_a_note(
    policy: Policy, repository: CountingRepository
) -> None:
    await repository.inner.allow_model(GUILD, OPEN, actor_id=MOD)
    await repository.inner.allow_model(GUILD, PRO, actor_id=MOD, role_id=VIP)
    for preferred in (PRO, "a/elsewhere", "not a model"):  # only for a role; not on the list; unreadable
        admission = await policy.admit(dataclasses.replace(asking(), preferred_model=preferred))
        assert admission.model == ModelRef.parse(OPEN)
        assert str(admission.note) == f"Your preferred model `{preferred}` is not available to you here; used `{OPEN}`."
    await repository.inner.set_default_model(GUILD, PRO, actor_id=MOD)
    admission = await policy.admit(dataclasses.replace(asking(), preferred_model="a/elsewhere"))
    assert str(admission.note) == (
        "Your preferred model `a/elsewhere` is not available to you here, and this server's default model "
        f"`{PRO}` is only for members with the <@&{VIP}> role; used `{OPEN}`."
    )
