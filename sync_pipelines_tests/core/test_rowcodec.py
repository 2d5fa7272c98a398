"""The row path's codecs give what the standard path gave: the same parsed values, the same jsonb,
the same rows, the same errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.entities import dig, entity_table, parse_instant, row_builder
from sync_pipelines.core.rowcodec import NonFinite, dumps_json, loads_bytes, response_json
from sync_pipelines.core.writer import UpsertWriter

TRICKY_TEXT = [
    "plain", "", "tab\there", "new\nline", "carriage\rreturn", "back\\slash", "\\N", "\\", "ends with \\",
    "\b\v\f controls", "ünïcödé ✓ 🎁 𝔘", "quote \" and 'single'", "\u2028\u2029", "tab\t\\n literal", "a" * 5000,
]
TRICKY_RECORDS = [
    {"id": 1, "name": "plain", "price": {"amount": "12.30"}, "at": "2026-01-02T03:04:05Z",
     "tags": ["a", {"b": [1, 2.5, None, True]}]},
    {"id": 2, "name": None, "price": None, "at": None, "tags": None},
    {"id": 9223372036854775807, "name": "tab\tnew\nline\rcr back\\slash \\N", "price": {"amount": "-0.000001"},
     "at": "2026-03-29T01:30:00.123456+05:30", "tags": {"nested": {"deep": ["\u00e9\U0001f381", "x\"y"]}}},
    {"id": 4, "name": "ünïcödé ✓ 🎁", "price": {"amount": "123456789012345678901234567890.123456789"},
     "at": "1999-12-31T23:59:59-04:00", "tags": [18446744073709551616, -9223372036854775809, 1e16, 1.5e-7, 0.1]},
    {"id": 5, "name": "\b\v\f", "price": {"amount": "1E+3"}, "at": "2026-01-01T00:00:00.000001+00:00",
     "tags": {"": "", "k\u2028": "\\u0000 as text, not an escape", "nul_escape_literal": "C:\\\\u0000"}},
    {"id": 6, "name": "x", "price": {"amount": "7"}, "at": "2026-01-01T00:00:00Z", "tags": [],
     "extra": {"numbers": [0, -0, -0.0, 1.0, 100, 2**53 + 1]}, "deep": {"a": {"b": {"c": None}}}},
]


def table_for(suffix: str) -> sa.Table:
    return entity_table(
        sa.MetaData(), f"rc_{suffix}", "items",
        sa.Column("item_id", sa.BigInteger, nullable=False, info={"path": "id"}),
        sa.Column("name", sa.Text),
        sa.Column("price", sa.Numeric, info={"path": "price.amount"}),
        sa.Column("tags", JSONB),
        sa.Column("at", sa.DateTime(timezone=True)),
        key=["item_id"],
        updated_at_path="at",
    )


def legacy_row_builder(table: sa.Table):
    """entities.row_builder before the row-path work: dig() and json.dumps, per column."""
    def dumps(value):
        return json.dumps(value, separators=(",", ":"))

    columns = [c for c in table.columns if c.name != "synced_at"]

    def build(account, record):
        row = []
        for column in columns:
            path = column.info.get("path", column.name)
            if column.name == "account":
                row.append(account)
            elif column.name == "raw":
                row.append(dumps(record))
            elif column.name == "source_updated_at":
                row.append(parse_instant(dig(record, table.info["updated_at_path"])))
            elif isinstance(column.type, JSONB):
                value = dig(record, path)
                row.append(None if value is None else dumps(value))
            elif isinstance(column.type, sa.DateTime):
                row.append(parse_instant(dig(record, path)))
            else:
                row.append(dig(record, path))
        return tuple(row)

    return build


def fake_response(body: bytes, content_type: str = "application/json; charset=utf-8") -> requests.Response:
    resp = requests.Response()
    resp._content = body
    resp.status_code = 200
    resp.headers["Content-Type"] = content_type
    resp.encoding = requests.utils.get_encoding_from_headers(resp.headers)
    return resp


# ----------------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("body", [
    b'{"orders":[{"id":5500000000001,"total":"12.30","f":1.1,"e":1e16,"neg":-0.0,"t":true,"n":null}]}',
    b'[18446744073709551616, -9223372036854775809, 123456789012345678901234567890, 9223372036854775807]',
    b'{"a":1,"a":2}',
    '{"s":"ünïcödé ✓ 🎁","esc":"\\u00e9\\ud83c\\udf81\\t\\n\\\\\\"\\/","nul":"a\\u0000b"}'.encode(),
    b'  {"deep":{"a":[[[{"b":[]}]]]}}  ',
    b'[0.1, 0.30000000000000004, 5e-324, 1.7976931348623157e308, 2.5E-3, 1E2]',
])
def test_response_json_gives_the_values_json_loads_gives(body):
    expected = json.loads(body)
    got = response_json(fake_response(body))
    assert got == expected
    assert json.dumps(got) == json.dumps(expected)  # same types too (int stays int, float stays float)


@pytest.mark.parametrize("body, content_type", [
    (b'\xef\xbb\xbf{"a": 1}', "application/json"),  # BOM: requests refuses it too
    (b'\xef\xbb\xbf{"a": 1}', "text/plain"),  # no charset: requests guesses utf-8-sig
    ('{"a": "café"}'.encode("latin-1"), "application/json; charset=iso-8859-1"),
    ('{"a": "\\ud800"}'.encode(), "application/json"),  # lone surrogate
])
def test_response_json_falls_back_to_requests_for_what_msgspec_refuses(body, content_type):
    def outcome(parse):
        try:
            return parse(fake_response(body, content_type))
        except Exception as error:  # the same error class (and message) either way
            return type(error), str(error)

    assert outcome(response_json) == outcome(lambda resp: resp.json())


def test_non_finite_numbers_parse_as_before_and_serialize_as_before():
    body = b'{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1e400, "e": 1.5}'
    parsed = response_json(fake_response(body))
    assert all(isinstance(parsed[k], NonFinite) for k in "abcd") and type(parsed["e"]) is float
    # json.dumps writes them as NaN/Infinity (which jsonb then refuses), never as null
    assert dumps_json(parsed) == json.dumps(json.loads(body), separators=(",", ":"))


def test_invalid_json_raises_requests_error():
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response_json(fake_response(b'{"orders": [,'))
    with pytest.raises(ValueError):
        loads_bytes(b"<html>")


# ----------------------------------------------------------------------------------- serializing
@pytest.mark.parametrize("value", [*TRICKY_RECORDS, *TRICKY_TEXT, 2**64, -(2**63) - 1, [2**70, {"x": 2**65}], 0.1, 1e16])
def test_dumps_json_is_the_same_json_value(value):
    assert json.loads(dumps_json(value)) == json.loads(json.dumps(value, separators=(",", ":")))


def test_dumps_json_refuses_what_json_dumps_refuses():
    for value in ({"at": datetime.now(UTC)}, {"n": Decimal("1.5")}, {"s": {1, 2}}):
        with pytest.raises(TypeError):
            json.dumps(value)
        with pytest.raises(TypeError):
            dumps_json(value)


# ----------------------------------------------------------------------------------- jsonb
def test_nul_escape_in_jsonb_is_refused_as_before(conn, unique):
    """A U+0000 in a record becomes a \\u0000 escape either way, which jsonb refuses."""
    raw_new, raw_old = dumps_json({"note": "a\x00b"}), json.dumps({"note": "a\x00b"}, separators=(",", ":"))
    assert "\\u0000" in raw_new and "\\u0000" in raw_old
    for raw in (raw_new, raw_old):
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS rc_nuljson_{unique} (d jsonb)")
        with pytest.raises(psycopg.errors.UntranslatableCharacter):
            with conn.transaction(), conn.cursor().copy(f"COPY rc_nuljson_{unique} FROM STDIN") as copy:
                copy.write_row((raw,))


# ----------------------------------------------------------------------------------- end to end
def test_rows_written_by_the_new_path_equal_the_old_path(conn, unique):
    """The same records through the old builder and the new one into two tables: every column,
    raw jsonb included, compares equal."""
    new_table, old_table = table_for(f"new_{unique}"), table_for(f"old_{unique}")
    ensure_tables(conn, [new_table, old_table])
    new_build, old_build = row_builder(new_table), legacy_row_builder(old_table)
    for record in TRICKY_RECORDS:
        new_row, old_row = new_build("acct", record), old_build("acct", record)
        names = [c.name for c in new_table.columns if c.name != "synced_at"]
        for name, new_value, old_value in zip(names, new_row, old_row, strict=True):
            if name in ("raw", "tags"):  # JSON text: the same value, maybe spelled differently
                assert (new_value is None) == (old_value is None)
                assert new_value is None or json.loads(new_value) == json.loads(old_value)
            else:
                assert new_value == old_value and type(new_value) is type(old_value), name
        assert json.loads(new_row[names.index("raw")]) == record
    with conn.transaction():
        UpsertWriter(new_table).write_batch(conn, [new_build("acct", r) for r in TRICKY_RECORDS])
    with conn.transaction():
        UpsertWriter(old_table).write_batch(conn, [old_build("acct", r) for r in TRICKY_RECORDS])
    columns = "account, item_id, name, price::text, tags, at, raw, source_updated_at"
    new = conn.execute(f"SELECT {columns} FROM rc_new_{unique}.items ORDER BY item_id").fetchall()
    old = conn.execute(f"SELECT {columns} FROM rc_old_{unique}.items ORDER BY item_id").fetchall()
    assert new == old
    assert len(new) == len(TRICKY_RECORDS)
    assert [row[6] for row in new] == sorted(TRICKY_RECORDS, key=lambda r: r["id"])  # raw round-trips
    assert new[2][3] == "123456789012345678901234567890.123456789"  # numeric text kept exactly


def test_digger_reads_what_dig_reads():
    from types import MappingProxyType

    from sync_pipelines.core.entities import digger

    records = [
        {"a": {"b": {"c": 1}}}, {"a": MappingProxyType({"b": {"c": 2}})}, MappingProxyType({"a": {"b": None}}),
        {"a": "not a mapping"}, {"a": [1, 2]}, {}, {"a": {"b": {"c": {"d": 4}}}}, "not a record", None,
    ]
    for path in ("a", "a.b", "a.b.c", "a.b.c.d", "x", "x.y"):
        get = digger(path)
        for record in records:
            assert get(record) == dig(record, path), (path, record)
