"""A schedule on each account's own clock, launching a bounded number of batch runs.

It ticks every 15 minutes (UTC) and picks the active, sync-enabled accounts for which one of the
wanted local hours has just begun (`core.local_time`), in their registry time zone or the
provider's default; `kind_of(hour)` may give some hours another kind of run (e.g. the evening's
complete reconciliation). Accounts are launched in runs of at most `batch_size` (env
`SYNC_BATCH_SIZE`, default 250): a hundred stores whose hour has come are one run, not a hundred.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Collection

import dagster as dg

from sync_pipelines.core import local_time
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.registry import list_accounts
from sync_pipelines.core.report_plan import batches

RUNS_AT = "sync/runs_at"
RequestFor = Callable[[list[str], str, str], dg.RunRequest]
"""(accounts, run key, kind) → the batch run's request."""


def batch_size() -> int:
    return max(1, int(os.environ.get("SYNC_BATCH_SIZE") or 250))


def local_hours_schedule(
    *,
    name: str,
    provider: str,
    job: dg.JobDefinition,
    hours: Collection[int],
    default_zone: str,
    request_for: RequestFor,
    kind_of: Callable[[int], str] = lambda hour: "scheduled",
    runs_at: str,
    description: str = "",
) -> dg.ScheduleDefinition:
    """`runs_at` says when in words (the provider declares the same words in `provider.py`, which
    `accounts list` shows; the schedule carries them as metadata `sync/runs_at`)."""
    wanted = frozenset(hours)

    @dg.schedule(
        name=name, job=job, cron_schedule=local_time.TICK_CRON, execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING, metadata={RUNS_AT: runs_at},
        description=description or f"{job.name} for every active {provider} account at"
                                   f" {local_time.describe_hours(wanted)} on its own clock (default {default_zone}).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext, app_db: AppDatabase):
        tick = context.scheduled_execution_time
        with app_db.connect() as conn:
            accounts = [a for a in list_accounts(conn, provider, active_only=True) if a.sync_enabled]
        due: dict[str, list[str]] = defaultdict(list)
        for account in accounts:
            hour = local_time.local_hour_starting(tick, local_time.zone(account.timezone, default_zone), wanted)
            if hour is not None:
                due[kind_of(hour)].append(account.account)
        if not due:
            return dg.SkipReason(f"no {provider} account has a wanted hour starting at {tick.isoformat()}"
                                 f" ({len(accounts)} active)")
        return [request_for(batch, f"{name}:{tick.isoformat()}:{kind}:{i}", kind)
                for kind, ids in sorted(due.items()) for i, batch in enumerate(batches(ids, batch_size()))]

    return _schedule
