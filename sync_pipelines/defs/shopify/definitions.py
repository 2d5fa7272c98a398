"""Shopify's Definitions: assets, jobs, schedules, sensors and its client resource."""

import dagster as dg

from sync_pipelines.defs.shopify.assets import (
    analytics_job, carts, checkouts, daily_metrics, orders_customers_job, products_job, sync_assets,
)
from sync_pipelines.defs.shopify.cleanup import cleanup_job
from sync_pipelines.defs.shopify.client import ShopifyClient
from sync_pipelines.defs.shopify.management import manage_webhooks_job, webhooks_health, webhooks_health_job
from sync_pipelines.defs.shopify.schedules import schedules
from sync_pipelines.defs.shopify.sensors import apply_job, sensors

defs = dg.Definitions(
    assets=[*sync_assets, carts, checkouts, daily_metrics, webhooks_health],
    jobs=[orders_customers_job, products_job, analytics_job, cleanup_job, manage_webhooks_job, apply_job,
          webhooks_health_job],
    schedules=schedules,
    sensors=sensors,
    resources={
        # Settings left unset are read from the environment at run time (see the resource's
        # fields); locally `sync-pipelines dev` points it at the sandbox that way.
        "shopify": ShopifyClient(),
    },
)
