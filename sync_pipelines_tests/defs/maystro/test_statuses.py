"""maystro.statuses on the real database: mapping (unknown codes kept raw), only changed rows
written, history with its source, batches, matching through an index, webhook idempotence."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg

import pytest

from sync_pipelines.defs.maystro.statuses import (
    OrderMatching,
    apply_statuses,
    apply_webhook_status,
    list_statuses,
    set_status,
)

NOWHERE = OrderMatching(table="no_such_schema.no_such_orders")


def order(n: int, status, **fields) -> dict:
    return {"id": f"m-{n}", "instance_uuid": f"m-{n}", "display_id": str(50000 + n), "external_order_id": f"REF-{n}",
            "tracking_number": f"TRK-{n}", "status": status, "customer_name": f"Customer {n}",
            "last_update": "2026-01-02T10:00:00+01:00", **fields}


def shipments(conn, account) -> dict[str, tuple]:
    rows = conn.execute("SELECT maystro_id, status_code, status_raw, status_label, status, status_known,"
                        " matched_reference, customer_name, synced_at FROM maystro.shipments WHERE account = %s",
                        (account,)).fetchall()
    return {r[0]: r[1:] for r in rows}


def history(conn, account) -> list[tuple]:
    return conn.execute("SELECT maystro_id, old_code, new_code, new_status_raw, status, source FROM"
                        " maystro.status_history WHERE account = %s ORDER BY id", (account,)).fetchall()


def test_codes_are_mapped_and_an_unknown_one_is_kept_raw_flagged_and_counted(conn, unique):
    account = f"st-{unique}"
    counts = apply_statuses(conn, account, [order(1, 41), order(2, 50), order(3, 99), order(4, "PERDU")],
                            source="poll", matching=NOWHERE)
    assert (counts.read, counts.new, counts.changed, counts.unknown) == (4, 4, 0, 2)
    rows = shipments(conn, account)
    assert rows["m-1"][:5] == (41, "41", "LIVRÉ", "DELIVERED", True)
    assert rows["m-2"][:5] == (50, "50", "ANNULÉ", "CANCELLED", True)
    assert rows["m-3"][:5] == (99, "99", None, None, False)
    assert rows["m-4"][:5] == (None, "PERDU", None, None, False)
    assert sorted(history(conn, account)) == [("m-1", None, 41, "41", "DELIVERED", "poll"),
                                      ("m-2", None, 50, "50", "CANCELLED", "poll"),
                                      ("m-3", None, 99, "99", None, "poll"),
                                      ("m-4", None, None, "PERDU", None, "poll")]


def test_only_shipments_whose_status_changed_are_written(conn, unique):
    account = f"ch-{unique}"
    apply_statuses(conn, account, [order(1, 9), order(2, 9), order(3, 9)], source="poll", matching=NOWHERE)
    before = shipments(conn, account)
    again = apply_statuses(conn, account, [order(1, 9, customer_name="Renamed"), order(2, 9), order(3, 9)],
                           source="poll", matching=NOWHERE)
    assert (again.new, again.changed, again.unchanged) == (0, 0, 3)
    assert shipments(conn, account) == before  # not even synced_at moved
    changed = apply_statuses(conn, account, [order(1, 9), order(2, 41, customer_name="New name"), order(3, 9)],
                             source="poll", matching=NOWHERE)
    assert (changed.new, changed.changed, changed.unchanged) == (0, 1, 2)
    after = shipments(conn, account)
    assert after["m-1"] == before["m-1"] and after["m-3"] == before["m-3"]
    assert after["m-2"][:4] == (41, "41", "LIVRÉ", "DELIVERED") and after["m-2"][6] == "New name"
    assert history(conn, account)[-1] == ("m-2", 9, 41, "41", "DELIVERED", "poll")
    assert len(history(conn, account)) == 4


def test_a_code_added_to_the_map_maps_the_next_change(conn, unique):
    account = f"map-{unique}"
    code = 1000 + int(unique, 16) % 100000
    apply_statuses(conn, account, [order(1, code)], source="poll", matching=NOWHERE)
    assert shipments(conn, account)["m-1"][4] is False
    set_status(conn, code, "PERDU EN ROUTE", "LOST")
    assert (code, "PERDU EN ROUTE", "LOST") in list_statuses(conn)
    apply_statuses(conn, account, [order(2, code)], source="poll", matching=NOWHERE)
    assert shipments(conn, account)["m-2"][2:5] == ("PERDU EN ROUTE", "LOST", True)


def test_writes_go_in_batches_of_100_one_transaction_each(conn, unique):
    account = f"b-{unique}"
    counts = apply_statuses(conn, account, [order(n, 4) for n in range(250)], source="poll", matching=NOWHERE)
    assert (counts.batches, counts.new) == (3, 250)
    sizes = [r[0] for r in conn.execute(
        "SELECT count(*) FROM maystro.shipments WHERE account = %s GROUP BY xmin::text ORDER BY 1",
        (account,))]
    assert sizes == [50, 100, 100]  # each batch written by one transaction


def test_a_record_repeated_by_a_shifting_listing_is_applied_once(conn, unique):
    account = f"dup-{unique}"
    counts = apply_statuses(conn, account, [order(1, 4), order(1, 4), order(2, 4)], source="poll", matching=NOWHERE)
    assert (counts.read, counts.new, counts.unchanged) == (3, 2, 0)
    assert len(history(conn, account)) == 2


@pytest.fixture
def our_orders(conn, unique):
    schema = f"shop_{unique}"
    conn.execute(f'CREATE SCHEMA "{schema}"')
    conn.execute(f'CREATE TABLE "{schema}".orders (id bigint, reference text, tracking text, maystro_display bigint)')
    conn.execute(f"""INSERT INTO "{schema}".orders VALUES (1, 'REF-1', NULL, NULL), (2, 'OURS-2', 'TRK-2', NULL),
                     (3, 'OURS-3', NULL, 50003)""")
    yield f"{schema}.orders"
    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_matching_by_reference_then_display_id_then_tracking_through_an_index(conn, unique, our_orders):
    account = f"mt-{unique}"
    matching = OrderMatching(table=our_orders, display_id_column="maystro_display", tracking_column="tracking")
    counts = apply_statuses(conn, account, [order(n, 6) for n in (1, 2, 3, 4)], source="poll", matching=matching)
    assert (counts.matched, counts.unmatched) == (3, 1)
    rows = shipments(conn, account)
    assert {k: v[5] for k, v in rows.items()} == {"m-1": "REF-1", "m-2": "OURS-2", "m-3": "OURS-3", "m-4": None}
    schema = our_orders.split(".")[0]
    indexed = {r[0] for r in conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
        " WHERE i.indrelid = %s::regclass", (f'"{schema}".orders',))}
    assert indexed == {"reference", "tracking", "maystro_display"}
    # An order of ours synced later is matched on the next poll, although the status did not change.
    conn.execute(f"INSERT INTO {our_orders} VALUES (4, 'REF-4', NULL, NULL)")
    again = apply_statuses(conn, account, [order(4, 6)], source="poll", matching=matching)
    assert (again.changed, again.matched) == (0, 1)
    assert shipments(conn, account)["m-4"][5] == "REF-4"


def test_first_polls_of_many_stores_at_once_create_the_match_index_once(database_url, conn, unique, our_orders):
    """Batch runs poll stores in parallel threads: each first poll finds no index on the orders
    table; without the DDL lock two `CREATE INDEX IF NOT EXISTS` race and one fails with a
    catalog UniqueViolation (seen in CI)."""
    matching = OrderMatching(table=our_orders)
    threads, barrier, errors = 12, threading.Barrier(12), []

    def first_poll(n: int) -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as own:
                barrier.wait()
                apply_statuses(own, f"race{n}-{unique}", [order(1, 6)], source="poll", matching=matching)
        except Exception as exc:  # noqa: BLE001 - every thread's failure is reported below
            errors.append(exc)

    for _ in range(20):  # each round on a table without the index again
        conn.execute(f'DROP INDEX IF EXISTS "{our_orders.split(".")[0]}".orders_reference_maystro_match')
        workers = [threading.Thread(target=first_poll, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        barrier.reset()
    assert errors == []
    schema = our_orders.split(".")[0]
    assert conn.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND tablename = 'orders'",
                        (schema,)).fetchone()[0] == 1


def test_polls_and_webhooks_match_the_way_the_environment_says(conn, unique, our_orders, monkeypatch):
    monkeypatch.setenv("MAYSTRO_MATCH_TABLE", our_orders)
    monkeypatch.setenv("MAYSTRO_MATCH_TRACKING_COLUMN", "tracking")
    monkeypatch.setenv("MAYSTRO_MATCH_REFERENCE_COLUMN", "reference")
    account = f"env-{unique}"
    polled = apply_statuses(conn, account, [order(1, 6), order(2, 6), order(3, 6)], source="poll")
    assert (polled.matched, polled.unmatched) == (2, 1)  # REF-1 by reference, TRK-2 by tracking; 3 has neither
    assert {k: v[5] for k, v in shipments(conn, account).items()} == {"m-1": "REF-1", "m-2": "OURS-2", "m-3": None}
    monkeypatch.setenv("MAYSTRO_MATCH_DISPLAY_ID_COLUMN", "maystro_display")
    hooked = apply_webhook_status(conn, account, {"id": "m-3", "status": 8, "display_id_order": "50003"},
                                  datetime.now(UTC))
    assert hooked.matched == 1 and shipments(conn, account)["m-3"][5] == "OURS-3"


def test_a_bad_matching_setting_names_its_variable(conn, unique, monkeypatch):
    monkeypatch.setenv("MAYSTRO_MATCH_TABLE", "orders; drop table x")
    with pytest.raises(ValueError, match="MAYSTRO_MATCH_TABLE='orders; drop table x'"):
        apply_statuses(conn, f"bad-{unique}", [order(1, 4)], source="poll")
    assert shipments(conn, f"bad-{unique}") == {}


def test_matching_can_be_limited_to_the_account_s_own_orders(conn, unique, our_orders):
    conn.execute(f"ALTER TABLE {our_orders} ADD COLUMN account text")
    conn.execute(f"UPDATE {our_orders} SET account = 'north-{unique}' WHERE reference = 'REF-1'")
    matching = OrderMatching(table=our_orders, account_column="account")
    north = apply_statuses(conn, f"north-{unique}", [order(1, 6)], source="poll", matching=matching)
    south = apply_statuses(conn, f"south-{unique}", [order(1, 6)], source="poll", matching=matching)
    assert (north.matched, south.matched) == (1, 0)


def test_a_missing_orders_table_means_no_matches(conn, unique):
    counts = apply_statuses(conn, f"nm-{unique}", [order(1, 4)], source="poll", matching=NOWHERE)
    assert (counts.matched, counts.unmatched, counts.new) == (0, 1, 1)


@pytest.mark.parametrize("table, column", [("orders", "reference"), ("a.b; drop table x", "reference"),
                                           ("a.b", "ref erence")])
def test_matching_names_are_validated(table, column):
    with pytest.raises(ValueError):
        OrderMatching(table=table, reference_column=column)


def test_source_is_poll_or_webhook(conn, unique):
    with pytest.raises(ValueError):
        apply_statuses(conn, f"s-{unique}", [order(1, 4)], source="cron", matching=NOWHERE)


def test_a_webhook_updates_the_status_once_and_keeps_the_listing_fields(conn, unique):
    account = f"wh-{unique}"
    apply_statuses(conn, account, [order(1, 31)], source="poll", matching=NOWHERE)
    payload = {"status": 41, "id": "m-1", "display_id_order": "50001", "external_order_id": "REF-1"}
    received = datetime.now(UTC) + timedelta(seconds=5)
    first = apply_webhook_status(conn, account, payload, received, matching=NOWHERE)
    second = apply_webhook_status(conn, account, payload, received, matching=NOWHERE)
    assert (first.changed, second.changed, second.unchanged) == (1, 0, 1)
    assert [h for h in history(conn, account) if h[5] == "webhook"] == [("m-1", 31, 41, "41", "DELIVERED", "webhook")]
    row = shipments(conn, account)["m-1"]
    assert row[:4] == (41, "41", "LIVRÉ", "DELIVERED") and row[6] == "Customer 1"


def test_a_late_webhook_never_takes_a_shipment_back(conn, unique):
    account = f"late-{unique}"
    received = datetime.now(UTC)
    apply_statuses(conn, account, [order(1, 41)], source="poll", matching=NOWHERE,
                   observed_at=received + timedelta(minutes=1))
    stale = apply_webhook_status(conn, account, {"status": 31, "id": "m-1"}, received, matching=NOWHERE)
    assert (stale.changed, stale.unchanged) == (0, 1)
    assert shipments(conn, account)["m-1"][0] == 41


def test_a_webhook_for_an_unseen_shipment_creates_it(conn, unique):
    account = f"ws-{unique}"
    counts = apply_webhook_status(conn, account, {"status": 22, "id": "m-9", "display_id_order": "777",
                                                  "external_order_id": "REF-9"}, datetime.now(UTC), matching=NOWHERE)
    assert counts.new == 1
    row = conn.execute("SELECT display_id, external_order_id, status FROM maystro.shipments WHERE account = %s",
                       (account,)).fetchone()
    assert row == ("777", "REF-9", "OUT_FOR_DELIVERY")
    with pytest.raises(ValueError):
        apply_webhook_status(conn, account, {"status": 22}, datetime.now(UTC))
