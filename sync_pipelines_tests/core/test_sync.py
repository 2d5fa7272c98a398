"""The sync loop (core/sync.py) against real PostgreSQL, with scripted provider listings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import sqlalchemy as sa

from sync_pipelines.core import cursors
from sync_pipelines.core.dg.metadata import report_metadata
from sync_pipelines.core.entities import entity_table
from sync_pipelines.core.sync import Stream, sync_stream
from sync_pipelines_tests.core.statements import recorded_statements

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
    # Item 1 is trusted by version; item 4 carries the cursor's own stamp, too recent to trust
    # (see test_an_edit_that_keeps_its_timestamp_is_written), so the upsert compares it.
    assert (second.counts.inserted, second.skipped_same_version, second.skipped_older) == (1, 1, 0)
    assert second.counts.unchanged == 1


def test_a_full_listing_writes_only_records_whose_stored_version_differs(conn, unique):
    """Records already stored with the same provider updated-at are skipped before any row is
    built (one lookup per page); a newer, an older or a missing version is handed to the upsert."""
    table = make_table(unique)
    stream = Stream(name=f"test/{unique}", table=table, ordered=False)
    # Item 9 moves the cursor to NEW, so the OLD versions are old enough to be trusted.
    sync_stream(conn, stream, "a", lambda since: iter([[rec(1), rec(2), rec(3), rec(9, NEW)]]))
    conn.execute(f"DELETE FROM {table.fullname} WHERE item_id = 3")

    again = sync_stream(conn, stream, "a", lambda since: iter([[rec(1), rec(2, NEW), rec(3), rec(9, NEW)]]))

    assert again.skipped_same_version == 1  # item 1 (item 9, as recent as the cursor, is compared)
    assert (again.counts.inserted, again.counts.updated, again.counts.unchanged) == (1, 1, 1)  # 3 back, 2 newer
    assert ids(conn, table) == [1, 2, 3, 9]
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
    assert report_metadata(refresh)["cursor_after"].value == stored.isoformat()


def scripted(*pages):
    return lambda since: iter([list(page) for page in pages])


def test_an_edit_that_keeps_its_timestamp_is_written(conn, unique):
    """A record edited again within the provider's timestamp resolution keeps its updated-at; the
    version skip trusts only stamps older than the previous scan's start minus the overlap."""
    table = make_table(unique)
    stream = Stream(name=f"test/{unique}", table=table, ordered=False)
    recent = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    sync_stream(conn, stream, "a", scripted([rec(1), rec(2, recent)]))

    edited = {**rec(2, recent), "name": "edited in the same second"}
    again = sync_stream(conn, stream, "a", scripted([rec(1), edited]))

    assert (again.skipped_same_version, again.counts.updated) == (1, 1)  # item 1 trusted, item 2 compared
    name = conn.execute(f"SELECT name FROM {table.fullname} WHERE item_id = 2").fetchone()[0]
    assert name == "edited in the same second"


