"""The Shopify sandbox must reproduce the Admin REST API's traps, or tests built on it prove nothing.

Everything runs over real HTTP (``serve_in_thread`` + ``requests``); webhook deliveries go to
a tiny ThreadingHTTPServer receiver, and HMACs are verified here independently of the sandbox.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.server import serve_in_thread
from sync_pipelines.sandbox.shopify import ShopifySandbox
from sync_pipelines_tests.sandbox.delivery_receiver import receiver_fixture

REPO = Path(__file__).resolve().parents[2]
SHOP = "acme.myshopify.com"
TOKEN = "sandbox-shopify-acme"
SECRET = "sandbox-shopify-app-secret"
VERSION = "2025-10"
CALL_LIMIT = "X-Shopify-Shop-Api-Call-Limit"
THROTTLED = ('{"errors":"Exceeded 2 calls per second for api client. '
             'Reduce request rates to resume uninterrupted service."}')
SHOPIFY_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
UTC = timezone.utc
BIG = 100_000  # bucket size for tests that aren't about rate limiting


# -------------------------------------------------------------------------- helpers
@pytest.fixture
def start():
    """``start(orders=..., **sandbox_kwargs) -> (sandbox, api_base, session)``; torn down after."""
    running = []

    def _start(*, orders: int = 100, customers: int = 20, products: int = 10, timezone: str = "America/New_York",
               **kwargs: Any):
        kwargs.setdefault("bucket_size", BIG)
        sandbox = ShopifySandbox(**kwargs)
        sandbox.add_shop(SHOP, TOKEN, orders=orders, customers=customers, products=products, timezone=timezone)
        server = serve_in_thread(sandbox.app)
        session = requests.Session()
        session.headers["X-Shopify-Access-Token"] = TOKEN
        running.append((sandbox, server, session))
        return sandbox, f"{server.url}/shops/{SHOP}/admin/api/{VERSION}", session

    yield _start
    for sandbox, server, session in running:
        session.close()
        server.stop()
        sandbox.close()


receiver = receiver_fixture("/webhooks/shopify")


def _walk(session: requests.Session, url: str, params: dict | None = None) -> list[requests.Response]:
    """Follow rel="next" to the end, sending only the Link URL (as a Shopify client must)."""
    responses = [session.get(url, params=params, timeout=10)]
    while True:
        assert responses[-1].status_code == 200, responses[-1].text
        nxt = responses[-1].links.get("next")
        if nxt is None:
            return responses
        responses.append(session.get(nxt["url"], timeout=10))


def _ids(responses: list[requests.Response], key: str = "orders") -> list[int]:
    return [item["id"] for r in responses for item in r.json()[key]]


def _sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _subscribe(session: requests.Session, api: str, topic: str, address: str) -> dict[str, Any]:
    response = session.post(api + "/webhooks.json", json={"webhook": {"topic": topic, "address": address,
                                                                       "format": "json"}}, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["webhook"]


# ---------------------------------------------------------------------- auth/routing
def test_auth_and_routing(start):
    sandbox, api, session = start(orders=5)
    bad = requests.get(api + "/orders.json", headers={"X-Shopify-Access-Token": "nope"}, timeout=10)
    assert bad.status_code == 401
    assert bad.text == ('{"errors":"[API] Invalid API key or access token '
                        '(unrecognized login or wrong password)"}')
    assert requests.get(api + "/orders.json", timeout=10).status_code == 401
    assert CALL_LIMIT not in bad.headers
    assert sandbox.stats()["unauthorized_401"] == 2

    assert session.get(api.replace(VERSION, "2019-04") + "/orders.json", timeout=10).status_code == 404
    assert session.get(api.replace(SHOP, "nope.myshopify.com") + "/orders.json", timeout=10).status_code == 404
    missing = session.get(api + "/fulfillments.json", timeout=10)
    assert missing.status_code == 404 and missing.json() == {"errors": "Not Found"}

    ok = session.get(api + "/shop.json", timeout=10)
    assert ok.status_code == 200 and ok.headers["X-Shopify-API-Version"] == VERSION
    assert ok.headers["content-type"].startswith("application/json")
    assert ok.json()["shop"]["iana_timezone"] == "America/New_York"
    assert ok.json()["shop"]["myshopify_domain"] == SHOP


def test_record_shapes(start):
    sandbox, api, session = start(orders=40)
    order = session.get(api + "/orders.json", params={"status": "any", "limit": 1}, timeout=10).json()["orders"][0]
    for key in ("id", "admin_graphql_api_id", "name", "email", "created_at", "updated_at", "processed_at",
                "closed_at", "cancelled_at", "cancel_reason", "financial_status", "fulfillment_status",
                "currency", "total_price", "subtotal_price", "total_tax", "customer", "line_items"):
        assert key in order, key
    assert isinstance(order["id"], int) and order["admin_graphql_api_id"] == f"gid://shopify/Order/{order['id']}"
    assert re.fullmatch(r"#\d{4,}", order["name"])
    assert re.fullmatch(r"\d+\.\d{2}", order["total_price"])
    assert SHOPIFY_TS.match(order["created_at"]) and SHOPIFY_TS.match(order["updated_at"])
    item = order["line_items"][0]
    assert {"id", "product_id", "variant_id", "title", "quantity", "price"} <= set(item)
    cents = sum(int(li["price"].replace(".", "")) * li["quantity"] for li in order["line_items"])
    assert order["subtotal_price"] == f"{cents // 100}.{cents % 100:02d}"

    customer = session.get(api + "/customers.json", params={"limit": 1}, timeout=10).json()["customers"][0]
    assert {"id", "email", "first_name", "last_name", "state", "orders_count", "total_spent",
            "created_at", "updated_at"} <= set(customer)
    assert isinstance(customer["total_spent"], str)
    product = session.get(api + "/products.json", params={"limit": 1}, timeout=10).json()["products"][0]
    assert {"id", "title", "handle", "vendor", "product_type", "status", "tags", "created_at", "updated_at",
            "variants"} <= set(product)
    assert {"id", "product_id", "sku", "price", "inventory_quantity", "updated_at"} <= set(product["variants"][0])
    assert product["variants"][0]["product_id"] == product["id"]

    one = session.get(api + f"/orders/{order['id']}.json", params={"fields": "id,name"}, timeout=10)
    assert one.json() == {"order": {"id": order["id"], "name": order["name"]}}
    assert session.get(api + "/orders/1.json", timeout=10).status_code == 404
    counts = {r: session.get(api + f"/{r}/count.json", timeout=10).json()["count"]
              for r in ("customers", "products")}
    assert counts == {"customers": 20, "products": 10}
    active = session.get(api + "/products/count.json", params={"status": "active"}, timeout=10).json()["count"]
    assert active == sum(p["status"] == "active" for p in sandbox.records(SHOP, "products"))


# ------------------------------------------------------------------------ pagination
def test_link_pagination_walks_every_record_once(start):
    sandbox, api, session = start(orders=1000)
    assert session.get(api + "/orders/count.json", params={"status": "any"}, timeout=10).json() == {"count": 1000}
    pages = _walk(session, api + "/orders.json", {"status": "any", "limit": 37, "fields": "id,updated_at"})
    ids = _ids(pages)
    assert len(ids) == len(set(ids)) == 1000 and ids == sorted(ids)
    assert ids == [o["id"] for o in sandbox.records(SHOP, "orders")]
    assert len(pages) == math.ceil(1000 / 37)
    assert all(set(o) == {"id", "updated_at"} for r in pages for o in r.json()["orders"])  # fields kept

    first, second = pages[0], pages[1]
    assert set(first.links) == {"next"} and set(second.links) == {"previous", "next"}
    assert set(pages[-1].links) == {"previous"}
    assert re.fullmatch(r'<http://127\.0\.0\.1:\d+/shops/acme\.myshopify\.com/admin/api/2025-10/orders\.json'
                        r'\?limit=37&fields=id%2Cupdated_at&page_info=[\w-]+>; rel="next"', first.headers["Link"])
    assert ', <' in second.headers["Link"] and 'rel="previous"' in second.headers["Link"]
    back = session.get(second.links["previous"]["url"], timeout=10)
    assert _ids([back]) == _ids([first])

    # page_info may only be combined with limit and fields.
    next_url = first.links["next"]["url"]
    smaller = session.get(next_url.replace("limit=37", "limit=5"), timeout=10)
    assert _ids([smaller]) == _ids([second])[:5]
    extra = session.get(next_url + "&status=any", timeout=10)
    assert extra.status_code == 400
    assert extra.json() == {"errors": {"status": "status cannot be passed when page_info is present. See "
                                                 "https://shopify.dev/api/usage/pagination-rest for more information."}}
    garbage = session.get(api + "/orders.json", params={"page_info": "not-a-token"}, timeout=10)
    assert garbage.status_code == 400 and garbage.json() == {"errors": {"page_info": "Invalid value."}}
    wrong_resource = session.get(api + "/customers.json",
                                 params={"page_info": next_url.split("page_info=")[1]}, timeout=10)
    assert wrong_resource.status_code == 400

    for bad in (251, 0, "ten"):
        response = session.get(api + "/orders.json", params={"limit": bad}, timeout=10)
        assert response.status_code == 400, bad
        assert "limit" in response.json()["errors"]
    assert len(session.get(api + "/orders.json", params={"limit": 250, "status": "any"},
                           timeout=10).json()["orders"]) == 250
    assert len(session.get(api + "/orders.json", params={"status": "any"}, timeout=10).json()["orders"]) == 50


def test_filters_since_id_ids_and_order_desc(start):
    sandbox, api, session = start(orders=120)
    every = sandbox.records(SHOP, "orders")
    pivot = every[40]["id"]
    since = _ids(_walk(session, api + "/orders.json", {"status": "any", "since_id": pivot, "limit": 25}))
    assert since == [o["id"] for o in every if o["id"] > pivot]
    picked = [every[3]["id"], every[77]["id"]]
    got = session.get(api + "/orders.json", params={"status": "any", "ids": ",".join(map(str, picked))}, timeout=10)
    assert _ids([got]) == sorted(picked)

    desc = _walk(session, api + "/orders.json", {"status": "any", "order": "updated_at desc", "limit": 13})
    expected = sorted(every, key=lambda o: (datetime.fromisoformat(o["updated_at"]), o["id"]), reverse=True)
    assert _ids(desc) == [o["id"] for o in expected]
    bad = session.get(api + "/orders.json", params={"order": "total_price asc"}, timeout=10)
    assert bad.status_code == 400


def test_default_status_open_hides_closed_and_cancelled(start):
    sandbox, api, session = start(orders=400)
    by_status = {status: set(_ids(_walk(session, api + "/orders.json", {"status": status, "limit": 250})))
                 for status in ("open", "closed", "cancelled", "any")}
    default = _walk(session, api + "/orders.json", {"limit": 250})
    assert set(_ids(default)) == by_status["open"]
    assert all(o["closed_at"] is None and o["cancelled_at"] is None for r in default for o in r.json()["orders"])
    assert by_status["closed"] and by_status["cancelled"]
    assert len(by_status["any"]) == 400 > len(by_status["open"])
    assert by_status["open"] | by_status["closed"] | by_status["cancelled"] == by_status["any"]
    assert not by_status["open"] & (by_status["closed"] | by_status["cancelled"])
    assert session.get(api + "/orders/count.json", timeout=10).json()["count"] == len(by_status["open"])
    assert session.get(api + "/orders/count.json", params={"status": "any"}, timeout=10).json()["count"] == 400

    victim = min(by_status["open"])
    assert sandbox.cancel_orders(SHOP, ids=[victim]) == [victim]
    cancelled = sandbox.record(SHOP, "orders", victim)
    assert cancelled["cancelled_at"] and cancelled["closed_at"] and cancelled["cancel_reason"] == "customer"
    assert victim not in _ids(_walk(session, api + "/orders.json", {"limit": 250}))
    assert victim in _ids(_walk(session, api + "/orders.json", {"status": "cancelled", "limit": 250}))
    assert session.get(api + "/orders.json", params={"status": "bogus"}, timeout=10).status_code == 400


def test_updated_at_min_is_inclusive_and_compares_instants(start):
    sandbox, api, session = start(orders=300)
    every = sandbox.records(SHOP, "orders")
    pivot = sorted(every, key=lambda o: datetime.fromisoformat(o["updated_at"]))[150]
    when = datetime.fromisoformat(pivot["updated_at"])
    expected = {o["id"] for o in every if datetime.fromisoformat(o["updated_at"]) >= when}
    forms = [pivot["updated_at"],
             when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
             when.astimezone(UTC).isoformat(),
             when.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(),
             when.astimezone(ZoneInfo("America/New_York")).replace(tzinfo=None).isoformat()]  # naive: shop zone
    for form in forms:
        got = set(_ids(_walk(session, api + "/orders.json",
                             {"status": "any", "updated_at_min": form, "limit": 250})))
        assert got == expected, form
        assert pivot["id"] in got
        count = session.get(api + "/orders/count.json", params={"status": "any", "updated_at_min": form}, timeout=10)
        assert count.json()["count"] == len(expected)
    later = (when + timedelta(seconds=1)).isoformat()
    got = set(_ids(_walk(session, api + "/orders.json", {"status": "any", "updated_at_min": later, "limit": 250})))
    assert pivot["id"] not in got
    window = {"status": "any", "updated_at_min": pivot["updated_at"], "updated_at_max": pivot["updated_at"]}
    assert pivot["id"] in _ids([session.get(api + "/orders.json", params=window, timeout=10)])
    assert session.get(api + "/orders.json", params={"updated_at_min": "yesterday"}, timeout=10).status_code == 400


def test_timestamps_carry_the_offset_at_that_instant(start):
    sandbox, api, session = start(orders=200)
    offsets = {o["updated_at"][-6:] for o in sandbox.records(SHOP, "orders")}
    assert offsets == {"-05:00", "-04:00"}  # two years of history straddle DST changes

    a, b, c, d = (o["id"] for o in sandbox.records(SHOP, "orders")[:4])
    sandbox.set_clock(datetime(2026, 3, 8, 6, 59, 59, tzinfo=UTC))  # spring forward
    sandbox.update_orders(SHOP, ids=[a])
    sandbox.advance(1)
    sandbox.update_orders(SHOP, ids=[b])
    assert sandbox.record(SHOP, "orders", a)["updated_at"] == "2026-03-08T01:59:59-05:00"
    assert sandbox.record(SHOP, "orders", b)["updated_at"] == "2026-03-08T03:00:00-04:00"
    sandbox.set_clock(datetime(2026, 11, 1, 5, 30, tzinfo=UTC))  # fall back: 01:30 EDT ...
    sandbox.update_orders(SHOP, ids=[c])
    sandbox.advance(40 * 60)  # ... then 01:10 EST, 40 minutes LATER but a smaller string
    sandbox.update_orders(SHOP, ids=[d])
    assert sandbox.record(SHOP, "orders", c)["updated_at"] == "2026-11-01T01:30:00-04:00"
    assert sandbox.record(SHOP, "orders", d)["updated_at"] == "2026-11-01T01:10:00-05:00"

    params = {"status": "any", "updated_at_min": "2026-03-08T06:59:59Z", "order": "updated_at asc"}
    assert _ids([session.get(api + "/orders.json", params=params, timeout=10)]) == [a, b, c, d]
    params["updated_at_min"] = "2026-11-01T01:30:00-04:00"  # = 05:30Z: d (06:10Z) is after it
    assert _ids([session.get(api + "/orders.json", params=params, timeout=10)]) == [c, d]
    params["updated_at_min"] = "2026-03-08T03:00:00-04:00"
    assert _ids([session.get(api + "/orders.json", params=params, timeout=10)]) == [b, c, d]

    sandbox.add_shop("kolkata.myshopify.com", "t", orders=3, timezone="Asia/Kolkata")
    assert {o["created_at"][-6:] for o in sandbox.records("kolkata.myshopify.com", "orders")} == {"+05:30"}


def test_touch_same_second_keeps_updated_at(start):
    sandbox, api, session = start(orders=10)
    sandbox.set_clock(datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC))
    oid = sandbox.update_orders(SHOP, 1)[0]
    before = sandbox.record(SHOP, "orders", oid)
    after = sandbox.touch_same_second(SHOP, "orders", oid)
    assert after["updated_at"] == before["updated_at"] == "2026-01-15T07:00:00-05:00"
    assert after["note"] != before["note"]
    got = session.get(api + "/orders.json", params={"status": "any", "updated_at_min": before["updated_at"]},
                      timeout=10).json()["orders"]
    assert [o["note"] for o in got if o["id"] == oid] == [after["note"]]
    product = sandbox.records(SHOP, "products")[0]
    touched = sandbox.touch_same_second(SHOP, "products", product["id"])
    assert touched["updated_at"] == product["updated_at"] and touched["title"] != product["title"]


def test_pagination_is_stable_while_data_changes(start):
    sandbox, api, session = start(orders=60)
    all_ids = {o["id"] for o in sandbox.records(SHOP, "orders")}
    params = {"status": "any", "order": "updated_at asc", "limit": 10}
    first = session.get(api + "/orders.json", params=params, timeout=10)
    seen = _ids([first])
    moved = seen[0]
    sandbox.update_orders(SHOP, ids=[moved])  # now (real clock) > all history: moves to the end
    rest = _walk(session, first.links["next"]["url"])
    walked = seen + _ids(rest)
    assert set(walked) == all_ids and len(walked) == 61
    assert walked.count(moved) == 2 and walked[-1] == moved
    stamps = [datetime.fromisoformat(o["updated_at"]) for r in [first, *rest] for o in r.json()["orders"]]
    assert stamps == sorted(stamps)

    # id asc: edits don't move records, inserts land at the end, deletes leave no gap.
    first = session.get(api + "/orders.json", params={"status": "any", "limit": 10}, timeout=10)
    seen = _ids([first])
    unseen = sorted(all_ids - set(seen))
    sandbox.update_orders(SHOP, ids=[seen[3], unseen[20]])
    deleted = sandbox.delete_orders(SHOP, ids=[unseen[5]])
    added = sandbox.add_orders(SHOP, 2)
    walked = seen + _ids(_walk(session, first.links["next"]["url"]))
    assert walked == sorted((all_ids - set(deleted)) | set(added))


# ------------------------------------------------------------------------ rate limit
def test_leaky_bucket(start):
    sandbox, api, session = start(orders=5, bucket_size=4, leak_per_second=2.0)
    used = []
    for _ in range(4):
        response = session.get(api + "/shop.json", timeout=10)
        assert response.status_code == 200
        used.append(response.headers[CALL_LIMIT])
    assert used == ["1/4", "2/4", "3/4", "4/4"]
    limited = session.get(api + "/orders.json", timeout=10)
    assert limited.status_code == 429
    assert limited.text == THROTTLED
    assert limited.headers["Retry-After"] == "2.0"
    assert limited.headers[CALL_LIMIT] == "4/4"
    time.sleep(1.05)  # leaks >= 2 calls
    again = session.get(api + "/shop.json", timeout=10)
    assert again.status_code == 200
    level, size = map(int, again.headers[CALL_LIMIT].split("/"))
    assert size == 4 and level <= 3
    assert sandbox.stats()["rate_limited_429"] == 1

    for plan, header in (("advanced", "1/80"), ("plus", "1/400")):
        domain = f"{plan}.myshopify.com"
        sandbox.add_shop(domain, "t", orders=1, plan=plan)
        response = session.get(api.replace(SHOP, domain) + "/shop.json", headers={"X-Shopify-Access-Token": "t"},
                               timeout=10)
        assert response.headers[CALL_LIMIT] == header
    sandbox.set_rate_limit("plus.myshopify.com", bucket_size=2, leak_per_second=0.5, reset=True)
    for expected in (200, 200, 429):
        response = session.get(api.replace(SHOP, "plus.myshopify.com") + "/shop.json",
                               headers={"X-Shopify-Access-Token": "t"}, timeout=10)
        assert response.status_code == expected
    assert "Exceeded 0.5 calls per second" in response.text


def test_faults(start):
    faults = Faults(seed=1)
    sandbox, api, session = start(orders=5, bucket_size=40, faults=faults)
    faults.configure(retry_after_seconds=0)
    faults.fail_next("429", 2)
    for _ in range(2):
        injected = session.get(api + "/orders.json", timeout=10)
        assert injected.status_code == 429 and injected.text == THROTTLED
        assert injected.headers["Retry-After"] == "0"
        assert injected.headers[CALL_LIMIT] == "0/40"  # nearly empty bucket, yet throttled
    assert session.get(api + "/orders.json", timeout=10).status_code == 200

    control = api.split("/shops/")[0] + "/_sandbox/faults"
    snap = requests.post(control, json={"retry_after": "0.5", "fail_next": [{"kind": "429", "n": 1},
                                                                             {"kind": "500", "n": 1},
                                                                             {"kind": "truncated", "n": 1}]},
                         timeout=10).json()
    assert snap["retry_after"] == "0.5" and len(snap["pending"]) == 3
    assert session.get(api + "/orders.json", timeout=10).headers["Retry-After"] == "0.5"
    assert session.get(api + "/orders.json", timeout=10).status_code == 500
    truncated = session.get(api + "/orders.json", timeout=10)
    assert truncated.status_code == 200
    with pytest.raises(ValueError):
        json.loads(truncated.content)
    stats = sandbox.stats()
    assert stats["fault_429"] == 3 and stats["total_429"] == 3


# -------------------------------------------------------------------------- webhooks
def test_webhooks_crud(start):
    sandbox, api, session = start(orders=5)
    address = "http://127.0.0.1:9/webhooks/shopify"
    created = _subscribe(session, api, "orders/create", address)
    assert set(created) >= {"id", "address", "topic", "format", "created_at", "updated_at", "api_version",
                            "fields", "metafield_namespaces"}
    assert created["topic"] == "orders/create" and created["api_version"] == VERSION and created["format"] == "json"
    assert isinstance(created["id"], int) and SHOPIFY_TS.match(created["created_at"])

    duplicate = session.post(api + "/webhooks.json", json={"webhook": {"topic": "orders/create",
                                                                       "address": address}}, timeout=10)
    assert duplicate.status_code == 422
    assert duplicate.json() == {"errors": {"address": ["for this topic has already been taken"]}}
    unknown = session.post(api + "/webhooks.json", json={"webhook": {"topic": "orders/exploded",
                                                                     "address": address}}, timeout=10)
    assert unknown.status_code == 422 and "topic" in unknown.json()["errors"]
    assert session.post(api + "/webhooks.json", json={"topic": "orders/create"}, timeout=10).status_code == 400
    second = _subscribe(session, api, "orders/updated", address)

    listed = session.get(api + "/webhooks.json", timeout=10).json()["webhooks"]
    assert [w["id"] for w in listed] == [created["id"], second["id"]]
    assert session.get(api + "/webhooks/count.json", timeout=10).json() == {"count": 2}
    assert session.get(api + "/webhooks/count.json", params={"topic": "orders/updated"},
                       timeout=10).json() == {"count": 1}
    assert session.get(api + f"/webhooks/{created['id']}.json", timeout=10).json() == {"webhook": created}

    moved = session.put(api + f"/webhooks/{created['id']}.json",
                        json={"webhook": {"id": created["id"], "address": address + "/v2"}}, timeout=10)
    assert moved.status_code == 200 and moved.json()["webhook"]["address"] == address + "/v2"
    assert session.delete(api + f"/webhooks/{created['id']}.json", timeout=10).status_code == 200
    assert session.get(api + f"/webhooks/{created['id']}.json", timeout=10).status_code == 404
    assert session.get(api + "/webhooks/count.json", timeout=10).json() == {"count": 1}
    assert requests.get(api + "/webhooks.json", timeout=10).status_code == 401


def test_webhook_delivery_is_signed_and_logged(start, receiver):
    sandbox, api, session = start(orders=30)
    recv = receiver()
    for topic in ("orders/updated", "orders/delete", "customers/create", "carts/create", "checkouts/create"):
        _subscribe(session, api, topic, recv.url)
    updated = sandbox.update_orders(SHOP, 2)
    deleted = sandbox.delete_orders(SHOP, 1)
    sandbox.add_customers(SHOP, 1)
    cart = sandbox.cart_event(SHOP, "create")
    checkout = sandbox.checkout_event(SHOP, "create")
    assert sandbox.flush(10)
    assert len(recv.posts) == 6
    webhook_ids = set()
    for headers, body in recv.posts:
        assert hmac.compare_digest(headers["x-shopify-hmac-sha256"], _sign(body))
        assert headers["content-type"] == "application/json"
        assert headers["x-shopify-shop-domain"] == SHOP and headers["x-shopify-api-version"] == VERSION
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", headers["x-shopify-triggered-at"])
        uuid.UUID(headers["x-shopify-webhook-id"])
        assert headers["x-shopify-event-id"]
        webhook_ids.add(headers["x-shopify-webhook-id"])
    assert len(webhook_ids) == 6
    by_topic: dict[str, list[dict]] = {}
    for headers, body in recv.posts:
        by_topic.setdefault(headers["x-shopify-topic"], []).append(json.loads(body))
    assert [o["id"] for o in by_topic["orders/updated"]] == updated
    assert by_topic["orders/updated"][0] == sandbox.record(SHOP, "orders", updated[0])
    assert by_topic["orders/delete"] == [{"id": deleted[0]}]
    assert by_topic["carts/create"] == [cart] and cart["id"] == cart["token"]
    assert by_topic["checkouts/create"] == [checkout] and checkout["completed_at"] is None

    log = sandbox.deliveries()
    assert len(log) == 6 and all(e["ok"] and e["status"] == 200 and e["attempts"] == 1 for e in log)
    assert {e["webhook_id"] for e in log} == webhook_ids
    assert all(e["duration_ms"] >= 0 and e["address"] == recv.url for e in log)
    assert sandbox.stats()["deliveries"]["ok"] == 6


def test_webhook_duplicates_reorder_forgery_and_retries(start, receiver):
    sandbox, api, session = start(orders=30)
    recv = receiver()
    _subscribe(session, api, "orders/updated", recv.url)

    sandbox.duplicate_next(1)
    sandbox.update_orders(SHOP, 1)
    assert sandbox.flush(10)
    (h1, b1), (h2, b2) = recv.posts
    assert h1["x-shopify-webhook-id"] == h2["x-shopify-webhook-id"] and b1 == b2
    assert [e["duplicate"] for e in sandbox.deliveries()] == [False, True]

    # reorder: one batch is delivered newest-first, so an older update arrives last.
    recv.posts.clear()
    sandbox.reorder = True
    oid = sandbox.records(SHOP, "orders")[5]["id"]
    sandbox.set_clock(datetime(2026, 1, 1, 12, tzinfo=UTC))
    with sandbox.batch():
        sandbox.update_orders(SHOP, ids=[oid])
        sandbox.advance(5)
        sandbox.update_orders(SHOP, ids=[oid])
    assert sandbox.flush(10)
    stamps = [json.loads(body)["updated_at"] for _, body in recv.posts]
    assert stamps == ["2026-01-01T07:00:05-05:00", "2026-01-01T07:00:00-05:00"]
    recv.posts.clear()
    picked = sandbox.update_orders(SHOP, 3)
    assert sandbox.flush(10)
    assert [json.loads(body)["id"] for _, body in recv.posts] == picked[::-1]
    sandbox.reorder = False

    recv.posts.clear()
    sandbox.sign_with = "forged-secret"
    sandbox.update_orders(SHOP, 1)
    sandbox.sign_with = None
    sandbox.send_raw(SHOP, "orders/updated", b'{"id": 1}', headers={"X-Shopify-Hmac-Sha256": "bogus"})
    assert sandbox.flush(10)
    (forged_h, forged_b), (raw_h, raw_b) = recv.posts
    assert forged_h["x-shopify-hmac-sha256"] == _sign(forged_b, "forged-secret") != _sign(forged_b)
    assert raw_b == b'{"id": 1}' and raw_h["x-shopify-hmac-sha256"] == "bogus"

    # retries: 2 failures then success; a dead receiver exhausts the attempts.
    flaky = receiver([500, 503])
    _subscribe(session, api, "products/update", flaky.url)
    sandbox.configure_webhooks(backoff_seconds=0.01, max_attempts=3)
    sandbox.update_products(SHOP, 1)
    assert sandbox.flush(10)
    entry = sandbox.deliveries()[-1]
    assert entry["ok"] and entry["attempts"] == 3 and entry["status"] == 200
    assert len({h["x-shopify-webhook-id"] for h, _ in flaky.posts}) == 1
    sandbox.send_raw(SHOP, "orders/updated", b"{}", address="http://127.0.0.1:9/unreachable")
    assert sandbox.flush(10)
    dead = sandbox.deliveries()[-1]
    assert not dead["ok"] and dead["status"] is None and dead["attempts"] == 3 and dead["error"]
    assert sandbox.stats()["deliveries"]["failed"] == 1


# ------------------------------------------------------------------- scale/determinism
def test_hundred_thousand_orders(start):
    sandbox, api, session = start(orders=100_000, customers=2_000, products=50)
    assert sandbox.shop(SHOP).counts()["orders"] == 100_000
    assert session.get(api + "/orders/count.json", params={"status": "any"}, timeout=30).json() == {"count": 100_000}
    page = session.get(api + "/orders.json", params={"status": "any", "limit": 250, "order": "updated_at asc"},
                       timeout=30)
    assert len(page.json()["orders"]) == 250 and "next" in page.links
    assert len(session.get(page.links["next"]["url"], timeout=30).json()["orders"]) == 250


def test_deterministic_by_seed():
    def snapshot(seed: int, shop: str = SHOP) -> dict[str, Any]:
        sandbox = ShopifySandbox(seed=seed)
        sandbox.add_shop(shop, "t", orders=50, customers=10, products=5)
        data = {r: sandbox.records(shop, r) for r in ("orders", "customers", "products")}
        data["mutated"] = sandbox.update_orders(shop, 3)
        sandbox.close()
        return data

    assert snapshot(7) == snapshot(7)
    assert snapshot(7)["orders"] != snapshot(8)["orders"]
    assert snapshot(7)["orders"] != snapshot(7, "globex.myshopify.com")["orders"]


# ------------------------------------------------------------------------ control/CLI
def test_control_endpoints(start, receiver):
    sandbox, api, session = start(orders=20)
    base = api.split("/shops/")[0]
    recv = receiver()
    assert requests.get(base + "/_sandbox/health", timeout=10).json()["shops"] == [SHOP]
    added = requests.post(base + "/_sandbox/shops", json={"shop": "globex.myshopify.com", "orders": 7}, timeout=10)
    assert added.json()["access_token"] == "sandbox-shopify-globex" and added.json()["counts"]["orders"] == 7
    assert requests.post(base + "/_sandbox/shops", json={"shop": "not a domain"}, timeout=10).status_code == 400

    _subscribe(session, api, "orders/create", recv.url)
    requests.post(base + "/_sandbox/webhooks", json={"duplicate_next": 1}, timeout=10)
    oid = sandbox.records(SHOP, "orders")[0]["id"]
    result = requests.post(base + "/_sandbox/mutate",
                           json={"shop": SHOP, "add_orders": 1, "update_orders": {"ids": [oid]},
                                 "cart_event": "create"}, timeout=10).json()
    assert len(result["add_orders"]) == 1 and result["update_orders"] == [oid] and result["cart_event"]["token"]
    assert requests.post(base + "/_sandbox/mutate", json={"shop": SHOP, "explode": 1}, timeout=10).status_code == 400
    assert requests.post(base + "/_sandbox/mutate", json={"shop": "x.myshopify.com", "add_orders": 1},
                         timeout=10).status_code == 404
    assert requests.post(base + "/_sandbox/webhooks/flush", json={"timeout": 10}, timeout=15).json() == \
        {"flushed": True, "pending": 0}
    deliveries = requests.get(base + "/_sandbox/deliveries", timeout=10).json()["deliveries"]
    assert [d["topic"] for d in deliveries] == ["orders/create", "orders/create"]
    assert deliveries[0]["webhook_id"] == deliveries[1]["webhook_id"]

    clock = requests.post(base + "/_sandbox/clock", json={"set": "2026-03-08T06:59:59Z", "advance": 1},
                          timeout=10).json()
    assert clock == {"now": "2026-03-08T07:00:00.000000Z", "frozen": True}
    stats = requests.get(base + "/_sandbox/stats", timeout=10).json()
    assert stats["requests_by_shop"][SHOP] == 1 and stats["deliveries"]["ok"] == 2
    assert "rate_limited_429" in stats and "total_429" in stats


def test_cli_serves_named_shops():
    command = [sys.executable, "-m", "sync_pipelines.sandbox.shopify", "--port", "0", "--shops", "acme,globex",
               "--orders", "25"]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            banner = process.stdout.readline()
            match = re.fullmatch(r"Shopify sandbox on (http://127\.0\.0\.1:\d+)\n", banner)
            assert match, banner
            base = match.group(1)
            assert requests.get(base + "/_sandbox/health", timeout=5).json()["shops"] == \
                ["acme.myshopify.com", "globex.myshopify.com"]
            count = requests.get(base + "/shops/globex.myshopify.com/admin/api/2025-10/orders/count.json",
                                 params={"status": "any"},
                                 headers={"X-Shopify-Access-Token": "sandbox-shopify-globex"}, timeout=5)
            assert count.json() == {"count": 25}
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        stderr = process.stderr.read()
    assert process.returncode == 0, stderr
