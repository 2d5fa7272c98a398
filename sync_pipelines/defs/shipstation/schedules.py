"""One schedule per registry cadence: every 15 and 30 minutes (the default), hourly, every
6 hours and daily at 02:00 UTC. Each store's registry `cadence` picks which of these launches it,
so every cadence `sync-pipelines accounts add --cadence` accepts is served by exactly one.
"""

from sync_pipelines.core.registry import CADENCES
from sync_pipelines.core.dg.schedules import cadence_schedule
from sync_pipelines.defs.shipstation.assets import stores, sync_job
from sync_pipelines.defs.shipstation.client import PROVIDER

schedules = [cadence_schedule(PROVIDER, sync_job, stores, c) for c in CADENCES]
