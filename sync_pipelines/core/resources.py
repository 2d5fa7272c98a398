"""Dagster resources shared by every provider."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg

from sync_pipelines.core.database import resolve_database_url


class AppDatabase(dg.ConfigurableResource):
    """Connections to the app database that every sync writes to.

    `url` left unset means `DATABASE_URL`, and with that unset too, the embedded PostgreSQL.
    """

    url: str | None = None

    def resolved_url(self) -> str:
        return resolve_database_url(self.url)

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        """An autocommit connection: every write happens inside an explicit `transaction()`."""
        with psycopg.connect(self.resolved_url(), autocommit=True) as conn:
            yield conn
