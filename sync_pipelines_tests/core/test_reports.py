"""Date-window reports: windows, exact converters, a re-read window replacing what was there
(vanished rows included), the days bookkeeping and the cross-platform view."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from sync_pipelines.core import reports
from sync_pipelines.core.reports import Field, ReportStream, daily_metrics_table, sync_report

D = date(2026, 11, 1)


def test_windows_cover_the_range_exactly_with_at_most_max_days_each():
    assert reports.windows(D, D, 30) == [(D, D)]
    cut = reports.windows(D, D + timedelta(days=89), 37)
    assert [(b - a).days + 1 for a, b in cut] == [37, 37, 16]
    assert cut[0][0] == D and cut[-1][1] == D + timedelta(days=89)
    assert all(b + timedelta(days=1) == c for (_, b), (c, _) in zip(cut, cut[1:]))
    with pytest.raises(ValueError):
        reports.windows(D, D - timedelta(days=1), 5)


def test_converters_are_exact():
    assert reports.micros_to_decimal("1234567") == Decimal("1.234567")
    assert reports.micros_to_decimal(10**18 + 1) == Decimal("1000000000000.000001")
    assert reports.exact_decimal("0.1") + reports.exact_decimal("0.2") == Decimal("0.3")
    assert reports.exact_decimal(0.1) == Decimal("0.1")  # a JSON float keeps the spelling sent
    assert reports.days_ending_today(D, 1) == (D - timedelta(days=1), D)


def _table(unique: str) -> sa.Table:
    return daily_metrics_table(sa.MetaData(), f"rep_{unique}", "metrics",
                               campaign_id="cid", campaign_name="name", date="day", impressions="imp",
                               clicks="clk", spend=Field("cost", reports.micros_to_decimal), conversions="conv",
                               conversion_value="value", currency="cur")


def _record(cid: str, day: date, cost: str = "1500000", conv: str = "1.5") -> dict:
    return {"cid": cid, "name": f"Campaign {cid}", "day": day.isoformat(), "imp": "100", "clk": "7",
            "cost": cost, "conv": conv, "value": "10.10", "cur": "EUR"}


def test_a_reread_window_replaces_the_accounts_rows_including_vanished_ones(conn, unique):
    stream = ReportStream(provider=f"p{unique}", table=_table(unique), max_window_days=2)
    days = [D + timedelta(days=i) for i in range(4)]
    first_read = [_record(c, d) for d in days for c in ("1", "2")]
    calls = []

    def fetch(records):
        def pages(start, end):
            calls.append((start, end))
            yield [r for r in records if start.isoformat() <= r["day"] <= end.isoformat()]
        return pages

    result = sync_report(conn, stream, "acct", days[0], days[-1], fetch(first_read))
    assert calls == [(days[0], days[1]), (days[2], days[3])]  # ⌈4/2⌉ reads, not 4
    assert (result.windows, result.fetched, result.counts.inserted) == (2, 8, 8)
    other = sync_report(conn, stream, "other", days[0], days[0], fetch([_record("1", days[0])]))
    assert other.counts.inserted == 1

    # Upstream restates: day 3's campaign 2 vanished (invalid clicks), day 2's conversions grew.
    restated = [r for r in first_read if not (r["day"] == days[3].isoformat() and r["cid"] == "2")]
    restated = [_record(r["cid"], days[2], conv="4.25") if r["day"] == days[2].isoformat() else r
                for r in restated]
    again = sync_report(conn, stream, "acct", days[2], days[3], fetch(restated))
    assert (again.counts.deleted, again.counts.updated, again.counts.unchanged) == (1, 2, 1)

    table = stream.table.fullname
    rows = conn.execute(f"SELECT campaign_id, date, spend, conversions FROM {table} WHERE account = 'acct'"
                        " ORDER BY date, campaign_id").fetchall()
    assert len(rows) == 7
    assert ("2", days[3]) not in {(r[0], r[1]) for r in rows}
    assert {r[2] for r in rows} == {Decimal("1.5")}
    assert [r[3] for r in rows if r[1] == days[2]] == [Decimal("4.25"), Decimal("4.25")]
    assert conn.execute(f"SELECT count(*) FROM {table} WHERE account = 'other'").fetchone()[0] == 1  # untouched

    synced = reports.synced_days(conn, stream, "acct", days[0] - timedelta(days=1), days[-1])
    assert sorted(synced) == days
    state = reports.report_states(conn, stream)["acct"]
    assert state.last_synced_at is not None and state.backfilled_at is None


def test_a_window_that_fails_to_read_changes_nothing(conn, unique):
    stream = ReportStream(provider=f"p{unique}", table=_table(unique), max_window_days=1)
    sync_report(conn, stream, "acct", D, D, lambda s, e: [[_record("1", D)]])

    def broken(start, end):
        yield [_record("9", D)]
        raise RuntimeError("page 2 failed")

    with pytest.raises(RuntimeError):
        sync_report(conn, stream, "acct", D, D, broken)
    assert conn.execute(f"SELECT array_agg(campaign_id) FROM {stream.table.fullname}").fetchone()[0] == ["1"]


def test_the_view_unions_every_registered_platform(conn, unique):
    one = ReportStream(provider=f"a{unique}", table=_table(unique + "a"), max_window_days=5)
    two = ReportStream(provider=f"b{unique}", table=_table(unique + "b"), max_window_days=5)
    sync_report(conn, one, "x", D, D, lambda s, e: [[_record("1", D)]], backfill=True)
    sync_report(conn, two, "x", D, D, lambda s, e: [[_record("1", D, cost="2")]])
    rows = conn.execute("SELECT provider, spend FROM ads.metrics_daily WHERE provider IN (%s, %s) ORDER BY 1",
                        (one.provider, two.provider)).fetchall()
    assert rows == [(one.provider, Decimal("1.5")), (two.provider, Decimal("0.000002"))]
    assert reports.report_states(conn, one)["x"].backfilled_at is not None
    assert reports.report_states(conn, one)["x"].last_restated_at is not None  # a backfill re-read it all


def test_a_table_must_name_every_normalised_column():
    with pytest.raises(TypeError, match="missing"):
        daily_metrics_table(sa.MetaData(), "s", "t", campaign_id="a")
