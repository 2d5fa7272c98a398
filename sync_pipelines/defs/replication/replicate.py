"""One table, source → destination: binary COPY streamed into staging, then one set-based upsert.

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

import psycopg
from psycopg import IsolationLevel, sql

from sync_pipelines.core import cursors
from sync_pipelines.core.database import ensure_tables, redact_url
from sync_pipelines.defs.replication.config import TableSpec
from sync_pipelines.defs.replication.schema import (
    Column, ReplicationError, TableDef, add_columns, add_primary_key, check_compatible, create_table,
    is_empty, read_table, relax_not_null, secondary_indexes, unique_keys,
)

# Arbitrary constant: first half of the two-int advisory lock taken per destination table.
LOCK_NAMESPACE = 7_202_612
STAGING = sql.Identifier("_replication_stage")
BULK_LOAD = "bulk_load"  # empty destination: COPY straight into the table, indexes after
UPSERT = "staging_upsert"
_CURSOR_TYPES = re.compile(r"^(timestamp(\(\d\))? with(out)? time zone|date)$")


@dataclass
class ReplicationReport:
    """What one run did; `assets.py` turns it into materialization metadata."""

    spec: TableSpec
    source_database: str
    path: str = UPSERT
    copy_format: str = "binary"
    read_scope: str = ""
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    cursor_before: datetime | None = None
    cursor_after: datetime | None = None
    held_back_to: datetime | None = None
    read_since: datetime | None = None
    table_created: bool = False
    columns_added: list[str] = field(default_factory=list)
    not_null_dropped: list[str] = field(default_factory=list)
    destination_only_columns: list[str] = field(default_factory=list)
    indexes_rebuilt: int = 0
    copy_seconds: float = 0.0
    write_seconds: float = 0.0
    duration_seconds: float = 0.0
    table_rows: int = 0
    table_rows_from: str = "count(*)"
    table: TableDef | None = None


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
    report = ReplicationReport(spec=spec, source_database=redact_url(source_url))
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
            dropped: list[tuple[str, str]] = []
            if report.path == BULK_LOAD:
                if not report.table_created:
                    dropped = _drop_secondary_indexes(dest, target)
                into, freeze = target.ident, report.table_created  # FREEZE: created in this transaction
            else:
                dest.execute(
                    sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                        STAGING, _column_list(source.columns), target.ident
                    )
                )
                into, freeze = STAGING, False
            report.copy_format = "binary" if all(c.builtin for c in source.columns) else "text"
            report.rows_read, staged = _copy(src, dest, source, into, spec.cursor_column, since,
                                             binary=report.copy_format == "binary", freeze=freeze)
            report.copy_seconds = time.monotonic() - copy_started
        # The source snapshot is released: everything below is destination-side.
        if after_copy is not None:
            after_copy()
        write_started = time.monotonic()
        _apply(dest, spec, source, target, report, staged, dropped)
        if high_water is not None:
            cursors.save(dest, spec.stream, spec.destination, high_water)
        report.cursor_after = max(filter(None, (high_water, report.cursor_before)), default=None)
        report.write_seconds = time.monotonic() - write_started
    unchanged_shape = report.path == UPSERT and not (
        report.table_created or report.columns_added or report.not_null_dropped)
    report.table = target if unchanged_shape else read_table(dest, spec.destination_schema, spec.destination_table)
    if unchanged_shape and spec.mode == "incremental" and known_rows is not None:
        report.table_rows = known_rows + report.inserted
        report.table_rows_from = "previous count + rows inserted"
    else:
        report.table_rows = dest.execute(sql.SQL("SELECT count(*) FROM {}").format(target.ident)).fetchone()[0]
    report.duration_seconds = time.monotonic() - started
    say(
        f"{spec.destination}: read {report.rows_read}, inserted {report.inserted}, updated {report.updated},"
        f" unchanged {report.unchanged}, deleted {report.deleted} in {report.duration_seconds:.2f}s"
    )
    return report


def _apply(dest: psycopg.Connection, spec: TableSpec, source: TableDef, target: TableDef,
           report: ReplicationReport, staged: int, dropped: list[tuple[str, str]]) -> None:
    """Finish the load: keys and indexes after a bulk load, else upsert (and deletes) from staging."""
    if report.path == BULK_LOAD:
        if report.table_created:
            add_primary_key(dest, target)
        for _name, definition in dropped:
            # pg_get_indexdef output for an index dropped before the load: server-generated DDL.
            dest.execute(sql.SQL(definition))
        report.indexes_rebuilt = len(dropped) + (1 if report.table_created else 0)
        report.inserted = staged
        return
    report.inserted, report.updated = dest.execute(_upsert(source, target)).fetchone()
    report.unchanged = staged - report.inserted - report.updated
    if spec.propagate_deletes and spec.mode == "full" and report.read_since is None:
        # Only a whole-table read shows what the source no longer has.
        dest.execute(sql.SQL("ANALYZE {}").format(STAGING))  # temp tables get no autovacuum stats
        report.deleted = dest.execute(_delete_missing(source, target)).rowcount


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


def _copy(src: psycopg.Connection, dest: psycopg.Connection, source: TableDef, into: sql.Composable,
          cursor_column: str | None, since: datetime | None, *, binary: bool, freeze: bool) -> tuple[int, int]:
    """Stream the source rows into `into`, block by block; returns (rows read, rows written).

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
    options = sql.SQL("FORMAT BINARY" if binary else "FORMAT TEXT")
    copy_in_options = options + sql.SQL(", FREEZE") if freeze else options
    copy_out = sql.SQL("COPY ({}) TO STDOUT ({})").format(select, options)
    copy_in = sql.SQL("COPY {} ({}) FROM STDIN ({})").format(into, _column_list(source.columns), copy_in_options)
    with src.cursor() as out_cursor, dest.cursor() as in_cursor:
        with out_cursor.copy(copy_out, params) as reader, in_cursor.copy(copy_in) as writer:
            for block in reader:
                writer.write(block)
        return out_cursor.rowcount, in_cursor.rowcount


