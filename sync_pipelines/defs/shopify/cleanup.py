"""Daily cleanup: find records that disappeared upstream (a delete webhook can be missed) and
soft-delete them. (The inbox is every provider's: its retention is the operations job
`inbox_retention`, not this one.)

Reconciliation lists every id Shopify still has (250 per call, `fields=id`), loads them into a
temporary table with COPY and marks local rows absent from it, in one statement per table. Only
rows the listing could have returned are candidates: rows already here when the listing began,
and for orders only those created within `orders_window_days`, because without the
`read_all_orders` scope Shopify lists just the last 60 days of orders. A listing that would
soft-delete more than `max_delete_fraction` of the live rows it covers is refused (nothing is
deleted, the run fails naming the shop): an empty or cut-short listing must not wipe a table.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
from psycopg import sql

from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.entities import key_columns
from sync_pipelines.core.writer import MassDeleteRefused as ReconcileRefused
from sync_pipelines.core.writer import UpsertWriter
from sync_pipelines.core.registry import Account, list_accounts
from sync_pipelines.core.dg.resources import AppDatabase, for_each_account
from sync_pipelines.defs.shopify import tables
from sync_pipelines.defs.shopify.client import PROVIDER, ShopifyClient

RECONCILED = {"orders": tables.ORDERS, "customers": tables.CUSTOMERS, "products": tables.PRODUCTS}


def reconcile(conn: psycopg.Connection, account: str, resource: str, upstream_ids, *,
              created_since: datetime | None = None, max_delete_fraction: float = 0.5) -> int:
    """Soft-delete the account's rows of `resource` whose id is not in `upstream_ids`, among the
    rows that listing covers: present before it began and, with `created_since`, created at or
    after it. Raises ReconcileRefused (core's mass-delete guard), deleting nothing, above
    `max_delete_fraction` of them."""
    table = RECONCILED[resource]
    # A row written while the listing runs may be a record created after its page was read.
    listing_started = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    # The full listing first: a listing that fails half-way must never delete anything, and the
    # transaction should not stay open across hundreds of rate-limited calls.
    upstream_ids = list(upstream_ids)
    key = [k for k in key_columns(table) if k != "account"][0]
    scope, params = None, {}
    if created_since is not None:
        scope, params = sql.SQL("created_at >= %(created_since)s"), {"created_since": created_since}
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE _upstream_ids (id bigint PRIMARY KEY) ON COMMIT DROP")
        with conn.cursor().copy("COPY _upstream_ids (id) FROM STDIN") as copy:
            for record_id in upstream_ids:
                copy.write_row((record_id,))
        seen = sql.SQL("(SELECT id AS {} FROM _upstream_ids)").format(sql.Identifier(key))
        return UpsertWriter(table).soft_delete_missing(
            conn, account, seen, listed_since=listing_started, max_delete_fraction=max_delete_fraction,
            scope=scope, scope_params=params)


class CleanupConfig(dg.Config):
    shop: str | None = None
    """Reconcile one shop (myshopify domain); empty = every active shop."""
    orders_window_days: int | None = 59
    """Reconcile only orders created in the last this-many days: without the read_all_orders scope
    Shopify lists only the last 60 days of orders (one day of margin). Empty = every order (the app
    must have read_all_orders)."""
    max_delete_fraction: float = 0.5
    """Refuse (fail, delete nothing) when a listing would soft-delete more than this share of the
    live rows it covers; set 1.0 for a run that confirms a genuine mass delete."""


@dg.op(required_resource_keys={"app_db", "shopify"}, tags={"sync/provider": PROVIDER})
def reconcile_deletes(context: dg.OpExecutionContext, config: CleanupConfig) -> None:
    app_db: AppDatabase = context.resources.app_db
    client: ShopifyClient = context.resources.shopify
    orders_since = None
    if config.orders_window_days is not None:
        orders_since = (datetime.now(UTC) - timedelta(days=config.orders_window_days)).replace(microsecond=0)
    with app_db.connect() as conn:
        ensure_tables(conn, list(RECONCILED.values()))
        shops = [a for a in list_accounts(conn, PROVIDER, active_only=True) if config.shop in (None, a.account)]

        def reconcile_shop(account: Account) -> dict[str, int]:
            done, refused = {}, []
            with client.session(account) as session:
                for resource in RECONCILED:
                    since = orders_since if resource == "orders" else None
                    try:  # one refused resource never stops the others
                        done[resource] = reconcile(
                            conn, account.account, resource, session.ids(resource, created_since=since),
                            created_since=since, max_delete_fraction=config.max_delete_fraction)
                    except ReconcileRefused as error:
                        refused.append(str(error))
            if refused:
                raise ReconcileRefused("; ".join(refused) + f" (soft-deleted: {done})")
            return done

        for_each_account(context, shops, reconcile_shop)


@dg.job(name="shopify_cleanup", executor_def=dg.in_process_executor, tags={"sync/provider": PROVIDER},
        description="Reconcile deletes with Shopify: soft-delete what disappeared upstream.")
def cleanup_job():
    reconcile_deletes()
