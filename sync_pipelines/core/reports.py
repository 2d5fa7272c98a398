"""Date-window reports (ad platforms): an account's daily metrics for a range of days, where
every re-read *replaces* that range (platforms restate the past: late conversions, invalid clicks).

A provider declares its metrics table with `daily_metrics_table` (the normalised columns every
ad platform shares, each read from the platform's record by a path and an exact converter) and
a `ReportStream` (the table and the largest date window one request should cover). `sync_report`
splits a range into such windows; each window is read whole, then replaces the account's rows of
those days in one transaction (`TableWriter.replace_window`: rows that vanished upstream vanish
here) together with the bookkeeping of which days were synced when (`sync.report_days`) and the
account's report state (`sync.report_accounts`: backfilled, last synced, last restated). A window
that fails to read changes nothing.

Every platform's table feeds one cross-platform view, `ads.metrics_daily` (provider, account,
campaign, day, metrics, currency): a table registers itself in `sync.report_tables` the first time
it is written, and the view is rebuilt from that catalogue, so core never names a provider.
Free of Dagster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql
from psycopg.types.json import Jsonb

from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.entities import entity_table, row_builder
from sync_pipelines.core.writer import UpsertWriter, WriteCounts

metadata = sa.MetaData()

VIEW_SCHEMA, VIEW_NAME = "ads", "metrics_daily"
NORMALISED = ("campaign_id", "campaign_name", "date", "impressions", "clicks", "spend", "conversions",
              "conversion_value", "currency")
_TYPES = {"campaign_id": sa.Text, "campaign_name": sa.Text, "date": sa.Date, "impressions": sa.BigInteger,
          "clicks": sa.BigInteger, "spend": sa.Numeric, "conversions": sa.Numeric, "conversion_value": sa.Numeric,
          "currency": sa.Text}
_COMMENTS = {"date": "the account's own calendar day (its time zone)", "spend": "exact, in the account's currency",
             "currency": "the account's currency (ISO 4217)"}

REPORT_DAYS = sa.Table(
    "report_days", metadata,
    sa.Column("stream", sa.Text, primary_key=True, comment="provider/table"),
    sa.Column("account", sa.Text, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.Text),
    schema="sync", comment="which days of which account were last read, and when",
)
REPORT_ACCOUNTS = sa.Table(
    "report_accounts", metadata,
    sa.Column("stream", sa.Text, primary_key=True),
    sa.Column("account", sa.Text, primary_key=True),
    sa.Column("backfilled_at", sa.DateTime(timezone=True), comment="initial backfill done"),
    sa.Column("last_synced_at", sa.DateTime(timezone=True)),
    sa.Column("last_restated_at", sa.DateTime(timezone=True), comment="last re-read of the restatement window"),
    sa.Column("first_day", sa.Date, comment="earliest day ever synced"),
    sa.Column("last_day", sa.Date, comment="latest day ever synced"),
    schema="sync",
)
REPORT_TABLES = sa.Table(
    "report_tables", metadata,
    sa.Column("provider", sa.Text, primary_key=True),
    sa.Column("table_name", sa.Text, primary_key=True, comment="schema.table"),
    schema="sync", comment="the tables ads.metrics_daily unions",
)
TABLES = [REPORT_DAYS, REPORT_ACCOUNTS, REPORT_TABLES]


# ------------------------------------------------------------------------------ converters
def exact_decimal(value: Any) -> Decimal:
    """A platform's number — a decimal string ("12.34"), an int, or a JSON float (its shortest
    spelling, which is the text the API sent) — as an exact Decimal, never via binary rounding."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value).strip())


def micros_to_decimal(value: Any) -> Decimal:
    """Google's `cost_micros` (an int64, sent as a string) as currency units: exact ÷ 10⁶."""
    return Decimal(int(value)).scaleb(-6)


def iso_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@dataclass(frozen=True)
class Field:
    """Where a normalised column's value is in the platform's record, and how it is converted."""

    path: str
    convert: Callable[[Any], Any] | None = None


