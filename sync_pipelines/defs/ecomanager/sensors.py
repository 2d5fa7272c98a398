"""Store partitions follow the registry; webhook deliveries launch apply runs that also assign the
new orders they bring; orders waiting for an agent are assigned as soon as one has room."""

import dagster as dg

from sync_pipelines.core.dg.partitions import build_partitions_sensor
from sync_pipelines.core.dg.realtime import build_apply_job, build_inbox_sensor, declared_routes
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.defs.ecomanager import assignment
from sync_pipelines.defs.ecomanager.assets import assignment_job, stores
from sync_pipelines.defs.ecomanager.provider import NAME
from sync_pipelines.defs.ecomanager.webhooks import WEBHOOKS

ROUTES, route_name = declared_routes(WEBHOOKS)
apply_job = build_apply_job(NAME, ROUTES, route_name, after_apply=WEBHOOKS.after_apply)
_WAITING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
            dg.DagsterRunStatus.STARTED]


@dg.sensor(name="ecomanager_waiting_orders", job=assignment_job, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Launches an assignment run when orders wait and an agent has room (e.g. just became available).")
def waiting_orders_sensor(context: dg.SensorEvaluationContext, app_db: AppDatabase):
    with app_db.connect() as conn:
        if not assignment.pending_work(conn):
            return dg.SkipReason("no order waits for an agent with room")
    running = context.instance.get_run_records(dg.RunsFilter(job_name=assignment_job.name, statuses=_WAITING), limit=1)
    if running:
        return dg.SkipReason(f"assignment run {running[0].dagster_run.run_id} has not finished")
    return dg.RunRequest(run_key=None, tags={"sync/trigger": "waiting_orders"})


sensors = [build_partitions_sensor(NAME, stores), build_inbox_sensor(NAME, apply_job), waiting_orders_sensor]
