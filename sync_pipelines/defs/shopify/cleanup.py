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

from sync_pipelines.core.database import ensure_tables, qualified
from sync_pipelines.core.registry import Account, list_accounts
from sync_pipelines.core.dg.resources import AppDatabase, for_each_account
from sync_pipelines.defs.shopify import tables
from sync_pipelines.defs.shopify.client import PROVIDER, ShopifyClient

RECONCILED = {"orders": tables.ORDERS, "customers": tables.CUSTOMERS, "products": tables.PRODUCTS}


class ReconcileRefused(Exception):
    """The listing would soft-delete too large a share of the rows; nothing was deleted."""


def reconcile(conn: psycopg.Connection, account: str, resource: str, upstream_ids, *,
              created_since: datetime | None = None, max_delete_fraction: float = 0.5) -> int:
    """Soft-delete the account's rows of `resource` whose id is not in `upstream_ids`, among the
    rows that listing covers: present before it began and, with `created_since`, created at or
    after it. Raises ReconcileRefused, deleting nothing, above `max_delete_fraction` of them."""
    table = RECONCILED[resource]
    # A row written while the listing runs may be a record created after its page was read.
    listing_started = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    # The full listing first: a listing that fails half-way must never delete anything, and the
    # transaction should not stay open across hundreds of rate-limited calls.
    upstream_ids = list(upstream_ids)
    key = [k for k in (c.name for c in table.primary_key.columns) if k != "account"][0]
    scope = sql.SQL("account = %(account)s AND deleted_at IS NULL AND synced_at < %(started)s")
    params = {"account": account, "started": listing_started}
    if created_since is not None:
        scope += sql.SQL(" AND created_at >= %(created_since)s")
        params["created_since"] = created_since
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE _upstream_ids (id bigint PRIMARY KEY) ON COMMIT DROP")
        with conn.cursor().copy("COPY _upstream_ids (id) FROM STDIN") as copy:
            for record_id in upstream_ids:
                copy.write_row((record_id,))
        live = conn.execute(
            sql.SQL("SELECT count(*) FROM {t} WHERE {scope}").format(t=qualified(table), scope=scope), params
        ).fetchone()[0]
        deleted = conn.execute(
            sql.SQL(
                "UPDATE {t} SET deleted_at = now(), synced_at = now() WHERE {scope}"
                " AND NOT EXISTS (SELECT 1 FROM _upstream_ids u WHERE u.id = {t}.{k})"
            ).format(t=qualified(table), scope=scope, k=sql.Identifier(key)),
            params,
        ).rowcount
        if deleted > max_delete_fraction * live:
            raise ReconcileRefused(  # rolls the UPDATE back
                f"{resource}: the listing would soft-delete {deleted} of {live} live rows (more than"
                f" {max_delete_fraction:.0%}); nothing deleted — an incomplete listing is likelier than a"
                f" mass delete (raise max_delete_fraction to confirm one)")
        return deleted


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
