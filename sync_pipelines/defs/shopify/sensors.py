"""Shop partitions follow the registry; webhook deliveries in the inbox launch apply runs."""

import dagster as dg

from sync_pipelines.core.dg.partitions import build_partitions_sensor
from sync_pipelines.core.dg.realtime import Route, build_apply_job, build_inbox_sensor
from sync_pipelines.defs.shopify import tables
from sync_pipelines.defs.shopify.assets import shops
from sync_pipelines.defs.shopify.client import PROVIDER


def route_name(topic: str) -> str:
    """orders/paid → orders, products/delete → products_delete."""
    resource, _, action = topic.partition("/")
    return f"{resource}_delete" if action == "delete" else resource


ROUTES = {
    name: Route(table=table, asset_key=dg.AssetKey([PROVIDER, name]))
    for name, table in tables.TOPIC_TABLES.items()
} | {
    f"{name}_delete": Route(table=tables.TOPIC_TABLES[name], asset_key=dg.AssetKey([PROVIDER, name]), delete=True)
    for name in ("orders", "customers", "products")
}

apply_job = build_apply_job(PROVIDER, ROUTES, route_name)
sensors = [build_partitions_sensor(PROVIDER, shops), build_inbox_sensor(PROVIDER, apply_job)]
