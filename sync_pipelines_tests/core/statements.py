"""Recording the SQL a connection runs, for tests about how much work a path does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql


@contextmanager
def recorded_statements(conn: psycopg.Connection) -> Iterator[list[str]]:
    """The text of every statement and COPY run through `conn` inside the block."""
    statements: list[str] = []

    def text(query) -> str:
        return query.as_string(conn) if isinstance(query, sql.Composable) else str(query)

    class Recording(psycopg.Cursor):
        def execute(self, query, params=None, **kwargs):
            statements.append(text(query))
            return super().execute(query, params, **kwargs)

        def copy(self, statement, params=None, **kwargs):
            statements.append(text(statement))
            return super().copy(statement, params, **kwargs)

    previous = conn.cursor_factory
    conn.cursor_factory = Recording
    try:
        yield statements
    finally:
        conn.cursor_factory = previous
