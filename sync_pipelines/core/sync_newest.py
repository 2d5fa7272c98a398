"""Syncing what is new in a listing read newest first by a growing id (no updated-since filter).

Some APIs (EcoManager's orders) can only list by id, newest first, with keyset cursor paging. To
find the new records without walking every page, read from the top and stop at the first record
whose id is at or below the **mark**: the highest id of the last scan that reached it (or the end).
Pages are fetched lazily, so a sync with nothing new costs one request, and k new records cost
⌈(k + 1) / page size⌉ requests whatever the history (an offset "binary search" needs log₂(pages)
probes and still drifts while records arrive; a keyset cursor does not drift).

Correctness: the new mark is the highest id of the *first page* read, so records that arrive
while the scan runs have higher ids and are found by the next scan (none missed); batches are
written as they are read, and the mark is saved in the last batch's transaction, once the scan
has met the old mark — a scan that fails half-way keeps the old mark, so the next one re-reads
the same records and the upsert finds them unchanged (none lost, none written twice).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import sql

from sync_pipelines.core import cursors
from sync_pipelines.core.database import ensure_tables, qualified
from sync_pipelines.core.entities import describe_columns, digger, row_builder
from sync_pipelines.core.report import SyncReport
from sync_pipelines.core.sync import Stream
from sync_pipelines.core.writer import UpsertWriter

MARK_SUFFIX = "#newest_id"


def mark_name(stream: Stream) -> str:
    """The cursor row of a stream's id mark (apart from any updated-at cursor of the stream)."""
    return stream.name + MARK_SUFFIX


def sync_newest_first(
    conn: psycopg.Connection,
    stream: Stream,
    account: str,
    pages: Iterable[list[dict[str, Any]]],
    *,
    id_path: str = "id",
    log: Callable[[str], None] | None = None,
) -> SyncReport:
    """Write the records of `pages` (newest first) above the account's mark, then raise the mark.

    A record without a numeric id fails the sync (the mark could not be trusted); the batches
    already written stay, the mark does not move.
    """
    ensure_tables(conn, [stream.table, cursors.CURSORS])
    started = time.monotonic()
    report = SyncReport(table=stream.table.fullname, account=account, columns=describe_columns(stream.table))
    mark = cursors.load_id(conn, mark_name(stream), account)
    report.cursor_before = mark
    id_of, build = digger(id_path), row_builder(stream.table)
    writer = UpsertWriter(stream.table)
    top: int | None = None
    rows: list[tuple] = []

    def flush(final: bool) -> None:
        with conn.transaction():
            report.counts += writer.write_batch(conn, rows)
            if final and top is not None:
                cursors.save_id(conn, mark_name(stream), account, top)
        report.batches += 1
        if log:
            log(f"{stream.name} [{account}]: committed batch {report.batches} ({len(rows)} rows)")
        rows.clear()

    iterator = iter(pages)
    try:
        for page in iterator:
            reached = False
            for record in page:
                record_id = _numeric_id(id_of(record), stream.name)
                if top is None:
                    top = record_id
                if mark is not None and record_id <= mark:
                    reached = True
                    break
                report.fetched += 1
                rows.append(build(account, record))
            if reached:
                break
            if len(rows) >= stream.batch_size:
                flush(final=False)
        flush(final=True)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:  # stop the paginator: no page beyond the mark is requested
            close()
    report.cursor_after = cursors.load_id(conn, mark_name(stream), account)
    report.table_rows = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE account = %s").format(qualified(stream.table)), (account,),
    ).fetchone()[0]
    report.duration_s = time.monotonic() - started
    return report


def _numeric_id(value: Any, stream: str) -> int:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{stream}: a record without a numeric id ({value!r}) in a newest-first listing")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{stream}: a record without a numeric id ({value!r}) in a newest-first listing") from None

