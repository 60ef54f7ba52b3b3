"""Accounts: each API token is an account with its own predictions and webhook secret; revoked tokens get 401.

The fake starts with one account, the constructor's ``token`` (its secret is :attr:`FakeReplicate.webhook_secret`).
:meth:`AccountsMixin.add_account` adds more (a server's own key), :meth:`AccountsMixin.revoke` makes a token
answer 401 from then on. Every recorded request says which token it used (:attr:`RecordedRequest.token`).
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakes.replicate.vocabulary import _json_response

if TYPE_CHECKING:
    from tests.fakes.replicate.predictions import FakePrediction


@dataclass
class FakeAccount:
    """One account: its token, name and webhook signing secret."""

    token: str
    username: str
    webhook_secret: str
    revoked: bool = False


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` (or ``Token <token>``) header."""
    scheme, _, credential = (header or "").partition(" ")
    return credential.strip() if scheme.lower() in ("bearer", "token") and credential.strip() else None


class AccountsMixin:
    """Part of :class:`FakeReplicate`: the accounts and ``GET /v1/account``."""

    token: str
    webhook_secret: str
    accounts: dict[str, FakeAccount]
    """The accounts added with :meth:`add_account`, by token (the first account is :attr:`token`'s)."""
    _main: FakeAccount

    def _init_accounts(self) -> None:
        self.accounts = {}
        self._main = FakeAccount(self.token, "deployment", self.webhook_secret)

    def _account(self, token: str) -> FakeAccount | None:
        if token == self.token:  # the first account follows :attr:`token` and :attr:`webhook_secret` as set
            self._main.token, self._main.webhook_secret = self.token, self.webhook_secret
            return self._main
        return self.accounts.get(token)

    def add_account(self, token: str, *, username: str | None = None) -> FakeAccount:
        """A new account whose requests carry ``token``, with a webhook secret of its own."""
        secret = "whsec_" + base64.b64encode(random.Random(token).randbytes(32)).decode()
        account = FakeAccount(token, username or f"account{len(self.accounts) + 1}", secret)
        self.accounts[token] = account
        return account

    def revoke(self, token: str) -> None:
        """Every request with ``token`` is answered 401 from now on."""
        account = self._account(token)
        assert account is not None, "no such account"
        account.revoked = True

    def _account_of(self, request: web.Request) -> FakeAccount | None:
        account = self._account(bearer(request.headers.get("Authorization")) or "")
        return None if account is None or account.revoked else account

    def _owned(self, request: web.Request, pred: FakePrediction | None) -> FakePrediction | None:
        """``pred`` if the request's account made it (another account's prediction is "not found")."""
        if pred is None or pred.account is None:
            return pred
        account = self._account_of(request)
        return pred if account is not None and account.token == pred.account else None

    def _secret_of(self, pred: FakePrediction) -> str:
        account = self._account(pred.account or "")
        return account.webhook_secret if account is not None else self.webhook_secret

    async def _handle_account(self, request: web.Request) -> web.StreamResponse:
        account = self._account_of(request)
        assert account is not None  # the middleware let only known tokens through
        return _json_response({"type": "user", "username": account.username, "name": account.username.title()})
