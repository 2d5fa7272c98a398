"""Schedules that launch one run per active account (partition) of a provider.

Two flavours: cadence schedules (ShipStation) where each account's registry `cadence` decides
which schedule picks it up, so changing a store from every 30 minutes to daily is a registry
update, not a deploy; and fixed schedules (Shopify's per-entity crons) for every enabled account.
One account failing never holds up another.
"""

from __future__ import annotations

import dagster as dg

from sync_pipelines.core.registry import list_accounts
from sync_pipelines.core.dg.resources import AppDatabase

CRON = {
    "15min": "*/15 * * * *",
    "30min": "*/30 * * * *",
    "hourly": "0 * * * *",
    "6hourly": "0 */6 * * *",
    "daily": "0 2 * * *",
}


def account_schedule(
    provider: str,
    job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
    partitions_def: dg.DynamicPartitionsDefinition,
    *,
    name: str,
    cron: str,
    cadence: str | None = None,
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.RUNNING,
) -> dg.ScheduleDefinition:
    """Every tick, one run per active, sync-enabled account (with `cadence`, if given)."""
    assert partitions_def.name is not None
    who = f"whose cadence is '{cadence}'" if cadence else "with automatic sync enabled"

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=default_status,
        description=f"Runs {job.name} for every active {provider} account {who}.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext, app_db: AppDatabase):
        with app_db.connect() as conn:
            accounts = [
                a for a in list_accounts(conn, provider, active_only=True)
                if a.sync_enabled and (cadence is None or a.cadence == cadence)
            ]
        known = set(context.instance.get_dynamic_partitions(partitions_def.name))
        tick = context.scheduled_execution_time.isoformat()
        requests = [
            dg.RunRequest(
                run_key=f"{a.account}:{tick}",
                partition_key=a.account,
                tags={"sync/provider": provider, "sync/account": a.account, "sync/trigger": name},
            )
            for a in accounts
            if a.account in known
        ]
        if not requests:
            return dg.SkipReason(f"no active {provider} account {who}")
        return requests

    return _schedule


def cadence_schedule(
    provider: str,
    job: dg.UnresolvedAssetJobDefinition,
    partitions_def: dg.DynamicPartitionsDefinition,
    cadence: str,
) -> dg.ScheduleDefinition:
    return account_schedule(
        provider, job, partitions_def, name=f"{provider}_{cadence}_schedule", cron=CRON[cadence],
        cadence=cadence,
    )
