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

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import psycopg

from sync_pipelines.core import credentials
from sync_pipelines.core.credentials import Cipher, Tokens
from sync_pipelines.core.http import AuthenticationError

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
