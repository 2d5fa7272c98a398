"""OAuth access tokens for an API session: the current token, refreshed once when it expires or
is refused, and what a revoked grant means.

A provider's client asks a `TokenSource` for the token to send and wraps each call in
`call_with_token`: a refusal (`AuthenticationError`, a 401 or the provider's "invalid token"
code) refreshes once — under the row lock of `core.credentials`, so concurrent runs spend the
refresh token once — and repeats the call. A provider's refresh that learns the grant itself is
gone (revoked, expired, password changed) raises `ReauthorisationRequired`: no retry can fix that;
the account needs a person, and the sync marks its integration so (`registry.mark_needs_reauth`).
Free of Dagster.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg

from sync_pipelines.core import credentials
from sync_pipelines.core.credentials import Cipher, CredentialsError, Tokens
from sync_pipelines.core.http import (AuthenticationError, ErrorVerdict, HttpClient, IntegrationError,
                                      MalformedResponseError)

T = TypeVar("T")

Refresher = Callable[[Tokens], Tokens]
"""The provider's refresh: given the stored tokens, new ones (raise ReauthorisationRequired when
the grant is revoked or expired)."""


class ReauthorisationRequired(AuthenticationError):
    """The account's grant is revoked or expired: only a person reconnecting it can help."""


class TokenSource:
    """One account's access token for one session, read (decrypted) from `sync.oauth_tokens`.

    `refresh_before`: how long before its expiry a token is refreshed (a minute for Google's
    one-hour tokens; days for Meta's long-lived tokens, which are exchanged before they lapse)."""

    def __init__(self, connect: Callable[[], AbstractContextManager[psycopg.Connection]], cipher: Cipher,
                 provider: str, account: str, refresh: Refresher, *,
                 refresh_before: timedelta = credentials.EXPIRY_SKEW,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.provider, self.account = provider, account
        self._connect, self._cipher, self._refresh = connect, cipher, refresh
        self._refresh_before, self._now = refresh_before, now
        self._current: Tokens | None = None
        self.refreshes = 0

    def access_token(self) -> str:
        """The token to send, refreshed first when it is (nearly) expired."""
        if self._current is None or self._current.expired(self._now(), self._refresh_before):
            self._current = self._load(rejected=None)
        return self._current.access_token

    def after_rejection(self, rejected: str) -> str:
        """The provider refused `rejected`: a new token, refreshed here unless another run already
        replaced it."""
        self._current = self._load(rejected=rejected)
        return self._current.access_token

    def _load(self, rejected: str | None) -> Tokens:
        def refresh(stored: Tokens) -> Tokens:
            self.refreshes += 1
            return self._refresh(stored)

        with self._connect() as conn:
            tokens = credentials.refresh_if_needed(
                conn, self._cipher, self.provider, self.account, refresh, rejected_access_token=rejected,
                now=lambda: self._now() + self._refresh_before - credentials.EXPIRY_SKEW)
        return tokens


def call_with_token(tokens: TokenSource, call: Callable[[str], T]) -> T:
    """`call(token)`; when the provider refuses the token, refresh once and call again. A second
    refusal means the new token is no good either: the grant needs re-authorisation."""
    token = tokens.access_token()
    try:
        return call(token)
    except ReauthorisationRequired:
        raise
    except AuthenticationError:
        fresh = tokens.after_rejection(token)
    try:
        return call(fresh)
    except ReauthorisationRequired:
        raise
    except AuthenticationError as error:
        raise ReauthorisationRequired(tokens.provider, tokens.account,
                                      f"credentials refused even after a token refresh ({error.status})") from None


# ------------------------------------------------------------------ the refresh-token grant
def invalid_grant(error: str, description: str) -> bool:
    """RFC 6749 §5.2's `invalid_grant`: the refresh token is revoked, expired or unknown."""
    return error == "invalid_grant"


@dataclass(frozen=True)
class RefreshGrant:
    """A provider's OAuth 2.0 refresh-token grant (RFC 6749 §6): a form POST of grant_type,
    refresh_token, client_id and client_secret (from the named environment variables, read at
    refresh time) to its token endpoint. `refused(error, description)` says which error answers
    mean the grant is gone (then `ReauthorisationRequired`); `invalid_client`/`unauthorized_client`
    blame the OAuth client, not the account. `refresh_expires_field` names the answer's field giving
    the refresh token's own remaining life in seconds (LinkedIn: `refresh_token_expires_in`)."""

    provider: str
    who: str  # "Google", "LinkedIn": how errors name the provider's token endpoint
    client_id_env: str
    client_secret_env: str
    default_lifetime: timedelta
    refused: Callable[[str, str], bool] = invalid_grant
    refresh_expires_field: str | None = None
    refused_detail: str = "the grant was revoked or has expired; reconnect the account"

    def refresher(self, account: str, token_url: str, http: Callable[[str], HttpClient]) -> Refresher:
        """The `Refresher` for one account; `http(token_url)` builds the client for the endpoint."""

        def refresh(stored: Tokens) -> Tokens:
            if not stored.refresh_token:
                raise ReauthorisationRequired(self.provider, account, "no refresh token stored: reconnect the account")
            client_id = os.environ.get(self.client_id_env, "").strip()
            client_secret = os.environ.get(self.client_secret_env, "").strip()
            if not client_id or not client_secret:
                raise CredentialsError(f"{self.provider} [{account}]: set {self.client_id_env} and"
                                       f" {self.client_secret_env} (the OAuth client the accounts were connected with)")
            return self._post(account, token_url, http, client_id, client_secret, stored.refresh_token)

        return refresh

    def _post(self, account: str, token_url: str, http_for: Callable[[str], HttpClient], client_id: str,
              client_secret: str, refresh_token: str) -> Tokens:
        said: dict[str, str] = {}

        def classify(status: int, headers: Any, body: Any) -> ErrorVerdict:
            error = body.get("error") if isinstance(body, dict) else None
            transient = status == 429 or status >= 500
            if isinstance(error, str):  # RFC 6749 §5.2: {"error", "error_description"}
                said["error"], said["description"] = error, str(body.get("error_description") or "")
                return ErrorVerdict("retry" if transient else "fail", f"token endpoint: {error}")
            return ErrorVerdict("retry" if transient else "fail", f"token endpoint answered HTTP {status}")

        issued = datetime.now(UTC)
        http = http_for(token_url)
        try:
            body = http.call_json("POST", token_url, classify=classify, data={
                "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id,
                "client_secret": client_secret})
        except IntegrationError:
            error = said.get("error", "")
            if error and self.refused(error, said.get("description", "")):
                raise ReauthorisationRequired(self.provider, account, f"{self.who} refused the refresh token ({error}):"
                                              f" {self.refused_detail}") from None
            if error in ("invalid_client", "unauthorized_client"):
                raise AuthenticationError(self.provider, account, f"{self.who} refused the OAuth client ({error})",
                                          hint=f"check {self.client_id_env} and {self.client_secret_env}") from None
            raise
        finally:
            http.close()
        return self.tokens_from_answer(body, account, issued)

    def tokens_from_answer(self, body: Any, account: str, issued: datetime) -> Tokens:
        access_token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(access_token, str) or not access_token:
            raise MalformedResponseError(self.provider, account, "the token endpoint answered without an access token")
        expires_in = body.get("expires_in", self.default_lifetime.total_seconds())  # RFC 6749: recommended
        try:
            lifetime = timedelta(seconds=int(expires_in))
        except (TypeError, ValueError):
            raise MalformedResponseError(self.provider, account,
                                         f"the token endpoint answered expires_in={expires_in!r}") from None
        new_refresh = body.get("refresh_token")
        lapse = body.get(self.refresh_expires_field) if self.refresh_expires_field else None
        refresh_expires_at = (issued + timedelta(seconds=lapse) if isinstance(lapse, int | float)
                              and not isinstance(lapse, bool) and lapse >= 0 else None)
        return Tokens(access_token, new_refresh if isinstance(new_refresh, str) and new_refresh else None,
                      issued + lifetime, refresh_expires_at=refresh_expires_at)
