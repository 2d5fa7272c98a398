"""One table, source → destination: binary COPY streamed into staging, then the core writer's upsert.

The source is read in one REPEATABLE READ, read-only transaction, so the rows copied and the
high-water mark describe the same instant. Its `COPY … TO STDOUT` blocks are handed unchanged to
the destination's `COPY … FROM STDIN` (memory stays flat whatever the table size). Everything on
the destination — DDL, staging, upsert, deletes, cursor — is one transaction: a crash anywhere
leaves the destination as it was and the next run does the whole work again.

A destination that is empty skips staging: rows are copied straight into the table and its
indexes (or, for a table created by this run, its primary key) are built after the load, which
PostgreSQL does in one sort instead of a million index insertions. Dagster-free on purpose: the
benchmark and tests call `replicate` directly.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import IsolationLevel, sql

from sync_pipelines.core import cursors
from sync_pipelines.core.database import ensure_tables, redact_url
from sync_pipelines.core.entities import ColumnInfo
from sync_pipelines.core.report import SyncReport
from sync_pipelines.core.writer import TableWriter, WriteTarget
from sync_pipelines.defs.replication.config import TableSpec
from sync_pipelines.defs.replication.schema import (
    Column, ReplicationError, TableDef, add_columns, add_primary_key, check_compatible, create_table,
    is_empty, read_table, relax_not_null, secondary_indexes, unique_keys,
)

# Arbitrary constant: first half of the two-int advisory lock taken per destination table.
LOCK_NAMESPACE = 7_202_612
BULK_LOAD = "bulk_load"  # empty destination: COPY straight into the table, indexes after
UPSERT = "staging_upsert"
_CURSOR_TYPES = re.compile(r"^(timestamp(\(\d\))? with(out)? time zone|date)$")


@dataclass(kw_only=True)
class ReplicationReport(SyncReport):
    """The standard report (`fetched` = rows read from the source) plus what replication adds."""

    spec: TableSpec
    source_database: str
    path: str = UPSERT
    copy_format: str = "binary"
    read_scope: str = ""
    held_back_to: datetime | None = None
    read_since: datetime | None = None
    table_created: bool = False
    columns_added: list[str] = field(default_factory=list)
    not_null_dropped: list[str] = field(default_factory=list)
    destination_only_columns: list[str] = field(default_factory=list)
    indexes_rebuilt: int = 0
    copy_seconds: float = 0.0
    write_seconds: float = 0.0
    table_rows_from: str = "count(*)"
    table_def: TableDef | None = None

    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "source": f"{self.source_database} {self.spec.source}",
            "destination": self.spec.destination,
            "mode": self.spec.mode,
            "path": self.path,
            "copy_format": self.copy_format,
            "read_scope": self.read_scope,
            "cursor_held_back_to": self.held_back_to,
            "read_since": self.read_since,
            "table_created": self.table_created,
            "columns_added": ", ".join(self.columns_added) or "none",
            "not_null_dropped": ", ".join(self.not_null_dropped) or "none",
            "indexes_built_after_load": self.indexes_rebuilt,
            "copy_seconds": self.copy_seconds,
            "write_seconds": self.write_seconds,
            "row_count_from": self.table_rows_from,
        }
        if self.destination_only_columns:
            details["destination_only_columns"] = ", ".join(self.destination_only_columns)
        return details


def write_target(source: TableDef, target: TableDef) -> WriteTarget:
    """The core writer's view of a destination: the source's columns, matched on its key."""
    return WriteTarget(
        table=target.ident,
        label=f"{target.schema}.{target.name}",
        columns=tuple(c.name for c in source.columns),
        keys=source.primary_key,
        text_compared=frozenset(c.name for c in source.columns if not c.comparable),
        # A replica keeps the source's values, also in a GENERATED ALWAYS AS IDENTITY column.
        overriding_system_value=True,
    )


def describe(table: TableDef) -> list[ColumnInfo]:
    """The destination's columns for the UI (types as PostgreSQL spells them)."""
    key = set(table.primary_key)
    return [ColumnInfo(name=c.name, type=c.type, nullable=not c.not_null, primary_key=c.name in key)
            for c in table.columns]


