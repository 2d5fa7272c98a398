"""What the automation launches: backfill on connect, weekly restatement, cadence, never a disabled
or re-authorisation-waiting account; days on the account's own calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sync_pipelines.core import report_plan
from sync_pipelines.core.registry import Account
from sync_pipelines.core.reports import ReportState

NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)


def account(name, **kw) -> Account:
    fields = dict(provider="ads", account=name, display_name=name, active=True, credentials_env="",
                  sync_enabled=True, cadence="hourly", lookback_days=3)
    fields.update(kw)
    return Account(**fields)


def state(name, backfilled=NOW - timedelta(days=2), synced=NOW - timedelta(minutes=10),
          restated=NOW - timedelta(days=1)) -> ReportState:
    return ReportState(name, backfilled, synced, restated)


def test_who_is_due_and_why():
    accounts = [account("new"), account("restate"), account("hourly-due"), account("fresh"),
                account("disabled", sync_enabled=False), account("revoked", auth_status="needs_reauth"),
                account("inactive", active=False), account("daily", cadence="daily")]
    states = {"restate": state("restate", restated=NOW - timedelta(days=8)),
              "hourly-due": state("hourly-due", synced=NOW - timedelta(minutes=61)),
              "fresh": state("fresh"), "disabled": state("disabled", backfilled=None),
              "daily": state("daily", synced=NOW - timedelta(hours=3))}
    due = report_plan.due(accounts, states, NOW)
    assert [(d.account, d.kind) for d in due] == [("new", "backfill"), ("restate", "restatement"),
                                                   ("hourly-due", "scheduled")]


def test_days_are_the_accounts_own_calendar_days():
    # 02:00 UTC on 4 December: already the afternoon of the 4th in Kiritimati (UTC+14), still the
    # evening of the 3rd in Los Angeles.
    east = account("east", timezone="Pacific/Kiritimati")
    west = account("west", timezone="America/Los_Angeles")
    assert report_plan.date_range("scheduled", east, NOW) == (date(2026, 12, 1), date(2026, 12, 4))
    assert report_plan.date_range("scheduled", west, NOW) == (date(2026, 11, 30), date(2026, 12, 3))
    assert report_plan.date_range("backfill", west, NOW) == (date(2026, 9, 5), date(2026, 12, 3))  # 90 days
    assert report_plan.date_range("restatement", west, NOW)[0] == date(2026, 11, 6)  # 28 days
    assert report_plan.date_range("manual", west, NOW, first=date(2026, 1, 1), last=date(2026, 1, 31)) == \
        (date(2026, 1, 1), date(2026, 1, 31))
    assert report_plan.account_today("Not/AZone", NOW) == date(2026, 12, 4)  # unknown: UTC


def test_batches_bound_the_runs():
    ids = [str(i) for i in range(1000)]
    cut = report_plan.batches(ids, 250)
    assert len(cut) == 4 and sum(cut, []) == ids
