import pytest
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects.postgresql import JSONB

from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.entities import entity_table, row_builder
from sync_pipelines.core.writer import MassDeleteRefused, UpsertWriter
from sync_pipelines_tests.core.statements import recorded_statements


def make_table(suffix: str) -> sa.Table:
    return entity_table(
        sa.MetaData(), f"t_{suffix}", "items",
        sa.Column("item_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("price", sa.Numeric, info={"path": "price.amount"}),
        sa.Column("tags", JSONB),
        sa.Column("modified", sa.DateTime(timezone=True)),
        key=["item_id"],
        updated_at_path="modified",
    )


def write(conn, table, account, records):
    build = row_builder(table)
    with conn.transaction():
        return UpsertWriter(table).write_batch(conn, [build(account, r) for r in records])


def rec(i, name="n", price=1.5, modified="2026-01-01T00:00:00Z", tags=None):
    return {"item_id": i, "name": name, "price": {"amount": price}, "tags": tags, "modified": modified}


def test_insert_update_unchanged_counts(conn, unique):
    table = make_table(unique)
    ensure_tables(conn, [table])
    first = write(conn, table, "a", [rec(1), rec(2), rec(3)])
    assert (first.inserted, first.updated, first.unchanged) == (3, 0, 0)

    synced_before = dict(conn.execute(f"SELECT item_id, synced_at FROM t_{unique}.items").fetchall())
    again = write(conn, table, "a", [rec(1), rec(2), rec(3)])
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    synced_after = dict(conn.execute(f"SELECT item_id, synced_at FROM t_{unique}.items").fetchall())
    assert synced_before == synced_after, "unchanged rows must not be rewritten"

    changed = write(conn, table, "a", [rec(1), rec(2, name="renamed", modified="2026-01-02T00:00:00Z"), rec(4)])
    assert (changed.inserted, changed.updated, changed.unchanged) == (1, 1, 1)
    assert conn.execute(f"SELECT name FROM t_{unique}.items WHERE item_id = 2").fetchone() == ("renamed",)


def test_unchanged_and_older_rows_are_not_even_locked(conn, unique):
    """ON CONFLICT DO UPDATE locks every conflicting row before its WHERE skips it (a WAL record,
    a dirtied page, a wait for a concurrent webhook apply); only rows to be written may get there."""
    table = make_table(unique)
    ensure_tables(conn, [table])
    write(conn, table, "a", [rec(i) for i in range(1, 6)])
    conn.execute(f"VACUUM t_{unique}.items")
    pages_before = conn.execute(f"SELECT ctid::text, item_id FROM t_{unique}.items ORDER BY item_id").fetchall()

    counts = write(conn, table, "a", [rec(1), rec(2, modified="2025-12-31T00:00:00Z", name="older"),
                                      rec(3, name="changed", modified="2026-01-02T00:00:00Z"), rec(6)])

    assert (counts.inserted, counts.updated, counts.unchanged) == (1, 1, 2)
    locked = conn.execute(f"SELECT item_id FROM t_{unique}.items WHERE xmax::text <> '0' ORDER BY 1").fetchall()
    assert locked == [(3,)]  # the updated row carries its lock; untouched rows carry none
    after = dict(conn.execute(f"SELECT item_id, ctid::text FROM t_{unique}.items").fetchall())
    assert all(after[item] == ctid for ctid, item in pages_before if item != 3)


def test_accounts_never_collide(conn, unique):
    table = make_table(unique)
    ensure_tables(conn, [table])
    write(conn, table, "store-a", [rec(1, name="from a")])
    write(conn, table, "store-b", [rec(1, name="from b")])
    rows = conn.execute(f"SELECT account, name FROM t_{unique}.items ORDER BY account").fetchall()
    assert rows == [("store-a", "from a"), ("store-b", "from b")]


def test_older_version_never_overwrites_newer(conn, unique):
    table = make_table(unique)
    ensure_tables(conn, [table])
    write(conn, table, "a", [rec(1, name="new", modified="2026-03-01T10:00:00+02:00")])
    stale = write(conn, table, "a", [rec(1, name="old", modified="2026-03-01T07:59:59Z")])
    assert stale.updated == 0
    assert conn.execute(f"SELECT name FROM t_{unique}.items").fetchone() == ("new",)


def test_duplicate_keys_in_one_batch_keep_the_last(conn, unique):
    table = make_table(unique)
    ensure_tables(conn, [table])
    counts = write(conn, table, "a", [rec(1, name="first"), rec(1, name="second")])
    assert counts.inserted == 1
    assert conn.execute(f"SELECT name FROM t_{unique}.items").fetchone() == ("second",)


def test_typed_columns_and_raw_json(conn, unique):
    table = make_table(unique)
    ensure_tables(conn, [table])
    record = rec(7, price=19.99, tags=["x", {"y": 1}], modified="2026-05-05T05:05:05.123Z")
    write(conn, table, "a", [record])
    price, tags, raw, source_updated = conn.execute(
        f"SELECT price, tags, raw, source_updated_at FROM t_{unique}.items"
    ).fetchone()
    assert float(price) == 19.99
    assert tags == ["x", {"y": 1}]
    assert raw == record
    assert source_updated.isoformat() == "2026-05-05T05:05:05.123000+00:00"


def test_schema_evolution_adds_columns(conn, unique):
    ensure_tables(conn, [make_table(unique)])
    evolved = entity_table(
        sa.MetaData(), f"t_{unique}", "items",
        sa.Column("item_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("price", sa.Numeric, info={"path": "price.amount"}),
        sa.Column("tags", JSONB),
        sa.Column("modified", sa.DateTime(timezone=True)),
        sa.Column("color", sa.Text),
        key=["item_id"],
        updated_at_path="modified",
    )
    ensure_tables(conn, [evolved])
    ensure_tables(conn, [evolved])  # idempotent
    write(conn, evolved, "a", [dict(rec(1), color="red")])
    assert conn.execute(f"SELECT color FROM t_{unique}.items").fetchone() == ("red",)


def make_deletable_table(suffix: str) -> sa.Table:
    return entity_table(
        sa.MetaData(), f"t_{suffix}", "items",
        sa.Column("item_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        key=["item_id"],
        updated_at_path="modified",
    )


def soft_delete(conn, table, item_id, at="now"):
    """What a delete webhook and reconciliation do: set deleted_at, leave the updated-at alone."""
    conn.execute(f"UPDATE {table.fullname} SET deleted_at = %s::timestamptz, synced_at = now() WHERE item_id = %s",
                 (at, item_id))


def test_a_stale_version_never_revives_a_soft_deleted_row(conn, unique):
    table = make_deletable_table(unique)
    ensure_tables(conn, [table])
    write(conn, table, "a", [rec(1), rec(2)])
    soft_delete(conn, table, 1, at="2026-01-01T00:00:00.5Z")
    soft_delete(conn, table, 2, at="2026-01-01T00:00:00.5Z")

    # A batch fetched before the delete, or the overlap re-reading it: same updated-at.
    stale = write(conn, table, "a", [rec(1), rec(2, name="edited in the same second")])
    assert (stale.inserted, stale.updated, stale.unchanged) == (0, 0, 2)
    rows = conn.execute(f"SELECT item_id, name, deleted_at IS NOT NULL, xmax::text = '0'"
                        f" FROM t_{unique}.items ORDER BY 1").fetchall()
    assert rows == [(1, "n", True, True), (2, "n", True, True)]  # still deleted, not even locked

    # An edit made before the delete, delivered late (a provider's retry), does not revive it.
    late = write(conn, table, "a", [rec(2, name="edited before the delete", modified="2026-01-01T00:00:00.2Z")])
    assert late.updated == 0

    # Only a version made after the delete shows the record exists after it.
    newer = write(conn, table, "a", [rec(1, name="restored", modified="2026-01-01T00:00:01Z")])
    assert newer.updated == 1
    assert conn.execute(f"SELECT name, deleted_at FROM t_{unique}.items WHERE item_id = 1").fetchone() == (
        "restored", None)


def test_without_updated_at_a_soft_delete_is_never_undone_by_a_reread(conn, unique):
    table = entity_table(sa.MetaData(), f"t_{unique}", "items", sa.Column("item_id", sa.BigInteger, nullable=False),
                         sa.Column("name", sa.Text), sa.Column("deleted_at", sa.DateTime(timezone=True)),
                         key=["item_id"])
    ensure_tables(conn, [table])
    write(conn, table, "a", [{"item_id": 1, "name": "x"}])
    soft_delete(conn, table, 1)
    assert write(conn, table, "a", [{"item_id": 1, "name": "y"}]).updated == 0
    assert conn.execute(f"SELECT name, deleted_at IS NOT NULL FROM t_{unique}.items").fetchone() == ("x", True)


def test_one_batch_of_many_accounts_counts_per_account(conn, unique):
    table = make_table(unique)
    ensure_tables(conn, [table])
    write(conn, table, "a", [rec(1), rec(2)])
    build = row_builder(table)
    rows = [build("a", rec(1)), build("a", rec(2, name="new", modified="2026-01-02T00:00:00Z")),
            build("b", rec(1)), build("b", rec(1)), build("c", rec(9))]  # b's second row: a duplicate
    with conn.transaction():
        counts = UpsertWriter(table).write_batch_by(conn, rows, "account")
    as_tuples = {k: (v.inserted, v.updated, v.unchanged) for k, v in counts.items()}
    assert as_tuples == {"a": (0, 1, 1), "b": (1, 0, 1), "c": (1, 0, 0)}
    assert conn.execute(f"SELECT count(*) FROM t_{unique}.items").fetchone()[0] == 4


def test_a_delete_propagation_with_nothing_to_delete_reads_the_table_once(conn, unique):
    """The guard's live-row count is only needed when something would be deleted: a listing that
    returned every row (the usual run) costs one pass over the account's rows, not two."""
    table = entity_table(sa.MetaData(), f"t_{unique}", "items", sa.Column("item_id", sa.BigInteger, nullable=False),
                         key=["item_id"], soft_delete=True)
    ensure_tables(conn, [table])
    write(conn, table, "a", [{"item_id": i} for i in (1, 2, 3)])
    listed_since = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    conn.execute(f"CREATE TEMP TABLE seen_{unique} (item_id bigint)")
    conn.execute(f"INSERT INTO seen_{unique} VALUES (1), (2), (3)")
    seen = sql.Identifier(f"seen_{unique}")
    writer = UpsertWriter(table, revive_when_seen=True)

    with recorded_statements(conn) as statements:
        deleted = writer.soft_delete_missing(conn, "a", seen, listed_since=listed_since)
    reads = [s for s in statements if f'"t_{unique}"."items"' in s]
    assert deleted == 0 and len(reads) == 1 and reads[0].startswith("UPDATE")

    # With something to delete the guard still counts the rows that were live before the update.
    conn.execute(f"DELETE FROM seen_{unique} WHERE item_id = 3")
    assert writer.soft_delete_missing(conn, "a", seen, listed_since=listed_since) == 1
    conn.execute(f"DELETE FROM seen_{unique} WHERE item_id = 2")
    with pytest.raises(MassDeleteRefused, match="1 of 2 live rows"):
        writer.soft_delete_missing(conn, "a", seen, listed_since=listed_since, max_delete_fraction=0.4)
    assert conn.execute(f"SELECT item_id FROM {table.fullname} WHERE deleted_at IS NULL ORDER BY 1").fetchall() == [
        (1,), (2,)]


def test_a_restated_window_replaces_that_window_only(conn, unique):
    """Ad platforms restate past days: a re-read window's rows become exactly what was read —
    changed values updated, unchanged ones untouched, vanished ones deleted — and nothing outside
    the window or of another account moves."""
    import datetime as dt

    table = entity_table(sa.MetaData(), f"t_{unique}", "daily", sa.Column("campaign_id", sa.BigInteger, nullable=False),
                         sa.Column("day", sa.Date, nullable=False), sa.Column("clicks", sa.BigInteger),
                         key=["campaign_id", "day"])
    ensure_tables(conn, [table])
    build, writer = row_builder(table), UpsertWriter(table)
    d = [dt.date(2026, 3, n) for n in range(1, 6)]

    def rows(account, *values):
        return [build(account, {"campaign_id": c, "day": day.isoformat(), "clicks": k}) for c, day, k in values]

    with conn.transaction():
        writer.write_batch(conn, rows("a", (1, d[0], 5), (1, d[1], 7), (2, d[1], 3), (1, d[2], 9), (1, d[4], 1)))
        writer.write_batch(conn, rows("b", (1, d[1], 4)))
    with conn.transaction():  # days 2..4 restated: campaign 2 vanished on day 2, day 3 changed, day 4 new
        counts = writer.replace_window(conn, rows("a", (1, d[1], 7), (1, d[2], 11), (1, d[3], 2)),
                                       account="a", column="day", first=d[1], last=d[3])
    assert (counts.inserted, counts.updated, counts.unchanged, counts.deleted) == (1, 1, 1, 1)
    stored = conn.execute(f"SELECT account, campaign_id, day, clicks FROM t_{unique}.daily ORDER BY 1, 3, 2").fetchall()
    assert stored == [("a", 1, d[0], 5), ("a", 1, d[1], 7), ("a", 1, d[2], 11), ("a", 1, d[3], 2), ("a", 1, d[4], 1),
                      ("b", 1, d[1], 4)]
    with conn.transaction():  # an empty restated window empties it
        assert writer.replace_window(conn, [], account="a", column="day", first=d[3], last=d[4]).deleted == 2
    with pytest.raises(ValueError, match="outside the window"), conn.transaction():
        writer.replace_window(conn, rows("a", (1, d[0], 1)), account="a", column="day", first=d[1], last=d[2])
