"""Store partitions follow the registry; Maystro's status webhooks are applied from the inbox."""

from sync_pipelines.core.dg.partitions import build_partitions_sensor
from sync_pipelines.core.dg.realtime import build_apply_job, build_inbox_sensor, declared_routes
from sync_pipelines.defs.maystro.assets import stores
from sync_pipelines.defs.maystro.provider import NAME
from sync_pipelines.defs.maystro.webhooks import WEBHOOKS

ROUTES, route_name = declared_routes(WEBHOOKS)
apply_job = build_apply_job(NAME, ROUTES, route_name)
sensors = [build_partitions_sensor(NAME, stores), build_inbox_sensor(NAME, apply_job)]