def replicate(
    spec: TableSpec,
    source_url: str,
    dest: psycopg.Connection,
    *,
    full_refresh: bool = False,
    bulk_load: bool = True,
    log: Callable[[str], None] | None = None,
    after_copy: Callable[[], None] | None = None,
    known_rows: int | None = None,
) -> ReplicationReport:
    """Bring `spec.destination` (on the autocommit connection `dest`) up to date with the source.

    `bulk_load=False` forces staging even into an empty table (the benchmark's comparison);
    `after_copy` runs after the COPY, before anything commits (tests inject crashes there);
    `known_rows` is the row count the last run reported: an incremental upsert (which never
    deletes) then reports it plus the rows it inserted instead of paying for a `count(*)` over the
    whole table; any other run counts exactly.
    """
    say = log or (lambda message: None)
    started = time.monotonic()
    report = ReplicationReport(table=spec.destination, spec=spec, source_database=redact_url(source_url))
    ensure_tables(dest, [cursors.CURSORS])
    _ensure_schema(dest, spec.destination_schema)
    with dest.transaction():
        _pin_text_formats(dest)
        # One sync per destination table at a time; a second run waits, then sees the first's work
        # (so a row count carried over from before the wait would be stale: it counts again).
        lock_args = (LOCK_NAMESPACE, spec.destination)
        if not dest.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", lock_args).fetchone()[0]:
            dest.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", lock_args)
            known_rows = None
        with source_snapshot(source_url, lock=(spec.source_schema, spec.source_table)) as src:
            source = _read_source(src, spec, report.source_database)
            target, empty = _prepare_destination(dest, spec, source, report, bulk_load)
            report.path = BULK_LOAD if bulk_load and empty else UPSERT
            since = _read_since(dest, spec, report, full_refresh=full_refresh, empty=empty)
            high_water = _high_water(src, spec, since, report) if spec.mode == "incremental" else None
            say(f"{spec.source} → {spec.destination}: {report.path}, {report.read_scope}")
            copy_started = time.monotonic()
            writer = TableWriter(write_target(source, target))
            dropped: list[tuple[str, str]] = []
            if report.path == BULK_LOAD:
                if not report.table_created:
                    dropped = _drop_secondary_indexes(dest, target)
                into, freeze = target.ident, report.table_created  # FREEZE: created in this transaction
            else:
                writer.create_staging(dest)
                into, freeze = None, False
            report.copy_format = "binary" if all(c.builtin for c in source.columns) else "text"
            copy_in = writer.copy_statement(into, binary=report.copy_format == "binary", freeze=freeze)
            report.fetched, staged = _copy(src, dest, source, copy_in, spec.cursor_column, since,
                                           binary=report.copy_format == "binary")
            report.copy_seconds = time.monotonic() - copy_started
        # The source snapshot is released: everything below is destination-side.
        if after_copy is not None:
            after_copy()
        write_started = time.monotonic()
        _apply(dest, spec, writer, target, report, staged, dropped)
        if high_water is not None:
            cursors.save(dest, spec.stream, spec.destination, high_water)
        report.cursor_after = max(filter(None, (high_water, report.cursor_before)), default=None)
        report.write_seconds = time.monotonic() - write_started
    unchanged_shape = report.path == UPSERT and not (
        report.table_created or report.columns_added or report.not_null_dropped)
    report.table_def = target if unchanged_shape else read_table(dest, spec.destination_schema, spec.destination_table)
    report.columns = describe(report.table_def) if report.table_def else []
    if unchanged_shape and spec.mode == "incremental" and known_rows is not None:
        report.table_rows = known_rows + report.inserted
        report.table_rows_from = "previous count + rows inserted"
    else:
        report.table_rows = dest.execute(sql.SQL("SELECT count(*) FROM {}").format(target.ident)).fetchone()[0]
    report.duration_s = time.monotonic() - started
    say(
        f"{spec.destination}: read {report.fetched}, inserted {report.inserted}, updated {report.updated},"
        f" unchanged {report.unchanged}, deleted {report.deleted} in {report.duration_s:.2f}s"
    )
    return report


def _apply(dest: psycopg.Connection, spec: TableSpec, writer: TableWriter, target: TableDef,
           report: ReplicationReport, staged: int, dropped: list[tuple[str, str]]) -> None:
    """Finish the load: keys and indexes after a bulk load, else upsert (and deletes) from staging."""
    if report.path == BULK_LOAD:
        if report.table_created:
            add_primary_key(dest, target)
        for _name, definition in dropped:
            # pg_get_indexdef output for an index dropped before the load: server-generated DDL.
            dest.execute(sql.SQL(definition))
        report.indexes_rebuilt = len(dropped) + (1 if report.table_created else 0)
        report.counts.inserted = staged
        return
    report.counts += writer.merge(dest, staged)
    if spec.propagate_deletes and spec.mode == "full" and report.read_since is None:
        # Only a whole-table read shows what the source no longer has.
        report.counts.deleted = writer.delete_unstaged(dest)


