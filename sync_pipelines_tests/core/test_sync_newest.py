"""Newest-first id listings (core/sync_newest.py): only what is new, read lazily, none missed while
records arrive mid-scan, and a scan that fails half-way keeps its mark."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from sync_pipelines.core.entities import entity_table
from sync_pipelines.core.sync import Stream
from sync_pipelines.core.sync_newest import sync_newest_first


def make_stream(suffix: str, batch_size: int = 5_000) -> Stream:
    table = entity_table(sa.MetaData(), f"n_{suffix}", "orders",
                         sa.Column("order_id", sa.BigInteger, nullable=False, info={"path": "id"}),
                         sa.Column("state", sa.Text), key=["order_id"])
    return Stream(name=f"test/{suffix}", table=table, batch_size=batch_size)


class Upstream:
    """Orders 1..n listed newest first in pages of `size` by a keyset cursor (id below the last
    one served), counting requests; `arrive(k)` adds k newer orders at any moment."""

    def __init__(self, n: int, size: int):
        self.ids, self.size, self.requests = list(range(1, n + 1)), size, 0
        self.after_request = None

    def arrive(self, k: int) -> None:
        top = self.ids[-1] if self.ids else 0
        self.ids += list(range(top + 1, top + k + 1))

    def pages(self):
        below = None
        while True:
            self.requests += 1
            page = [i for i in sorted(self.ids, reverse=True) if below is None or i < below][: self.size]
            if self.after_request:
                self.after_request(self.requests)
            if not page:
                return
            yield [{"id": i, "state": "En attente"} for i in page]
            below = page[-1]
            if len(page) < self.size:
                return


def stored(conn, stream: Stream, account: str = "s") -> list[int]:
    return [r[0] for r in conn.execute(
        f"SELECT order_id FROM {stream.table.fullname} WHERE account = %s ORDER BY 1", (account,))]


@pytest.mark.parametrize(("history", "new", "requests"), [(250, 0, 1), (250, 1, 1), (250, 500, 6), (10_000, 0, 1),
                                                           (10_000, 99, 1), (10_000, 100, 2)])
def test_a_sync_reads_only_the_pages_holding_new_records(conn, unique, history, new, requests):
    stream = make_stream(unique)
    upstream = Upstream(history, size=100)
    sync_newest_first(conn, stream, "s", upstream.pages())  # the first sync reads everything
    assert upstream.requests == history // 100 + 1 and len(stored(conn, stream)) == history
    upstream.requests = 0
    upstream.arrive(new)
    report = sync_newest_first(conn, stream, "s", upstream.pages())
    assert upstream.requests == requests
    assert report.fetched == new and report.counts.inserted == new
    assert stored(conn, stream) == list(range(1, history + new + 1))


def test_records_arriving_mid_scan_are_found_by_the_next_scan_none_missed_none_repeated(conn, unique):
    stream = make_stream(unique)
    upstream = Upstream(300, size=100)
    sync_newest_first(conn, stream, "s", upstream.pages())
    upstream.arrive(250)
    upstream.requests = 0
    upstream.after_request = lambda n: upstream.arrive(7) if n in (1, 2) else None  # 14 arrive while paging
    first = sync_newest_first(conn, stream, "s", upstream.pages())
    assert first.counts.inserted == 250 and first.cursor_after == 550
    upstream.after_request = None
    second = sync_newest_first(conn, stream, "s", upstream.pages())
    assert second.counts.inserted == 14 and second.fetched == 14  # only the arrivals, each once
    assert stored(conn, stream) == list(range(1, 565))


def test_a_scan_failing_half_way_keeps_its_mark_and_the_next_one_loses_nothing(conn, unique):
    stream = make_stream(unique, batch_size=100)
    upstream = Upstream(100, size=100)
    sync_newest_first(conn, stream, "s", upstream.pages())
    upstream.arrive(300)

    def failing():
        pages = upstream.pages()
        yield next(pages)  # the newest 100 are read and written, then the API fails
        raise ConnectionError("reset")

    with pytest.raises(ConnectionError):
        sync_newest_first(conn, stream, "s", failing())
    assert len(stored(conn, stream)) == 200  # a batch was committed …
    report = sync_newest_first(conn, stream, "s", upstream.pages())  # … but the mark was not moved
    assert report.cursor_before == 100 and report.cursor_after == 400
    assert report.counts.inserted == 200 and report.counts.unchanged == 100
    assert stored(conn, stream) == list(range(1, 401))


def test_a_record_without_a_numeric_id_fails_the_scan_and_keeps_the_mark(conn, unique):
    stream = make_stream(unique)
    sync_newest_first(conn, stream, "s", iter([[{"id": 3}, {"id": 2}, {"id": 1}]]))
    with pytest.raises(ValueError, match="numeric id"):
        sync_newest_first(conn, stream, "s", iter([[{"id": 5}, {"id": "x"}]]))
    report = sync_newest_first(conn, stream, "s", iter([[{"id": 5}, {"id": 4}, {"id": 3}]]))
    assert report.cursor_before == 3 and report.counts.inserted == 2
