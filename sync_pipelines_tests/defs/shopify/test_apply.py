"""Applying stored deliveries: a bad one is set aside, deletes win over late creates, one
materialization per entity per run. Deliveries are written to the inbox directly (the receiver's
part is tested elsewhere); the apply job runs as the inbox sensor would launch it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg
import pytest

from sync_pipelines.core import inbox
from sync_pipelines.core.dg.realtime import apply_request
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.dg.status import render_table, status_report
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
    config = {"ops": {"apply_shopify_webhooks": {"config": {"accounts": [shop], "up_to_id": up_to_id}}}}
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


# -- a delivery that cannot be applied never blocks the ones after it ---------------------------
# Each kind of bad delivery: (topic, payload). `n` keeps two bad deliveries of one run distinct.
BAD = {
    "unparsable_id": lambda n: ("orders/updated", {"id": "not-a-number", "updated_at": "2026-03-01T10:00:00Z",
                                                    "n": n}),  # refused by the database
    "object_as_id": lambda n: ("orders/updated", order({"nested": n})),
    "list_as_id": lambda n: ("orders/updated", order([n, n])),
    "object_in_text_column": lambda n: ("orders/updated", order(900 + n, name={"first": "Ada", "n": n})),
    "list_in_number_column": lambda n: ("orders/updated", order(950 + n, total_price=[1, n])),
    "delete_id_is_a_list": lambda n: ("orders/delete", {"id": [n, 2]}),
    "delete_id_is_an_object": lambda n: ("orders/delete", {"id": {"nested": n}}),
    "delete_id_is_a_boolean": lambda n: ("orders/delete", {"id": True, "n": n}),
}


def _apply_pattern(conn, unique, pattern, bad_kind):
    """Deliver good (G) and bad (B) deliveries in `pattern` order, apply them in one run."""
    shop = f"order-{unique}.myshopify.com"
    good_ids, bad_inbox_ids, last = [], [], None
    for n, kind in enumerate(pattern):
        if kind == "G":
            good_ids.append(100 + n)
            last = deliver(conn, shop, "orders/create", order(100 + n))
        else:
            topic, payload = BAD[bad_kind](n)
            last = deliver(conn, shop, topic, payload)
            bad_inbox_ids.append(last)
    with dg.instance_for_test() as instance:
        result = apply(instance, shop, last)
    return shop, result, good_ids, bad_inbox_ids


def _assert_set_aside(conn, shop, result, good_ids, bad_inbox_ids):
    assert result.success
    stored = conn.execute("SELECT order_id FROM shopify.orders WHERE account = %s AND deleted_at IS NULL"
                          " ORDER BY 1", (shop,)).fetchall()
    assert [r[0] for r in stored] == good_ids
    assert conn.execute("SELECT count(*) FROM sync.inbox WHERE account = %s AND processed_at IS NULL",
                        (shop,)).fetchone()[0] == 0
    # Kept (the inbox row stays, marked with why) and counted where the health report reads rejections.
    kept = conn.execute("SELECT id FROM sync.inbox WHERE account = %s AND set_aside IS NOT NULL ORDER BY id",
                        (shop,)).fetchall()
    assert [r[0] for r in kept] == bad_inbox_ids
    assert conn.execute("SELECT count(*) FROM sync.webhook_rejections WHERE account = %s AND reason = 'unapplicable'",
                        (shop,)).fetchone()[0] == len(bad_inbox_ids)
    stats = inbox.stats(conn, "shopify", since=T0)
    assert stats["rejected_by_reason"]["unapplicable"] >= len(bad_inbox_ids)
    assert stats["set_aside"] >= len(bad_inbox_ids)
    (materialization,) = materializations(result, "orders")
    assert materialization.metadata["deliveries_set_aside"].value == len(bad_inbox_ids)
    assert materialization.metadata["set_aside_inbox_ids"].value == bad_inbox_ids


@pytest.mark.parametrize("bad_kind", ["unparsable_id", "object_in_text_column"])
@pytest.mark.parametrize("pattern", ["B", "BG", "GB", "BGG", "GBG", "GGB", "BBG", "GBB", "BGB"])
def test_every_order_of_good_and_bad_deliveries_applies_the_good_ones(conn, unique, pattern, bad_kind):
    shop, result, good_ids, bad_inbox_ids = _apply_pattern(conn, unique, pattern, bad_kind)
    _assert_set_aside(conn, shop, result, good_ids, bad_inbox_ids)


@pytest.mark.parametrize("bad_kind", sorted(BAD))
def test_every_kind_of_bad_delivery_is_set_aside(conn, unique, bad_kind):
    shop, result, good_ids, bad_inbox_ids = _apply_pattern(conn, unique, "GBG", bad_kind)
    _assert_set_aside(conn, shop, result, good_ids, bad_inbox_ids)


def test_a_shop_with_a_set_aside_delivery_keeps_applying_later_ones(conn, unique):
    shop, first, _, _ = _apply_pattern(conn, unique, "GBG", "unparsable_id")
    with dg.instance_for_test() as instance:
        later = apply(instance, shop, deliver(conn, shop, "orders/create", order(7)))
    assert first.success and later.success
    assert conn.execute("SELECT count(*) FROM shopify.orders WHERE account = %s AND order_id = 7",
                        (shop,)).fetchone()[0] == 1


def test_set_aside_deliveries_are_counted_in_the_status_report(conn, unique):
    shop = f"status-{unique}.myshopify.com"
    deliver(conn, shop, "orders/create", order(1))
    deliver(conn, shop, "orders/delete", {"id": {"nested": 1}})
    deliver(conn, shop, "orders/updated", order(2, name=["not", "text"]))
    request = apply_request("shopify", f"test:{unique}", accounts=[shop])
    with dg.instance_for_test() as instance:
        assert apply_job.execute_in_process(  # tagged as the inbox sensor tags its runs
            run_config=request.run_config, instance=instance, resources={"app_db": AppDatabase()},
            tags=request.tags).success
        (row,) = [r for r in status_report(instance, days=1, provider="shopify")]
        table = render_table([row], datetime.now(UTC))
    assert (row.kind, row.account, row.records_written, row.deliveries_set_aside) == ("webhooks", "", 1, 2)
    assert "| shopify | (all accounts) | webhooks |" in table and "2 deliveries set aside" in table
