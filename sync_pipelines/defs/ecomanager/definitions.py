"""EcoManager's Definitions: orders and assignment assets, the batch job, schedules, sensors, client."""

import dagster as dg

from sync_pipelines.defs.ecomanager.assets import all_assets, assignment_job, sync_job
from sync_pipelines.defs.ecomanager.client import EcoManagerClient
from sync_pipelines.defs.ecomanager.schedules import schedules
from sync_pipelines.defs.ecomanager.sensors import apply_job, sensors

defs = dg.Definitions(
    assets=all_assets,
    jobs=[sync_job, assignment_job, apply_job],
    schedules=schedules,
    sensors=sensors,
    resources={"ecomanager": EcoManagerClient()},
)
