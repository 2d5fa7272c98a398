"""`sync-pipelines accounts days`: which days of a report account were synced, and when.

Read from the report engine's bookkeeping (`core/reports.py`): `sync.report_accounts` names the
account's report streams (`provider/table`) with its backfill, restatement and last sync times;
`sync.report_days` (through `synced_days`) when each day was last read. A day never read is a
gap. Days are the account's own calendar days (its time zone), as the engine stores them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
import sqlalchemy as sa

from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.registry import Account
from sync_pipelines.core.report_plan import account_today
from sync_pipelines.core.reports import TABLES, ReportStream, synced_days


def account_days(conn: psycopg.Connection, account: Account, days: int, now: datetime) -> dict:
    """The last `days` days (today included, on the account's calendar) of each of the account's
    report streams: every day with when it was synced (None: a gap), the gaps as ranges, and the
    stream's backfill / restatement / last-sync times."""
    ensure_tables(conn, TABLES)
    last = account_today(account.timezone, now)
    first = last - timedelta(days=days - 1)
    rows = conn.execute(
        "SELECT stream, backfilled_at, last_restated_at, last_synced_at, first_day, last_day FROM sync.report_accounts"
        " WHERE split_part(stream, '/', 1) = %s AND account = %s ORDER BY stream",
        (account.provider, account.account)).fetchall()
    streams = []
    for name, backfilled_at, restated_at, synced_at, first_ever, last_ever in rows:
        when = synced_days(conn, _stream(name), account.account, first, last)
        every = [first + timedelta(days=i) for i in range(days)]
        streams.append({
            "stream": name, "backfilled_at": backfilled_at, "last_restated_at": restated_at,
            "last_synced_at": synced_at, "first_day_ever": first_ever, "last_day_ever": last_ever,
            "synced": sum(day in when for day in every),
            "gaps": _ranges([day for day in every if day not in when]),
            "days": [{"day": day, "synced_at": when.get(day)} for day in reversed(every)],
        })
    return {"provider": account.provider, "account": account.account, "timezone": account.timezone,
            "first": first, "last": last, "streams": streams}


def _stream(name: str) -> ReportStream:
    """The stream as the bookkeeping names it (`provider/table`): all `synced_days` reads of it."""
    provider, _, table = name.partition("/")
    return ReportStream(provider, sa.Table(table, sa.MetaData()), max_window_days=1)


def _ranges(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days folded into (first, last) ranges, oldest first."""
    out: list[tuple[date, date]] = []
    for day in days:
        if out and out[-1][1] + timedelta(days=1) == day:
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


def render_days(report: dict) -> str:
    who = f"{report['provider']}/{report['account']}"
    zone = report["timezone"] or "UTC (time zone not known yet)"
    head = f"{who}, {report['first']}..{report['last']} (its calendar: {zone})"
    if not report["streams"]:
        return (f"{head}\nno report synced yet: every day is a gap (its initial backfill runs when the automation"
                " picks it up, unless automatic syncs are off)")
    lines = [head]
    for stream in report["streams"]:
        total = len(stream["days"])
        gaps = ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in stream["gaps"]) or "none"
        lines += [
            "",
            f"{stream['stream']}: {stream['synced']} of {total} days synced; gaps: {gaps}",
            f"  backfilled {_at(stream['backfilled_at'])}; last restated {_at(stream['last_restated_at'])};"
            f" last synced {_at(stream['last_synced_at'])}; days ever synced"
            f" {stream['first_day_ever'] or '-'}..{stream['last_day_ever'] or '-'}",
        ]
        lines += [f"  {d['day']}  " + (f"synced {_at(d['synced_at'])}" if d["synced_at"] else "gap: never synced")
                  for d in stream["days"]]
    return "\n".join(lines)


def _at(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "never"
