"""Replication fixtures: two real databases on the session server (a fresh source per test, the
session's app database as destination) and a per-test destination schema, so tests never meet."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest
from psycopg import sql

from sync_pipelines.defs.replication.config import TableSpec
from sync_pipelines.defs.replication.replicate import ReplicationReport, replicate


@pytest.fixture
def source_url(postgres_server, unique):
    return postgres_server.ensure_database(f"src_{unique}")


@pytest.fixture
def src(source_url):
    with psycopg.connect(source_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def dest(database_url):
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def schema(unique):
    """The destination schema of this test."""
    return f"replica_{unique}"


@pytest.fixture
def table_spec(schema):
    def make(source: str, **options) -> TableSpec:
        source_schema, source_table = source.split(".")
        spec = TableSpec(name=source_table, source_schema=source_schema, source_table=source_table,
                         destination_schema=schema, destination_table=source_table)
        return replace(spec, **options)

    return make


@pytest.fixture
def run(source_url, database_url):
    """Replicate one table on a fresh destination connection, as an asset run would."""

    def go(spec: TableSpec, **options) -> ReplicationReport:
        with psycopg.connect(database_url, autocommit=True) as connection:
            return replicate(spec, source_url, connection, **options)

    return go


def _table(name: str) -> sql.Composed:
    schema, table = name.split(".")
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def _keys(key: str) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(k.strip()) for k in key.split(","))


def rows(conn: psycopg.Connection, table: str, key: str) -> list[tuple]:
    """Every row as Python values, and as PostgreSQL's own text rendering (exact round-trip)."""
    query = sql.SQL("SELECT t.*, t::text FROM {} AS t ORDER BY {}").format(_table(table), _keys(key))
    return conn.execute(query).fetchall()


def xmins(conn: psycopg.Connection, table: str, key: str) -> dict:
    """Row version per key: unchanged when the row was not rewritten."""
    query = sql.SQL("SELECT ({}), xmin::text FROM {}").format(_keys(key), _table(table))
    return dict(conn.execute(query).fetchall())


def count(conn: psycopg.Connection, table: str) -> int:
    return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_table(table))).fetchone()[0]
