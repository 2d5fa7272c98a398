"""Shopify incremental sync against the Admin API sandbox: statuses, boundaries, DST, throttling."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from sync_pipelines.core.entities import parse_instant
from sync_pipelines.defs.shopify import tables
from sync_pipelines.defs.shopify.assets import customers, daily_metrics, orders, products
from sync_pipelines_tests.helpers import metadata_by_asset

from .conftest import materialize

SYNCED = {"orders": (tables.ORDERS, "order_id"), "customers": (tables.CUSTOMERS, "customer_id"),
          "products": (tables.PRODUCTS, "product_id")}


def db_records(conn, shop, resource):
    table, key = SYNCED[resource]
    rows = conn.execute(f"SELECT {key}, raw FROM {table.fullname} WHERE account = %s", (shop,)).fetchall()
    return dict(rows)


def assert_in_step(conn, sandbox, shop, resources=tuple(SYNCED)):
    for resource in resources:
        source = {r["id"]: r for r in sandbox.records(shop, resource)}
        assert db_records(conn, shop, resource) == source, resource


def test_full_sync_includes_closed_and_cancelled_orders(shopify_sandbox, shopify_client, instance, add_shop, conn):
    shop = add_shop(orders=180, customers=60, products=40)
    shopify_sandbox.cancel_orders(shop, 5)
    shopify_sandbox.close_orders(shop, 5)
    result = materialize(instance, shop, shopify_client, [orders, customers, products])
    assert_in_step(conn, shopify_sandbox, shop)
    cancelled = conn.execute(
        "SELECT count(*) FROM shopify.orders WHERE account = %s AND cancelled_at IS NOT NULL", (shop,)
    ).fetchone()[0]
    assert cancelled >= 5
    meta = metadata_by_asset(result)
    assert meta["orders"]["records_inserted"] == 180
    assert meta["orders"]["api_calls"] == 4  # 50 per page


def test_incremental_rereads_only_the_overlap_and_writes_nothing(shopify_sandbox, shopify_client, instance, add_shop):
    shop = add_shop(orders=120)
    materialize(instance, shop, shopify_client, [orders])
    shopify_sandbox.advance(3600)
    meta = metadata_by_asset(materialize(instance, shop, shopify_client, [orders]))["orders"]
    assert meta["records_inserted"] == meta["records_updated"] == 0
    assert meta["api_calls"] == 1
    assert meta["records_fetched"] < 120


def test_changes_at_the_cursor_boundary_are_never_missed(shopify_sandbox, shopify_client, instance, add_shop, conn):
    shop = add_shop(orders=60)
    materialize(instance, shop, shopify_client, [orders])
    newest = max(shopify_sandbox.records(shop, "orders"), key=lambda o: parse_instant(o["updated_at"]))
    # Modified again within the same second as the stored cursor.
    touched = shopify_sandbox.touch_same_second(shop, "orders", newest["id"])
    assert touched["updated_at"] == newest["updated_at"]
    meta = metadata_by_asset(materialize(instance, shop, shopify_client, [orders]))["orders"]
    assert meta["records_updated"] == 1
    assert db_records(conn, shop, "orders")[newest["id"]] == shopify_sandbox.record(shop, "orders", newest["id"])


def test_updates_across_a_dst_change_compare_instants(shopify_sandbox, shopify_client, instance, add_shop, conn):
    shop = add_shop(orders=40)
    shopify_sandbox.set_clock(datetime(2026, 11, 1, 0, 59, 50, tzinfo=ZoneInfo("America/New_York")))
    shopify_sandbox.update_orders(shop, 1)
    materialize(instance, shop, shopify_client, [orders])
    # 01:30 EST (-05:00) is later than 01:59 EDT (-04:00) though it sorts earlier as a string.
    shopify_sandbox.set_clock(datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York")).replace(fold=1))
    second = shopify_sandbox.update_orders(shop, 2)
    assert shopify_sandbox.record(shop, "orders", second[0])["updated_at"].endswith("-05:00")
    meta = metadata_by_asset(materialize(instance, shop, shopify_client, [orders]))["orders"]
    assert meta["records_updated"] == len(second)
    assert_in_step(conn, shopify_sandbox, shop, ["orders"])
    cursor = conn.execute("SELECT value FROM sync.cursors WHERE stream = 'shopify/orders' AND account = %s",
                          (shop,)).fetchone()[0]
    assert parse_instant(cursor) == parse_instant(shopify_sandbox.record(shop, "orders", second[0])["updated_at"])


def test_a_429_storm_with_retry_after_zero_is_absorbed_without_a_hot_loop(shopify_sandbox, shopify_client, instance, add_shop, conn):
    shop = add_shop(orders=200)
    shopify_sandbox.fault_retry_after = "0"
    shopify_sandbox.faults.fail_next("429", 6)
    result = materialize(instance, shop, shopify_client, [orders])
    meta = metadata_by_asset(result)["orders"]
    assert meta["http_429s"] == 6
    assert meta["wait_seconds"] > 0  # backed off although Retry-After said 0
    assert db_records(conn, shop, "orders").keys() == {o["id"] for o in shopify_sandbox.records(shop, "orders")}


def test_the_leaky_bucket_keeps_a_tight_limit_without_failing(shopify_sandbox, shopify_client, instance, add_shop):
    shop = add_shop(orders=300)
    shopify_sandbox.set_rate_limit(shop, bucket_size=4, leak_per_second=20.0)
    result = materialize(instance, shop, shopify_client, [orders])
    assert result.success
    assert metadata_by_asset(result)["orders"]["records_inserted"] == 300


def test_daily_metrics_match_the_orders(shopify_sandbox, shopify_client, instance, add_shop, conn):
    shop = add_shop(orders=150, customers=40)
    shopify_sandbox.cancel_orders(shop, 10)
    materialize(instance, shop, shopify_client, [orders, customers])
    test_ids = [o["id"] for o in shopify_sandbox.records(shop, "orders")[20:25]]
    conn.execute("UPDATE shopify.orders SET raw = jsonb_set(raw, '{test}', 'true')"  # Shopify's test orders
                 " WHERE account = %s AND order_id = ANY(%s)", (shop, test_ids))
    materialize(instance, shop, shopify_client, [daily_metrics])
    expected: dict = {}
    first_day: dict = {}
    placed = [o for o in shopify_sandbox.records(shop, "orders") if o["id"] not in test_ids]  # count nowhere
    live = [o for o in placed if not o["cancelled_at"]]
    shop_zone = ZoneInfo("America/New_York")  # the sandbox shop's iana_timezone: days are local
    for o in placed:  # a customer's first order is their first, cancelled or not
        day = parse_instant(o["created_at"]).astimezone(shop_zone).date()
        cid = (o.get("customer") or {}).get("id")
        if cid:
            first_day[cid] = min(first_day.get(cid, day), day)
    for o in live:
        day = parse_instant(o["created_at"]).astimezone(shop_zone).date()
        entry = expected.setdefault(day, {"orders": 0, "revenue": 0.0, "new": set(), "returning": set()})
        entry["orders"] += 1
        entry["revenue"] += float(o["total_price"])
        cid = (o.get("customer") or {}).get("id")
        if cid:
            (entry["new"] if first_day[cid] == day else entry["returning"]).add(cid)
    rows = conn.execute(
        "SELECT day, orders, revenue, new_customers, returning_customers FROM shopify.daily_metrics"
        " WHERE account = %s", (shop,)).fetchall()
    assert {r[0] for r in rows} == set(expected)
    for day, n, revenue, new, returning in rows:
        e = expected[day]
        assert (n, new, returning) == (e["orders"], len(e["new"]), len(e["returning"]))
        assert float(revenue) == pytest.approx(e["revenue"])


def test_daily_cleanup_soft_deletes_what_disappeared_upstream(shopify_sandbox, shopify_client, instance, add_shop, conn):
    from sync_pipelines.core.dg.resources import AppDatabase
    from sync_pipelines.defs.shopify.cleanup import cleanup_job

    shop = add_shop(orders=60, customers=20, products=15)
    materialize(instance, shop, shopify_client, [orders, customers, products])
    gone_products = shopify_sandbox.delete_products(shop, 2)  # no webhook subscription: missed
    gone_orders = shopify_sandbox.delete_orders(shop, 3)
    # The sandbox lists every order, as Shopify does for an app with read_all_orders.
    config = {"ops": {"reconcile_deletes": {"config": {"shop": shop, "orders_window_days": None}}}}
    result = cleanup_job.execute_in_process(run_config=config, instance=instance,
                                            resources={"app_db": AppDatabase(), "shopify": shopify_client})
    assert result.success
    deleted = dict(conn.execute(
        "SELECT 'products', array_agg(product_id ORDER BY product_id) FROM shopify.products"
        " WHERE account = %(s)s AND deleted_at IS NOT NULL UNION ALL"
        " SELECT 'orders', array_agg(order_id ORDER BY order_id) FROM shopify.orders"
        " WHERE account = %(s)s AND deleted_at IS NOT NULL", {"s": shop}).fetchall())
    assert deleted == {"products": sorted(gone_products), "orders": sorted(gone_orders)}
    # Nothing else was touched: a second pass finds nothing more.
    cleanup_job.execute_in_process(run_config=config, instance=instance,
                                   resources={"app_db": AppDatabase(), "shopify": shopify_client})
    assert conn.execute("SELECT count(*) FROM shopify.products WHERE account = %s AND deleted_at IS NOT NULL",
                        (shop,)).fetchone()[0] == 2
