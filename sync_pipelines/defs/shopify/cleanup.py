"""Daily cleanup: find records that disappeared upstream (a delete webhook can be missed) and
soft-delete them; purge inbox deliveries processed long ago.

Reconciliation lists every id Shopify still has (250 per call, `fields=id`), loads them into a
temporary table with COPY and marks local rows absent from it, in one statement per table.
"""

from datetime import timedelta

import dagster as dg
import psycopg
from psycopg import sql

from sync_pipelines.core import inbox
from sync_pipelines.core.database import ensure_tables, qualified
from sync_pipelines.core.registry import Account, list_accounts
from sync_pipelines.core.resources import AppDatabase, for_each_account
from sync_pipelines.defs.shopify import tables
from sync_pipelines.defs.shopify.client import PROVIDER, ShopifyClient

RECONCILED = {"orders": tables.ORDERS, "customers": tables.CUSTOMERS, "products": tables.PRODUCTS}


def reconcile(conn: psycopg.Connection, account: str, resource: str, upstream_ids) -> int:
    """Soft-delete the account's rows of `resource` whose id is not in `upstream_ids`."""
    table = RECONCILED[resource]
    # The full listing first: a listing that fails half-way must never delete anything, and the
    # transaction should not stay open across hundreds of rate-limited calls.
    upstream_ids = list(upstream_ids)
    key = [k for k in (c.name for c in table.primary_key.columns) if k != "account"][0]
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE _upstream_ids (id bigint PRIMARY KEY) ON COMMIT DROP")
        with conn.cursor().copy("COPY _upstream_ids (id) FROM STDIN") as copy:
            for record_id in upstream_ids:
                copy.write_row((record_id,))
        return conn.execute(
            sql.SQL(
                "UPDATE {t} SET deleted_at = now(), synced_at = now() WHERE account = %s"
                " AND deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM _upstream_ids u WHERE u.id = {t}.{k})"
            ).format(t=qualified(table), k=sql.Identifier(key)),
            (account,),
        ).rowcount


class CleanupConfig(dg.Config):
    inbox_retention_days: int = 7
    """Processed inbox deliveries (and recorded rejections) older than this are deleted."""
    shop: str | None = None
    """Reconcile one shop (myshopify domain); empty = every active shop."""


@dg.op(required_resource_keys={"app_db", "shopify"}, tags={"sync/provider": PROVIDER})
def reconcile_and_purge(context: dg.OpExecutionContext, config: CleanupConfig) -> None:
    app_db: AppDatabase = context.resources.app_db
    client: ShopifyClient = context.resources.shopify
    with app_db.connect() as conn:
        ensure_tables(conn, [*RECONCILED.values(), *inbox.TABLES])
        purged = inbox.purge_processed(conn, timedelta(days=config.inbox_retention_days))
        purged += inbox.purge_rejections(conn, timedelta(days=config.inbox_retention_days))
        context.log.info(f"purged {purged} old inbox deliveries and rejections")
        shops = [a for a in list_accounts(conn, PROVIDER, active_only=True) if config.shop in (None, a.account)]

        def reconcile_shop(account: Account) -> dict[str, int]:
            with client.session(account) as session:
                return {r: reconcile(conn, account.account, r, session.ids(r)) for r in RECONCILED}

        for_each_account(context, shops, reconcile_shop)


@dg.job(name="shopify_cleanup", executor_def=dg.in_process_executor, tags={"sync/provider": PROVIDER},
        description="Reconcile deletes with Shopify and purge old inbox deliveries.")
def cleanup_job():
    reconcile_and_purge()
