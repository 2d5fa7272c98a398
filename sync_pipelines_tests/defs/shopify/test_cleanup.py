"""Reconciliation safety: only rows the upstream listing covers, and never a mass delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.entities import row_builder
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.writer import UpsertWriter
from sync_pipelines.defs.shopify import tables
from sync_pipelines.defs.shopify.assets import customers, orders, products
from sync_pipelines.defs.shopify.cleanup import ReconcileRefused, cleanup_job, reconcile

from .conftest import materialize


def write_orders(conn, shop, created_days_ago: dict[int, int]):
    now = datetime.now(UTC)
    build = row_builder(tables.ORDERS)
    records = [{"id": i, "created_at": (now - timedelta(days=d)).isoformat(), "updated_at": now.isoformat()}
               for i, d in created_days_ago.items()]
    with conn.transaction():
        UpsertWriter(tables.ORDERS).write_batch(conn, [build(shop, r) for r in records])


def deleted_ids(conn, table, shop):
    key = "order_id" if table is tables.ORDERS else "product_id"
    return sorted(r[0] for r in conn.execute(
        f"SELECT {key} FROM {table.fullname} WHERE account = %s AND deleted_at IS NOT NULL", (shop,)))


def test_orders_older_than_the_listing_window_are_left_alone(conn, unique):
    """Without read_all_orders Shopify lists only the last 60 days of orders: the old ones are
    absent from the listing but not deleted."""
    shop = f"window-{unique}.myshopify.com"
    ensure_tables(conn, [tables.ORDERS])
    write_orders(conn, shop, {1: 400, 2: 200, 3: 90, 4: 30, 5: 10, 6: 1})
    listed_by_shopify = [4, 6]  # order 5 (10 days old) was deleted upstream
    since = datetime.now(UTC) - timedelta(days=59)
    assert reconcile(conn, shop, "orders", listed_by_shopify, created_since=since) == 1
    assert deleted_ids(conn, tables.ORDERS, shop) == [5]


def test_a_row_written_while_the_listing_runs_is_not_deleted(conn, unique):
    """A record created upstream after its page was listed can reach the table (webhook, sync)
    before the listing ends; its absence from the listing proves nothing."""
    shop = f"race-{unique}.myshopify.com"
    ensure_tables(conn, [tables.ORDERS])
    write_orders(conn, shop, {1: 5, 2: 5})

    def listing():
        yield from (1, 2)
        write_orders(conn, shop, {3: 0})  # arrives between the last page and the reconcile

    assert reconcile(conn, shop, "orders", listing()) == 0
    assert deleted_ids(conn, tables.ORDERS, shop) == []


@pytest.mark.parametrize("listed", [[], [1, 2]])
def test_a_listing_that_would_delete_most_rows_is_refused_and_deletes_nothing(conn, unique, listed):
    shop = f"empty-{unique}.myshopify.com"
    ensure_tables(conn, [tables.ORDERS])
    write_orders(conn, shop, {i: 5 for i in range(1, 6)})
    with pytest.raises(ReconcileRefused, match=f"soft-delete {5 - len(listed)} of 5 live rows"):
        reconcile(conn, shop, "orders", listed)
    assert deleted_ids(conn, tables.ORDERS, shop) == []
    assert reconcile(conn, shop, "orders", listed, max_delete_fraction=1.0) == 5 - len(listed)


def test_cleanup_job_refuses_a_mass_delete_and_reconciles_the_rest(
        shopify_sandbox, shopify_client, instance, add_shop, conn):
    shop = add_shop(orders=30, customers=10, products=10)
    materialize(instance, shop, shopify_client, [orders, customers, products])
    shopify_sandbox.delete_products(shop, 6)
    gone_order = shopify_sandbox.delete_orders(shop, 1)
    config = {"ops": {"reconcile_deletes": {"config": {"shop": shop, "orders_window_days": None}}}}
    resources = {"app_db": AppDatabase(), "shopify": shopify_client}

    result = cleanup_job.execute_in_process(run_config=config, instance=instance, resources=resources,
                                            raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = str(failure.event_specific_data.error)
    assert shop in message and "products: the listing would soft-delete 6 of 10 live rows" in message
    assert deleted_ids(conn, tables.PRODUCTS, shop) == []
    assert deleted_ids(conn, tables.ORDERS, shop) == gone_order  # other resources still reconciled


def test_cleanup_job_lists_and_reconciles_only_recent_orders_by_default(
        shopify_sandbox, shopify_client, instance, add_shop, conn):
    shop = add_shop(orders=20, customers=5, products=5)  # history ends in mid-2025
    recent = shopify_sandbox.add_orders(shop, 3)  # created now
    materialize(instance, shop, shopify_client, [orders])
    old = min(o["id"] for o in shopify_sandbox.records(shop, "orders"))
    shopify_sandbox.delete_orders(shop, ids=[old, recent[0]])
    config = {"ops": {"reconcile_deletes": {"config": {"shop": shop}}}}
    result = cleanup_job.execute_in_process(run_config=config, instance=instance,
                                            resources={"app_db": AppDatabase(), "shopify": shopify_client})
    assert result.success
    assert deleted_ids(conn, tables.ORDERS, shop) == [recent[0]]  # the old order is outside the window


def test_cleanup_job_reconciles_shopify_and_leaves_the_inbox_to_operations(
        shopify_sandbox, shopify_client, instance, add_shop, conn):
    """Purging every provider's inbox is the operations `inbox_retention` job, not Shopify's."""
    from sync_pipelines.core import inbox

    shop = add_shop(orders=3, customers=1, products=1)
    ensure_tables(conn, inbox.TABLES)
    old, _ = inbox.append(conn, provider="shopify", account=shop, topic="orders/create",
                          delivery_id=f"old-{shop}", payload={"id": 1})
    conn.execute("UPDATE sync.inbox SET processed_at = now() - interval '30 days' WHERE id = %s", (old,))
    inbox.record_rejection(conn, "shopify", "bad_signature", shop)
    conn.execute("UPDATE sync.webhook_rejections SET received_at = now() - interval '30 days' WHERE account = %s",
                 (shop,))
    config = {"ops": {"reconcile_deletes": {"config": {"shop": shop}}}}
    result = cleanup_job.execute_in_process(run_config=config, instance=instance,
                                            resources={"app_db": AppDatabase(), "shopify": shopify_client})
    assert result.success
    assert conn.execute("SELECT count(*) FROM sync.inbox WHERE id = %s", (old,)).fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM sync.webhook_rejections WHERE account = %s",
                        (shop,)).fetchone()[0] == 1
