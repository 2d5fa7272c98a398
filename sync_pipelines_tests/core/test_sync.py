"""The sync loop (core/sync.py) against real PostgreSQL, with scripted provider listings."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from sync_pipelines.core import cursors
from sync_pipelines.core.entities import entity_table
from sync_pipelines.core.sync import Stream, sync_stream

OLD, NEW = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"


def make_table(suffix: str) -> sa.Table:
    return entity_table(
        sa.MetaData(), f"s_{suffix}", "items",
        sa.Column("item_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text),
        key=["item_id"],
        updated_at_path="modified",
    )


def rec(i: int, modified: str = OLD) -> dict:
    return {"item_id": i, "name": f"item {i}", "modified": modified}


def ids(conn, table: sa.Table, account: str = "a") -> list[int]:
    return [r[0] for r in conn.execute(
        f"SELECT item_id FROM {table.fullname} WHERE account = %s ORDER BY 1", (account,))]


def offset_pages(upstream: list[dict], size: int, *, during=None):
    """A page-number listing (ShipStation v2) of `upstream`, read live: `during(page)` may
    change the list between pages, as the provider's data does during a scan."""

    def fetch(since):
        page = 0
        while page * size < len(upstream) or page == 0:
            yield upstream[page * size:(page + 1) * size]
            if during:
                during(page)
            page += 1

    return fetch


def test_unordered_listing_that_shifted_mid_scan_loses_nothing(conn, unique):
    """Item 2 is deleted upstream after page 1 was read, so item 3 slides onto page 1 and the
    scan misses it; the next scan lists it again, older than the cursor, and must write it."""
    table = make_table(unique)
    stream = Stream(name=f"test/{unique}", table=table, ordered=False)
    upstream = [rec(1), rec(2), rec(3), rec(4, NEW)]

    def delete_item_2(page):
        if page == 0 and upstream[1]["item_id"] == 2:
            del upstream[1]

    first = sync_stream(conn, stream, "a", offset_pages(upstream, 2, during=delete_item_2))
    assert ids(conn, table) == [1, 2, 4]  # the shift hid item 3 from this scan
    assert first.cursor_after == datetime(2026, 1, 2, tzinfo=UTC)

    second = sync_stream(conn, stream, "a", offset_pages(upstream, 2))
    assert ids(conn, table) == [1, 2, 3, 4]  # (item 2's delete is for reconciliation to find)
    assert (second.counts.inserted, second.skipped_same_version, second.skipped_older) == (1, 2, 0)


def test_a_full_listing_writes_only_records_whose_stored_version_differs(conn, unique):
    """Records already stored with the same provider updated-at are skipped before any row is
    built (one lookup per page); a newer, an older or a missing version is handed to the upsert."""
    table = make_table(unique)
    stream = Stream(name=f"test/{unique}", table=table, ordered=False)
    sync_stream(conn, stream, "a", lambda since: iter([[rec(1), rec(2), rec(3)]]))
    conn.execute(f"DELETE FROM {table.fullname} WHERE item_id = 3")

    again = sync_stream(conn, stream, "a", lambda since: iter([[rec(1), rec(2, NEW), rec(3)]]))

    assert again.skipped_same_version == 1  # item 1
    assert (again.counts.inserted, again.counts.updated) == (1, 1)  # item 3 back, item 2 newer
    assert ids(conn, table) == [1, 2, 3]
    other = sync_stream(conn, stream, "b", lambda since: iter([[rec(1)]]))  # accounts never share
    assert (other.skipped_same_version, other.counts.inserted) == (0, 1)


def test_ordered_stream_skips_records_before_the_cursor_overlap(conn, unique):
    table = make_table(unique)
    stream = Stream(name=f"test/{unique}", table=table, ordered=True)
    sync_stream(conn, stream, "a", lambda since: iter([[rec(1), rec(2, NEW)]]))
    again = sync_stream(conn, stream, "a", lambda since: iter([[rec(1), rec(2, NEW)]]))
    assert (again.skipped_older, again.counts.unchanged, again.counts.written) == (1, 1, 0)


def test_cursor_after_reports_the_stored_cursor_not_an_earlier_offer(conn, unique):
    table = make_table(unique)
    stream = Stream(name=f"test/{unique}", table=table, ordered=True)
    sync_stream(conn, stream, "a", lambda since: iter([[rec(1), rec(2, NEW)]]))
    stored = cursors.load(conn, stream.name, "a")
    assert stored == datetime(2026, 1, 2, tzinfo=UTC)

    # The newest record is gone upstream: this run offers the older cursor, which save() ignores.
    report = sync_stream(conn, stream, "a", lambda since: iter([[rec(1, "2026-01-01T23:55:00Z")]]))
    assert report.cursor_before == report.cursor_after == stored == cursors.load(conn, stream.name, "a")

    refresh = sync_stream(conn, stream, "a", lambda since: iter([[rec(1)]]), full_refresh=True)
    assert refresh.cursor_before is None and refresh.cursor_after == stored
    assert refresh.metadata()["cursor_after"].value == stored.isoformat()
