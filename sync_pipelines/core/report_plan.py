"""What is due: which accounts' reports the automation should read now, and which days.

Pure decisions over the registry (preferences) and the report state, shared by the schedules and
sensors of every report provider and tested without Dagster:

* an account never backfilled gets its initial backfill (`backfill_days`, default 90) — "backfill
  on connect" without anyone launching it;
* a restatement (re-read of `restatement_days`, default 28, where platforms change the past) is
  due every `restatement_every` (default 7 days);
* otherwise an account is due when its cadence has passed since its last sync, and then reads its
  own lookback window;
* never an account that is inactive, has automatic sync disabled, or needs re-authorisation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sync_pipelines.core.registry import Account
from sync_pipelines.core.reports import ReportState, days_ending_today

BACKFILL, RESTATEMENT, SCHEDULED, MANUAL = "backfill", "restatement", "scheduled", "manual"
KINDS = (BACKFILL, RESTATEMENT, SCHEDULED, MANUAL)

CADENCE_PERIOD = {"15min": timedelta(minutes=15), "30min": timedelta(minutes=30), "hourly": timedelta(hours=1),
                  "6hourly": timedelta(hours=6), "daily": timedelta(days=1)}


@dataclass(frozen=True)
class Policy:
    backfill_days: int = 90
    restatement_days: int = 28
    restatement_every: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class Due:
    account: str
    kind: str


def automatable(account: Account) -> bool:
    return account.active and account.sync_enabled and not account.needs_reauth


def due(accounts: Iterable[Account], states: Mapping[str, ReportState], now: datetime,
        policy: Policy = Policy()) -> list[Due]:
    """The accounts the automation should sync now, each with why (its kind)."""
    found = []
    for account in accounts:
        if not automatable(account):
            continue
        state = states.get(account.account)
        if state is None or state.backfilled_at is None:
            found.append(Due(account.account, BACKFILL))
        elif state.last_restated_at is None or now - state.last_restated_at >= policy.restatement_every:
            found.append(Due(account.account, RESTATEMENT))
        elif state.last_synced_at is None or now - state.last_synced_at >= _period(account.cadence):
            found.append(Due(account.account, SCHEDULED))
    return found


def _period(cadence: str) -> timedelta:
    # A little early rather than a whole tick late: the sensor looks every few minutes.
    return CADENCE_PERIOD.get(cadence, timedelta(minutes=30)) - timedelta(minutes=2)


def account_today(account_timezone: str | None, now: datetime) -> date:
    """Today on the account's own calendar (UTC when its time zone is unknown or unrecognised)."""
    try:
        zone = ZoneInfo(account_timezone) if account_timezone else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    return now.astimezone(zone).date() if zone else now.date()


def days_for(kind: str, lookback_days: int, policy: Policy = Policy(), requested_days: int | None = None) -> int:
    """How many days back a sync of `kind` reads (before today). A 90-day backfill or a 28-day
    restatement is that many days *with* today (so a 90-day window reads it in one request); a
    lookback of N days is N whole days before today, and today."""
    if requested_days is not None:
        return requested_days
    if kind == BACKFILL:
        return max(0, policy.backfill_days - 1)
    if kind == RESTATEMENT:
        return max(policy.restatement_days - 1, lookback_days)
    return max(1, lookback_days)


def date_range(kind: str, account: Account, now: datetime, policy: Policy = Policy(), *,
               requested_days: int | None = None, first: date | None = None,
               last: date | None = None) -> tuple[date, date]:
    """The days an account's sync of `kind` reads, on its own calendar; an explicit range wins."""
    if first is not None or last is not None:
        today = account_today(account.timezone, now)
        return (first or last or today), (last or today)
    return days_ending_today(account_today(account.timezone, now), days_for(kind, account.lookback_days, policy,
                                                                             requested_days))


def batches(items: Sequence[str], size: int) -> list[list[str]]:
    if size < 1:
        raise ValueError("batch size must be at least 1")
    return [list(items[i:i + size]) for i in range(0, len(items), size)]
