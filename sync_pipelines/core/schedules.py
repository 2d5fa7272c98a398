"""Cadence schedules: one per cadence a provider offers, each launching the accounts set to it.

An account's `cadence` and `sync_enabled` in the registry decide which schedule picks it up, so
changing a store from every 30 minutes to daily is a registry update, not a deploy. Each tick asks
for one run per account (partition); one store failing never holds up another.
"""

from __future__ import annotations

import dagster as dg

from sync_pipelines.core.resources import AppDatabase
from sync_pipelines.core.registry import list_accounts

CRON = {
    "15min": "*/15 * * * *",
    "30min": "*/30 * * * *",
    "hourly": "0 * * * *",
    "6hourly": "0 */6 * * *",
    "daily": "0 2 * * *",
}


def cadence_schedule(
    provider: str,
    job: dg.UnresolvedAssetJobDefinition,
    partitions_def: dg.DynamicPartitionsDefinition,
    cadence: str,
    *,
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.RUNNING,
) -> dg.ScheduleDefinition:
    assert partitions_def.name is not None

    @dg.schedule(
        name=f"{provider}_{cadence}_schedule",
        job=job,
        cron_schedule=CRON[cadence],
        execution_timezone="UTC",
        default_status=default_status,
        description=f"Syncs every active {provider} account whose cadence is '{cadence}'.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext, app_db: AppDatabase):
        with app_db.connect() as conn:
            accounts = [
                a for a in list_accounts(conn, provider, active_only=True)
                if a.sync_enabled and a.cadence == cadence
            ]
        known = set(context.instance.get_dynamic_partitions(partitions_def.name))
        tick = context.scheduled_execution_time.isoformat()
        requests = [
            dg.RunRequest(
                run_key=f"{a.account}:{tick}",
                partition_key=a.account,
                tags={"sync/provider": provider, "sync/account": a.account, "sync/trigger": cadence},
            )
            for a in accounts
            if a.account in known
        ]
        if not requests:
            return dg.SkipReason(f"no active {provider} account with cadence '{cadence}'")
        return requests

    return _schedule
