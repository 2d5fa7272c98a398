"""Every hour from 08:00 to 20:00 on each store's own clock (its registry time zone, default
Africa/Algiers): new orders; at 21:00 the complete listing reconciles the day (state changes
without a webhook, deleted orders). A tick launches one run per 250 stores whose hour has come."""

from sync_pipelines.core.dg.batch import batch_request
from sync_pipelines.core.dg.local_schedules import local_hours_schedule
from sync_pipelines.defs.ecomanager.assets import FULL, NEW, sync_job
from sync_pipelines.defs.ecomanager.provider import DEFAULT_TIMEZONE, NAME, ORDERS_RUN_AT

ORDER_HOURS = range(8, 21)
RECONCILE_HOUR = 21

orders_schedule = local_hours_schedule(
    name="ecomanager_orders_hourly", provider=NAME, job=sync_job, hours=[*ORDER_HOURS, RECONCILE_HOUR],
    default_zone=DEFAULT_TIMEZONE, kind_of=lambda hour: FULL if hour == RECONCILE_HOUR else NEW, runs_at=ORDERS_RUN_AT,
    request_for=lambda accounts, key, mode: batch_request(NAME, accounts, key, mode, trigger="ecomanager_orders_hourly"),
    description="New orders hourly 08:00–20:00 and a complete reconciliation at 21:00, on each store's own clock"
                f" (default {DEFAULT_TIMEZONE}); stores batched, 250 per run.",
)
schedules = [orders_schedule]
