"""Maystro's Definitions: the shipments asset, the batch job, the 6-hourly schedule, sensors, client."""

import dagster as dg

from sync_pipelines.defs.maystro.assets import all_assets, sync_job
from sync_pipelines.defs.maystro.client import MaystroClient
from sync_pipelines.defs.maystro.schedules import schedules
from sync_pipelines.defs.maystro.sensors import apply_job, sensors

defs = dg.Definitions(
    assets=all_assets,
    jobs=[sync_job, apply_job],
    schedules=schedules,
    sensors=sensors,
    resources={"maystro": MaystroClient()},
)
