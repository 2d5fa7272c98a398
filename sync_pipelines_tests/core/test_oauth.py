"""`TokenSource` / `call_with_token`: expired tokens refreshed before use, a refused token refreshed
once and the call repeated, a second refusal or a revoked grant is re-authorisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from cryptography.fernet import Fernet

from sync_pipelines.core import credentials
from sync_pipelines.core.credentials import Cipher, Tokens
from sync_pipelines.core.http import AuthenticationError
from sync_pipelines.core.oauth import ReauthorisationRequired, TokenSource, call_with_token

NOW = datetime.now(UTC)


@pytest.fixture
def cipher():
    return Cipher([Fernet.generate_key().decode()])


def source(database_url, cipher, account, refresh, **kw) -> TokenSource:
    return TokenSource(lambda: psycopg.connect(database_url, autocommit=True), cipher, "ads", account, refresh, **kw)


def counter_refresh(log):
    def refresh(stored: Tokens) -> Tokens:
        log.append(stored.refresh_token)
        return Tokens(f"access-{len(log)}", None, NOW + timedelta(hours=1))
    return refresh


def test_an_expired_token_is_refreshed_before_use_and_the_refresh_token_kept(conn, database_url, cipher, unique):
    credentials.store(conn, cipher, "ads", unique, Tokens("old", "refresh-1", NOW - timedelta(minutes=1)))
    log = []
    tokens = source(database_url, cipher, unique, counter_refresh(log))
    assert tokens.access_token() == "access-1" and tokens.access_token() == "access-1"
    assert log == ["refresh-1"]
    assert credentials.load(conn, cipher, "ads", unique).refresh_token == "refresh-1"


def test_a_token_near_expiry_is_refreshed_within_the_refresh_window(conn, database_url, cipher, unique):
    credentials.store(conn, cipher, "ads", unique, Tokens("long-lived", None, NOW + timedelta(days=3)))
    log = []
    assert source(database_url, cipher, unique, counter_refresh(log)).access_token() == "long-lived"
    early = source(database_url, cipher, unique, counter_refresh(log), refresh_before=timedelta(days=7))
    assert early.access_token() == "access-1"


def test_a_refused_token_is_refreshed_once_and_the_call_repeated(conn, database_url, cipher, unique):
    credentials.store(conn, cipher, "ads", unique, Tokens("stale", "r", NOW + timedelta(hours=1)))
    log, sent = [], []
    tokens = source(database_url, cipher, unique, counter_refresh(log))

    def call(token):
        sent.append(token)
        if token == "stale":
            raise AuthenticationError("ads", unique, "401")
        return "ok"

    assert call_with_token(tokens, call) == "ok"
    assert sent == ["stale", "access-1"] and log == ["r"]


def test_a_second_refusal_or_a_revoked_grant_needs_reauthorisation(conn, database_url, cipher, unique):
    credentials.store(conn, cipher, "ads", unique, Tokens("stale", "r", NOW + timedelta(hours=1)))
    tokens = source(database_url, cipher, unique, counter_refresh([]))

    def always_refused(token):
        raise AuthenticationError("ads", unique, "401")

    with pytest.raises(ReauthorisationRequired, match=unique):
        call_with_token(tokens, always_refused)

    def revoked(stored):
        raise ReauthorisationRequired("ads", unique, "invalid_grant")

    credentials.store(conn, cipher, "ads", unique, Tokens("stale", "r", NOW - timedelta(hours=1)))
    with pytest.raises(ReauthorisationRequired, match="invalid_grant"):
        call_with_token(source(database_url, cipher, unique, revoked), lambda token: "never")
    assert credentials.load(conn, cipher, "ads", unique).access_token == "stale"  # nothing stored