@contextmanager
def source_snapshot(url: str, lock: tuple[str, str] | None = None) -> Iterator[psycopg.Connection]:
    """A REPEATABLE READ, read-only transaction on the source: one consistent view of it.

    `lock` (schema, table) is locked in ACCESS SHARE mode *before* the snapshot is taken: TRUNCATE
    is not MVCC-safe, so a snapshot taken before a TRUNCATE + reload commits would read the table
    as empty (and a full run with delete propagation would empty the replica). With the lock first,
    the run waits for such a transaction and then sees its result. Materialized views cannot be
    locked and are read without it.
    """
    with psycopg.connect(url, autocommit=True, application_name="sync-pipelines replication") as conn:
        lockable = lock is not None and conn.execute(
            "SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'v'))", lock
        ).fetchone()[0]
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            # First: the snapshot is taken by the first query (the SELECT below included).
            if lockable:
                conn.execute(sql.SQL("LOCK TABLE {}.{} IN ACCESS SHARE MODE").format(*map(sql.Identifier, lock)))
            # Cursor columns without a time zone are read as UTC.
            _pin_text_formats(conn, TimeZone="UTC")
            yield conn


_TEXT_FORMATS = {"DateStyle": "ISO, YMD", "IntervalStyle": "postgres", "extra_float_digits": "3",
                 "bytea_output": "hex"}


def _pin_text_formats(conn: psycopg.Connection, **more: str) -> None:
    """Text COPY (user types) renders and parses values by session settings: pin the ones that
    change text, on both sides, so a database's own defaults (DMY dates, short floats) cannot.
    Transaction-local (`set_config(…, true)` = SET LOCAL), in one round trip."""
    settings = {**_TEXT_FORMATS, **more}
    conn.execute(
        sql.SQL("SELECT {}").format(sql.SQL(", ").join(sql.SQL("set_config(%s, %s, true)") for _ in settings)),
        [value for pair in settings.items() for value in pair],
    )


def _read_source(src: psycopg.Connection, spec: TableSpec, where: str) -> TableDef:
    source = read_table(src, spec.source_schema, spec.source_table)
    if source is None:
        raise ReplicationError(f"source table {spec.source} does not exist in {where}")
    if not source.primary_key:
        raise ReplicationError(f"source table {spec.source} has no primary key; rows are matched by it")
    odd = [c.name for c in source.columns if "%" in c.name]
    if odd:
        # psycopg would read the % as a placeholder in the parametrised COPY query.
        raise ReplicationError(f"source table {spec.source}: column names with '%' are not supported: {odd}")
    if spec.cursor_column is not None:
        column = source.column(spec.cursor_column)
        if column is None:
            raise ReplicationError(f"source table {spec.source} has no cursor column {spec.cursor_column!r}")
        if not _CURSOR_TYPES.match(column.type):
            raise ReplicationError(
                f"source table {spec.source}: cursor column {spec.cursor_column!r} is {column.type};"
                " it must be timestamptz, timestamp or date"
            )
    return source


def _prepare_destination(
    dest: psycopg.Connection, spec: TableSpec, source: TableDef, report: ReplicationReport, bulk_load: bool
) -> tuple[TableDef, bool]:
    """Create or evolve the destination table; returns it and whether it holds no rows."""
    target = read_table(dest, spec.destination_schema, spec.destination_table)
    if target is None:
        report.table_created = True
        target = create_table(dest, spec.destination_schema, spec.destination_table, source,
                              with_primary_key=not bulk_load)
        return target, True
    missing = check_compatible(source, target, unique_keys(dest, target))
    if missing:
        add_columns(dest, target, missing)
        report.columns_added = [c.name for c in missing]
        target = read_table(dest, spec.destination_schema, spec.destination_table)
        assert target is not None
    known = {c.name for c in source.columns}
    report.destination_only_columns = [c.name for c in target.columns if c.name not in known]
    report.not_null_dropped = relax_not_null(dest, source, target)
    if report.not_null_dropped:
        target = read_table(dest, spec.destination_schema, spec.destination_table)
        assert target is not None
    return target, is_empty(dest, target)


