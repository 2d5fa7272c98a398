"""The standard materialization metadata every sync asset reports, from a `core.report.SyncReport`.

This is what replaces a hand-rolled `sync_logs` table: Dagster's event storage keeps it per
materialization and plots the numeric entries over time in the asset's page. The names are
`core.report`'s, the same for every provider and stream kind.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dagster as dg

from sync_pipelines.core import report as names
from sync_pipelines.core.entities import ColumnInfo
from sync_pipelines.core.report import SyncReport


def report_metadata(report: SyncReport) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if report.account is not None:
        metadata["account"] = dg.MetadataValue.text(report.account)
    metadata |= {
        "table": dg.MetadataValue.text(report.table),
        names.FETCHED: dg.MetadataValue.int(report.fetched),
        names.INSERTED: dg.MetadataValue.int(report.inserted),
        names.UPDATED: dg.MetadataValue.int(report.updated),
        names.UNCHANGED: dg.MetadataValue.int(report.unchanged + report.skipped_older + report.skipped_same_version),
        names.DELETED: dg.MetadataValue.int(report.deleted),
        "records_skipped_before_cursor": dg.MetadataValue.int(report.skipped_older),
        "records_skipped_same_version": dg.MetadataValue.int(report.skipped_same_version),
        "batches_committed": dg.MetadataValue.int(report.batches),
        **{name: _value(value) for name, value in report.http.items()},
        "cursor_before": dg.MetadataValue.text(iso(report.cursor_before)),
        "cursor_after": dg.MetadataValue.text(iso(report.cursor_after)),
        **{name: _value(value) for name, value in report.details().items()},
        "duration_seconds": dg.MetadataValue.float(round(report.duration_s, 3)),
        "dagster/row_count": dg.MetadataValue.int(report.table_rows),
    }
    if report.delete_refused:
        metadata["deletes_refused"] = dg.MetadataValue.text(report.delete_refused)
    if report.columns:
        metadata["dagster/column_schema"] = column_schema(report.columns)
    return metadata


def iso(value: datetime | int | None) -> str:
    """A cursor as text: an instant in ISO 8601, or an id mark (newest-first streams)."""
    if value is None:
        return "none"
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _value(value: Any) -> dg.MetadataValue:
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(round(value, 3))
    if isinstance(value, datetime) or value is None:
        return dg.MetadataValue.text(iso(value))
    return dg.MetadataValue.text(str(value))


def column_schema(columns: list[ColumnInfo]) -> dg.TableSchema:
    """The table's columns for the Dagster UI."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=c.type,
                description=c.description,
                constraints=dg.TableColumnConstraints(
                    nullable=c.nullable, other=["primary key"] if c.primary_key else None),
            )
            for c in columns
        ]
    )
