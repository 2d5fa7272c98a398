"""Access tokens of the sandbox, sent in the ``Access-Token`` header (never ``Authorization``,
https://business-api.tiktok.com/portal/docs?id=1738373164380162).

Two kinds, as TikTok hands them out: an advertiser's **long-term** access token (from
``/oauth2/access_token/``) does not expire — only a revocation ends it; a token issued with a
**refresh token** (``expires_in`` 86,400 s, refresh token valid a year) is renewed through
``POST /open_api/v1.3/oauth2/refresh_token/`` with ``app_id``, ``secret``, ``refresh_token`` and
``grant_type=refresh_token``; the refreshed access token replaces the old one, which stops working.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Any

from sync_pipelines.sandbox.tiktok_ads.errors import TikTokError, param_error

ACCESS_SECONDS = 86_400
REFRESH_SECONDS = 365 * 86_400


@dataclass
class Token:
    value: str
    advertisers: list[str] | None  # None: every advertiser
    expires_at: float | None  # None: a long-term token
    refresh_token: str | None = None
    refresh_expires_at: float | None = None
    revoked: bool = False


class TokenStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, Token] = {}
        self._refresh: dict[str, str] = {}  # refresh token -> current access token
        self.refreshes = 0

    def issue(self, now: float, *, token: str | None = None, advertisers: list[str] | None = None,
              expires_in: float | None = None, refreshable: bool = False) -> Token:
        value = token or secrets.token_hex(20)
        made = Token(value, advertisers, None if expires_in is None else now + float(expires_in))
        if refreshable:
            made.refresh_token, made.refresh_expires_at = secrets.token_hex(20), now + REFRESH_SECONDS
        with self._lock:
            self._tokens[value] = made
            if made.refresh_token:
                self._refresh[made.refresh_token] = value
        return made

    def get(self, value: str) -> Token:
        with self._lock:
            return self._tokens[value]

    def revoke(self, value: str) -> None:
        with self._lock:
            self._tokens[value].revoked = True

    def expire(self, value: str, now: float) -> None:
        with self._lock:
            self._tokens[value].expires_at = now - 1

    def expire_refresh(self, refresh_token: str, now: float) -> None:
        with self._lock:
            self._tokens[self._refresh[refresh_token]].refresh_expires_at = now - 1

    def check(self, value: str | None, now: float, advertiser_id: str | None) -> Token:
        """The token of a request, or the error TikTok answers (40104, 40105, 40102, 40001)."""
        if not value:
            raise TikTokError(40104)
        with self._lock:
            token = self._tokens.get(value)
        if token is None or token.revoked:
            raise TikTokError(40105)
        if token.expires_at is not None and now >= token.expires_at:
            raise TikTokError(40102)
        if advertiser_id is not None and token.advertisers is not None and advertiser_id not in token.advertisers:
            raise TikTokError(40001, advertiser_id=advertiser_id)
        return token

    def refresh(self, body: Any, now: float, *, app_id: str, secret: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise param_error("The request body must be a JSON object.")
        if body.get("grant_type") != "refresh_token":
            raise TikTokError(40108, "grant_type must be refresh_token.")
        if body.get("app_id") != app_id or body.get("secret") != secret:
            raise TikTokError(40001, "app_id or secret is incorrect.")
        with self._lock:
            current = self._refresh.get(str(body.get("refresh_token") or ""))
            old = self._tokens.get(current) if current else None
            if old is None or old.revoked:
                raise TikTokError(40107)
            if old.refresh_expires_at is not None and now >= old.refresh_expires_at:
                raise TikTokError(40103)
            new = Token(secrets.token_hex(20), old.advertisers, now + ACCESS_SECONDS, old.refresh_token,
                        old.refresh_expires_at)
            old.revoked = True
            self._tokens[new.value] = new
            self._refresh[old.refresh_token] = new.value
            self.refreshes += 1
        return {"access_token": new.value, "token_type": "Bearer", "expires_in": ACCESS_SECONDS,
                "refresh_token": new.refresh_token,
                "refresh_token_expires_in": int(max(0, (new.refresh_expires_at or now) - now)),
                "advertiser_ids": new.advertisers or [], "scope": [4]}