def daily_metrics_table(metadata: sa.MetaData, schema: str, name: str, *, comment: str | None = None,
                        **fields: str | Field) -> sa.Table:
    """A platform's campaign × day metrics table with the normalised columns (`NORMALISED`), each
    given as a record path or a `Field`; keyed by (account, campaign_id, date), plus `raw`."""
    missing, extra = set(NORMALISED) - set(fields), set(fields) - set(NORMALISED)
    if missing or extra:
        raise TypeError(f"{schema}.{name}: give exactly the normalised columns; missing {sorted(missing)},"
                        f" unknown {sorted(extra)}")
    defaults = {"date": iso_date, "spend": exact_decimal, "conversions": exact_decimal,
                "conversion_value": exact_decimal, "impressions": int, "clicks": int, "campaign_id": str}
    columns = []
    for column in NORMALISED:
        spec = fields[column]
        spec = spec if isinstance(spec, Field) else Field(spec)
        info: dict[str, Any] = {"path": spec.path}
        convert = spec.convert or defaults.get(column)
        if convert is not None:
            info["convert"] = convert
        columns.append(sa.Column(column, _TYPES[column], nullable=column not in ("campaign_id", "date"),
                                 info=info, comment=_COMMENTS.get(column)))
    return entity_table(metadata, schema, name, *columns, key=["campaign_id", "date"], comment=comment)


# ------------------------------------------------------------------------------ windows
def windows(first: date, last: date, max_days: int) -> list[tuple[date, date]]:
    """[first, last] cut into consecutive windows of at most `max_days` days, oldest first."""
    if max_days < 1:
        raise ValueError("max_days must be at least 1")
    if last < first:
        raise ValueError(f"empty range {first}..{last}")
    out, start = [], first
    while start <= last:
        end = min(last, start + timedelta(days=max_days - 1))
        out.append((start, end))
        start = end + timedelta(days=1)
    return out


def days_ending_today(today: date, days: int) -> tuple[date, date]:
    """The range a sync of the last `days` days reads: `days` complete days before `today` (the
    account's own today) and today so far — yesterday's final numbers and today's partial ones."""
    return today - timedelta(days=max(0, days)), today


@dataclass(frozen=True)
class ReportStream:
    """A provider's daily report: its table and the largest window one read should cover."""

    provider: str
    table: sa.Table
    max_window_days: int
    date_column: str = "date"

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.table.name}"


@dataclass
class ReportResult:
    first: date
    last: date
    windows: int = 0
    fetched: int = 0
    counts: WriteCounts = field(default_factory=WriteCounts)
    days_with_rows: int = 0


Pages = Iterable[list[dict[str, Any]]]


def sync_report(conn: psycopg.Connection, stream: ReportStream, account: str, first: date, last: date,
                fetch: Callable[[date, date], Pages], *, backfill: bool = False, restatement: bool = False,
                run_id: str | None = None, log: Callable[[str], None] = lambda _: None) -> ReportResult:
    """Read `account`'s report for [first, last] window by window and make each window's rows
    exactly what was read, each in one transaction with its bookkeeping. `backfill` /
    `restatement` record that the account's initial backfill / restatement read is done (once
    every window landed)."""
    ensure_tables(conn, [stream.table, *TABLES])
    register_table(conn, stream)
    writer = UpsertWriter(stream.table)
    build = row_builder(stream.table)
    position = writer.columns.index(stream.date_column)
    result = ReportResult(first, last)
    for start, end in windows(first, last, stream.max_window_days):
        rows = [build(account, record) for page in fetch(start, end) for record in page]
        per_day: dict[date, int] = {}
        for row in rows:
            per_day[row[position]] = per_day.get(row[position], 0) + 1
        with conn.transaction():
            result.counts += writer.replace_window(conn, rows, account=account, column=stream.date_column,
                                                   first=start, last=end)
            _record_days(conn, stream, account, start, end, per_day, run_id)
        result.windows += 1
        result.fetched += len(rows)
        result.days_with_rows += len(per_day)
        log(f"{stream.name} [{account}] {start}..{end}: {len(rows)} rows")
    with conn.transaction():
        conn.execute(
            "INSERT INTO sync.report_accounts (stream, account, backfilled_at, last_synced_at, last_restated_at,"
            " first_day, last_day) VALUES (%(stream)s, %(account)s, CASE WHEN %(backfill)s THEN now() END, now(),"
            " CASE WHEN %(restated)s THEN now() END, %(first)s, %(last)s)"
            " ON CONFLICT (stream, account) DO UPDATE SET last_synced_at = now(),"
            " backfilled_at = COALESCE(EXCLUDED.backfilled_at, sync.report_accounts.backfilled_at),"
            " last_restated_at = COALESCE(EXCLUDED.last_restated_at, sync.report_accounts.last_restated_at),"
            " first_day = LEAST(sync.report_accounts.first_day, EXCLUDED.first_day),"
            " last_day = GREATEST(sync.report_accounts.last_day, EXCLUDED.last_day)",
            {"stream": stream.name, "account": account, "backfill": backfill, "restated": restatement or backfill,
             "first": first, "last": last})
    return result


