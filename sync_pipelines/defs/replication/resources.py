"""The source database that replication reads from."""

from __future__ import annotations

import os

import dagster as dg

from sync_pipelines.core.database import normalize_url
from sync_pipelines.defs.replication.schema import ReplicationError

SOURCE_URL_ENV = "SOURCE_DATABASE_URL"


class SourceDatabase(dg.ConfigurableResource):
    """The PostgreSQL database replicated from (read-only use).

    `url` left unset means `SOURCE_DATABASE_URL`, read when a run needs it, so the code location
    loads (and the UI works) without it, and a changed variable takes effect on the next run.
    """

    url: str | None = None

    def resolved_url(self) -> str:
        chosen = self.url or os.environ.get(SOURCE_URL_ENV)
        if not chosen:
            raise ReplicationError(f"no source database: set {SOURCE_URL_ENV} (or the source_db resource's url)")
        return normalize_url(chosen)
