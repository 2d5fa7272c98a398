"""ShipStation end to end: sandbox → client → sync core → embedded PostgreSQL, through Dagster."""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg

from sync_pipelines.core.entities import parse_instant
from sync_pipelines.defs.shipstation import tables
from sync_pipelines.defs.shipstation.assets import products as products_asset
from sync_pipelines.defs.shipstation.client import ShipStationClient

from sync_pipelines_tests.helpers import metadata_by_asset

from .conftest import materialize

TABLES = {
    "warehouses": (tables.WAREHOUSES, ("warehouse_id",)),
    "inventory_warehouses": (tables.INVENTORY_WAREHOUSES, ("inventory_warehouse_id",)),
    "inventory_locations": (tables.INVENTORY_LOCATIONS, ("inventory_location_id",)),
    "products": (tables.PRODUCTS, ("product_id",)),
    "inventory": (tables.INVENTORY, ("sku", "inventory_warehouse_id", "inventory_location_id")),
}


def db_records(conn, account: str, entity: str) -> dict[tuple, dict]:
    table, key = TABLES[entity]
    rows = conn.execute(
        f"SELECT {', '.join(key)}, raw FROM {table.fullname} WHERE account = %s AND deleted_at IS NULL", (account,)
    ).fetchall()
    return {tuple(str(v) for v in row[:-1]): row[-1] for row in rows}


def source_records(sandbox, api_key: str, entity: str) -> dict[tuple, dict]:
    _, key = TABLES[entity]
    records = getattr(sandbox.store(api_key), entity)
    # Through JSON, exactly as the API serves them.
    return {tuple(str(r[k]) for k in key): json.loads(json.dumps(r)) for r in records}


def assert_in_step(conn, sandbox, account, api_key):
    for entity in TABLES:
        assert db_records(conn, account, entity) == source_records(sandbox, api_key, entity), entity


def test_full_sync_equals_sandbox_in_every_field(sandbox, client, instance, add_store, conn):
    account, api_key = add_store(products=250)
    result = materialize(instance, account, client)
    assert result.success
    assert_in_step(conn, sandbox, account, api_key)

    product = sandbox.store(api_key).products[0]
    typed = conn.execute(
        "SELECT sku, name, price_amount, price_currency, modify_date, source_updated_at"
        " FROM shipstation.products WHERE account = %s AND product_id = %s",
        (account, product["product_id"]),
    ).fetchone()
    assert typed[0] == product["sku"] and typed[1] == product["name"]
    assert float(typed[2]) == product["price"]["amount"] and typed[3] == product["price"]["currency"]
    assert typed[4] == typed[5] == parse_instant(product["modify_date"])

    meta = metadata_by_asset(result)
    assert meta["products"]["records_fetched"] == 250
    assert meta["products"]["records_inserted"] == 250
    assert meta["products"]["dagster/row_count"] == 250
    assert meta["inventory"]["records_inserted"] == len(sandbox.store(api_key).inventory)
    assert meta["products"]["api_calls"] == 3  # 100 per page


def test_second_run_without_changes_writes_nothing_and_makes_minimum_calls(sandbox, client, instance, add_store):
    account, _ = add_store(products=250)
    assert materialize(instance, account, client).success
    second = metadata_by_asset(materialize(instance, account, client))
    for entity, meta in second.items():
        assert meta["records_inserted"] == 0 and meta["records_updated"] == 0, entity
    # No modified-since filter in v2: one call per page is the minimum, and no retries.
    assert second["products"]["api_calls"] == 3
    assert second["warehouses"]["api_calls"] == 1
    assert second["products"]["cursor_before"] != "none"
    # A full listing goes through the upsert whole (its change guard skips what is identical):
    # nothing is skipped by the cursor, since an offset-paged listing can shift mid-scan.
    assert second["products"]["records_unchanged"] == 250
    assert second["products"]["records_skipped_before_cursor"] == 0


def test_a_record_missed_by_an_earlier_scan_is_written_though_older_than_the_cursor(
        sandbox, client, instance, add_store, conn):
    """A delete upstream between two page reads shifts the offsets, so one scan can miss a record
    it should have read; the next scan lists it, older than the cursor, and must write it."""
    account, api_key = add_store(products=250)
    assert materialize(instance, account, client, assets=[products_asset]).success
    cursor = parse_instant(conn.execute(
        "SELECT value FROM sync.cursors WHERE stream = 'shipstation/products' AND account = %s",
        (account,)).fetchone()[0])
    missed = [p["product_id"] for p in sandbox.store(api_key).products
              if parse_instant(p["modify_date"]) < cursor - timedelta(days=1)][:3]
    assert len(missed) == 3
    with conn.transaction():  # as if the earlier scan had never seen them
        conn.execute("DELETE FROM shipstation.products WHERE account = %s AND product_id = ANY(%s)",
                     (account, missed))

    meta = metadata_by_asset(materialize(instance, account, client, assets=[products_asset]))["products"]
    assert (meta["records_inserted"], meta["records_updated"]) == (3, 0)
    assert db_records(conn, account, "products") == source_records(sandbox, api_key, "products")


