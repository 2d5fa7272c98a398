"""Connected accounts: who we sync, with which credentials reference and preferences.

Free of Dagster so the webhook receiver can check accounts too; the sensor that keeps dynamic
partitions in step with this table is in `dg/partitions.py`. An account row holds a *reference*
to its credentials (the name of an environment variable), never the secret itself, plus the
automation preferences a data engineer tunes per account: enabled, cadence, lookback days.

Writers take the provider as its `ProviderDeclaration` (or its bare name): given the
declaration, the account id is stored as the provider's rule says (e.g. a Shopify shop domain
lowercase, as its webhooks name it), so core knows no provider by name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
import sqlalchemy as sa
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from sqlalchemy.dialects.postgresql import JSONB

from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.providers import ProviderDeclaration

metadata = sa.MetaData()

CADENCES = ("15min", "30min", "hourly", "6hourly", "daily")
OK, NEEDS_REAUTH = "ok", "needs_reauth"

INTEGRATIONS = sa.Table(
    "integrations",
    metadata,
    sa.Column("provider", sa.Text, primary_key=True),
    sa.Column("account", sa.Text, primary_key=True, comment="partition key, e.g. a store id"),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("credentials_env", sa.Text, nullable=False, comment="env var holding the secret"),
    sa.Column("sync_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("cadence", sa.Text, nullable=False, server_default="30min"),
    sa.Column("lookback_days", sa.Integer, nullable=False, server_default="1"),
    sa.Column("owner", sa.Text, comment="the user who connected it (the seeds' userId), if any"),
    sa.Column("timezone", sa.Text, comment="the account's own IANA time zone, as its provider reports it"),
    sa.Column("settings", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb"),
              comment="non-secret provider settings, e.g. a manager account to log in through"),
    sa.Column("auth_status", sa.Text, nullable=False, server_default="ok",
              comment="'ok', or 'needs_reauth' once its grant was revoked or expired"),
    sa.Column("auth_error", sa.Text, comment="why it needs re-authorisation (never a secret)"),
    sa.Column("auth_error_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    schema="sync",
)


class MissingCredentialsError(RuntimeError):
    """The env var an account names for its secret is not set in this process."""


@dataclass(frozen=True)
class Account:
    provider: str
    account: str
    display_name: str
    active: bool
    credentials_env: str
    sync_enabled: bool
    cadence: str
    lookback_days: int
    owner: str | None = None
    timezone: str | None = None
    settings: dict = field(default_factory=dict)
    auth_status: str = OK
    auth_error: str | None = None
    auth_error_at: datetime | None = None

    @property
    def needs_reauth(self) -> bool:
        return self.auth_status == NEEDS_REAUTH

    def secret(self) -> str:
        """The credential, read from the environment at the moment it is needed."""
        value = os.environ.get(self.credentials_env)
        if not value:
            raise MissingCredentialsError(
                f"{self.provider} account '{self.account}': environment variable "
                f"{self.credentials_env} (its credentials) is not set"
            )
        return value


_FIELDS = ("provider, account, display_name, active, credentials_env, sync_enabled, cadence, lookback_days, owner,"
           " timezone, settings, auth_status, auth_error, auth_error_at")


def normalise_account(provider: str | ProviderDeclaration, account: str) -> tuple[str, str]:
    """(provider name, account as stored): the declaration's rule applied, a bare name's id kept as typed."""
    if isinstance(provider, ProviderDeclaration):
        return provider.name, provider.normalise_account(account)
    return provider, account


def upsert_account(
    conn: psycopg.Connection,
    provider: str | ProviderDeclaration,
    account: str,
    *,
    credentials_env: str,
    display_name: str | None = None,
    active: bool = True,
    sync_enabled: bool = True,
    cadence: str = "30min",
    lookback_days: int = 1,
    owner: str | None = None,
    settings: dict | None = None,
) -> Account:
    """Register or update an account. (Re)connecting clears a "needs re-authorisation" mark."""
    check_preferences(cadence, lookback_days)
    display_name = display_name or account
    provider, account = normalise_account(provider, account)
    ensure_tables(conn, [INTEGRATIONS])
    with conn.transaction():
        conn.execute(
            "INSERT INTO sync.integrations (provider, account, display_name, active, credentials_env, sync_enabled,"
            " cadence, lookback_days, owner, settings) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (provider, account) DO UPDATE SET display_name = EXCLUDED.display_name,"
            " active = EXCLUDED.active, credentials_env = EXCLUDED.credentials_env,"
            " sync_enabled = EXCLUDED.sync_enabled, cadence = EXCLUDED.cadence,"
            " lookback_days = EXCLUDED.lookback_days, owner = COALESCE(EXCLUDED.owner, sync.integrations.owner),"
            " settings = sync.integrations.settings || EXCLUDED.settings, auth_status = 'ok', auth_error = NULL,"
            " auth_error_at = NULL, updated_at = now()",
            (provider, account, display_name, active, credentials_env, sync_enabled,
             cadence, lookback_days, owner, Jsonb(settings or {})),
        )
    found = get_account(conn, provider, account)
    assert found is not None
    return found


def check_preferences(cadence: str | None, lookback_days: int | None) -> None:
    if cadence is not None and cadence not in CADENCES:
        raise ValueError(f"cadence must be one of {', '.join(CADENCES)}, not {cadence!r}")
    if lookback_days is not None and not 0 <= lookback_days <= 3650:
        raise ValueError(f"lookback days must be between 0 and 3650, not {lookback_days}")


def set_preferences(conn: psycopg.Connection, provider: str | ProviderDeclaration, account: str, *,
                    sync_enabled: bool | None = None, cadence: str | None = None,
                    lookback_days: int | None = None) -> Account | None:
    """Change an account's automation preferences (what is None stays); None if no such account."""
    check_preferences(cadence, lookback_days)
    provider, account = normalise_account(provider, account)
    ensure_tables(conn, [INTEGRATIONS])
    with conn.transaction():
        conn.execute(
            "UPDATE sync.integrations SET sync_enabled = COALESCE(%s, sync_enabled), cadence = COALESCE(%s, cadence),"
            " lookback_days = COALESCE(%s, lookback_days), updated_at = now() WHERE provider = %s AND account = %s",
            (sync_enabled, cadence, lookback_days, provider, account))
    return get_account(conn, provider, account)


