"""Per (stream, account) high-water marks, stored beside the data they cover.

`save` takes the caller's connection and must be called inside the same transaction as the rows
the new value covers: either both commit or neither does, so a crash can never leave a cursor
ahead of the data.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
import sqlalchemy as sa

from sync_pipelines.core.entities import parse_instant

metadata = sa.MetaData()

CURSORS = sa.Table(
    "cursors",
    metadata,
    sa.Column("stream", sa.Text, primary_key=True, comment="asset key, <provider>/<stream>"),
    sa.Column("account", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False, comment="ISO-8601 instant"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    schema="sync",
)


def _stored(conn: psycopg.Connection, stream: str, account: str) -> str | None:
    row = conn.execute(
        "SELECT value FROM sync.cursors WHERE stream = %s AND account = %s", (stream, account)
    ).fetchone()
    return row[0] if row else None


def load(conn: psycopg.Connection, stream: str, account: str) -> datetime | None:
    value = _stored(conn, stream, account)
    return parse_instant(value) if value is not None else None


def save(conn: psycopg.Connection, stream: str, account: str, value: datetime) -> None:
    """Advance the cursor (never backwards); call inside the transaction that wrote the rows."""
    conn.execute(
        "INSERT INTO sync.cursors AS c (stream, account, value) VALUES (%s, %s, %s)"
        " ON CONFLICT (stream, account) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
        " WHERE EXCLUDED.value::timestamptz > c.value::timestamptz",
        (stream, account, value.isoformat()),
    )


def reset(conn: psycopg.Connection, stream: str, account: str) -> None:
    """Forget the cursor so the next run re-reads everything (a full resync)."""
    conn.execute("DELETE FROM sync.cursors WHERE stream = %s AND account = %s", (stream, account))


def load_id(conn: psycopg.Connection, stream: str, account: str) -> int | None:
    """An id high-water mark (streams read newest first by a growing id), or None."""
    value = _stored(conn, stream, account)
    return int(value) if value is not None else None


def save_id(conn: psycopg.Connection, stream: str, account: str, value: int) -> None:
    """Advance an id mark (never backwards); call inside the transaction that wrote the rows."""
    conn.execute(
        "INSERT INTO sync.cursors AS c (stream, account, value) VALUES (%s, %s, %s)"
        " ON CONFLICT (stream, account) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"
        " WHERE EXCLUDED.value::numeric > c.value::numeric",
        (stream, account, str(int(value))),
    )
