"""Source → destination replication against two real databases: the destination equals the
source after every run, unchanged rows are never rewritten, and nothing commits half-way."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from sync_pipelines.core import cursors
from sync_pipelines.defs.replication.replicate import BULK_LOAD, UPSERT
from sync_pipelines.defs.replication.schema import ReplicationError

from .conftest import count, rows, xmins

ORDERS = """
CREATE TABLE public.orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    amount numeric(12,2),
    attributes jsonb,
    note text NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
INSERT INTO public.orders
SELECT i, 100 + mod(i, 7), (ARRAY['paid', 'shipped', 'cancelled'])[1 + mod(i, 3)],
       CASE WHEN mod(i, 10) = 0 THEN NULL ELSE round(i * 1.37, 2) END,
       CASE WHEN mod(i, 9) = 0 THEN NULL
            ELSE jsonb_build_object('n', i, 'nested', jsonb_build_object('ok', mod(i, 2) = 0),
                                    'list', jsonb_build_array(1.50, 'x', null)) END,
       CASE WHEN mod(i, 4) = 0 THEN NULL ELSE 'note ' || i END,
       timestamptz '2025-03-01 10:00:00.123456+02' + i * interval '1 minute',
       timestamptz '2025-03-01 10:00:00.123456+02' + i * interval '1 minute' + interval '3 hours'
