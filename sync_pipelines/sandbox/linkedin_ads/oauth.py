"""LinkedIn's OAuth 2.0 as a sync sees it: access tokens of 60 days, programmatic refresh tokens
of a year *from the first authorisation*, which using them does not extend, and revocation.

Contract (https://learn.microsoft.com/en-us/linkedin/shared/authentication/programmatic-refresh-tokens):
``POST /oauth/v2/accessToken`` (form: ``grant_type=refresh_token``, ``refresh_token``,
``client_id``, ``client_secret``) answers ``{access_token, expires_in, refresh_token,
refresh_token_expires_in, scope}`` where ``refresh_token_expires_in`` is what is *left* of the
original year. A refresh token that is expired or revoked is refused with HTTP 400
``{"error": "invalid_request", "error_description": "The provided authorization grant or refresh
token is invalid, expired or revoked"}``; bad client credentials with 401 ``invalid_client``.
API calls with a bad token get 401 with a Rest.li error body (``EXPIRED_ACCESS_TOKEN``,
``REVOKED_ACCESS_TOKEN``, ``INVALID_ACCESS_TOKEN``, ``EMPTY_ACCESS_TOKEN``).
"""

from __future__ import annotations

import hmac
import secrets
import threading
from dataclasses import dataclass
from typing import Any

ACCESS_SECONDS = 60 * 24 * 3600
REFRESH_SECONDS = 365 * 24 * 3600
REVOKED_GRANT = "The provided authorization grant or refresh token is invalid, expired or revoked"


class OAuthError(Exception):
    """An error answer: HTTP status and JSON body."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(body.get("message") or body.get("error"))
        self.status, self.body = status, body


def api_error(status: int, code: str, message: str, service_code: int | None = None) -> OAuthError:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if service_code is not None:
        body["serviceErrorCode"] = service_code
    return OAuthError(status, body)


@dataclass
class Grant:
    refresh_token: str
    accounts: frozenset[str] | None  # None: every ad account of the sandbox
    expires_at: float
    revoked: bool = False


@dataclass
class AccessToken:
    grant: Grant
    expires_at: float
    revoked: bool = False


class OAuthServer:
    """Grants (refresh tokens) and access tokens by value; thread-safe. Values are never logged."""

    def __init__(self, client_id: str, client_secret: str, *, access_seconds: int = ACCESS_SECONDS) -> None:
        self.client_id, self.client_secret, self.access_seconds = client_id, client_secret, access_seconds
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}
        self._access: dict[str, AccessToken] = {}
        self.refreshes = 0

    def grant(self, now: float, *, accounts: list[str] | None = None, refresh_token: str | None = None,
              lifetime: float = REFRESH_SECONDS) -> Grant:
        """A member's authorisation: a refresh token lasting `lifetime` seconds from now."""
        value = refresh_token or f"AQR{secrets.token_urlsafe(30)}"
        grant = Grant(value, None if accounts is None else frozenset(accounts), now + lifetime)
        with self._lock:
            self._grants[value] = grant
        return grant

    def issue(self, refresh_token: str, now: float, token: str | None = None) -> str:
        """An access token of the grant (as the token endpoint would mint it)."""
        with self._lock:
            grant = self._grants[refresh_token]
            value = token or f"AQV{secrets.token_urlsafe(40)}"
            self._access[value] = AccessToken(grant, now + self.access_seconds)
        return value

    def grant_expiry(self, refresh_token: str) -> float:
        with self._lock:
            return self._grants[refresh_token].expires_at

    def revoke(self, refresh_token: str) -> None:
        """The member revoked the app: the grant and every access token it issued die."""
        with self._lock:
            grant = self._grants[refresh_token]
            grant.revoked = True
            for token in self._access.values():
                if token.grant is grant:
                    token.revoked = True

    def expire_access_tokens(self, now: float) -> int:
        with self._lock:
            for token in self._access.values():
                token.expires_at = min(token.expires_at, now - 1)
            return len(self._access)

    def check(self, authorization: str | None, now: float) -> Grant:
        """The grant behind an ``Authorization: Bearer`` header, or the 401 LinkedIn answers."""
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise api_error(401, "EMPTY_ACCESS_TOKEN", "Empty oauth2 access token", 65604)
        with self._lock:
            token = self._access.get(value.strip())
        if token is None:
            raise api_error(401, "INVALID_ACCESS_TOKEN", "Invalid access token", 65600)
        if token.revoked or token.grant.revoked:
            raise api_error(401, "REVOKED_ACCESS_TOKEN", "The token used in the request has been revoked by the user",
                            65601)
        if token.expires_at <= now:
            raise api_error(401, "EXPIRED_ACCESS_TOKEN", "The token used in the request has expired", 65602)
        return token.grant

    def token_endpoint(self, form: dict[str, str], now: float) -> dict[str, Any]:
        """The refresh grant; the refresh token keeps its original expiry (no sliding)."""
        if form.get("grant_type") != "refresh_token":
            raise OAuthError(400, {"error": "unsupported_grant_type",
                                   "error_description": "the sandbox only supports grant_type=refresh_token"})
        for name in ("refresh_token", "client_id", "client_secret"):
            if not form.get(name):
                raise OAuthError(400, {"error": "invalid_request",
                                       "error_description": f'A required parameter "{name}" is missing'})
        if not (hmac.compare_digest(form["client_id"].encode(), self.client_id.encode())
                and hmac.compare_digest(form["client_secret"].encode(), self.client_secret.encode())):
            raise OAuthError(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        with self._lock:
            grant = self._grants.get(form["refresh_token"])
        if grant is None or grant.revoked or grant.expires_at <= now:
            raise OAuthError(400, {"error": "invalid_request", "error_description": REVOKED_GRANT})
        access = self.issue(grant.refresh_token, now)
        with self._lock:
            self.refreshes += 1
        return {"access_token": access, "expires_in": self.access_seconds, "refresh_token": grant.refresh_token,
                "refresh_token_expires_in": int(grant.expires_at - now), "scope": "r_ads,r_ads_reporting"}
