"""The `raw` column from each record's own bytes in the page (rowcodec.loads_page / raw_json):
the same values as before, the same refusals, and an identical record re-fetched is unchanged."""

from __future__ import annotations

import copy
import json
import pickle

import psycopg
import pytest
import requests

from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.entities import row_builder
from sync_pipelines.core.rowcodec import NonFinite, RawRecord, dumps_json, raw_json, response_json
from sync_pipelines.core.writer import UpsertWriter
from sync_pipelines_tests.core.test_rowcodec import fake_response, legacy_row_builder, table_for

# Each record's text as a provider may spell it: spaces, escapes, non-ASCII, numbers with trailing
# zeros and exponents, big integers, duplicate keys.
RECORD_TEXTS = [
    '{ "id" : 1, "name": "plain", "price": {"amount": 1.50}, "at": "2026-01-02T03:04:05Z", "tags": ["a", 2.50] }',
    '{"id":2,"name":"\\u00e9t\\u00e9 \\ud83c\\udf81 \\"q\\" \\\\ \\/ \\t\\n","price":null,"at":null,"tags":null}',
    '{"id":3,"name":"ünïcödé ✓ 🎁 𝔘","price":{"amount":"12.30"},"at":"2026-03-29T01:30:00.123456+05:30",'
    '"tags":{"big":18446744073709551616,"neg":-9223372036854775809,"e":1E+2,"small":2.5e-7,"z":-0.0}}',
    '{"id":4,"name":"first","name":"last","price":{"amount":"7"},"at":"2026-01-01T00:00:00Z","tags":[]}',
    '{"id":5,"name":"\\\\u0000 as text","price":{"amount":"1e3"},"at":"1999-12-31T23:59:59-04:00","tags":{"":""}}',
]
PAGE = ('{"items": [\n  ' + ",\n  ".join(RECORD_TEXTS) + '\n], "links": {"next": {"href": "/p2"}}, "page": 1}').encode()


def page_records(body: bytes = PAGE, key: str = "items") -> list:
    return response_json(fake_response(body), key)[key]


# ----------------------------------------------------------------------------------- parsing
def test_page_records_carry_their_exact_bytes_and_the_same_values():
    body = response_json(fake_response(PAGE), "items")
    assert body == json.loads(PAGE)
    assert json.dumps(body) == json.dumps(json.loads(PAGE))  # same types (int, float, str) too
    assert list(body) == ["items", "links", "page"]
    for record, text in zip(body["items"], RECORD_TEXTS, strict=True):
        assert type(record) is RawRecord
        assert bytes(record.raw) == text.encode()
    assert type(body["links"]) is dict  # only the records under the key carry bytes


@pytest.mark.parametrize("body", [
    b'{"items": {"not": "a list"}}',
    b'{"items": [1, "two", null, [3]], "x": 1}',
    b'[{"items": []}]',
    b'  {"items": [{"id": 1}]}',
])
def test_other_bodies_parse_to_the_same_values(body):
    parsed = response_json(fake_response(body), "items")
    assert parsed == json.loads(body)


def test_a_body_msgspec_refuses_is_parsed_as_before_into_plain_dicts():
    body = b'{"items": [{"id": 1, "ok": 1.5}, {"id": 2, "bad": NaN}]}'
    records = page_records(body)
    assert [type(r) for r in records] == [dict, dict]
    assert isinstance(records[1]["bad"], NonFinite)
    assert raw_json(records[1]) == json.dumps(json.loads(body)["items"][1], separators=(",", ":"))

    def outcome(parse):
        try:
            return parse(fake_response(b'{"items": [{"id": 1}, {"s": "\\ud800"}]}'))
        except Exception as error:
            return type(error), str(error)

    assert outcome(lambda resp: response_json(resp, "items")) == outcome(lambda resp: resp.json())
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response_json(fake_response(b'{"items": [{"id": 1}, {"id": 2'), "items")


def test_changing_a_record_drops_its_bytes():
    changes = [
        lambda r: r.__setitem__("name", "changed"), lambda r: r.__delitem__("name"),
        lambda r: r.update(name="changed"), lambda r: r.pop("name"), lambda r: r.popitem(),
        lambda r: r.setdefault("new", 1), lambda r: r.clear(), lambda r: r.__ior__({"name": "x"}),
    ]
    for change in changes:
        record = page_records()[0]
        change(record)
        assert record.raw is None
        assert raw_json(record) == dumps_json(dict(record))
    record = page_records()[0]
    record.setdefault("id", 99)  # present: nothing changes
    assert record.raw is not None
    for duplicate in (copy.copy(record), copy.deepcopy(record), pickle.loads(pickle.dumps(record))):
        assert type(duplicate) is dict and duplicate == record


