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
the cursor, and skipping it then would lose it until it next changes. What it does skip, page by
page, are records whose stored row carries the very same provider updated-at (one indexed lookup
per page): a record that was missed has no such row, so it is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects import postgresql

from sync_pipelines.core import cursors
from sync_pipelines.core.database import ensure_tables, qualified
from sync_pipelines.core.entities import dig, key_columns, parse_instant, row_builder
from sync_pipelines.core.dg.metadata import SyncReport
from sync_pipelines.core.writer import UpsertWriter

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


def sync_stream(
    conn: psycopg.Connection,
    stream: Stream,
    account: str,
    fetch: Callable[[datetime | None], Pages],
    *,
    full_refresh: bool = False,
    log: Callable[[str], None] | None = None,
) -> SyncReport:
    """Sync one stream for one account; `fetch(since)` yields pages of provider records."""
    ensure_tables(conn, [stream.table, cursors.CURSORS])
    started_clock = time.monotonic()
    started_at = datetime.now(UTC)
    report = SyncReport(table=stream.table, account=account)
    report.cursor_before = None if full_refresh else cursors.load(conn, stream.name, account)
    since = report.cursor_before - stream.overlap if report.cursor_before else None
    updated_at_path = stream.table.info.get("updated_at_path")
    build = row_builder(stream.table)
    writer = UpsertWriter(stream.table)
    # Only worth a lookup per page once a scan has completed (a first sync finds nothing stored).
    versions = (_StoredVersions(stream.table)
                if updated_at_path and not stream.ordered and report.cursor_before is not None else None)
    newest: datetime | None = None
    rows: list[tuple] = []

    def flush(final: bool) -> None:
        cursor = None
        if newest is not None and (stream.ordered or final):
            cursor = newest if stream.ordered else min(newest, started_at)
        with conn.transaction():
            report.counts += writer.write_batch(conn, rows)
            if cursor is not None:
                cursors.save(conn, stream.name, account, cursor)
        report.batches += 1
        if log:
            log(f"{stream.name} [{account}]: committed batch {report.batches} ({len(rows)} rows)")
        rows.clear()

    for page, is_last in _with_last(fetch(since)):
        stored = versions.lookup(conn, account, page) if versions else {}
        for record in page:
            report.fetched += 1
            updated = parse_instant(dig(record, updated_at_path)) if updated_at_path else None
            if stream.ordered and since is not None and updated is not None and updated < since:
                report.skipped_older += 1
                continue
            if updated is not None and (newest is None or updated > newest):
                newest = updated
            if updated is not None and stored and stored.get(versions.key_of(record)) == updated:
                report.skipped_same_version += 1
                continue
            rows.append(build(account, record))
        if len(rows) >= stream.batch_size or is_last:
            flush(final=is_last)

    # What is stored, not what was offered: `save` never moves a cursor backwards.
    report.cursor_after = cursors.load(conn, stream.name, account)
    report.table_rows = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE account = %s").format(qualified(stream.table)),
        (account,),
    ).fetchone()[0]
    report.duration_s = time.monotonic() - started_clock
    return report


class _StoredVersions:
    """The provider updated-at already stored for the records of one page, by key."""

    def __init__(self, table: sa.Table):
        keys = [c for c in key_columns(table) if c != "account"]
        self._paths = [table.columns[k].info.get("path", k) for k in keys]
        types = [table.columns[k].type.compile(dialect=postgresql.dialect()) for k in keys]
        arrays = sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(t)) for t in types)
        # One key column: `= ANY` is a plain index scan; several: match rows of unnest(arrays).
        match = (sql.SQL("{} = ANY({})").format(sql.Identifier(keys[0]), arrays) if len(keys) == 1
                 else sql.SQL("({}) IN (SELECT * FROM unnest({}))").format(
                     sql.SQL(", ").join(map(sql.Identifier, keys)), arrays))
        self._query = sql.SQL("SELECT {}, source_updated_at FROM {} WHERE account = %s AND {}").format(
            sql.SQL(", ").join(map(sql.Identifier, keys)), qualified(table), match)

    def key_of(self, record: dict[str, Any]) -> tuple[str, ...]:
        return tuple(str(dig(record, path)) for path in self._paths)

    def lookup(self, conn: psycopg.Connection, account: str, page: list[dict[str, Any]]) -> dict[tuple, datetime]:
        columns = [[dig(record, path) for record in page] for path in self._paths]
        if not page or any(value is None for values in columns for value in values):
            return {}
        found = conn.execute(self._query, (account, *columns)).fetchall()
        return {tuple(str(v) for v in row[:-1]): row[-1] for row in found if row[-1] is not None}


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
