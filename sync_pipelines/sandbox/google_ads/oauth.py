"""Google's OAuth 2.0 token endpoint, as far as a server-side sync uses it: the refresh grant.

``POST /token`` stands in for ``https://oauth2.googleapis.com/token``
(https://developers.google.com/identity/protocols/oauth2/web-server#offline, "Refreshing an
access token"): a form-encoded body with ``grant_type=refresh_token``, ``client_id``,
``client_secret`` (or HTTP Basic credentials) and ``refresh_token``; the answer is
``{access_token, expires_in, scope, token_type}`` and, normally, no new refresh token.
Errors are RFC 6749 §5.2 bodies (``{"error", "error_description"}``): ``invalid_grant`` (400)
for a refresh token that is unknown, revoked or another client's, ``invalid_client`` (401) for
an unknown client or a wrong secret, ``invalid_request`` / ``unsupported_grant_type`` (400).

A grant (what a user's consent creates: a refresh token for one OAuth client) may be limited
to some customers; revoking it also kills the access tokens issued from it, as revoking a
Google grant does.
"""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import Response

from sync_pipelines.sandbox.base import json_response

SCOPE = "https://www.googleapis.com/auth/adwords"
ACCESS_TOKEN_SECONDS = 3599


@dataclass
class Grant:
    client_id: str
    refresh_token: str
    customers: frozenset[str] | None  # None: every customer
    revoked: bool = False


@dataclass
class AccessToken:
    grant: Grant
    expires_at: float


@dataclass
class OAuthServer:
    """OAuth clients, grants and access tokens under one lock; ``clock`` is the sandbox's."""

    clock: Callable[[], float]
    access_token_seconds: int = ACCESS_TOKEN_SECONDS
    rotate_refresh_tokens: bool = False  # answer refreshes with a new refresh token (old one dies)
    clients: dict[str, str] = field(default_factory=dict)  # client id -> secret
    grants: dict[str, Grant] = field(default_factory=dict)  # refresh token -> grant
    tokens: dict[str, AccessToken] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # token endpoint answers by outcome
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _count_lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------- Python API
    def add_client(self, client_id: str, client_secret: str) -> None:
        if not client_id or not client_secret:
            raise ValueError("client_id and client_secret must be non-empty")
        with self._lock:
            self.clients[client_id] = client_secret

    def grant(self, client_id: str, client_secret: str, customers: list[str] | None = None,
              refresh_token: str | None = None) -> str:
        """A user's consent: registers the client if new (its secret must match otherwise)
        and returns the grant's refresh token."""
        with self._lock:
            known = self.clients.get(client_id)
            if known is not None and known != client_secret:
                raise ValueError(f"OAuth client {client_id!r} is registered with another secret")
        self.add_client(client_id, client_secret)
        token = refresh_token or f"1//sandbox-{secrets.token_urlsafe(24)}"
        with self._lock:
            self.grants[token] = Grant(client_id, token, None if customers is None else frozenset(customers))
        return token

    def issue(self, refresh_token: str) -> str:
        """An access token for a live grant, as a refresh would issue it."""
        with self._lock:
            grant = self.grants.get(refresh_token)
            if grant is None or grant.revoked:
                raise KeyError("no live grant for that refresh token")
            return self._issue(grant)

    def _issue(self, grant: Grant) -> str:
        token = f"ya29.sandbox-{secrets.token_urlsafe(32)}"
        self.tokens[token] = AccessToken(grant, self.clock() + self.access_token_seconds)
        return token

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            grant = self.grants.get(refresh_token)
            if grant is None:
                raise KeyError("no grant with that refresh token")
            grant.revoked = True

    def expire_access_tokens(self, refresh_token: str | None = None) -> int:
        """Expire every access token (or a grant's); returns how many were live."""
        now = self.clock()
        n = 0
        with self._lock:
            for token in self.tokens.values():
                if refresh_token is None or token.grant.refresh_token == refresh_token:
                    n += token.expires_at > now
                    token.expires_at = min(token.expires_at, now - 1)
        return n

    def check(self, access_token: str) -> tuple[Grant | None, str | None]:
        """(grant, None) for a valid token, else (None, the AuthenticationError code)."""
        with self._lock:
            token = self.tokens.get(access_token)
            if token is None:
                return None, "OAUTH_TOKEN_INVALID"
            if token.grant.revoked:
                return None, "OAUTH_TOKEN_REVOKED"
            if token.expires_at <= self.clock():
                return None, "OAUTH_TOKEN_EXPIRED"
            return token.grant, None

    def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        with self._count_lock:
            counts = dict(self.counts)
        with self._lock:
            return {"token_requests": counts, "clients": sorted(self.clients), "grants": len(self.grants),
                    "revoked_grants": sum(g.revoked for g in self.grants.values()),
                    "live_access_tokens": sum(t.expires_at > now and not t.grant.revoked for t in self.tokens.values()),
                    "access_token_seconds": self.access_token_seconds,
                    "rotate_refresh_tokens": self.rotate_refresh_tokens}

    # ------------------------------------------------------------- endpoint
    async def token_endpoint(self, request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", "replace")
        form = dict(parse_qsl(raw, keep_blank_values=True))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
                client_id, client_secret = unquote(user), unquote(password)
            except (ValueError, UnicodeDecodeError):
                return self._error(400, "invalid_request", "Bad Authorization header.")
        grant_type = form.get("grant_type")
        if not grant_type:
            return self._error(400, "unsupported_grant_type", "Invalid grant_type: ")
        if grant_type != "refresh_token":
            return self._error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        if not client_id:
            return self._error(400, "invalid_request", "Could not determine client ID from request.")
        with self._lock:
            secret = self.clients.get(client_id)
            if secret is None:
                return self._error(401, "invalid_client", "The OAuth client was not found.")
            if not client_secret or not secrets.compare_digest(secret.encode(), client_secret.encode()):
                return self._error(401, "invalid_client", "Unauthorized")
            refresh_token = form.get("refresh_token")
            if not refresh_token:
                return self._error(400, "invalid_request", "Missing required parameter: refresh_token")
            grant = self.grants.get(refresh_token)
            if grant is None or grant.revoked or grant.client_id != client_id:
                return self._error(400, "invalid_grant", "Token has been expired or revoked.")
            body: dict[str, Any] = {"access_token": self._issue(grant), "expires_in": self.access_token_seconds,
                                    "scope": SCOPE, "token_type": "Bearer"}
            if self.rotate_refresh_tokens:
                del self.grants[refresh_token]
                grant.refresh_token = f"1//sandbox-{secrets.token_urlsafe(24)}"
                self.grants[grant.refresh_token] = grant
                body["refresh_token"] = grant.refresh_token
        self._count("ok")
        return json_response(body, 200, {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
                                         "Pragma": "no-cache"}, media_type="application/json; charset=utf-8")

    def _count(self, outcome: str) -> None:
        with self._count_lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def _error(self, status: int, error: str, description: str) -> Response:
        self._count(error)
        return json_response({"error": error, "error_description": description}, status,
                             media_type="application/json; charset=utf-8")
