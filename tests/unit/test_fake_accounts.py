"""The fake API's accounts: each token an account with its own predictions and webhook secret, 401 for unknown
or revoked tokens, ``GET /v1/account``, and which token each request carried."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fakes.replicate import FakeReplicate
from tests.unit.test_fake_replicate import call, create

SERVER = "r8_serverAccountToken"


@pytest.fixture
async def fake() -> AsyncIterator[FakeReplicate]:
    async with FakeReplicate(seed=1234) as server:
        server.add_account(SERVER, username="server")
        yield server


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_each_account_sees_only_its_own_predictions(fake: FakeReplicate) -> None:
    async with aiohttp.ClientSession() as http:
        mine = await create(fake, http, headers=bearer(SERVER))
        theirs = await create(fake, http)
        assert fake.predictions[mine["id"]].account == SERVER
        assert fake.predictions[theirs["id"]].account == fake.token
        status, _, _ = await call(http, "GET", f"{fake.base_url}/v1/predictions/{theirs['id']}", headers=bearer(SERVER))
        assert status == 404
        status, _, _ = await call(http, "POST", f"{fake.base_url}/v1/predictions/{mine['id']}/cancel")
        assert status == 404
        status, listed, _ = await call(http, "GET", f"{fake.base_url}/v1/predictions", headers=bearer(SERVER))
        assert status == 200 and [p["id"] for p in listed["results"]] == [mine["id"]]
    assert [r.token for r in fake.creates] == [SERVER, fake.token]


async def test_account_route_and_unknown_or_revoked_tokens(fake: FakeReplicate) -> None:
    async with aiohttp.ClientSession() as http:
        status, account, _ = await call(http, "GET", f"{fake.base_url}/v1/account", headers=bearer(SERVER))
        assert status == 200 and account["username"] == "server" and account["type"] in ("user", "organization")
        status, _, _ = await call(http, "GET", f"{fake.base_url}/v1/account", headers=bearer("r8_nobody"))
        assert status == 401
        fake.revoke(SERVER)
        status, _, _ = await call(http, "GET", f"{fake.base_url}/v1/account", headers=bearer(SERVER))
        assert status == 401
        status, _, _ = await call(http, "GET", f"{fake.base_url}/v1/account")
        assert status == 200  # the first account is untouched


async def test_each_account_has_its_own_webhook_secret(fake: FakeReplicate) -> None:
    async with aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/v1/webhooks/default/secret"
        _, own, _ = await call(http, "GET", url, headers=bearer(SERVER))
        _, first, _ = await call(http, "GET", url)
    assert own["key"] == fake.accounts[SERVER].webhook_secret != first["key"] == fake.webhook_secret
