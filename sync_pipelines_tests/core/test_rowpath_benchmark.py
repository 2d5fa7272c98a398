"""The row-path benchmark's own machinery (no timings, no servers): its variants switch the levers
back to exactly the code they replaced, and put everything back afterwards."""

from __future__ import annotations

import json

import pytest

from benchmarks import shopify_rowpath as bench
from benchmarks.shopify_full_orders import full_order
from sync_pipelines.core import entities, http, rowcodec, sync
from sync_pipelines.defs.shopify.tables import ORDERS
from sync_pipelines.sandbox.shopify import ShopifySandbox
from sync_pipelines.sandbox.shopify.data import RENDER as _RENDER


@pytest.fixture(scope="module")
def orders():
    sandbox = ShopifySandbox()
    sandbox.add_shop("bench.myshopify.com", "token", orders=200, customers=50, products=10)
    slim = sandbox.records("bench.myshopify.com", "orders")
    data = sandbox.shop("bench.myshopify.com")
    full = [full_order(data, rec) for rec in data.rows["orders"]]
    return slim + full


def test_variants_parse():
    assert bench.parse_variants("baseline,optimized") == [set(), set(bench.LEVERS)]
    assert len(bench.parse_variants("ablation")) == len(bench.LEVERS)
    assert bench.parse_variants("decode+encode") == [{"decode", "encode"}]
    assert bench.variant_name(set(bench.LEVERS) - {"encode"}) == "optimized-without-encode"
    with pytest.raises(ValueError):
        bench.parse_variants("decode+nonsense")


def test_levers_swap_and_restore():
    before = (http.response_json, sync.row_builder, entities.dumps_json)
    with bench.levers_on(set()):
        assert http.response_json is not rowcodec.response_json
        assert entities.dumps_json is not rowcodec.dumps_json
        assert sync.row_builder is not entities.row_builder
    assert (http.response_json, sync.row_builder, entities.dumps_json) == before
    with bench.levers_on(set(bench.LEVERS)):
        assert (http.response_json, sync.row_builder, entities.dumps_json) == before
    with bench.levers_on(set(bench.LEVERS) - {"rawbytes"}):
        assert entities.raw_json is not rowcodec.raw_json and http.response_json is not rowcodec.response_json
    assert (entities.raw_json, http.response_json) == (rowcodec.raw_json, rowcodec.response_json)


def test_baseline_and_optimized_build_the_same_rows(orders):
    with bench.levers_on(set()):
        old = [sync.row_builder(ORDERS)("shop", order) for order in orders]
    new = [entities.row_builder(ORDERS)("shop", order) for order in orders]
    raw = [c.name for c in ORDERS.columns if c.name != "synced_at"].index("raw")
    for old_row, new_row in zip(old, new, strict=True):
        assert old_row[:raw] + old_row[raw + 1:] == new_row[:raw] + new_row[raw + 1:]
        assert json.loads(old_row[raw]) == json.loads(new_row[raw])


def test_full_orders_are_full(orders):
    full = orders[len(orders) // 2:]
    assert "total_price_set" in full[0] and "billing_address" in full[0]
    assert len(json.dumps(full[0])) > 3 * len(json.dumps(orders[0]))
    assert _RENDER["orders"] is not full_order  # importing the wrapper leaves the sandbox as it is