FROM generate_series(1, 300) AS i;
"""

ITEMS = """
CREATE TABLE public.order_items (
    order_id bigint NOT NULL,
    line_no integer NOT NULL,
    sku text NOT NULL,
    quantity integer NOT NULL,
    unit_price numeric(12,2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
INSERT INTO public.order_items
SELECT o, n, 'SKU-' || o || '-' || n, n, round(o * 0.25 + n, 2)
FROM generate_series(1, 100) AS o, generate_series(1, 3) AS n;
"""


@pytest.fixture
def orders(src, table_spec):
    src.execute(ORDERS)
    return table_spec("public.orders", mode="incremental", cursor_column="updated_at")


@pytest.fixture
def items(src, table_spec):
    src.execute(ITEMS)
    return table_spec("public.order_items", mode="full", propagate_deletes=True)


def test_first_sync_creates_the_table_and_copies_every_value_exactly(src, dest, orders, run):
    report = run(orders)

    assert report.table_created and report.path == BULK_LOAD and report.copy_format == "binary"
    assert (report.fetched, report.inserted, report.updated, report.unchanged) == (300, 300, 0, 0)
    assert report.table_rows == 300
    # NULLs, jsonb, numeric(12,2), microsecond timestamptz: same Python values and same text.
    assert rows(dest, orders.destination, "id") == rows(src, "public.orders", "id")
    sample = dest.execute(
        f"SELECT amount, attributes, note, updated_at FROM {orders.destination} WHERE id = 3"
    ).fetchone()
    assert sample[0] == Decimal("4.11") and sample[1]["list"] == [1.5, "x", None] and sample[2] == "note 3"
    assert sample[3].microsecond == 123456
    # Schema from the source: types, NOT NULL, primary key.
    columns = dest.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = 'orders' ORDER BY ordinal_position",
        (orders.destination_schema,),
    ).fetchall()
    assert columns[:4] == [("id", "bigint", "NO"), ("customer_id", "bigint", "NO"), ("status", "text", "NO"),
                           ("amount", "numeric", "YES")]
    assert [c.type for c in report.table_def.columns if c.name == "amount"] == ["numeric(12,2)"]
    assert report.table_def.primary_key == ("id",)
    assert report.cursor_before is None
    assert report.cursor_after == src.execute("SELECT max(updated_at) FROM public.orders").fetchone()[0]


def test_bulk_load_and_staging_upsert_give_the_same_table(src, dest, orders, run, table_spec):
    staged = table_spec("public.orders", mode="incremental", cursor_column="updated_at",
                        name="orders_staged", destination_table="orders_staged")
    bulk = run(orders)
    upsert = run(staged, bulk_load=False)

    assert (bulk.path, upsert.path) == (BULK_LOAD, UPSERT)
    assert (upsert.inserted, upsert.updated, upsert.unchanged) == (300, 0, 0)
    assert rows(dest, orders.destination, "id") == rows(dest, staged.destination, "id")
    constraints = dest.execute(
        "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE connamespace = %s::regnamespace AND contype = 'p' ORDER BY 1",
        (orders.destination_schema,),
    ).fetchall()
    assert [c[1] for c in constraints] == ["PRIMARY KEY (id)", "PRIMARY KEY (id)"]


def test_bulk_load_into_an_existing_empty_table_keeps_and_rebuilds_its_indexes(src, dest, orders, run):
    run(orders)
    dest.execute(f"CREATE INDEX orders_status_idx ON {orders.destination} (status)")
    dest.execute(f"TRUNCATE {orders.destination}")

    report = run(orders)

    assert report.path == BULK_LOAD and not report.table_created and report.indexes_rebuilt == 1
    assert report.read_scope == "whole table (destination empty)"
    assert count(dest, orders.destination) == 300
    indexes = {r[0] for r in dest.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s",
                                          (orders.destination_schema,))}
    assert indexes == {"orders_pkey", "orders_status_idx"}


def test_incremental_writes_changes_only_and_leaves_other_rows_untouched(src, dest, orders, run):
    run(orders)
    before = xmins(dest, orders.destination, "id")
    src.execute("UPDATE public.orders SET status = 'refunded', updated_at = now() WHERE id IN (5, 6, 7)")
    src.execute("UPDATE public.orders SET updated_at = now() WHERE id = 8")  # touched, same values
    src.execute("UPDATE public.orders SET note = NULL, attributes = '{\"a\": [1, 2]}', amount = 0.10,"
                " updated_at = now() WHERE id = 9")
    src.execute("INSERT INTO public.orders SELECT 1000 + i, 1, 'new', NULL, NULL, NULL, now(), now()"
                " FROM generate_series(1, 4) AS i")

    report = run(orders)

    assert report.path == UPSERT and report.read_scope.startswith("rows with updated_at >= cursor")
    assert (report.inserted, report.updated, report.deleted) == (4, 5, 0)
    assert report.unchanged == report.fetched - 9
    assert rows(dest, orders.destination, "id") == rows(src, "public.orders", "id")
    after = xmins(dest, orders.destination, "id")
    rewritten = {k for k in before if after[k] != before[k]}
    assert rewritten == {5, 6, 7, 8, 9}
    assert report.cursor_after > report.cursor_before

    again = run(orders)
    assert (again.inserted, again.updated) == (0, 0) and again.unchanged == again.fetched
    assert xmins(dest, orders.destination, "id") == after


def test_unchanged_rows_are_not_even_locked(src, dest, orders, items, run, table_spec):
    """ON CONFLICT DO UPDATE … WHERE locks (and WAL-logs) every conflicting row, even one it then
    skips; identical rows must stay as they are, row version and all, whatever was read."""
    full_items = table_spec("public.order_items", mode="full")
    run(orders)
    run(full_items)
    src.execute("UPDATE public.orders SET status = 'refunded' WHERE id = 3")  # updated_at kept: full refresh
    src.execute("UPDATE public.order_items SET quantity = 42 WHERE order_id = 7 AND line_no = 1")
    src.execute("INSERT INTO public.order_items VALUES (900, 1, 'SKU-n', 1, 1.00)")
    # An upserted row keeps its lock in xmax; an untouched one has none.
    locked = "SELECT array_agg(k ORDER BY k)::text FROM (SELECT ({}) AS k FROM {} WHERE xmax::text <> '0') AS l"

    refreshed = run(orders, full_refresh=True)
    compared = run(full_items)

    assert (refreshed.inserted, refreshed.updated, refreshed.unchanged) == (0, 1, 299)
    assert (compared.inserted, compared.updated, compared.unchanged) == (1, 1, 299)
    assert dest.execute(locked.format("id", orders.destination)).fetchone()[0] == "{3}"
    assert dest.execute(locked.format("order_id, line_no", full_items.destination)).fetchone()[0] == (
        '{"(7,1)"}')
    assert rows(dest, orders.destination, "id") == rows(src, "public.orders", "id")
    assert rows(dest, full_items.destination, "order_id, line_no") == rows(
        src, "public.order_items", "order_id, line_no")
    src.execute("UPDATE public.orders SET status = 'late', updated_at = now() WHERE id = 4")
    incremental = run(orders)  # re-reads the overlap too: those rows are identical
    assert incremental.updated == 1 and incremental.unchanged == incremental.fetched - 1 > 0
    assert dest.execute(locked.format("id", orders.destination)).fetchone()[0] == "{3,4}"


def test_incremental_overlap_rereads_rows_committed_late_at_the_boundary(src, dest, orders, run):
    first = run(orders)
    high_water = first.cursor_after
    # Rows committed after the first run with updated_at at or just before its high-water mark
    # (a long transaction at the source): the overlap window picks them up ...
    src.execute("UPDATE public.orders SET status = 'late', updated_at = %s WHERE id = 20",
                (high_water - timedelta(minutes=9),))
    src.execute("INSERT INTO public.orders VALUES (5000, 1, 'same-instant', 1, NULL, NULL, %s, %s)",
                (high_water, high_water))
    # ... but not one older than the window (that is what the window means).
    src.execute("UPDATE public.orders SET status = 'too-late', updated_at = %s WHERE id = 21",
                (high_water - timedelta(minutes=11),))

    report = run(orders)

    assert report.read_since == high_water - timedelta(minutes=10)
    assert (report.inserted, report.updated) == (1, 1)
    statuses = dict(dest.execute(f"SELECT id, status FROM {orders.destination} WHERE id IN (20, 21, 5000)"))
    assert statuses[20] == "late" and statuses[5000] == "same-instant" and statuses[21] != "too-late"
    assert report.cursor_after == high_water
    assert cursors.load(dest, orders.stream, orders.destination) == high_water


def test_full_mode_with_composite_keys_propagates_deletes(src, dest, items, run, table_spec):
    kept = table_spec("public.order_items", mode="full", name="items_kept", destination_table="items_kept")
    run(items)
    run(kept)
    before = xmins(dest, items.destination, "order_id, line_no")
    src.execute("DELETE FROM public.order_items WHERE order_id = 3 OR (order_id = 4 AND line_no = 2)")
    src.execute("UPDATE public.order_items SET quantity = 99 WHERE order_id = 5 AND line_no = 1")
    src.execute("INSERT INTO public.order_items VALUES (5, 4, 'SKU-new', 1, 1.00), (500, 1, 'SKU-x', 2, 2.50)")

    report = run(items)
    without_deletes = run(kept)

    assert (report.fetched, report.inserted, report.updated, report.deleted) == (298, 2, 1, 4)
    assert report.unchanged == 295 and report.cursor_after is None
    assert rows(dest, items.destination, "order_id, line_no") == rows(src, "public.order_items", "order_id, line_no")
    after = xmins(dest, items.destination, "order_id, line_no")
    assert {k for k in after if k in before and after[k] != before[k]} == {("5", "1")}
    assert without_deletes.deleted == 0 and count(dest, kept.destination) == 302
    assert report.table_def.primary_key == ("order_id", "line_no")


def test_new_source_column_is_added_and_filled_for_every_row(src, dest, orders, run):
    run(orders)
    src.execute("ALTER TABLE public.orders ADD COLUMN channel text NOT NULL DEFAULT 'web'")
    src.execute("ALTER TABLE public.orders DROP COLUMN note")

    report = run(orders)

    assert report.columns_added == ["channel"] and report.destination_only_columns == ["note"]
    assert report.read_scope == "whole table (new columns need values for every row)"
    assert report.updated == 300
    assert dest.execute(f"SELECT count(*) FROM {orders.destination} WHERE channel = 'web'").fetchone()[0] == 300
    # Never dropped: the destination keeps `note` (and its values).
    assert dest.execute(f"SELECT count(note) FROM {orders.destination}").fetchone()[0] == 225
    src.execute("INSERT INTO public.orders VALUES (900, 1, 'x', 1, NULL, now(), now(), 'app')")
    assert run(orders).inserted == 1


def test_user_types_travel_as_text_and_json_is_compared_as_text(src, dest, table_spec, run, unique):
    mood = f"mood_{unique}"
    for conn in (src, dest):
        conn.execute(f"CREATE TYPE public.{mood} AS ENUM ('sad', 'ok', 'happy')")
    src.execute(f"CREATE TABLE public.things (id int PRIMARY KEY, feeling public.{mood}, doc json)")
    src.execute("INSERT INTO public.things VALUES (1, 'ok', '{\"b\": 1,  \"a\": 2}'), (2, NULL, NULL)")
    spec = table_spec("public.things", mode="full")

    first = run(spec)
    src.execute("UPDATE public.things SET doc = '{\"a\": 2, \"b\": 1}' WHERE id = 1")  # json keeps text
    second = run(spec)

    assert first.copy_format == "text" and first.inserted == 2
    assert (second.updated, second.unchanged) == (1, 1)
    assert rows(dest, spec.destination, "id") == rows(src, "public.things", "id")


def test_crash_after_copy_leaves_the_destination_unchanged_and_the_next_run_completes(src, dest, orders, run):
    run(orders)
    before = rows(dest, orders.destination, "id")
    before_versions = xmins(dest, orders.destination, "id")
    cursor = cursors.load(dest, orders.stream, orders.destination)
    src.execute("UPDATE public.orders SET status = 'changed', updated_at = now() WHERE id <= 10")
    src.execute("INSERT INTO public.orders VALUES (7000, 1, 'n', 1, NULL, NULL, now(), now())")

    def crash():
        raise RuntimeError("injected crash after COPY into staging")

    with pytest.raises(RuntimeError, match="injected crash"):
        run(orders, after_copy=crash)

    assert rows(dest, orders.destination, "id") == before
    assert xmins(dest, orders.destination, "id") == before_versions
    assert cursors.load(dest, orders.stream, orders.destination) == cursor
    report = run(orders)
    assert (report.inserted, report.updated) == (1, 10)
    assert rows(dest, orders.destination, "id") == rows(src, "public.orders", "id")


def test_crash_during_the_first_sync_leaves_no_table_behind(src, dest, items, run):
    def crash():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run(items, after_copy=crash)
    assert dest.execute("SELECT to_regclass(%s)", (items.destination,)).fetchone()[0] is None
    assert run(items).inserted == 300


def test_problems_a_retry_cannot_fix_are_reported_clearly(src, dest, table_spec, run, orders):
    src.execute("CREATE TABLE public.nokey (id int, updated_at timestamptz)")
    with pytest.raises(ReplicationError, match="public.nokey has no primary key"):
        run(table_spec("public.nokey", mode="full"))
    with pytest.raises(ReplicationError, match="public.missing does not exist"):
        run(table_spec("public.missing", mode="full"))
    with pytest.raises(ReplicationError, match="no cursor column 'changed_at'"):
        run(table_spec("public.orders", mode="incremental", cursor_column="changed_at"))
    with pytest.raises(ReplicationError, match="cursor column 'status' is text"):
        run(table_spec("public.orders", mode="incremental", cursor_column="status"))
    run(orders)
    src.execute("ALTER TABLE public.orders ALTER COLUMN customer_id TYPE numeric")
    with pytest.raises(ReplicationError, match=r"orders.customer_id is bigint but the source .* is numeric"):
        run(orders)


def test_timestamp_without_time_zone_cursor_is_read_as_utc(src, dest, table_spec, run):
    src.execute("CREATE TABLE public.events (id int PRIMARY KEY, changed timestamp NOT NULL)")
    src.execute("INSERT INTO public.events VALUES (1, '2025-05-01 12:00'), (2, '2025-05-01 13:00')")
    spec = table_spec("public.events", mode="incremental", cursor_column="changed")
    first = run(spec)
    src.execute("INSERT INTO public.events VALUES (3, '2025-05-01 12:55')")  # inside the overlap
    second = run(spec)

    assert first.cursor_after == datetime.fromisoformat("2025-05-01T13:00:00+00:00")
    assert (second.fetched, second.inserted) == (2, 1)


def test_concurrent_runs_of_one_table_take_turns(src, dest, orders, run):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: run(orders), range(2)))

    assert sorted(r.path for r in reports) == [BULK_LOAD, UPSERT]
    second = next(r for r in reports if r.path == UPSERT)  # waited for the first, then saw its cursor
    assert sum(r.inserted for r in reports) == 300 and second.updated == 0
    assert second.read_since is not None and second.unchanged == second.fetched
    assert rows(dest, orders.destination, "id") == rows(src, "public.orders", "id")
