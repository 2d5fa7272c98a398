"""OAuth tokens at rest: encrypted, rotatable keys, one refresh however many runs ask, no secret in
a repr or an error."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from cryptography.fernet import Fernet

from sync_pipelines.core import credentials
from sync_pipelines.core.credentials import Cipher, CredentialsError, Tokens

PAST = datetime(2026, 1, 1, tzinfo=UTC)
FUTURE = datetime.now(UTC) + timedelta(hours=1)


@pytest.fixture
def cipher():
    return Cipher([Fernet.generate_key().decode()])


def test_tokens_are_stored_encrypted_and_read_back(conn, unique, cipher):
    tokens = Tokens("access-secret-" + unique, "refresh-secret-" + unique, FUTURE)
    credentials.store(conn, cipher, "ads", unique, tokens)

    raw = conn.execute("SELECT access_token, refresh_token FROM sync.oauth_tokens WHERE account = %s",
                       (unique,)).fetchone()
    assert all(b"secret" not in bytes(value) for value in raw)
    assert credentials.load(conn, cipher, "ads", unique) == tokens
    assert "secret" not in repr(tokens)


def test_a_new_key_is_prepended_then_rotate_lets_the_old_one_go(conn, unique):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    provider = f"ads-{unique}"
    credentials.store(conn, Cipher([old]), provider, "acct", Tokens("a", "r", FUTURE))
    both = Cipher([new, old])
    assert credentials.load(conn, both, provider, "acct").access_token == "a"  # old rows still readable
    assert credentials.rotate(conn, both, provider) == 1
    assert credentials.load(conn, Cipher([new]), provider, "acct") == Tokens("a", "r", FUTURE)
    with pytest.raises(CredentialsError, match="cannot be decrypted") as refused:
        credentials.load(conn, Cipher([old]), provider, "acct")
    assert provider in str(refused.value)
    # A row no key opens stops the rotation, names its account and rewrites nothing.
    credentials.store(conn, Cipher([Fernet.generate_key().decode()]), provider, "other", Tokens("b", None, FUTURE))
    with pytest.raises(CredentialsError, match=r"\[other\]"):
        credentials.rotate(conn, Cipher([Fernet.generate_key().decode(), new]), provider)
    assert credentials.load(conn, Cipher([new]), provider, "acct").access_token == "a"


def test_missing_or_malformed_keys_are_a_clear_error():
    with pytest.raises(CredentialsError, match="SYNC_CREDENTIALS_KEYS"):
        Cipher.from_env({})
    with pytest.raises(CredentialsError, match="not a Fernet key"):
        Cipher.from_env({"SYNC_CREDENTIALS_KEYS": "not-a-key"})


def test_an_expired_token_is_refreshed_once_by_concurrent_runs(database_url, conn, unique, cipher):
    credentials.store(conn, cipher, "ads", unique, Tokens("old-access", "refresh-1", PAST))
    calls, start = [], threading.Barrier(4)

    def refresh(current: Tokens) -> Tokens:
        calls.append(current.refresh_token)
        time.sleep(0.3)  # the others arrive meanwhile and wait on the row lock
        return Tokens("new-access", None, FUTURE)  # no new refresh token: the old one is kept

    seen = []

    def run():
        with psycopg.connect(database_url, autocommit=True) as own:
            start.wait()
            seen.append(credentials.refresh_if_needed(own, cipher, "ads", unique, refresh).access_token)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert calls == ["refresh-1"] and seen == ["new-access"] * 4
    assert credentials.load(conn, cipher, "ads", unique) == Tokens("new-access", "refresh-1", FUTURE)


def test_a_401_refreshes_only_the_token_that_was_refused(conn, unique, cipher):
    credentials.store(conn, cipher, "ads", unique, Tokens("current", "r1", FUTURE))
    issued = iter([Tokens("second", "r2", FUTURE)])
    fresh = credentials.refresh_if_needed(conn, cipher, "ads", unique, lambda _: next(issued),
                                          rejected_access_token="current")
    assert fresh == Tokens("second", "r2", FUTURE)  # a new refresh token is stored
    # Another run got its 401 with the token already replaced: nothing is refreshed again.
    again = credentials.refresh_if_needed(conn, cipher, "ads", unique, lambda _: pytest.fail("refreshed twice"),
                                          rejected_access_token="current")
    assert again.access_token == "second"


def test_a_refused_refresh_stores_nothing(conn, unique, cipher):
    credentials.store(conn, cipher, "ads", unique, Tokens("old", "revoked", PAST))

    def revoked(_: Tokens) -> Tokens:
        raise PermissionError("invalid_grant")

    with pytest.raises(PermissionError):
        credentials.refresh_if_needed(conn, cipher, "ads", unique, revoked)
    assert credentials.load(conn, cipher, "ads", unique) == Tokens("old", "revoked", PAST)


def test_no_tokens_names_the_account(conn, unique, cipher):
    with pytest.raises(CredentialsError, match=f"ads \\[{unique}\\]: no tokens stored"):
        credentials.load(conn, cipher, "ads", unique)


def test_a_refresh_token_that_lapses_is_kept_with_its_expiry_and_listed_ahead(conn, unique, cipher):
    """Refresh tokens that do not slide (LinkedIn: a year from issue): a refresh without a new one
    keeps the old lapse date; accounts within the warning window are listed."""
    provider = f"ads-{unique}"
    lapses = datetime.now(UTC) + timedelta(days=10)
    credentials.store(conn, cipher, provider, "a", Tokens("old", "r", PAST, refresh_expires_at=lapses))
    credentials.store(conn, cipher, provider, "b", Tokens("x", "r", FUTURE, refresh_expires_at=lapses + timedelta(days=90)))
    fresh = credentials.refresh_if_needed(conn, cipher, provider, "a", lambda t: Tokens("new", None, FUTURE))
    assert fresh.refresh_token == "r" and fresh.refresh_expires_at == lapses
    assert credentials.load(conn, cipher, provider, "a").refresh_expires_at == lapses
    soon = [g for g in credentials.expiring_refresh_tokens(conn, timedelta(days=14)) if g.provider == provider]
    # Not left for the alert sensor of other tests (they share the database) to warn about.
    conn.execute("DELETE FROM sync.oauth_tokens WHERE provider = %s", (provider,))
    assert [(g.account, g.refresh_expires_at) for g in soon] == [("a", lapses)]
