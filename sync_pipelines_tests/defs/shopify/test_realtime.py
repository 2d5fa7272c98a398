"""Webhooks end to end: sandbox sends signed deliveries → receiver → inbox → sensor → run → rows."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from sync_pipelines.core import inbox
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.defs.shopify.assets import orders, products
from sync_pipelines.defs.shopify.management import manage_webhooks_job, webhooks_health
from sync_pipelines.defs.shopify.sensors import apply_job, sensors
from sync_pipelines.defs.shopify.webhooks import TOPICS
from sync_pipelines.receiver.app import create_app
from sync_pipelines.sandbox.server import serve_in_thread

from .conftest import APP_SECRET, materialize

inbox_sensor = next(s for s in sensors if s.name == "shopify_inbox_sensor")


@pytest.fixture
def receiver(database_url):
    app = create_app(database_url, environ={"SHOPIFY_WEBHOOK_SECRET": APP_SECRET})
    with serve_in_thread(app) as running:
        yield running.url


def resources(client):
    return {"app_db": AppDatabase(), "shopify": client}


def register(instance, client, shop, address, action="register"):
    config = {"ops": {"manage_webhooks": {"config": {"action": action, "shop": shop, "address": address}}}}
    return manage_webhooks_job.execute_in_process(run_config=config, instance=instance, resources=resources(client))


def drain(instance, client, cursor=None):
    """One sensor tick, then every run it asks for; returns (run requests, new cursor)."""
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"app_db": AppDatabase()}) as context:
        result = inbox_sensor(context)
    for request in result.run_requests or []:
        outcome = apply_job.execute_in_process(
            run_config=request.run_config, instance=instance, tags=request.tags, resources=resources(client))
        assert outcome.success
    return result.run_requests or [], result.cursor


def test_webhooks_flow_to_rows_newest_wins_and_deletes_are_soft(
    shopify_sandbox, shopify_client, instance, add_shop, receiver, conn
):
    shop = add_shop(orders=20, customers=10, products=8)
    materialize(instance, shop, shopify_client, [orders, products])
    address = f"{receiver}/webhooks/shopify"
    assert register(instance, shopify_client, shop, address).success
    _, cursor = drain(instance, shopify_client)  # whatever earlier tests left

    order_id = shopify_sandbox.records(shop, "orders")[0]["id"]
    shopify_sandbox.reorder = True
    shopify_sandbox.duplicate_next(2)
    with shopify_sandbox.batch():
        shopify_sandbox.update_orders(shop, ids=[order_id])
        shopify_sandbox.advance(5)
        shopify_sandbox.update_orders(shop, ids=[order_id])  # newer; delivered first (reversed)
    shopify_sandbox.reorder = False
    cart = shopify_sandbox.cart_event(shop, "create")
    checkout = shopify_sandbox.checkout_event(shop, "create")
    deleted = shopify_sandbox.delete_products(shop, 1)[0]
    assert shopify_sandbox.flush(10)

    requests, cursor = drain(instance, shopify_client, cursor)
    assert [r.tags["sync/webhooks"] for r in requests] == ["shopify"]
    newest = shopify_sandbox.record(shop, "orders", order_id)
    assert conn.execute("SELECT raw FROM shopify.orders WHERE account = %s AND order_id = %s",
                        (shop, order_id)).fetchone()[0] == newest
    assert conn.execute("SELECT count(*) FROM shopify.carts WHERE account = %s AND cart_token = %s",
                        (shop, cart["token"])).fetchone()[0] == 1
    assert conn.execute("SELECT email FROM shopify.checkouts WHERE account = %s AND checkout_token = %s",
                        (shop, checkout["token"])).fetchone()[0] == checkout["email"]
    assert conn.execute("SELECT deleted_at IS NOT NULL FROM shopify.products WHERE account = %s AND product_id = %s",
                        (shop, deleted)).fetchone()[0]
    pending = conn.execute("SELECT count(*) FROM sync.inbox WHERE account = %s AND processed_at IS NULL",
                           (shop,)).fetchone()[0]
    duplicates = conn.execute("SELECT sum(duplicates) FROM sync.inbox WHERE account = %s", (shop,)).fetchone()[0]
    assert pending == 0 and duplicates == 2

    # Nothing new: the next tick asks for nothing; a re-run of the same batch changes nothing.
    again, _ = drain(instance, shopify_client, cursor)
    assert again == []
    outcome = apply_job.execute_in_process(run_config=requests[0].run_config, instance=instance,
                                           resources=resources(shopify_client))
    assert outcome.success

    stats = inbox.stats(conn, "shopify", since=datetime(2000, 1, 1, tzinfo=UTC))
    assert stats["processed"] >= 5 and stats["lag_p50_seconds"] is not None


def test_forged_delivery_is_refused_and_counted(shopify_sandbox, shopify_client, instance, add_shop, receiver, conn):
    shop = add_shop(orders=3)
    assert register(instance, shopify_client, shop, f"{receiver}/webhooks/shopify").success
    shopify_sandbox.sign_with = "not-the-app-secret"
    shopify_sandbox.update_orders(shop, 1)
    shopify_sandbox.flush(10)
    shopify_sandbox.sign_with = None
    assert all(d["status"] == 401 for d in shopify_sandbox.deliveries() if d["shop"] == shop)
    assert conn.execute("SELECT count(*) FROM sync.inbox WHERE account = %s", (shop,)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM sync.webhook_rejections WHERE reason = 'bad_signature'").fetchone()[0] >= 1


def test_subscription_management_and_health_check(shopify_sandbox, shopify_client, instance, add_shop, receiver, monkeypatch):
    shop = add_shop(orders=1)
    address = f"{receiver}/webhooks/shopify"
    monkeypatch.setenv("SYNC_RECEIVER_PUBLIC_URL", receiver)

    def health():
        result = dg.materialize([webhooks_health], instance=instance, resources=resources(shopify_client))
        checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
        problems = checks["subscriptions_match"].metadata["problems"].value
        return problems.get(shop)

    assert health() == {"missing": len(TOPICS)}
    assert register(instance, shopify_client, shop, address).success
    assert health() is None
    shopify_sandbox.subscribe(shop, "orders/create", "http://127.0.0.1:9/elsewhere")
    assert health() == {"extra": 1}
    assert register(instance, shopify_client, shop, address, action="update").success
    assert health() is None
    assert register(instance, shopify_client, shop, address, action="unregister").success
    assert health() == {"missing": len(TOPICS)}
