"""The seed's cadence: every 6 hours, UTC. Pause and resume it with the schedule's own stop/start
(UI toggle or `dagster schedule stop/start`); the state lives in Dagster's storage."""

from __future__ import annotations

import dagster as dg

SCHEDULE_NAME = "replication_every_6_hours"


def replication_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=SCHEDULE_NAME,
        job=job,
        cron_schedule="0 */6 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Replicates every configured table at 00:00, 06:00, 12:00 and 18:00 UTC.",
    )
