"""Meta's Definitions: the metrics asset and its check, the batch job, schedule, sensors, client."""

import dagster as dg

from sync_pipelines.defs.meta_ads.assets import metrics_daily, recent_days_synced, sync_job
from sync_pipelines.defs.meta_ads.client import MetaAdsClient
from sync_pipelines.defs.meta_ads.provider import NAME
from sync_pipelines.defs.meta_ads.schedules import schedules
from sync_pipelines.defs.meta_ads.sensors import sensors

defs = dg.Definitions(
    assets=[metrics_daily],
    asset_checks=[recent_days_synced],
    jobs=[sync_job],
    schedules=schedules,
    sensors=sensors,
    # Settings left unset are read from the environment at run time (see the resource's fields).
    resources={NAME: MetaAdsClient()},
)
