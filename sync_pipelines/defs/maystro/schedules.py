"""Every 6 hours at 00:00, 06:00, 12:00 and 18:00 on each store's own clock (default Africa/Algiers),
stores batched 250 per run."""

from sync_pipelines.core.dg.batch import batch_request
from sync_pipelines.core.dg.local_schedules import local_hours_schedule
from sync_pipelines.defs.maystro.assets import POLL, sync_job
from sync_pipelines.defs.maystro.provider import DEFAULT_TIMEZONE, NAME, STATUS_RUN_AT

POLL_HOURS = (0, 6, 12, 18)

status_schedule = local_hours_schedule(
    name="maystro_status_every_6h", provider=NAME, job=sync_job, hours=POLL_HOURS, default_zone=DEFAULT_TIMEZONE,
    kind_of=lambda hour: POLL, runs_at=STATUS_RUN_AT,
    request_for=lambda accounts, key, mode: batch_request(NAME, accounts, key, mode, trigger="maystro_status_every_6h"),
)
schedules = [status_schedule]