def _read_since(dest: psycopg.Connection, spec: TableSpec, report: ReplicationReport, *,
                full_refresh: bool, empty: bool) -> datetime | None:
    """Where this run starts reading: (cursor − overlap), or the whole table when it must."""
    if spec.mode == "full":
        report.read_scope = "whole table (full mode)"
        return None
    report.cursor_before = cursors.load(dest, spec.stream, spec.destination)
    reasons = [
        (report.cursor_before is None, "no cursor yet"),
        (full_refresh, "full refresh requested"),
        (empty, "destination empty"),
        (bool(report.columns_added), "new columns need values for every row"),
    ]
    why = next((reason for applies, reason in reasons if applies), None)
    if why:
        report.read_scope = f"whole table ({why})"
        return None
    report.read_since = report.cursor_before - spec.overlap
    minutes = spec.overlap.total_seconds() / 60
    report.read_scope = f"rows with {spec.cursor_column} >= cursor − {minutes:g} min"
    return report.read_since


def _high_water(src: psycopg.Connection, spec: TableSpec, since: datetime | None,
                report: ReplicationReport) -> datetime | None:
    """The newest cursor value among the rows this run copies (same snapshot as the COPY), but
    never past the source's clock (a row stamped in the future must not push the cursor ahead),
    nor past the start of the oldest transaction still writing to the source: its rows, stamped
    around its start, commit later and must still be at or after (cursor − overlap) then. Seeing
    other roles' transactions needs `pg_read_all_stats` (or `pg_monitor`) on the source; without
    it only the overlap protects against transactions longer than the overlap."""
    query = sql.SQL(
        "SELECT max({c})::timestamptz, now(), (SELECT min(a.xact_start) FROM pg_stat_activity AS a"
        " WHERE a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid() AND a.datname = current_database())"
        " FROM {t}"
    ).format(
        c=sql.Identifier(spec.cursor_column),
        t=sql.SQL("{}.{}").format(sql.Identifier(spec.source_schema), sql.Identifier(spec.source_table)),
    )
    params = None
    if since is not None:
        query += sql.SQL(" WHERE {} >= %s").format(sql.Identifier(spec.cursor_column))
        params = (since,)
    newest, now, oldest_writer = src.execute(query, params).fetchone()
    if newest is None:
        return None
    high_water = min(newest, now)
    if oldest_writer is not None and oldest_writer < high_water:
        report.held_back_to = high_water = oldest_writer
    return high_water


def _copy(src: psycopg.Connection, dest: psycopg.Connection, source: TableDef, copy_in: sql.Composed,
          cursor_column: str | None, since: datetime | None, *, binary: bool) -> tuple[int, int]:
    """Stream the source rows through `copy_in`, block by block; returns (rows read, rows written).

    Rows whose cursor column is NULL have no place in the cursor order: an incremental read takes
    them every time (the upsert skips them unless they changed), so none is left behind.
    """
    select = sql.SQL("SELECT {} FROM {}").format(_column_list(source.columns), source.ident)
    params = None
    if since is not None:
        column = source.column(cursor_column)
        select += sql.SQL(" WHERE {} >= %s").format(sql.Identifier(cursor_column))
        if column is not None and not column.not_null:
            select += sql.SQL(" OR {} IS NULL").format(sql.Identifier(cursor_column))
        params = (since,)  # COPY takes no server-side parameters: psycopg binds it client-side
    # Binary needs identical type OIDs on both sides: built-in types only; others go as text.
    copy_out = sql.SQL("COPY ({}) TO STDOUT ({})").format(select, sql.SQL("FORMAT BINARY" if binary else "FORMAT TEXT"))
    with src.cursor() as out_cursor, dest.cursor() as in_cursor:
        with out_cursor.copy(copy_out, params) as reader, in_cursor.copy(copy_in) as writer:
            for block in reader:
                writer.write(block)
        return out_cursor.rowcount, in_cursor.rowcount


def _column_list(columns: tuple[Column, ...]) -> sql.Composed:
    return sql.SQL(", ").join(c.ident for c in columns)


def _drop_secondary_indexes(dest: psycopg.Connection, target: TableDef) -> list[tuple[str, str]]:
    """Drop the empty table's plain indexes (rebuilt after the load, in the same transaction)."""
    indexes = secondary_indexes(dest, target)
    for name, _definition in indexes:
        dest.execute(sql.SQL("DROP INDEX {}.{}").format(sql.Identifier(target.schema), sql.Identifier(name)))
    return indexes


def _ensure_schema(dest: psycopg.Connection, schema: str) -> None:
    if dest.execute("SELECT FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone():
        return
    with dest.transaction():
        dest.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, f"schema {schema}"))
        dest.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