def _upsert(source: TableDef, target: TableDef) -> sql.Composed:
    """Insert new keys, update changed rows, leave identical rows untouched (no new row version).

    Only staged rows that are new or differ from the table reach `ON CONFLICT`, which locks (and
    so WAL-logs, a full page after a checkpoint) every conflicting row, even one its `WHERE` then
    skips: comparing a million unchanged rows wrote 204 MB of WAL that way, and now none. The
    `LATERAL … LIMIT 1` makes it one primary-key probe per staged row whatever the statistics say.
    """
    keys = set(source.primary_key)
    non_keys = [c for c in source.columns if c.name not in keys]
    if non_keys:
        action = sql.SQL("DO UPDATE SET {} WHERE {}").format(
            sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(c.ident) for c in non_keys),
            _differs("t", "EXCLUDED", non_keys),
        )
    else:
        action = sql.SQL("DO NOTHING")
    rows = sql.SQL("SELECT {} FROM {} AS s").format(
        sql.SQL(", ").join(sql.SQL("s.") + c.ident for c in source.columns), STAGING
    )
    rows += sql.SQL(" LEFT JOIN LATERAL (SELECT * FROM {} AS o WHERE {} LIMIT 1) AS o ON true WHERE o.{} IS NULL").format(
        target.ident, _key_match("o", "s", source.primary_key), sql.Identifier(source.primary_key[0])
    )
    if non_keys:
        rows += sql.SQL(" OR ") + _differs("o", "s", non_keys)
    return sql.SQL(
        "WITH written AS ("
        # OVERRIDING SYSTEM VALUE: a replica keeps the source's values, also in a destination
        # column declared GENERATED ALWAYS AS IDENTITY (COPY writes them as given anyway).
        " INSERT INTO {target} AS t ({cols}) OVERRIDING SYSTEM VALUE {rows}"
        " ON CONFLICT ({keys}) {action}"
        " RETURNING (xmax = 0) AS inserted)"
        " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written"
    ).format(
        target=target.ident,
        cols=_column_list(source.columns),
        rows=rows,
        keys=sql.SQL(", ").join(map(sql.Identifier, source.primary_key)),
        action=action,
    )


def _differs(left: str, right: str, columns: list[Column]) -> sql.Composed:
    return sql.SQL("({}) IS DISTINCT FROM ({})").format(
        sql.SQL(", ").join(_compared(left, c) for c in columns),
        sql.SQL(", ").join(_compared(right, c) for c in columns),
    )


def _key_match(left: str, right: str, keys: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(" AND ").join(
        sql.SQL("{}.{} = {}.{}").format(sql.Identifier(left), sql.Identifier(k), sql.Identifier(right), sql.Identifier(k))
        for k in keys
    )


def _delete_missing(source: TableDef, target: TableDef) -> sql.Composed:
    """Full mode with propagate_deletes: rows whose key the source no longer has (anti-join)."""
    return sql.SQL("DELETE FROM {} AS t WHERE NOT EXISTS (SELECT FROM {} AS s WHERE {})").format(
        target.ident, STAGING, _key_match("s", "t", source.primary_key)
    )


def _compared(alias: str, column: Column) -> sql.Composable:
    ref = sql.SQL(alias + ".") + column.ident  # alias is one of two constants
    return ref if column.comparable else sql.SQL("{}::text").format(ref)


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
