"""The standard materialization metadata every sync asset reports.

This is what replaces a hand-rolled `sync_logs` table: Dagster's event storage keeps it per
materialization and plots the numeric entries over time in the asset's page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from sync_pipelines.core.writer import WriteCounts


@dataclass
class SyncReport:
    table: sa.Table
    account: str
    fetched: int = 0
    skipped_older: int = 0  # ordered streams only: before (cursor − overlap), never written
    skipped_same_version: int = 0  # full listings: the stored row has this very provider updated-at
    counts: WriteCounts = field(default_factory=WriteCounts)
    batches: int = 0
    cursor_before: datetime | None = None
    cursor_after: datetime | None = None  # as stored (a cursor never moves backwards)
    duration_s: float = 0.0
    table_rows: int = 0
    http: dict[str, int | float] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        return {
            "account": dg.MetadataValue.text(self.account),
            "table": dg.MetadataValue.text(self.table.fullname),
            "records_fetched": dg.MetadataValue.int(self.fetched),
            "records_inserted": dg.MetadataValue.int(self.counts.inserted),
            "records_updated": dg.MetadataValue.int(self.counts.updated),
            "records_unchanged": dg.MetadataValue.int(
                self.counts.unchanged + self.skipped_older + self.skipped_same_version),
            "records_skipped_before_cursor": dg.MetadataValue.int(self.skipped_older),
            "records_skipped_same_version": dg.MetadataValue.int(self.skipped_same_version),
            "batches_committed": dg.MetadataValue.int(self.batches),
            **{name: _number(value) for name, value in self.http.items()},
            "cursor_before": dg.MetadataValue.text(_iso(self.cursor_before)),
            "cursor_after": dg.MetadataValue.text(_iso(self.cursor_after)),
            "duration_seconds": dg.MetadataValue.float(round(self.duration_s, 3)),
            "dagster/row_count": dg.MetadataValue.int(self.table_rows),
            "dagster/column_schema": column_schema(self.table),
        }


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else "none"


def _number(value: int | float) -> dg.MetadataValue:
    return dg.MetadataValue.float(float(value)) if isinstance(value, float) else dg.MetadataValue.int(value)


def column_schema(table: sa.Table) -> dg.TableSchema:
    """The table's columns for the Dagster UI."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=str(c.type.compile(dialect=postgresql.dialect())),
                description=c.comment,
                constraints=dg.TableColumnConstraints(nullable=c.nullable),
            )
            for c in table.columns
        ]
    )
