"""Shop partitions follow the registry; webhook deliveries in the inbox launch apply runs."""

from sync_pipelines.core.dg.partitions import build_partitions_sensor
from sync_pipelines.core.dg.realtime import build_apply_job, build_inbox_sensor, declared_routes
from sync_pipelines.defs.shopify.assets import shops
from sync_pipelines.defs.shopify.client import PROVIDER
from sync_pipelines.defs.shopify.webhooks import WEBHOOKS

# The topic map lives in webhooks.py; this is its Dagster side.
ROUTES, route_name = declared_routes(WEBHOOKS)

apply_job = build_apply_job(PROVIDER, ROUTES, route_name)
sensors = [build_partitions_sensor(PROVIDER, shops), build_inbox_sensor(PROVIDER, apply_job)]
