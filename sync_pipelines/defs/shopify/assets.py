"""Shopify assets per shop: orders, customers, products (API), carts and checkouts (webhooks),
and daily metrics derived from the synced tables."""

from datetime import timedelta

import dagster as dg

from sync_pipelines.core.dg.assets import freshness_for, require_account, sync_asset
from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.defs.shopify import tables
from sync_pipelines.defs.shopify.analytics import refresh_daily_metrics
from sync_pipelines.defs.shopify.client import PROVIDER, ShopifyClient, ShopifySession

shops = dg.DynamicPartitionsDefinition(name="shopify_shops")

# The REST lists hand records on unchanged, so a page decodes only the keys each table reads
# (`project`); the `raw` column still keeps every record whole.
_common = dict(provider=PROVIDER, client_key="shopify", partitions_def=shops, owners=["team:data-eng"], ordered=True,
               project=True)

orders = sync_asset(
    name="orders", stream_table=tables.ORDERS, fetch=ShopifySession.orders, cadence=timedelta(minutes=15),
    description="Orders of every status, incremental on updated_at (also updated by webhooks).", **_common,
)
customers = sync_asset(
    name="customers", stream_table=tables.CUSTOMERS, fetch=ShopifySession.customers, cadence=timedelta(minutes=15),
    description="Customers, incremental on updated_at (also updated by webhooks).", **_common,
)
products = sync_asset(
    name="products", stream_table=tables.PRODUCTS, fetch=ShopifySession.products,
    description="Products and variants, incremental on updated_at (also updated by webhooks).", **_common,
)

carts = dg.AssetSpec(
    key=["shopify", "carts"], group_name=PROVIDER, partitions_def=shops, kinds={"postgres", "shopify"},
    description="Carts, written only by carts/* webhooks (shopify_apply_webhooks job).",
    owners=["team:data-eng"], metadata={"table": tables.CARTS.fullname},
)
checkouts = dg.AssetSpec(
    key=["shopify", "checkouts"], group_name=PROVIDER, partitions_def=shops, kinds={"postgres", "shopify"},
    description="Checkouts, written only by checkouts/* webhooks (shopify_apply_webhooks job).",
    owners=["team:data-eng"], metadata={"table": tables.CHECKOUTS.fullname},
)


@dg.asset(
    key=["shopify", "daily_metrics"],
    group_name=PROVIDER,
    partitions_def=shops,
    deps=[orders, customers],
    kinds={"sql", "postgres", "shopify"},
    owners=["team:data-eng"],
    description="Per shop and local day: orders, revenue, average order value, new vs returning customers.",
    tags={"sync/provider": PROVIDER},
    pool=PROVIDER,
    freshness_policy=freshness_for(timedelta(hours=1)),
)
def daily_metrics(context: dg.AssetExecutionContext, app_db: AppDatabase, shopify: ShopifyClient) -> dg.MaterializeResult:
    account = require_account(app_db, PROVIDER, context.partition_key)
    with shopify.session(account) as session:
        timezone = session.shop().get("iana_timezone") or "UTC"
    with app_db.connect() as conn:
        ensure_tables(conn, [tables.ORDERS, tables.DAILY_METRICS])
        summary = refresh_daily_metrics(conn, account.account, timezone)
    return dg.MaterializeResult(metadata=summary)


sync_assets = [orders, customers, products]

orders_customers_job = dg.define_asset_job(
    name="shopify_orders_customers", selection=dg.AssetSelection.assets(orders, customers),
    partitions_def=shops, executor_def=dg.in_process_executor, tags={"sync/provider": PROVIDER},
)
products_job = dg.define_asset_job(
    name="shopify_products", selection=dg.AssetSelection.assets(products),
    partitions_def=shops, executor_def=dg.in_process_executor, tags={"sync/provider": PROVIDER},
)
analytics_job = dg.define_asset_job(
    name="shopify_analytics", selection=dg.AssetSelection.assets(daily_metrics),
    partitions_def=shops, executor_def=dg.in_process_executor, tags={"sync/provider": PROVIDER},
)
