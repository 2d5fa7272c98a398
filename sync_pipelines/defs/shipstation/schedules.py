"""The seed's cadences: every 30 minutes (default), hourly, and daily at 02:00 UTC.

Each store's registry `cadence` picks which of these launches it.
"""

from sync_pipelines.core.schedules import cadence_schedule
from sync_pipelines.defs.shipstation.assets import stores, sync_job
from sync_pipelines.defs.shipstation.client import PROVIDER

schedules = [cadence_schedule(PROVIDER, sync_job, stores, c) for c in ("30min", "hourly", "daily")]
