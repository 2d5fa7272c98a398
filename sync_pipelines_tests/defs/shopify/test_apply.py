"""Applying stored deliveries: a bad one is set aside, deletes win over late creates, one
materialization per entity per run. Deliveries are written to the inbox directly (the receiver's
part is tested elsewhere); the apply job runs as the inbox sensor would launch it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg

from sync_pipelines.core import inbox
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.defs.shopify.management import plan
from sync_pipelines.defs.shopify.sensors import apply_job
from sync_pipelines.defs.shopify.webhooks import TOPICS

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def order(order_id, updated_at="2026-03-01T10:00:00Z", **fields):
    return {"id": order_id, "created_at": "2026-03-01T09:00:00Z", "updated_at": updated_at, **fields}


def deliver(conn, shop, topic, payload, triggered_at=T0):
    inbox_id, _ = inbox.append(conn, provider="shopify", account=shop, topic=topic,
                               delivery_id=f"{shop}-{topic}-{json.dumps(payload, sort_keys=True)}",
                               payload=payload, triggered_at=triggered_at)
    return inbox_id


def apply(instance, shop, up_to_id):
    config = {"ops": {"apply_shopify_webhooks": {"config": {"account": shop, "up_to_id": up_to_id}}}}
    return apply_job.execute_in_process(run_config=config, instance=instance,
                                        resources={"app_db": AppDatabase()})


def materializations(result, key):
    return [e.event_specific_data.materialization for e in result.all_events
            if e.event_type_value == "ASSET_MATERIALIZATION"
            and e.event_specific_data.materialization.asset_key == dg.AssetKey(["shopify", key])]


def test_a_delivery_that_cannot_be_applied_is_set_aside_not_blocking_the_queue(conn, unique):
    shop = f"apply-{unique}.myshopify.com"
    deliver(conn, shop, "orders/updated", order(1, updated_at="2026-03-01T10:00:00"))  # no UTC offset
    deliver(conn, shop, "orders/updated", {"id": "not-a-number", "updated_at": "2026-03-01T10:00:00Z"})
    deliver(conn, shop, "orders/updated", {"updated_at": "2026-03-01T10:00:00Z"})  # no id
    last = deliver(conn, shop, "orders/create", order(2))

    with dg.instance_for_test() as instance:
        result = apply(instance, shop, last)

    assert result.success
    assert conn.execute("SELECT array_agg(order_id) FROM shopify.orders WHERE account = %s", (shop,)).fetchone()[0] == [2]
    assert conn.execute("SELECT count(*) FROM sync.inbox WHERE account = %s AND processed_at IS NULL",
                        (shop,)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM sync.webhook_rejections WHERE account = %s AND reason = 'unapplicable'",
                        (shop,)).fetchone()[0] == 3
    (materialization,) = materializations(result, "orders")
    assert materialization.metadata["deliveries_set_aside"].value == 3
    assert materialization.metadata["records_inserted"].value == 1


def test_a_delete_before_its_create_keeps_the_record_deleted(conn, unique):
    shop = f"apply-{unique}.myshopify.com"
    deleted_at = datetime(2026, 3, 1, 10, 10, tzinfo=UTC)
    deliver(conn, shop, "orders/delete", {"id": 20}, triggered_at=deleted_at)
    with dg.instance_for_test() as instance:
        first = apply(instance, shop, deliver(conn, shop, "orders/delete", {"id": 21}, triggered_at=deleted_at))
        # The create (and an edit made before the delete) arrive late, e.g. as Shopify's retries.
        deliver(conn, shop, "orders/create", order(20))
        second = apply(instance, shop, deliver(conn, shop, "orders/updated", order(21, "2026-03-01T10:05:00Z")))
        # An edit made after the delete is a record that exists again.
        third = apply(instance, shop, deliver(conn, shop, "orders/updated", order(21, "2026-03-01T10:20:00Z")))

    assert first.success and second.success and third.success
    assert materializations(first, "orders")[0].metadata["tombstones_written"].value == 2
    rows = conn.execute("SELECT order_id, deleted_at FROM shopify.orders WHERE account = %s ORDER BY 1",
                        (shop,)).fetchall()
    assert rows == [(20, deleted_at), (21, None)]


def test_one_materialization_per_entity_per_run(conn, unique):
    shop = f"apply-{unique}.myshopify.com"
    deliver(conn, shop, "orders/create", order(1))
    deliver(conn, shop, "orders/create", order(2))
    with dg.instance_for_test() as instance:
        result = apply(instance, shop, deliver(conn, shop, "orders/delete", {"id": 1}))

    (materialization,) = materializations(result, "orders")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert (metadata["deliveries"], metadata["records_inserted"], metadata["records_deleted"]) == (3, 2, 1)


def test_update_keeps_the_subscription_already_at_our_address():
    ours, old = "https://receiver.example/webhooks/shopify", "https://old.example/hooks"
    existing = [{"id": 1, "topic": TOPICS[0], "address": old}, {"id": 2, "topic": TOPICS[0], "address": ours}]

    diff = plan(existing, ours)

    assert diff["wrong_address"] == [] and [h["id"] for h in diff["extra"]] == [1]