def _record_days(conn: psycopg.Connection, stream: ReportStream, account: str, start: date, end: date,
                 per_day: dict[date, int], run_id: str | None) -> None:
    conn.execute(
        "INSERT INTO sync.report_days (stream, account, day, rows, synced_at, run_id)"
        " SELECT %(stream)s, %(account)s, d::date, COALESCE((%(counts)s::jsonb ->> d::date::text)::int, 0), now(),"
        " %(run_id)s FROM generate_series(%(start)s::date, %(end)s::date, interval '1 day') AS d"
        " ON CONFLICT (stream, account, day) DO UPDATE SET rows = EXCLUDED.rows, synced_at = EXCLUDED.synced_at,"
        " run_id = EXCLUDED.run_id",
        {"stream": stream.name, "account": account, "start": start, "end": end, "run_id": run_id,
         "counts": Jsonb({d.isoformat(): n for d, n in per_day.items()})})


@dataclass(frozen=True)
class ReportState:
    account: str
    backfilled_at: datetime | None
    last_synced_at: datetime | None
    last_restated_at: datetime | None


def report_states(conn: psycopg.Connection, stream: ReportStream) -> dict[str, ReportState]:
    """Every account's report state for the stream (accounts never synced are absent)."""
    ensure_tables(conn, TABLES)
    rows = conn.execute("SELECT account, backfilled_at, last_synced_at, last_restated_at FROM sync.report_accounts"
                        " WHERE stream = %s", (stream.name,)).fetchall()
    return {row[0]: ReportState(*row) for row in rows}


def synced_days(conn: psycopg.Connection, stream: ReportStream, account: str, first: date,
                last: date) -> dict[date, datetime]:
    """Which days of [first, last] were synced, and when."""
    ensure_tables(conn, TABLES)
    rows = conn.execute("SELECT day, synced_at FROM sync.report_days WHERE stream = %s AND account = %s"
                        " AND day BETWEEN %s AND %s", (stream.name, account, first, last)).fetchall()
    return dict(rows)


# ------------------------------------------------------------------------------ the view
def register_table(conn: psycopg.Connection, stream: ReportStream) -> None:
    """Add the stream's table to `ads.metrics_daily` (once; the view is rebuilt from the catalogue)."""
    table = stream.table
    key = (conn.info.dsn, stream.provider, table.fullname)
    if key in _registered:
        return
    with conn.transaction():
        added = conn.execute(
            "INSERT INTO sync.report_tables (provider, table_name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (stream.provider, table.fullname)).rowcount
        if added:
            rebuild_view(conn)
    _registered.add(key)


_registered: set[tuple[str, str, str]] = set()


def rebuild_view(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('sync.report_tables'))")
    parts = []
    for provider, table_name in conn.execute(
            "SELECT provider, table_name FROM sync.report_tables ORDER BY provider, table_name").fetchall():
        schema, _, name = table_name.partition(".")
        if conn.execute("SELECT to_regclass(%s)", (table_name,)).fetchone()[0] is None:
            continue  # dropped since: leave it out rather than break the view
        parts.append(sql.SQL("SELECT {provider}::text AS provider, account, {cols}, synced_at FROM {table}").format(
            provider=sql.Literal(provider), cols=sql.SQL(", ").join(map(sql.Identifier, NORMALISED)),
            table=sql.Identifier(schema, name)))
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(VIEW_SCHEMA)))
    conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(VIEW_SCHEMA, VIEW_NAME)))
    if parts:
        conn.execute(sql.SQL("CREATE VIEW {} AS ").format(sql.Identifier(VIEW_SCHEMA, VIEW_NAME))
                     + sql.SQL(" UNION ALL ").join(parts))
