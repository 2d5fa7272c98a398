"""Access tokens: long-lived user tokens with an expiry, their rejection, and their exchange.

Contract: a Graph call carries its token as the ``access_token`` parameter or in
``Authorization: Bearer`` / ``OAuth`` (https://developers.facebook.com/docs/graph-api/overview —
"Access Tokens"); a bad one is code 190 with a subcode saying why — 463 expired, 460 password
changed, 467 invalid, 458 app not authorised (https://developers.facebook.com/docs/graph-api/
guides/error-handling — "Authentication Error Subcodes"); none at all is code 104.
The exchange is ``GET /oauth/access_token?grant_type=fb_exchange_token&client_id&client_secret&
fb_exchange_token=`` → ``{"access_token", "token_type": "bearer", "expires_in"}``, and an expired
token cannot be exchanged (https://developers.facebook.com/docs/facebook-login/guides/
access-tokens/get-long-lived).
"""

from __future__ import annotations

import hmac
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from sync_pipelines.sandbox.meta_ads.errors import (
    SUBCODE_EXPIRED, TOKEN_SUBCODES, GraphError, token_rejected, token_required, token_unparsable,
)

LONG_LIVED_SECONDS = 60 * 24 * 3600  # "a long-lived token generally lasts about 60 days"


@dataclass
class Token:
    value: str
    accounts: frozenset[str] | None  # None: every ad account of the sandbox
    expires_at: float | None  # None: never expires (a system user's token)
    rejected: int | None = None  # the 190 subcode once invalidated

    def may_read(self, account_id: str) -> bool:
        return self.accounts is None or account_id in self.accounts

    def snapshot(self, now: float) -> dict[str, Any]:
        return {"accounts": None if self.accounts is None else sorted(self.accounts),
                "expires_in": None if self.expires_at is None else round(self.expires_at - now, 3),
                "rejected_subcode": self.rejected}


class TokenStore:
    """The sandbox's valid, expired and invalidated tokens (by value); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, Token] = {}
        self.exchanges = 0

    def issue(self, now: float, *, token: str | None = None, accounts: list[str] | None = None,
              expires_in: float | None = LONG_LIVED_SECONDS) -> Token:
        value = token or f"EAAsandbox{secrets.token_urlsafe(24)}"
        issued = Token(value=value, accounts=None if accounts is None else frozenset(accounts),
                       expires_at=None if expires_in is None else now + float(expires_in))
        with self._lock:
            self._tokens[value] = issued
        return issued

    def get(self, value: str) -> Token:
        with self._lock:
            try:
                return self._tokens[value]
            except KeyError:
                raise KeyError("no such sandbox token") from None  # never echo a token

    def expire(self, value: str, now: float) -> None:
        self.get(value).expires_at = now - 1

    def invalidate(self, value: str, subcode: int) -> None:
        if int(subcode) not in TOKEN_SUBCODES:
            raise ValueError(f"subcode must be one of {TOKEN_SUBCODES}")
        self.get(value).rejected = int(subcode)

    def check(self, value: str | None, now: float) -> Token:
        """The token a call presents, or the 104/190 error Graph answers."""
        if not value:
            raise token_required()
        with self._lock:
            found = self._tokens.get(value)
        if found is None:
            raise token_unparsable()
        if found.rejected is not None:
            raise token_rejected(found.rejected)
        if found.expires_at is not None and found.expires_at <= now:
            raise token_rejected(SUBCODE_EXPIRED)
        return found

    def exchange(self, params: dict[str, str], now: float, *, app_id: str, app_secret: str,
                 expires_in: int = LONG_LIVED_SECONDS) -> dict[str, Any]:
        """``GET /oauth/access_token`` with ``grant_type=fb_exchange_token``: a new token for
        the same accounts, lasting `expires_in` seconds; the old one stays valid until it expires."""
        if params.get("grant_type") != "fb_exchange_token":
            raise GraphError(100, "(#100) Param grant_type must be fb_exchange_token in the sandbox")
        if not hmac.compare_digest(params.get("client_id", "").encode(), app_id.encode()):
            raise GraphError(101, "Error validating application. Invalid application ID.")
        if not hmac.compare_digest(params.get("client_secret", "").encode(), app_secret.encode()):
            raise GraphError(1, "Error validating client secret.")
        old = self.check(params.get("fb_exchange_token"), now)
        new = self.issue(now, accounts=None if old.accounts is None else sorted(old.accounts),
                         expires_in=expires_in)
        with self._lock:
            self.exchanges += 1
        return {"access_token": new.value, "token_type": "bearer", "expires_in": int(expires_in)}
