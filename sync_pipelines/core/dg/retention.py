"""Run retention: Dagster keeps every run and its events forever unless told otherwise.

Deletes finished runs (and their event logs) created before the cutoff, oldest first, in bounded
batches so one tick never holds the storage for long. Tick retention is configured in
`dagster.yaml` (`retention:`); this covers runs, which that setting does not.
"""

import os
from datetime import UTC, datetime, timedelta

import dagster as dg

_FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def delete_old_runs(instance: dg.DagsterInstance, older_than: timedelta, *, batch: int = 500,
                    max_runs: int = 50_000) -> int:
    cutoff = datetime.now(UTC) - older_than
    deleted = 0
    while deleted < max_runs:
        records = instance.get_run_records(
            filters=dg.RunsFilter(statuses=_FINISHED, created_before=cutoff),
            limit=min(batch, max_runs - deleted), order_by="create_timestamp", ascending=True,
        )
        if not records:
            break
        for record in records:
            instance.delete_run(record.dagster_run.run_id)
        deleted += len(records)
    return deleted


RETENTION_DAYS_ENV = "SYNC_RUN_RETENTION_DAYS"


class RetentionConfig(dg.Config):
    older_than_days: int | None = None
    """Finished runs created more than this many days ago are deleted with their events; unset:
    `SYNC_RUN_RETENTION_DAYS` (read when the run starts), else 30."""

    def days(self) -> int:
        return self.older_than_days if self.older_than_days is not None else int(
            os.environ.get(RETENTION_DAYS_ENV) or 30)


@dg.op
def purge_old_runs(context: dg.OpExecutionContext, config: RetentionConfig) -> None:
    days = config.days()
    deleted = delete_old_runs(context.instance, timedelta(days=days))
    context.log.info(f"deleted {deleted} runs older than {days} days")


@dg.job(name="run_retention", executor_def=dg.in_process_executor,
        description="Deletes finished runs (and their events) older than the retention period.")
def retention_job():
    purge_old_runs()


retention_schedule = dg.ScheduleDefinition(
    name="run_retention_daily", job=retention_job, cron_schedule="30 3 * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
