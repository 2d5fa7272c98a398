"""Per-account outcomes of runs that handle many accounts.

A run that syncs a batch of accounts (the ad platforms' nightly and automation runs) succeeds or
fails as a whole in Dagster's run storage, but each account's result is its own: it appends one
row per account here, which the failure-alert sensor folds into that account's streak exactly as
it folds a one-account run, and `status` reads. `needs_reauth` marks a failure only a person can
fix (a revoked grant): alerted at once, whatever the threshold. Free of Dagster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
import sqlalchemy as sa
from psycopg.rows import class_row

from sync_pipelines.core.database import ensure_tables

metadata = sa.MetaData()

ACCOUNT_OUTCOMES = sa.Table(
    "account_outcomes", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("job", sa.Text, nullable=False),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("account", sa.Text, nullable=False),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("needs_reauth", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("error", sa.Text, comment="why it failed (never a secret)"),
    sa.Column("first_day", sa.Date),
    sa.Column("last_day", sa.Date),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    sa.Index("account_outcomes_account", "provider", "account", "id"),
    schema="sync",
)

# Runs tagged so report each account's outcome here; the alert sensor does not also count the run.
PER_ACCOUNT_TAG = "sync/per_account_outcomes"


@dataclass
class Outcome:
    job: str
    provider: str
    account: str
    run_id: str
    ok: bool
    needs_reauth: bool = False
    error: str | None = None
    first_day: object = None
    last_day: object = None
    id: int | None = None
    recorded_at: datetime | None = None


def record(conn: psycopg.Connection, outcomes: Sequence[Outcome]) -> None:
    if not outcomes:
        return
    ensure_tables(conn, [ACCOUNT_OUTCOMES])
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO sync.account_outcomes (job, provider, account, run_id, ok, needs_reauth, error, first_day,"
            " last_day) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(o.job, o.provider, o.account, o.run_id, o.ok, o.needs_reauth, (o.error or "")[:2000] or None,
              o.first_day, o.last_day) for o in outcomes])


def read_after(conn: psycopg.Connection, after_id: int, limit: int = 5000) -> list[Outcome]:
    """Outcomes with id > `after_id`, oldest first."""
    ensure_tables(conn, [ACCOUNT_OUTCOMES])
    with conn.cursor(row_factory=class_row(Outcome)) as cur:
        return cur.execute(
            "SELECT id, job, provider, account, run_id, ok, needs_reauth, error, first_day, last_day, recorded_at"
            " FROM sync.account_outcomes WHERE id > %s ORDER BY id LIMIT %s", (after_id, limit)).fetchall()


def latest(conn: psycopg.Connection, provider: str | None = None) -> list[Outcome]:
    """Each account's latest outcome (of `provider`, if given)."""
    ensure_tables(conn, [ACCOUNT_OUTCOMES])
    with conn.cursor(row_factory=class_row(Outcome)) as cur:
        return cur.execute(
            "SELECT DISTINCT ON (provider, account) id, job, provider, account, run_id, ok, needs_reauth, error,"
            " first_day, last_day, recorded_at FROM sync.account_outcomes"
            " WHERE %(provider)s::text IS NULL OR provider = %(provider)s ORDER BY provider, account, id DESC",
            {"provider": provider}).fetchall()


def newest_id(conn: psycopg.Connection) -> int:
    ensure_tables(conn, [ACCOUNT_OUTCOMES])
    return conn.execute("SELECT coalesce(max(id), 0) FROM sync.account_outcomes").fetchone()[0]