def test_changed_and_new_records_are_exactly_what_is_written(sandbox, client, instance, add_store, conn):
    account, api_key = add_store(products=300)
    assert materialize(instance, account, client).success
    updated = sandbox.update_products(api_key, 7)
    stock = sandbox.update_inventory(api_key, 5)  # before adding, so only existing rows change
    added = sandbox.add_products(api_key, 3)
    assert len(updated) == 7 and len(added) == 3 and len(stock) == 5

    meta = metadata_by_asset(materialize(instance, account, client))
    assert (meta["products"]["records_updated"], meta["products"]["records_inserted"]) == (7, 3)
    assert (meta["inventory"]["records_updated"], meta["inventory"]["records_inserted"]) == (5, 3)
    assert_in_step(conn, sandbox, account, api_key)


def test_products_deleted_upstream_are_soft_deleted_and_come_back_when_listed_again(
        sandbox, client, instance, add_store, conn):
    account, api_key = add_store(products=120)
    assert materialize(instance, account, client).success
    deleted = sandbox.delete_products(api_key, 4)

    meta = metadata_by_asset(materialize(instance, account, client))
    assert (meta["products"]["records_deleted"], meta["inventory"]["records_deleted"]) == (4, 4)
    assert meta["products"]["records_inserted"] == meta["products"]["records_updated"] == 0
    assert_in_step(conn, sandbox, account, api_key)  # live rows = what ShipStation lists
    marked = conn.execute("SELECT product_id FROM shipstation.products WHERE account = %s AND deleted_at IS NOT NULL"
                          " ORDER BY 1", (account,)).fetchall()
    assert [r[0] for r in marked] == sorted(deleted)

    # Listed again (a restore upstream, or a record an earlier listing only missed): revived.
    store = sandbox.store(api_key)
    with sandbox._lock:
        restored = dict(conn.execute("SELECT raw FROM shipstation.products WHERE account = %s AND product_id = %s",
                                     (account, deleted[0])).fetchone()[0])
        store.products.append(restored)
        store._version += 1
    again = metadata_by_asset(materialize(instance, account, client, assets=[products_asset]))["products"]
    assert (again["records_updated"], again["records_deleted"]) == (1, 0)
    assert db_records(conn, account, "products") == source_records(sandbox, api_key, "products")


def test_two_stores_are_isolated(sandbox, client, instance, add_store, conn):
    first, first_key = add_store("north", products=150)
    second, second_key = add_store("south", products=90)
    assert materialize(instance, first, client).success
    assert materialize(instance, second, client).success
    assert_in_step(conn, sandbox, first, first_key)
    assert_in_step(conn, sandbox, second, second_key)
    sandbox.update_products(first_key, 4)
    meta = metadata_by_asset(materialize(instance, second, client))
    assert meta["products"]["records_updated"] == 0


def test_429_and_5xx_bursts_are_absorbed(sandbox, client, instance, add_store, conn):
    account, api_key = add_store(products=200)
    sandbox.faults.fail_next("429", 4)
    result = materialize(instance, account, client, assets=[products_asset])
    assert result.success
    meta = metadata_by_asset(result)["products"]
    assert meta["http_429s"] == 4 and meta["retries"] >= 4

    sandbox.faults.fail_next("503", 4)
    result = materialize(instance, account, client, assets=[products_asset])
    assert result.success
    assert metadata_by_asset(result)["products"]["http_5xx"] == 4
    assert db_records(conn, account, "products") == source_records(sandbox, api_key, "products")


def test_invalid_credentials_fail_clearly_without_retries(sandbox, client, instance, add_store, monkeypatch):
    account, _ = add_store(products=10)
    env_var = f"SHIPSTATION_TEST_KEY_{account.upper().replace('-', '_')}"
    monkeypatch.setenv(env_var, "wrong-key-123")
    result = materialize(instance, account, client, assets=[products_asset], raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert len(failures) == 1
    message = str(failures[0].event_specific_data.error.message) + str(failures[0].event_specific_data.error)
    assert "shipstation" in message and account in message and "401" in message
    assert "wrong-key-123" not in message
    restarts = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_RESTARTED]
    assert restarts == []


def test_truncated_json_is_retried_then_fails_loudly_if_persistent(sandbox, client, instance, add_store):
    account, _ = add_store(products=150)
    sandbox.faults.fail_next("truncated", 1)
    result = materialize(instance, account, client, assets=[products_asset])
    assert metadata_by_asset(result)["products"]["malformed_pages"] == 1

    sandbox.faults.rate_truncated_json = 1.0
    result = materialize(instance, account, client, assets=[products_asset], raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "MalformedResponseError" in str(failure.event_specific_data.error)
    assert account in str(failure.event_specific_data.error)


def test_missing_credentials_env_var_names_it(sandbox, client, instance, add_store, monkeypatch):
    account, _ = add_store(products=5)
    env_var = f"SHIPSTATION_TEST_KEY_{account.upper().replace('-', '_')}"
    monkeypatch.delenv(env_var)
    result = materialize(instance, account, client, assets=[products_asset], raise_on_error=False)
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert env_var in str(failure.event_specific_data.error)


def test_one_content_asset_failing_never_stops_its_sibling(sandbox, instance, add_store, conn):
    account, api_key = add_store(products=120)
    # page_size 101 is over /v2/products' maximum (400), while /v2/inventory accepts limit=101.
    client = ShipStationClient(base_url=sandbox.url, requests_per_minute=None, page_size=101)
    result = materialize(instance, account, client, raise_on_error=False)
    assert not result.success
    failed = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE}
    assert failed == {"shipstation__products"}
    assert db_records(conn, account, "inventory") == source_records(sandbox, api_key, "inventory")
