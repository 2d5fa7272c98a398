"""Operations Definitions: failure alerts, the status report asset, run and inbox retention."""

from datetime import UTC, datetime

import dagster as dg

from sync_pipelines.core.dg.alerts import build_failure_alert_sensor
from sync_pipelines.core.dg.retention import retention_job, retention_schedule
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.dg.status import accounts_attention, render_attention, render_table, status_report
from sync_pipelines.defs.operations.cleanup import cleanup_job, cleanup_schedule
from sync_pipelines.defs.operations.inbox_retention import inbox_retention_job, inbox_retention_schedule


@dg.asset(
    key=["operations", "sync_status"],
    group_name="operations",
    kinds={"dagster"},
    owners=["team:data-eng"],
    description="Per provider and account over 7 days: success rate, last success/failure, durations, "
    "records written, freshness — read from Dagster's run storage.",
)
def sync_status(context: dg.AssetExecutionContext, app_db: AppDatabase) -> dg.MaterializeResult:
    now = datetime.now(UTC)
    rows = status_report(context.instance, days=7)
    with app_db.connect() as conn:
        attention = accounts_attention(conn)
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.md(render_table(rows, now) + "\n\n" + render_attention(attention)),
            "accounts_needing_reauthorisation": len(attention.needs_reauthorisation),
            "accounts_failing_in_batch_runs": len(attention.failed),
            "accounts": len(rows),
            "failing_accounts": sum(1 for r in rows if r.last_failure_at and (
                not r.last_success_at or r.last_failure_at > r.last_success_at)),
            "details": dg.MetadataValue.json([r.as_dict(now) for r in rows]),
        }
    )


status_job = dg.define_asset_job("sync_status_report", selection=[sync_status], executor_def=dg.in_process_executor)

defs = dg.Definitions(
    assets=[sync_status],
    jobs=[status_job, retention_job, inbox_retention_job, cleanup_job],
    schedules=[
        cleanup_schedule,
        retention_schedule,
        inbox_retention_schedule,
        dg.ScheduleDefinition(name="sync_status_hourly", job=status_job, cron_schedule="5 * * * *",
                              execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING),
    ],
    sensors=[build_failure_alert_sensor()],
)