def soft_table(suffix: str) -> sa.Table:
    return entity_table(
        sa.MetaData(), f"s_{suffix}", "items",
        sa.Column("item_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text),
        key=["item_id"], updated_at_path="modified", soft_delete=True,
    )


def live_and_deleted(conn, table: sa.Table, account: str = "a") -> tuple[list[int], list[int]]:
    rows = conn.execute(f"SELECT item_id, deleted_at IS NOT NULL FROM {table.fullname} WHERE account = %s"
                        " ORDER BY 1", (account,)).fetchall()
    return [i for i, gone in rows if not gone], [i for i, gone in rows if gone]


def test_a_complete_listing_soft_deletes_what_it_no_longer_returns_and_revives_what_returns(conn, unique):
    table = soft_table(unique)
    stream = Stream(name=f"test/{unique}", table=table, propagate_deletes=True)
    sync_stream(conn, stream, "a", scripted([rec(i) for i in range(1, 6)]))
    sync_stream(conn, stream, "b", scripted([rec(1)]))  # another account, untouched by a's listing

    gone = sync_stream(conn, stream, "a", scripted([rec(1), rec(2)], [rec(4), rec(5)]))
    assert gone.counts.deleted == 1 and gone.delete_refused is None
    assert live_and_deleted(conn, table) == ([1, 2, 4, 5], [3])
    assert live_and_deleted(conn, table, "b") == ([1], [])

    # Listed again with the very same version: revived (the listing is the truth), not skipped.
    back = sync_stream(conn, stream, "a", scripted([rec(i) for i in range(1, 6)]))
    assert (back.counts.updated, back.counts.deleted) == (1, 0)
    assert live_and_deleted(conn, table) == ([1, 2, 3, 4, 5], [])


class Interrupted(BaseException):
    """What Dagster raises in the run's main thread on SIGINT/SIGTERM (not an Exception)."""


def test_an_interrupt_mid_listing_propagates_itself_not_a_cleanup_error(database_url, unique):
    """A run terminated while a batch commits leaves the connection mid-protocol. Dropping the
    listing's temporary table then fails; that error must not replace the interrupt (a plain
    error is retried by the step's RetryPolicy: the terminated run would start again)."""
    table = soft_table(unique)
    stream = Stream(name=f"test/{unique}", table=table, propagate_deletes=True, batch_size=2)
    own = psycopg.connect(database_url, autocommit=True)
    try:
        def fetch(since):
            yield [rec(1), rec(2)]
            yield [rec(3), rec(4)]  # (the loop looks one page ahead: reading this one commits the first)
            own.pgconn.send_query(b"SELECT pg_sleep(0.2)")  # the interrupted command, still in progress
            raise Interrupted()

        with pytest.raises(Interrupted):
            sync_stream(own, stream, "a", fetch)
    finally:
        own.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert live_and_deleted(conn, table) == ([1, 2], [])  # the committed batch stays, nothing deleted


def test_delete_propagation_refuses_a_mass_delete_but_keeps_the_rows_synced(conn, unique):
    table = soft_table(unique)
    stream = Stream(name=f"test/{unique}", table=table, propagate_deletes=True)
    sync_stream(conn, stream, "a", scripted([rec(i) for i in range(1, 11)]))

    cut_short = sync_stream(conn, stream, "a", scripted([rec(1), rec(2, NEW), rec(11)]))
    assert cut_short.delete_refused and "8 of 9 live rows" in cut_short.delete_refused  # 2 was just written
    assert cut_short.counts.deleted == 0 and (cut_short.counts.inserted, cut_short.counts.updated) == (1, 1)
    assert live_and_deleted(conn, table) == (list(range(1, 12)), [])
    assert report_metadata(cut_short)["deletes_refused"].value == cut_short.delete_refused

    empty = sync_stream(conn, stream, "a", scripted())  # a listing that returned nothing at all
    assert empty.delete_refused and live_and_deleted(conn, table)[1] == []

    confirmed = Stream(name=stream.name, table=table, propagate_deletes=True, max_delete_fraction=1.0)
    done = sync_stream(conn, confirmed, "a", scripted([rec(1)]))
    assert done.counts.deleted == 10 and live_and_deleted(conn, table) == ([1], list(range(2, 12)))


def test_a_row_written_during_the_listing_is_not_deleted(conn, unique):
    """A webhook may write a record created after the listing passed its page."""
    table = soft_table(unique)
    stream = Stream(name=f"test/{unique}", table=table, propagate_deletes=True)
    sync_stream(conn, stream, "a", scripted([rec(1), rec(2)]))

    def listing(since):
        yield [rec(1), rec(2)]
        conn.execute(f"INSERT INTO {table.fullname} (account, item_id, name, raw) VALUES ('a', 99, 'hook', '{{}}')")

    report = sync_stream(conn, stream, "a", listing)
    assert report.counts.deleted == 0 and live_and_deleted(conn, table) == ([1, 2, 99], [])


def test_delete_propagation_is_declared_on_a_complete_listing_with_soft_deletes(unique):
    import pytest

    with pytest.raises(ValueError, match="deleted_at"):
        Stream(name="x", table=make_table(unique), propagate_deletes=True)
    with pytest.raises(ValueError, match="complete"):
        Stream(name="x", table=soft_table(unique), ordered=True, propagate_deletes=True)


def test_delete_propagation_records_the_listed_keys_server_side(conn, unique):
    """No key goes through Python a second time: written records' keys come from the writer's
    staging table, those of records skipped by version from the version lookup itself; so a
    no-change rerun commits one batch, as it did before deletes were propagated."""
    table = soft_table(unique)
    stream = Stream(name=f"test/{unique}", table=table, propagate_deletes=True, batch_size=2)
    one_per_page = [[rec(i)] for i in range(1, 13)] + [[rec(99, NEW)]]  # 99 moves the cursor past OLD
    with recorded_statements(conn) as first_statements:
        first = sync_stream(conn, stream, "a", scripted(*one_per_page))
    assert first.counts.inserted == 13

    # Items 1-10 skipped by version, 11 edited (written), 12 gone upstream, 99 compared in full.
    listing = [[rec(i)] for i in range(1, 11)] + [[rec(11, NEW)], [rec(99, NEW)]]
    with recorded_statements(conn) as statements:
        again = sync_stream(conn, stream, "a", scripted(*listing))
    assert (again.skipped_same_version, again.counts.updated, again.counts.unchanged) == (10, 1, 1)
    assert again.batches == 1  # the two rows; the skipped records' keys needed no batch of their own
    assert not [s for s in first_statements + statements if s.startswith("COPY") and "_seen_" in s]
    assert again.counts.deleted == 1 and live_and_deleted(conn, table) == ([*range(1, 12), 99], [12])


def test_stored_versions_are_looked_up_for_many_pages_at_once(conn, unique):
    """A no-change rerun of a full listing is one round trip per page to the provider; the version
    lookup must not add another per page (it takes up to 1,000 records at a time)."""
    table = make_table(unique)
    stream = Stream(name=f"test/{unique}", table=table, batch_size=5)
    pages = [[rec(i), rec(i + 1000)] for i in range(1, 51)] + [[rec(99, NEW)]]  # 99 moves the cursor past OLD
    sync_stream(conn, stream, "a", scripted(*pages))

    with recorded_statements(conn) as statements:
        again = sync_stream(conn, stream, "a", scripted(*pages))
    lookups = [s for s in statements if "source_updated_at" in s and s.startswith("SELECT")]
    assert len(lookups) == 1 and again.skipped_same_version == 100 and again.counts.unchanged == 1
