"""The one report every sync writes, whatever the stream kind, and the metadata names it uses.

`core/dg/metadata.py` turns a report into materialization metadata; the status report and the
alerts read these names back without knowing which provider wrote them. A stream kind with more to
say (replication's path, read scope, …) adds entries through `details()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sync_pipelines.core.entities import ColumnInfo
from sync_pipelines.core.writer import WriteCounts

FETCHED = "records_fetched"
INSERTED = "records_inserted"
UPDATED = "records_updated"
UNCHANGED = "records_unchanged"
DELETED = "records_deleted"
WRITTEN = (INSERTED, UPDATED)  # what "records written" sums, in `status` and the alerts
SET_ASIDE = "deliveries_set_aside"  # real-time runs: deliveries that could not be applied (in `status` too)


@dataclass
class SyncReport:
    table: str  # schema.table written
    account: str | None = None  # None for streams without accounts (replication)
    fetched: int = 0  # records (rows) read from the provider or source
    skipped_older: int = 0  # ordered streams only: before (cursor − overlap), never written
    skipped_same_version: int = 0  # full listings: the stored row has this very provider updated-at
    counts: WriteCounts = field(default_factory=WriteCounts)
    batches: int = 0
    cursor_before: datetime | int | None = None  # an instant, or an id mark (newest-first streams)
    cursor_after: datetime | int | None = None  # as stored (a cursor never moves backwards)
    duration_s: float = 0.0
    table_rows: int = 0
    http: dict[str, int | float] = field(default_factory=dict)
    columns: list[ColumnInfo] = field(default_factory=list)
    delete_refused: str | None = None  # why a delete propagation was refused, if it was

    @property
    def inserted(self) -> int:
        return self.counts.inserted

    @property
    def updated(self) -> int:
        return self.counts.updated

    @property
    def unchanged(self) -> int:
        return self.counts.unchanged

    @property
    def deleted(self) -> int:
        return self.counts.deleted

    def details(self) -> dict[str, Any]:
        """Entries a stream kind adds to the standard ones (plain str/int/float/bool values)."""
        return {}