# ----------------------------------------------------------------------------------- jsonb
def test_raw_column_holds_the_providers_text_as_the_same_jsonb_value(conn, unique):
    """Written from the page's bytes and, as before, re-serialized: every column is equal, raw
    compares equal as jsonb, and keeps the provider's spelling of numbers (numeric scale)."""
    new_table, old_table = table_for(f"rawnew_{unique}"), table_for(f"rawold_{unique}")
    ensure_tables(conn, [new_table, old_table])
    records = page_records()
    with conn.transaction():
        UpsertWriter(new_table).write_batch(conn, [row_builder(new_table)("acct", r) for r in records])
    with conn.transaction():
        UpsertWriter(old_table).write_batch(
            conn, [legacy_row_builder(old_table)("acct", dict(r)) for r in records])
    columns = "n.account, n.item_id, n.name, n.price::text, n.tags, n.at, n.raw, n.source_updated_at"
    new = conn.execute(f"SELECT {columns} FROM rc_rawnew_{unique}.items n ORDER BY item_id").fetchall()
    old = conn.execute(f"SELECT {columns} FROM rc_rawold_{unique}.items n ORDER BY item_id").fetchall()
    assert new == old and len(new) == len(RECORD_TEXTS)
    assert [row[6] for row in new] == json.loads(PAGE)["items"]
    same = conn.execute(f"SELECT count(*) FROM rc_rawnew_{unique}.items n JOIN rc_rawold_{unique}.items o"
                        " USING (account, item_id) WHERE n.raw = o.raw").fetchone()[0]
    assert same == len(RECORD_TEXTS)
    spelled = conn.execute(f"SELECT n.raw -> 'price' ->> 'amount', o.raw -> 'price' ->> 'amount', n.raw ->> 'name'"
                           f" FROM rc_rawnew_{unique}.items n JOIN rc_rawold_{unique}.items o USING (account, item_id)"
                           " WHERE item_id = 1").fetchone()
    assert spelled == ("1.50", "1.5", "plain")


def test_identical_record_refetched_is_unchanged(conn, unique):
    """Re-fetched, the same bytes are the same jsonb; rows stored by the old path (re-serialized)
    are unchanged too: jsonb compares numbers by value (1.50 = 1.5)."""
    table = table_for(f"rawagain_{unique}")
    ensure_tables(conn, [table])
    writer, build = UpsertWriter(table), row_builder(table)
    with conn.transaction():
        first = writer.write_batch(conn, [build("acct", r) for r in page_records()])
    with conn.transaction():
        again = writer.write_batch(conn, [build("acct", r) for r in page_records()])
    assert (first.inserted, again.inserted, again.updated, again.unchanged) == (5, 0, 0, 5)
    with conn.transaction():
        old = writer.write_batch(conn, [legacy_row_builder(table)("old", dict(r)) for r in page_records()])
    with conn.transaction():
        from_bytes = writer.write_batch(conn, [build("old", r) for r in page_records()])
    assert (old.inserted, from_bytes.updated, from_bytes.unchanged) == (5, 0, 5)


def test_nul_escape_in_the_providers_text_is_refused_as_before(conn, unique):
    """A \\u0000 escape in a record reaches jsonb as it did when re-serialized: refused."""
    table = table_for(f"rawnul_{unique}")
    ensure_tables(conn, [table])
    records = page_records(b'{"items": [{"id": 1, "name": "n", "note": "a\\u0000b", "price": null, "at": null, "tags": null}]}')
    assert type(records[0]) is RawRecord and records[0]["note"] == "a\x00b"
    for build in (row_builder(table), legacy_row_builder(table)):
        with pytest.raises(psycopg.errors.UntranslatableCharacter):
            with conn.transaction():
                UpsertWriter(table).write_batch(conn, [build("acct", records[0])])


def test_a_projected_page_decodes_only_the_keys_asked_and_keeps_every_byte_for_raw():
    from sync_pipelines.core import rowcodec

    body = (b'{"orders": [{"id": 1, "customer": {"id": 7, "tags": "a"}, "line_items": [{"x": 1.50}],'
            b' "note": null}, {"id": 2}], "next": "c"}')
    with rowcodec.projected({"id", "customer", "note"}):
        page = rowcodec.loads_page(body, "orders")
    first, second = page["orders"]
    assert first == {"id": 1, "customer": {"id": 7, "tags": "a"}, "note": None}  # line_items skipped
    assert second == {"id": 2}  # an absent key stays absent
    assert bytes(first.raw) == b'{"id": 1, "customer": {"id": 7, "tags": "a"}, "line_items": [{"x": 1.50}], "note": null}'
    assert page["next"] == "c"
    assert rowcodec.loads_page(body, "orders")["orders"][0]["line_items"] == [{"x": 1.5}]  # outside: whole


def test_a_projected_sync_writes_the_same_rows_as_a_whole_decode(conn, unique):
    import sqlalchemy as sa

    from sync_pipelines.core import rowcodec
    from sync_pipelines.core.entities import entity_table, record_keys
    from sync_pipelines.core.sync import Stream, sync_stream

    table = entity_table(sa.MetaData(), f"p_{unique}", "orders",
                         sa.Column("order_id", sa.BigInteger, nullable=False, info={"path": "id"}),
                         sa.Column("customer_id", sa.BigInteger, info={"path": "customer.id"}),
                         sa.Column("total", sa.Numeric), key=["order_id"], updated_at_path="updated_at")
    assert record_keys(table) == {"id", "customer", "total", "updated_at"}
    body = (b'{"orders": [{"id": 1, "customer": {"id": 7}, "total": "9.99", "updated_at": "2026-01-01T00:00:00Z",'
            b' "line_items": [{"sku": "s"}]}]}')
    results = []
    for account, project in (("whole", False), ("projected", True)):
        stream = Stream(name=f"p/{unique}", table=table, project=project)
        sync_stream(conn, stream, account, lambda since: iter([rowcodec.loads_page(body, "orders")["orders"]]))
        results.append(conn.execute(f"SELECT order_id, customer_id, total, raw, source_updated_at"
                                    f" FROM p_{unique}.orders WHERE account = %s", (account,)).fetchall())
    assert results[0] == results[1] and results[1][0][3]["line_items"] == [{"sku": "s"}]
