"""OAuth tokens of connected accounts, encrypted at rest, refreshed once however many runs ask.

The ad platforms hand out short-lived access tokens and long-lived refresh tokens per connected
account. They live in `sync.oauth_tokens`, encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from
the `cryptography` package, not home-made) under the keys in `SYNC_CREDENTIALS_KEYS`
(comma-separated, newest first): the first key encrypts, every key decrypts, so a key is rotated
by prepending a new one, running `rotate` (re-encrypts every row) and then dropping the old one.

`refresh_if_needed` serialises refreshes of one account on its row lock: a run that finds the
token expired (or just got a 401 with it) takes the lock, reads the row again and refreshes only if
nobody did meanwhile, so two runs never spend the same refresh token (providers may revoke a
refresh token used twice). A refresh that returns no new refresh token keeps the old one.

Secrets never leave this module in readable form by accident: `Tokens` hides them from `repr`,
and errors name the account, never a token. Free of Dagster.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import psycopg
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from sync_pipelines.core.database import ensure_tables

KEYS_ENV = "SYNC_CREDENTIALS_KEYS"
EXPIRY_SKEW = timedelta(seconds=60)  # refresh a little before the provider would refuse the token

metadata = sa.MetaData()

OAUTH_TOKENS = sa.Table(
    "oauth_tokens",
    metadata,
    sa.Column("provider", sa.Text, primary_key=True),
    sa.Column("account", sa.Text, primary_key=True),
    sa.Column("access_token", sa.LargeBinary, nullable=False, comment="Fernet ciphertext"),
    sa.Column("refresh_token", sa.LargeBinary, nullable=True, comment="Fernet ciphertext"),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("refresh_expires_at", sa.DateTime(timezone=True), nullable=True,
              comment="when the refresh token itself lapses (providers whose refresh tokens do not slide)"),
    sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    schema="sync",
)


class CredentialsError(Exception):
    """Keys missing or wrong, or no tokens for an account; the message never holds a secret."""


@dataclass(frozen=True)
class Tokens:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None
    """When the refresh token lapses (LinkedIn's: a year from issue, not extended by use): past it
    only a person re-authorising helps, so it is warned about ahead (`expiring_refresh_tokens`)."""

    def expired(self, now: datetime | None = None, skew: timedelta = EXPIRY_SKEW) -> bool:
        if self.expires_at is None:
            return False
        return (now or datetime.now(UTC)) >= self.expires_at - skew


class Cipher:
    """Fernet with rotation: the first key encrypts, any key decrypts."""

    def __init__(self, keys: list[str]):
        if not keys:
            raise CredentialsError(f"no encryption key: set {KEYS_ENV} (comma-separated Fernet keys, newest"
                                   " first; make one with `python -c 'from cryptography.fernet import Fernet;"
                                   " print(Fernet.generate_key().decode())'`)")
        try:
            self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys])
        except (ValueError, UnicodeEncodeError):
            raise CredentialsError(f"{KEYS_ENV} holds a value that is not a Fernet key (32 url-safe"
                                   " base64-encoded bytes)") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Cipher:
        return cls([key.strip() for key in environ.get(KEYS_ENV, "").split(",") if key.strip()])

    def encrypt(self, text: str) -> bytes:
        return self._fernet.encrypt(text.encode("utf-8"))

    def decrypt(self, token: bytes, what: str) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode("utf-8")
        except InvalidToken:
            raise CredentialsError(f"{what}: stored token cannot be decrypted with the keys in {KEYS_ENV}"
                                   " (a key removed before `rotate`?)") from None

    def rotate(self, token: bytes) -> bytes:
        return self._fernet.rotate(bytes(token))


def store(conn: psycopg.Connection, cipher: Cipher, provider: str, account: str, tokens: Tokens) -> None:
    """Save (insert or replace) an account's tokens, encrypted."""
    ensure_tables(conn, [OAUTH_TOKENS])
    refresh = cipher.encrypt(tokens.refresh_token) if tokens.refresh_token is not None else None
    conn.execute(
        "INSERT INTO sync.oauth_tokens (provider, account, access_token, refresh_token, expires_at, refresh_expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (provider, account) DO UPDATE SET"
        " access_token = EXCLUDED.access_token, refresh_token = EXCLUDED.refresh_token,"
        " expires_at = EXCLUDED.expires_at, refresh_expires_at = EXCLUDED.refresh_expires_at, updated_at = now()",
        (provider, account, cipher.encrypt(tokens.access_token), refresh, tokens.expires_at,
         tokens.refresh_expires_at),
    )


def load(conn: psycopg.Connection, cipher: Cipher, provider: str, account: str, *, lock: bool = False) -> Tokens:
    """An account's tokens, decrypted; `lock=True` (in a transaction) holds its row until commit."""
    ensure_tables(conn, [OAUTH_TOKENS])
    row = conn.execute(
        "SELECT access_token, refresh_token, expires_at, refresh_expires_at FROM sync.oauth_tokens"
        " WHERE provider = %s AND account = %s"
        + (" FOR UPDATE" if lock else ""), (provider, account)).fetchone()
    if row is None:
        raise CredentialsError(f"{provider} [{account}]: no tokens stored; connect the account first")
    what = f"{provider} [{account}]"
    return Tokens(access_token=cipher.decrypt(row[0], what),
                  refresh_token=cipher.decrypt(row[1], what) if row[1] is not None else None,
                  expires_at=row[2], refresh_expires_at=row[3])


def refresh_if_needed(conn: psycopg.Connection, cipher: Cipher, provider: str, account: str,
                      refresh: Callable[[Tokens], Tokens], *, rejected_access_token: str | None = None,
                      now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Tokens:
    """The account's current tokens, refreshed first if they are expired or if the provider just
    refused `rejected_access_token` (a 401) and nobody has replaced it since. `refresh` gets the
    stored tokens and returns new ones (its errors, e.g. a revoked grant, propagate and nothing is
    stored). Runs that call this at once for one account refresh once: the row lock orders them."""
    with conn.transaction():
        current = load(conn, cipher, provider, account, lock=True)
        stale = current.expired(now()) or (rejected_access_token is not None
                                          and rejected_access_token == current.access_token)
        if not stale:
            return current
        fresh = refresh(current)
        if fresh.refresh_token is None:  # most providers send a new refresh token only sometimes
            fresh = replace(fresh, refresh_token=current.refresh_token,
                            refresh_expires_at=fresh.refresh_expires_at or current.refresh_expires_at)
        store(conn, cipher, provider, account, fresh)
        conn.execute("UPDATE sync.oauth_tokens SET refreshed_at = now() WHERE provider = %s AND account = %s",
                     (provider, account))
        return fresh


def rotate(conn: psycopg.Connection, cipher: Cipher, provider: str | None = None) -> int:
    """Re-encrypt every stored token (of `provider`, if given) under the first key, all or nothing;
    returns the rows rewritten. Afterwards the older keys can be removed from `SYNC_CREDENTIALS_KEYS`.
    A row no key decrypts stops it, naming the account."""
    ensure_tables(conn, [OAUTH_TOKENS])
    count = 0
    with conn.transaction():
        rows = conn.execute("SELECT provider, account, access_token, refresh_token FROM sync.oauth_tokens"
                            " WHERE %(provider)s::text IS NULL OR provider = %(provider)s FOR UPDATE",
                            {"provider": provider}).fetchall()
        for provider, account, access, refresh_token in rows:
            try:
                new_access = cipher.rotate(access)
                new_refresh = cipher.rotate(refresh_token) if refresh_token is not None else None
            except InvalidToken:
                raise CredentialsError(f"{provider} [{account}]: stored token cannot be decrypted with the"
                                       f" keys in {KEYS_ENV}") from None
            conn.execute("UPDATE sync.oauth_tokens SET access_token = %s, refresh_token = %s, updated_at = now()"
                         " WHERE provider = %s AND account = %s", (new_access, new_refresh, provider, account))
            count += 1
    return count


@dataclass(frozen=True)
class ExpiringGrant:
    provider: str
    account: str
    refresh_expires_at: datetime


def expiring_refresh_tokens(conn: psycopg.Connection, within: timedelta,
                            now: datetime | None = None) -> list[ExpiringGrant]:
    """Accounts whose refresh token lapses within `within` (or already has): they must be
    re-authorised before then, whatever their syncs do (using the token does not extend it)."""
    ensure_tables(conn, [OAUTH_TOKENS])
    rows = conn.execute("SELECT provider, account, refresh_expires_at FROM sync.oauth_tokens"
                        " WHERE refresh_expires_at < %s ORDER BY refresh_expires_at",
                        ((now or datetime.now(UTC)) + within,)).fetchall()
    return [ExpiringGrant(*row) for row in rows]


def reauthorisation_warning_window(environ: Mapping[str, str] = os.environ) -> timedelta:
    """How long before a refresh token lapses it is warned about: `SYNC_REAUTH_WARNING_DAYS` (14)."""
    return timedelta(days=int(environ.get("SYNC_REAUTH_WARNING_DAYS") or 14))
