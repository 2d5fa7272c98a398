"""ShipStation's Definitions: assets, job, schedules, sensors and its client resource."""

import os

import dagster as dg

from sync_pipelines.defs.shipstation.assets import all_assets, sync_job
from sync_pipelines.defs.shipstation.client import ShipStationClient
from sync_pipelines.defs.shipstation.schedules import schedules
from sync_pipelines.defs.shipstation.sensors import sensors

defs = dg.Definitions(
    assets=all_assets,
    jobs=[sync_job],
    schedules=schedules,
    sensors=sensors,
    resources={
        # Locally `sync-pipelines dev` points this at the sandbox.
        "shipstation": ShipStationClient(
            base_url=os.environ.get("SHIPSTATION_BASE_URL", "https://api.shipstation.com"),
        )
    },
)
