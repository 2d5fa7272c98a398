"""The one sync loop every provider uses: pages since (cursor − overlap) → upsert → cursor.

Records are streamed page by page and written in batches; each batch commits in one transaction
together with the cursor that covers it, so a crash loses at most the batch in flight and never
moves the cursor past uncommitted data.

Two kinds of stream:
- `ordered`: pages arrive in ascending updated-at order (a server-side filter and sort), so the
  cursor may advance with every batch.
- unordered (a full listing, e.g. by id): the cursor moves only with the final batch, to the
  earlier of the newest updated-at seen and the moment the scan started, because a record changed
  mid-scan may sit on a page already read.
In an ordered stream, records whose updated-at is before (cursor − overlap) are skipped without a
write; the overlap re-reads the boundary and the upsert absorbs the duplicates. An unordered stream
writes every record it lists and lets the upsert skip the unchanged ones: an offset-paged listing
shifts when a record is deleted mid-scan, so a record can be missed by one run while older than
the cursor, and skipping it then would lose it until it next changes. What it does skip (one
indexed lookup per 1,000 records read), are records whose stored (live) row carries the very
same provider updated-at, *and* that updated-at is older than the previous complete scan's
start minus the overlap (the stored cursor is never later than that start). A record edited
again within the provider's timestamp resolution keeps its updated-at: only a version the
previous scan read well after it was made can be trusted to be the last one with that stamp;
anything newer is compared in full by the upsert.

A stream that `propagate_deletes` reads a complete listing every run: when the listing ends, rows
of the account it did not return are soft-deleted (`deleted_at`), with the writer's mass-deletion
guard; a record listed again is revived. The keys read are kept in a session temporary table,
filled server-side as the listing goes, so memory stays flat whatever the listing's size.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects import postgresql

from sync_pipelines.core import cursors, rowcodec
from sync_pipelines.core.database import ensure_tables, qualified
from sync_pipelines.core.entities import (
    describe_columns,
    digger,
    key_columns,
    parse_instant,
    record_keys,
    row_builder,
)
from sync_pipelines.core.report import SyncReport
from sync_pipelines.core.writer import MassDeleteRefused, UpsertWriter

T = TypeVar("T")
Pages = Iterable[list[dict[str, Any]]]


@dataclass(frozen=True)
class Stream:
    """One entity stream of a provider, written to one table."""

    name: str
    table: sa.Table
    ordered: bool = False
    overlap: timedelta = timedelta(minutes=10)
    batch_size: int = 5_000
    propagate_deletes: bool = False  # every run lists everything: soft-delete what it did not return
    max_delete_fraction: float = 0.5  # refuse a propagation deleting more of the live rows than this
    project: bool = False
    """Decode only the record keys the table reads (`rowcodec.projected`); for page sources that
    hand records on unchanged (nothing of theirs reads another key)."""

    def __post_init__(self) -> None:
        if self.propagate_deletes and self.ordered:
            raise ValueError(f"{self.name}: only a complete (unordered) listing can propagate deletes")
        if self.propagate_deletes and "deleted_at" not in self.table.columns:
            raise ValueError(f"{self.name}: propagate_deletes needs a deleted_at column (entity_table(soft_delete=True))")


def sync_stream(
    conn: psycopg.Connection,
    stream: Stream,
    account: str,
    fetch: Callable[[datetime | None], Pages],
    *,
    full_refresh: bool = False,
    log: Callable[[str], None] | None = None,
) -> SyncReport:
    """Sync one stream for one account; `fetch(since)` yields pages of provider records.

    A delete propagation refused by the mass-deletion guard does not fail the sync (its rows and
    cursor are committed): `report.delete_refused` says why, and `log` is told.
    """
    ensure_tables(conn, [stream.table, cursors.CURSORS])
    started_clock = time.monotonic()
    started_at = datetime.now(UTC)
    report = SyncReport(table=stream.table.fullname, account=account, columns=describe_columns(stream.table))
    report.cursor_before = None if full_refresh else cursors.load(conn, stream.name, account)
    since = report.cursor_before - stream.overlap if report.cursor_before else None
    updated_at_path = stream.table.info.get("updated_at_path")
    updated_at_of = digger(updated_at_path) if updated_at_path else None
    naive_zone = stream.table.info.get("naive_zone")
    build = row_builder(stream.table)
    writer = UpsertWriter(stream.table, revive_when_seen=stream.propagate_deletes)
    seen = _SeenKeys(conn, stream.table) if stream.propagate_deletes else None
    listing_started = conn.execute("SELECT clock_timestamp()").fetchone()[0] if seen else None
    # Only worth a lookup once a scan has completed (a first sync finds nothing stored).
    versions = (_StoredVersions(stream.table, seen=seen.table if seen else None)
                if updated_at_path and not stream.ordered and since is not None else None)
    newest: datetime | None = None
    rows: list[tuple] = []

    def flush(final: bool) -> None:
        cursor = None
        if newest is not None and (stream.ordered or final):
            cursor = newest if stream.ordered else min(newest, started_at)
        with conn.transaction():
            report.counts += writer.write_batch(conn, rows)
            if seen is not None and rows:  # (the lookup recorded the keys of the records it found)
                seen.add_staged(conn, writer.staging)
            if cursor is not None:
                cursors.save(conn, stream.name, account, cursor)
        report.batches += 1
        if log:
            log(f"{stream.name} [{account}]: committed batch {report.batches} ({len(rows)} rows)")
        rows.clear()

    try:
        with rowcodec.projected(record_keys(stream.table) if stream.project else None):
            # Stored versions are looked up for several pages at once: one round trip per
            # _LOOKUP_RECORDS records instead of one per page (other streams take pages as they come).
            for records, is_last in _grouped(fetch(since), _LOOKUP_RECORDS if versions else 0):
                stored = versions.lookup(conn, account, records) if versions else {}
                for record in records:
                    report.fetched += 1
                    updated = parse_instant(updated_at_of(record), naive_zone) if updated_at_of else None
                    if stream.ordered and since is not None and updated is not None and updated < since:
                        report.skipped_older += 1
                        continue
                    if updated is not None and (newest is None or updated > newest):
                        newest = updated
                    if stored and updated is not None and updated < since and stored.get(versions.key_of(record)) == updated:
                        report.skipped_same_version += 1
                        continue
                    rows.append(build(account, record))
                if len(rows) >= stream.batch_size or is_last:
                    flush(final=is_last)
            if seen is not None:  # the listing ended: everything upstream has been read
                try:
                    report.counts.deleted = writer.soft_delete_missing(
                        conn, account, seen.table, listed_since=listing_started,
                        max_delete_fraction=stream.max_delete_fraction)
                except MassDeleteRefused as refused:
                    report.delete_refused = str(refused)
                    if log:
                        log(f"{stream.name} [{account}]: {refused}")
    except BaseException:
        # Tidying up must never replace what stopped the listing: an interrupt that landed in a
        # commit leaves the connection mid-protocol, and a cleanup error raised in its place
        # would turn a terminated run into a plain failure, which the RetryPolicy restarts.
        # The temporary table goes with the session anyway.
        if seen is not None:
            with contextlib.suppress(psycopg.Error):
                seen.drop(conn)
        raise
    if seen is not None:
        seen.drop(conn)

    # What is stored, not what was offered: `save` never moves a cursor backwards.
    report.cursor_after = cursors.load(conn, stream.name, account)
    report.table_rows = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE account = %s").format(qualified(stream.table)),
        (account,),
    ).fetchone()[0]
    report.duration_s = time.monotonic() - started_clock
    return report


# Records per stored-version lookup (a few pages; the lookup is one indexed probe per record).
_LOOKUP_RECORDS = 1_000


class _SeenKeys:
    """The keys a complete listing returned, in a temporary table of this session, for the
    anti-join of the delete propagation. Filled server-side, never key by key from Python: the
    keys of written records from the writer's staging table (in the batch's transaction), those
    of records already stored by the stored-version lookup (the stored rows it found, skipped or
    not). Together: every listed key that has a live row, which is all the anti-join asks."""

    def __init__(self, conn: psycopg.Connection, table: sa.Table):
        self.columns = [c for c in key_columns(table) if c != "account"]
        self.table = sql.Identifier(f"_seen_{table.schema or 'public'}_{table.name}"[:63])
        cols = sql.SQL(", ").join(map(sql.Identifier, self.columns))
        self._from_staging = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM ").format(self.table, cols, cols)
        self.drop(conn)
        conn.execute(sql.SQL("CREATE TEMP TABLE {} AS SELECT {} FROM {} WITH NO DATA").format(
            self.table, cols, qualified(table)))

    def add_staged(self, conn: psycopg.Connection, staging: sql.Composable) -> None:
        """Record every key of `staging` (a staging table of this transaction)."""
        conn.execute(self._from_staging + staging)

    def drop(self, conn: psycopg.Connection) -> None:
        if not conn.broken and not conn.closed:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(self.table))


class _StoredVersions:
    """The provider updated-at already stored for a group of records, by key; with `seen`, the
    keys of the stored rows found are recorded there in the same statement."""

    def __init__(self, table: sa.Table, *, seen: sql.Identifier | None = None):
        keys = [c for c in key_columns(table) if c != "account"]
        self._paths = [digger(table.columns[k].info.get("path", k)) for k in keys]
        types = [table.columns[k].type.compile(dialect=postgresql.dialect()) for k in keys]
        arrays = sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(t)) for t in types)
        # One key column: `= ANY` is a plain index scan; several: match rows of unnest(arrays).
        match = (sql.SQL("{} = ANY({})").format(sql.Identifier(keys[0]), arrays) if len(keys) == 1
                 else sql.SQL("({}) IN (SELECT * FROM unnest({}))").format(
                     sql.SQL(", ").join(map(sql.Identifier, keys)), arrays))
        # A soft-deleted row is not a stored version: a listing that returns it revives it.
        live = sql.SQL(" AND deleted_at IS NULL" if "deleted_at" in table.columns else "")
        cols = sql.SQL(", ").join(map(sql.Identifier, keys))
        self._query = sql.SQL("SELECT {}, source_updated_at FROM {} WHERE account = %s AND {}{}").format(
            cols, qualified(table), match, live)
        if seen is not None:
            self._query = sql.SQL("WITH found AS ({}), recorded AS (INSERT INTO {} ({}) SELECT {} FROM found)"
                                  " SELECT * FROM found").format(self._query, seen, cols, cols)

    def key_of(self, record: dict[str, Any]) -> tuple[str, ...]:
        return tuple(str(path(record)) for path in self._paths)

    def lookup(self, conn: psycopg.Connection, account: str, records: list[dict[str, Any]]) -> dict[tuple, datetime]:
        columns = [[path(record) for record in records] for path in self._paths]
        if not records or any(value is None for values in columns for value in values):
            return {}
        found = conn.execute(self._query, (account, *columns)).fetchall()
        return {tuple(str(v) for v in row[:-1]): row[-1] for row in found if row[-1] is not None}


def _grouped(pages: Pages, at_least: int) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """Consecutive pages joined until they hold `at_least` records or the listing ends (0: each
    page as it comes), with a flag telling whether the group ends the listing."""
    group: list[dict[str, Any]] = []
    for page, is_last in _with_last(pages):
        group.extend(page)
        if len(group) >= at_least or is_last:
            yield group, is_last
            group = []


def _with_last(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """Each item with a flag telling whether it is the last one (one item of lookahead)."""
    iterator = iter(items)
    try:
        current = next(iterator)
    except StopIteration:
        return
    for following in iterator:
        yield current, False
        current = following
    yield current, True