def mark_needs_reauth(conn: psycopg.Connection, provider: str, account: str, reason: str) -> bool:
    """Its grant is gone: automatic syncs skip it until it is connected again. True when newly marked."""
    ensure_tables(conn, [INTEGRATIONS])
    with conn.transaction():
        return conn.execute(
            "UPDATE sync.integrations SET auth_status = %s, auth_error = %s, auth_error_at = now(), updated_at = now()"
            " WHERE provider = %s AND account = %s AND auth_status <> %s",
            (NEEDS_REAUTH, reason[:500], provider, account, NEEDS_REAUTH)).rowcount == 1


def set_timezone(conn: psycopg.Connection, provider: str, account: str, timezone: str) -> None:
    ensure_tables(conn, [INTEGRATIONS])
    with conn.transaction():
        conn.execute("UPDATE sync.integrations SET timezone = %s WHERE provider = %s AND account = %s"
                     " AND timezone IS DISTINCT FROM %s", (timezone, provider, account, timezone))


def set_active(conn: psycopg.Connection, provider: str | ProviderDeclaration, account: str, active: bool) -> bool:
    provider, account = normalise_account(provider, account)
    ensure_tables(conn, [INTEGRATIONS])
    with conn.transaction():
        changed = conn.execute(
            "UPDATE sync.integrations SET active = %s, updated_at = now()"
            " WHERE provider = %s AND account = %s",
            (active, provider, account),
        ).rowcount
    return changed == 1


def get_account(conn: psycopg.Connection, provider: str, account: str) -> Account | None:
    ensure_tables(conn, [INTEGRATIONS])
    with conn.cursor(row_factory=class_row(Account)) as cur:
        return cur.execute(
            f"SELECT {_FIELDS} FROM sync.integrations WHERE provider = %s AND account = %s",
            (provider, account),
        ).fetchone()


def list_accounts(conn: psycopg.Connection, provider: str | None = None, *, active_only: bool = False,
                  owner: str | None = None) -> list[Account]:
    ensure_tables(conn, [INTEGRATIONS])
    where, params = [], []
    if provider:
        where.append("provider = %s")
        params.append(provider)
    if owner is not None:
        where.append("owner = %s")
        params.append(owner)
    if active_only:
        where.append("active")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    with conn.cursor(row_factory=class_row(Account)) as cur:
        return cur.execute(
            f"SELECT {_FIELDS} FROM sync.integrations{clause} ORDER BY provider, account", params
        ).fetchall()
