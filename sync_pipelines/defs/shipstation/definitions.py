"""ShipStation's Definitions: assets, job, schedules, sensors and its client resource."""

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
        # Settings left unset are read from the environment at run time (see the resource's
        # fields); locally `sync-pipelines dev` points it at the sandbox that way.
        "shipstation": ShipStationClient(),
    },
)
