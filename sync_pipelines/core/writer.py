"""Batches → COPY → staging table → one set-based upsert.

`COPY` is the fastest way into PostgreSQL; the upsert's `IS DISTINCT FROM` guard means a record
that did not change is not rewritten (no dead tuple, no `synced_at` bump), which is what makes a
no-change incremental run write 0 rows. Such rows are dropped by a join before they reach
`ON CONFLICT`, which would otherwise lock (and WAL-log) each of them. A row never overwrites a
newer one: when both sides carry the provider's updated-at, an older incoming version is skipped
(webhooks may have written a newer version already). A soft-deleted row (`deleted_at` set by a
delete webhook or reconciliation, which leave the updated-at alone) is revived only by a version
updated after the delete. Call `write_batch` inside the caller's transaction, so the cursor that covers the
batch commits with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
import sqlalchemy as sa
from psycopg import sql

from sync_pipelines.core.database import qualified
from sync_pipelines.core.entities import data_columns, key_columns


@dataclass
class WriteCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __iadd__(self, other: WriteCounts) -> WriteCounts:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self

    @property
    def written(self) -> int:
        return self.inserted + self.updated


class UpsertWriter:
    """Writes rows (in `data_columns(table)` order) into one table."""

    def __init__(self, table: sa.Table):
        self.table = table
        self.columns = data_columns(table)
        self.keys = key_columns(table)
        self._key_positions = [self.columns.index(k) for k in self.keys]
        self._updated_position = (
            self.columns.index("source_updated_at") if "source_updated_at" in self.columns else None
        )
        self._staging = sql.Identifier(f"_stage_{table.schema or 'public'}_{table.name}"[:63])
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)
        non_keys = [c for c in self.columns if c not in self.keys]
        target = qualified(table)
        self._create_staging = sql.SQL(
            "CREATE TEMP TABLE {stage} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP"
        ).format(stage=self._staging, target=target)
        self._copy = sql.SQL("COPY {stage} ({cols}) FROM STDIN").format(stage=self._staging, cols=cols)
        assignments = sql.SQL(", ").join(
            [sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in non_keys]
            + [sql.SQL("synced_at = now()")]
        )
        # Only rows that are new or would be written reach ON CONFLICT, which locks (and WAL-logs)
        # every conflicting row, even one its WHERE then skips: an unchanged page stays untouched.
        first_key = sql.Identifier(self.keys[0])
        self._upsert = sql.SQL(
            "WITH written AS ("
            " INSERT INTO {target} AS t ({cols})"
            " SELECT {staged} FROM {stage} AS s"
            # LATERAL … LIMIT 1: one primary-key probe per staged row, whatever the statistics say
            # (a hash join would scan the whole table for every page of a sync).
            " LEFT JOIN LATERAL (SELECT * FROM {target} AS o WHERE {match} LIMIT 1) AS o ON true"
            " WHERE o.{first_key} IS NULL OR ({prefilter})"
            " ON CONFLICT ({keys}) DO UPDATE SET {assignments} WHERE {guard}"
            " RETURNING (xmax = 0) AS inserted)"
            " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written"
        ).format(
            target=target,
            cols=cols,
            staged=sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in self.columns),
            stage=self._staging,
            match=sql.SQL(" AND ").join(sql.SQL("o.{0} = s.{0}").format(sql.Identifier(k)) for k in self.keys),
            first_key=first_key,
            prefilter=self._guard("o", "s", non_keys),
            keys=sql.SQL(", ").join(sql.Identifier(k) for k in self.keys),
            assignments=assignments,
            guard=self._guard("t", "EXCLUDED", non_keys),
        )

    def _guard(self, old: str, new: str, non_keys: list[str]) -> sql.Composed:
        """Write the new version only if it differs and is not older, and clear `deleted_at` only
        with a version updated after the delete: one read before the delete, re-read by the overlap
        or retried late by the provider must not revive the row. Aliases are constants."""

        def ref(alias: str, column: str) -> sql.Composed:
            return sql.SQL(alias + ".") + sql.Identifier(column)

        guard = sql.SQL("({}) IS DISTINCT FROM ({})").format(
            sql.SQL(", ").join(ref(old, c) for c in non_keys),
            sql.SQL(", ").join(ref(new, c) for c in non_keys),
        )
        if "source_updated_at" in self.columns:
            at_old, at_new = ref(old, "source_updated_at"), ref(new, "source_updated_at")
            guard += sql.SQL(" AND ({} IS NULL OR {} IS NULL OR {} >= {})").format(at_old, at_new, at_new, at_old)
        if "deleted_at" in non_keys:
            # Revived only by a version made after the delete itself (a late retry of an edit
            # made before it must not undo it); without an updated-at nothing shows that.
            newer = (sql.SQL("COALESCE({} > {}, false)").format(at_new, ref(old, "deleted_at"))
                     if "source_updated_at" in self.columns else sql.SQL("false"))
            guard += sql.SQL(" AND ({} IS NULL OR {} IS NOT NULL OR {})").format(
                ref(old, "deleted_at"), ref(new, "deleted_at"), newer)
        return guard

    def write_batch(self, conn: psycopg.Connection, rows: Sequence[tuple]) -> WriteCounts:
        """Upsert `rows`; must run inside a transaction (the staging table lives until commit)."""
        if not rows:
            return WriteCounts()
        unique = self._last_per_key(rows)
        # Created per batch and dropped at commit, so it always matches the (evolving) target.
        conn.execute(self._create_staging)
        with conn.cursor().copy(self._copy) as copy:
            for row in unique:
                copy.write_row(row)
        inserted, updated = conn.execute(self._upsert).fetchone()
        return WriteCounts(inserted=inserted, updated=updated, unchanged=len(rows) - inserted - updated)

    def _last_per_key(self, rows: Sequence[tuple]) -> list[tuple]:
        """One row per key — the newest by provider updated-at, else the last seen — since an
        upsert may not touch the same row twice (and deliveries may arrive out of order)."""
        positions, at = self._key_positions, self._updated_position
        latest: dict[tuple, tuple] = {}
        for row in rows:
            key = tuple(row[i] for i in positions)
            kept = latest.get(key)
            if kept is not None and at is not None and None not in (kept[at], row[at]) and row[at] < kept[at]:
                continue
            latest[key] = row
        return list(latest.values())
