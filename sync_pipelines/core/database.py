"""The app database: `DATABASE_URL`, or the embedded PostgreSQL; and schema upkeep.

Tables are declared with SQLAlchemy Core (typed columns users query) and created or evolved here,
idempotently and additively: a new column in code becomes `ADD COLUMN IF NOT EXISTS`, nothing is
ever dropped. DDL runs under an advisory lock so concurrent runs cannot race each other.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from sync_pipelines.core.connection import connect
from sync_pipelines.core.embedded import EmbeddedPostgres

APP_DATABASE = "app"
_embedded_url: str | None = None
_ensured: set[tuple] = set()
_ensured_lock = threading.Lock()
_DIALECT = postgresql.dialect()
# Arbitrary constant: every process takes the same advisory lock around DDL.
_DDL_LOCK_ID = 7_202_611


def resolve_database_url(url: str | None = None) -> str:
    """`url`, else `DATABASE_URL`, else the embedded server's app database (started if needed)."""
    chosen = url or os.environ.get("DATABASE_URL")
    if chosen:
        return normalize_url(chosen)
    global _embedded_url
    if _embedded_url is None:
        server = EmbeddedPostgres()
        server.ensure_running()
        _embedded_url = server.ensure_database(APP_DATABASE)
    return _embedded_url


def url_source(url: str | None = None) -> str:
    """Where `resolve_database_url(url)` takes the URL from, for error messages."""
    if url:
        return "the app_db resource's url"
    if os.environ.get("DATABASE_URL"):
        return "DATABASE_URL"
    return "the embedded PostgreSQL"


def connect_app_database(url: str | None = None, **kwargs) -> psycopg.Connection:
    """A connection to the app database (see `resolve_database_url`); a failure raises
    `core.connection.DatabaseConnectionError`, one line saying what to check."""
    return connect(resolve_database_url(url), source=url_source(url), **kwargs)


def normalize_url(url: str) -> str:
    """Accept SQLAlchemy-style URLs (`postgresql+psycopg://`) as well as libpq ones."""
    scheme, sep, rest = url.partition("://")
    if "+" in scheme:
        scheme = scheme.split("+", 1)[0]
    if scheme == "postgres":
        scheme = "postgresql"
    return f"{scheme}{sep}{rest}"


_PASSWORD_PARAM = re.compile(r"(?i)(?<![\w-])(password|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]*)")


def redact_url(url: str) -> str:
    """The connection string with every password removed, for logs and metadata: the URL's
    userinfo, and `password=` / `sslpassword=` in a URL's query or a key=value conninfo."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("?", 1)[0]:
        userinfo, _, host = rest.partition("?")[0].rpartition("@")
        query = rest.partition("?")[2]
        rest = f"{userinfo.split(':', 1)[0]}@{host}" + (f"?{query}" if query else "")
    return scheme + sep + _PASSWORD_PARAM.sub(r"\1=***", rest) if sep else _PASSWORD_PARAM.sub(r"\1=***", url)


@contextmanager
def ddl_transaction(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """A transaction holding the one DDL advisory lock: concurrent runs creating the same index or
    view queue behind each other (`CREATE ... IF NOT EXISTS` alone races in the catalog)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK_ID,))
        yield conn


def ensure_tables(conn: psycopg.Connection, tables: Iterable[sa.Table]) -> None:
    """Create each table (and its schema) if missing and add columns the code gained since."""
    pending = [t for t in tables if _cache_key(conn, t) not in _ensured]
    if not pending:
        return
    with ddl_transaction(conn):
        for table in pending:
            _ensure_table(conn, table)
    with _ensured_lock:
        _ensured.update(_cache_key(conn, t) for t in pending)


def _cache_key(conn: psycopg.Connection, table: sa.Table) -> tuple:
    return (conn.info.dsn, table.fullname, tuple(table.columns.keys()))


def _ensure_table(conn: psycopg.Connection, table: sa.Table) -> None:
    if table.schema:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(table.schema)))
    create = str(CreateTable(table, if_not_exists=True).compile(dialect=_DIALECT))
    conn.execute(create)
    existing = {
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s",
            (table.schema or "public", table.name),
        )
    }
    for column in table.columns:
        if column.name in existing:
            continue
        column_type = column.type.compile(dialect=_DIALECT)
        default = ""
        if column.server_default is not None:
            default = f" DEFAULT {column.server_default.arg.text}"
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} ").format(
                qualified(table), sql.Identifier(column.name)
            )
            + sql.SQL(column_type + default)  # type text comes from SQLAlchemy, not user input
        )
    for index in table.indexes:
        conn.execute(str(sa.schema.CreateIndex(index, if_not_exists=True).compile(dialect=_DIALECT)))


def qualified(table: sa.Table) -> sql.Composed:
    if table.schema:
        return sql.SQL("{}.{}").format(sql.Identifier(table.schema), sql.Identifier(table.name))
    return sql.SQL("{}").format(sql.Identifier(table.name))
