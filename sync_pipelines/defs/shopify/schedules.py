"""The seed's cadences: orders and customers every 15 minutes, products every 30, analytics
hourly, cleanup daily at 02:00 UTC; and the webhook health check hourly."""

import dagster as dg

from sync_pipelines.core.dg.schedules import account_schedule
from sync_pipelines.defs.shopify.assets import analytics_job, orders_customers_job, products_job, shops
from sync_pipelines.defs.shopify.cleanup import cleanup_job
from sync_pipelines.defs.shopify.client import PROVIDER
from sync_pipelines.defs.shopify.management import webhooks_health_job

schedules = [
    account_schedule(PROVIDER, orders_customers_job, shops, name="shopify_orders_customers_schedule",
                     cron="*/15 * * * *"),
    account_schedule(PROVIDER, products_job, shops, name="shopify_products_schedule", cron="*/30 * * * *"),
    account_schedule(PROVIDER, analytics_job, shops, name="shopify_analytics_schedule", cron="0 * * * *"),
    dg.ScheduleDefinition(name="shopify_cleanup_schedule", job=cleanup_job, cron_schedule="0 2 * * *",
                          execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING),
    dg.ScheduleDefinition(name="shopify_webhooks_health_schedule", job=webhooks_health_job,
                          cron_schedule="20 * * * *", execution_timezone="UTC",
                          default_status=dg.DefaultScheduleStatus.RUNNING),
]
