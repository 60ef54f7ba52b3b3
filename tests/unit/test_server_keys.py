"""A server's own API key, piece by piece: IMAGINE_SECRET_KEY's parsing, the repository on both backends (only
ciphertext, audited without the key), the accounts service (a client per key, bounded, never the deployment's
in place of a server's), and the log filter (the key masked once loaded, and in its form's submit)."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from cryptography.fernet import Fernet

from bot.api.accounts import Accounts, AccountUnavailable, fingerprint
from bot.api.client import ReplicateClient, RetryPolicy
from bot.api.errors import Unauthenticated
from bot.base.logs import MASK, RedactSecrets, mask_secret
from bot.moderation.api_keys import ServerKeys
from bot.settings import SettingsError, load_settings
from bot.settings.loading import _is_fernet_key
from bot.storage import Repository
from tests.storage import FakeClock

GUILD = 111
MOD = 900
KEY = "r8_unitTestServerKey00000000000000000wxyz"
BASE_ENV = {"REPLICATE_API_TOKEN": "r8_deployment"}
A_FERNET_KEY = "m5m9Vj0gk1rQw8y3oX2bqE5xYt6sZ4uH7cL0pN1dA2I="  # fixed: test ids must be the same in every worker


# ---------------------------------------------------------------------------- IMAGINE_SECRET_KEY


def test_a_fernet_key_is_accepted_and_kept_secret() -> None:
    assert _is_fernet_key(A_FERNET_KEY)
    key = Fernet.generate_key().decode()
    assert _is_fernet_key(key)
    settings = load_settings({**BASE_ENV, "IMAGINE_SECRET_KEY": key})
    assert settings.secret_key is not None and settings.secret_key.reveal() == key
    assert key not in repr(settings) and key in settings.secrets()


def test_without_imagine_secret_key_there_is_none() -> None:
    assert load_settings(dict(BASE_ENV)).secret_key is None


@pytest.mark.parametrize(
    "value",
    [
        "not-a-key",
        "a" * 44,  # base64 of 33 bytes, not 32
        A_FERNET_KEY[:-1],  # one character short
        A_FERNET_KEY + "=",  # one too long
        "é" * 44,
        "!" * 44,
    ],
)
def test_a_malformed_secret_key_names_the_variable_and_not_the_value(value: str) -> None:
    assert not _is_fernet_key(value)
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE_ENV, "IMAGINE_SECRET_KEY": value})
    [problem] = caught.value.problems
    assert problem.startswith("IMAGINE_SECRET_KEY:") and value not in problem


# ---------------------------------------------------------------------------- storage, both backends


async def test_a_key_is_stored_as_given_ciphertext_and_audited_by_its_end(
    repository: Repository, clock: FakeClock
) -> None:
    assert await repository.api_key(GUILD) is None
    await repository.set_api_key(GUILD, "cipher-1", "abcd", actor_id=MOD)
    stored = await repository.api_key(GUILD)
    assert stored is not None
    assert (stored.ciphertext, stored.last4, stored.rejected, stored.set_by) == ("cipher-1", "abcd", False, MOD)
    assert stored.set_at == clock.now()

    await repository.set_api_key(GUILD, "cipher-2", "wxyz", actor_id=MOD)
    [replaced, first] = (await repository.audit_log(GUILD))[:2]
    assert (first.action, first.before, first.after) == ("apikey", None, "set, ends in …abcd")
    assert (replaced.before, replaced.after) == ("set, ends in …abcd", "set, ends in …wxyz")


async def test_a_rejected_key_is_marked_only_while_it_is_the_servers(repository: Repository) -> None:
    await repository.set_api_key(GUILD, "cipher-1", "abcd", actor_id=MOD)
    assert not await repository.reject_api_key(GUILD, "cipher-old")
    assert await repository.reject_api_key(GUILD, "cipher-1")
    assert not await repository.reject_api_key(GUILD, "cipher-1")  # once
    stored = await repository.api_key(GUILD)
    assert stored is not None and stored.rejected
    await repository.set_api_key(GUILD, "cipher-2", "wxyz", actor_id=MOD)  # a new key is not rejected
    stored = await repository.api_key(GUILD)
    assert stored is not None and not stored.rejected


async def test_off_forgets_the_key_and_is_audited_once(repository: Repository) -> None:
    assert not await repository.clear_api_key(GUILD, actor_id=MOD)
    await repository.set_api_key(GUILD, "cipher-1", "abcd", actor_id=MOD)
    assert await repository.clear_api_key(GUILD, actor_id=MOD)
    assert await repository.api_key(GUILD) is None
    latest = (await repository.audit_log(GUILD))[0]
    assert (latest.action, latest.before, latest.after) == ("apikey", "set, ends in …abcd", None)


# ---------------------------------------------------------------------------- the accounts service


async def test_each_key_has_its_own_client_and_budget_and_unknown_accounts_get_none() -> None:
    async with aiohttp.ClientSession() as session:
        built: list[str] = []

        def build(key: str, retry: RetryPolicy | None) -> ReplicateClient:
            built.append(fingerprint(key))
            return ReplicateClient(session, "http://127.0.0.1:9", key, retry=retry)

        default = ReplicateClient(session, "http://127.0.0.1:9", "r8_deployment")
        accounts = Accounts(default, build, limit=2)
        assert await accounts.client(None) is default
        account = accounts.remember(KEY)
        assert account == fingerprint(KEY) and KEY not in account
        mine = await accounts.client(account)
        assert mine is not default and mine.budget is not default.budget
        assert await accounts.client(account) is mine and len(built) == 1
        with pytest.raises(AccountUnavailable):
            await accounts.client(fingerprint("r8_never_seen"))

        accounts.remember("r8_second_key")
        accounts.remember("r8_third_key")  # past the limit: the least recently used key is forgotten
        with pytest.raises(AccountUnavailable):
            await accounts.client(account)


async def test_a_rejected_key_is_never_replaced_by_the_deployments() -> None:
    async with aiohttp.ClientSession() as session:
        default = ReplicateClient(session, "http://127.0.0.1:9", "r8_deployment")
        accounts = Accounts(default, lambda key, retry: ReplicateClient(session, "http://127.0.0.1:9", key))
        heard: list[tuple[str, int | None]] = []
        accounts.attach(_no_key, lambda account, guild: heard.append((account, guild)))
        account = accounts.remember(KEY)
        message = accounts.failure(account, GUILD, Unauthenticated("401", status=401))
        assert "rejected" in str(message) and heard == [(account, GUILD)]
        accounts.failure(account, GUILD, Unauthenticated("401", status=401))
        assert heard == [(account, GUILD)]  # heard of once
        with pytest.raises(AccountUnavailable, match="rejected"):
            await accounts.client(account, GUILD)
        with pytest.raises(AccountUnavailable):
            accounts.remember(KEY)  # loaded again: still refused until checked anew
        assert accounts.remember(KEY, fresh=True) == account
        assert await accounts.client(account) is not default
        # The deployment's own 401 is no server's business.
        assert accounts.failure(None, GUILD, Unauthenticated("bad token", status=401)) == "bad token"


async def _no_key(guild_id: int) -> str | None:
    return None


# ---------------------------------------------------------------------------- the log filter


def test_a_loaded_key_is_masked_in_every_line() -> None:
    redact = RedactSecrets([]).redact
    key = "r8_loadedLaterKey1234567890"
    assert key in redact(f"sent with {key}")
    mask_secret(key)
    assert redact(f"sent with {key}") == f"sent with {MASK}"


def test_the_key_forms_submit_is_masked_before_the_key_is_known() -> None:
    event = (
        "For Shard ID 0: WebSocket Event: {'op': 0, 't': 'INTERACTION_CREATE', 'd': {'type': 5, 'data': "
        "{'custom_id': 'imagine:apikey-form', 'components': [{'type': 18, 'component': {'type': 4, "
        "'custom_id': 'key', 'value': 'r8_typedIntoTheForm'}}]}}}"
    )
    as_json = event.replace("'", '"')
    for line in (event, as_json):
        redacted = RedactSecrets([]).redact(line)
        assert "r8_typedIntoTheForm" not in redacted and MASK in redacted
    other = event.replace("imagine:apikey-form", "imagine:remix-form:abc")
    assert RedactSecrets([]).redact(other) == other  # a Remix prompt is no secret


def test_the_filter_masks_records_it_filters(caplog: pytest.LogCaptureFixture) -> None:
    mask_secret(KEY)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key %s", (KEY,), None)
    RedactSecrets([]).filter(record)
    assert KEY not in record.getMessage()


async def test_every_accounts_budget_is_split_between_the_live_processes() -> None:
    """The API's limits are per account, whichever process sends: a server key's too, and one built later."""
    async with aiohttp.ClientSession() as session:
        default = ReplicateClient(session, "http://127.0.0.1:9", "r8_deployment")
        accounts = Accounts(default, lambda key, retry: ReplicateClient(session, "http://127.0.0.1:9", key))
        before = await accounts.client(accounts.remember(KEY))
        full = before.budget.creates._rate
        accounts.share(4)
        after = await accounts.client(accounts.remember("r8_second_key"))
        for client in (default, before, after):
            assert client.budget.creates._rate == full / 4
            assert client.budget.other._rate == default.budget.other._rate


async def test_show_says_when_a_changed_secret_key_cannot_read_the_servers_key(
    repository: Repository, clock: FakeClock
) -> None:
    """The key stays stored but unreadable: `show` must not say all is well while /imagine is refused there."""
    ciphertext = Fernet(Fernet.generate_key()).encrypt(KEY.encode()).decode()
    await repository.set_api_key(GUILD, ciphertext, KEY[-4:], actor_id=7)
    async with aiohttp.ClientSession() as session:
        accounts = Accounts(ReplicateClient(session, "http://127.0.0.1:9", "r8_deployment"))
        keys = ServerKeys(
            repository,
            accounts,
            Fernet.generate_key().decode(),  # another IMAGINE_SECRET_KEY than the one that encrypted it
            clock=clock,
            on_event=lambda event: None,
            end_jobs=_no_jobs,
        )
        state = str(await keys.state(GUILD))
    assert f"…{KEY[-4:]}" in state and "cannot read it" in state and KEY not in state
    with pytest.raises(AccountUnavailable):
        await keys.key_of(GUILD)


async def _no_jobs(guild_id: int, account: str, error: object) -> int:
    return 0
