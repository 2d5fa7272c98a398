"""The EcoManager sandbox must behave like EcoManager's published v2 API, or tests built on it prove nothing.

Pinned here: Laravel's cursor-paginator shape and cursor encoding (from the docs' webhook list
example), the order fields clients read, French states, EcoManager's timestamp format, the legacy
offset pages and their drift, Laravel's error bodies, the per-store rate limit, webhook CRUD with
the activation probe, and signed deliveries verified independently of the sandbox.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import requests

from sync_pipelines.sandbox.ecomanager import EcoManagerSandbox, decode_cursor, encode_cursor
from sync_pipelines.sandbox.ecomanager.data import CONFIRMATION_STATES, ORDER_STATES
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.server import serve_in_thread
from sync_pipelines_tests.sandbox.delivery_receiver import receiver_fixture

REPO = Path(__file__).resolve().parents[2]
STORE, OTHER = "natureldz", "lekidi"
TOKEN = "sandbox-ecomanager-natureldz"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
SECRET = "supersecretkey"


@pytest.fixture
def start():
    running = []

    def _start(orders: int = 120, **kwargs: Any):
        sandbox = EcoManagerSandbox(seed=5, requests_per_minute=kwargs.pop("requests_per_minute", None),
                                    faults=Faults(seed=1), webhook_backoff_seconds=0.01, **kwargs)
        sandbox.add_store(STORE, orders=orders)
        sandbox.add_store(OTHER, orders=10)
        server = serve_in_thread(sandbox.app)
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"})
        running.append((sandbox, server, session))
        return sandbox, f"{server.url}/stores/{STORE}/api/shop/v2", session

    yield _start
    for sandbox, server, session in running:
        session.close()
        server.stop()
        sandbox.close()


receiver = receiver_fixture("/webhooks/ecomanager")


def webhook(url: str, event: str = "OrderCreated", **extra: Any) -> dict[str, Any]:
    return {"name": f"{event} hook", "event": event, "http_method": "post", "delivery_url": url,
            "headers": [{"key": "X-Custom", "value": "v1"}], "payload": [], "secret": SECRET,
            "is_active": True, **extra}


# ------------------------------------------------------------------- orders
def test_a_store_of_100000_orders_costs_no_memory_and_starts_at_once(start):
    tracemalloc.start()
    try:
        sandbox, api, session = start(orders=100_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000, peak  # the sandbox and its server; 100,000 orders made up front would be ~100 MB
    store = sandbox.store(STORE)
    assert store.count() == 100_000 and store.overrides == {} and store.deleted == []
    body = session.get(f"{api}/orders", params={"per_page": 100, "page": 1000, "sort": "-id"}).json()
    assert [o["id"] for o in body["data"]] == list(range(store.first_id + 99, store.first_id - 1, -1))
    assert body["meta"]["total"] == 100_000 and body["meta"]["last_page"] == 1000


def test_cursor_page_has_laravels_shape_and_cursor(start):
    sandbox, api, session = start()
    store = sandbox.store(STORE)
    body = session.get(f"{api}/orders", params={"per_page": 25, "sort": "-id"}).json()
    assert set(body) == {"data", "links", "meta"}
    assert set(body["links"]) == {"first", "last", "prev", "next"}
    assert set(body["meta"]) == {"path", "per_page", "next_cursor", "prev_cursor"}
    assert body["meta"]["per_page"] == 25 and body["meta"]["prev_cursor"] is None
    assert body["meta"]["path"].endswith(f"/stores/{STORE}/api/shop/v2/orders")
    last = body["data"][-1]["id"]
    assert last == store.next_id - 25
    raw = body["meta"]["next_cursor"]
    assert json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))) == {"id": last, "_pointsToNextItems": True}
    assert body["links"]["next"] == f"{body['meta']['path']}?cursor={raw}"  # the link drops per_page and sort
    # the docs' own example cursor decodes the same way
    assert decode_cursor("eyJpZCI6OTA1NDQ4LCJfcG9pbnRzVG9OZXh0SXRlbXMiOnRydWV9") == (905448, True)
    assert encode_cursor(905448, True) == "eyJpZCI6OTA1NDQ4LCJfcG9pbnRzVG9OZXh0SXRlbXMiOnRydWV9"


def test_cursor_walks_both_ways_in_both_orders(start):
    sandbox, api, session = start(orders=60)
    store = sandbox.store(STORE)
    for sort, expected in (("-id", list(range(store.next_id - 1, store.first_id - 1, -1))),
                           ("id", list(range(store.first_id, store.next_id)))):
        seen, cursor, pages = [], None, []
        while True:
            body = session.get(f"{api}/orders", params={"per_page": 25, "sort": sort,
                                                       **({"cursor": cursor} if cursor else {})}).json()
            pages.append(body)
            seen += [o["id"] for o in body["data"]]
            cursor = body["meta"]["next_cursor"]
            if cursor is None:
                break
        assert seen == expected and [len(p["data"]) for p in pages] == [25, 25, 10]
        back = session.get(f"{api}/orders", params={"per_page": 25, "sort": sort,
                                                   "cursor": pages[2]["meta"]["prev_cursor"]}).json()
        assert back["data"] == pages[1]["data"] and back["meta"]["next_cursor"] is not None
    asc = session.get(f"{api}/orders", params={"per_page": 5, "sort_direction": "desc"}).json()
    assert asc["data"][0]["id"] == store.next_id - 1  # sort_direction is an alias
    default = session.get(f"{api}/orders", params={"per_page": 5}).json()
    assert default["data"][0]["id"] == store.first_id  # default order: id ascending


def test_orders_have_the_fields_clients_read_in_french_and_ecomanager_time(start):
    sandbox, api, session = start(orders=400)
    orders = []
    cursor = None
    while True:
        body = session.get(f"{api}/orders", params={"per_page": 100, **({"cursor": cursor} if cursor else {})}).json()
        orders += body["data"]
        if not (cursor := body["meta"]["next_cursor"]):
            break
    assert len(orders) == 400
    states = {o["order_state_name"] for o in orders}
    assert states <= set(ORDER_STATES) and {"En attente", "Livré", "Annulé"} <= states
    assert {o["confirmation_state_name"] for o in orders} - {None} <= set(CONFIRMATION_STATES)
    for order in orders:
        assert isinstance(order["id"], int) and order["reference"]
        assert order["full_name"] and re.fullmatch(r"0[567]\d{8}", order["telephone"])
        assert order["wilaya"] and order["commune"]
        subtotal = sum(i["quantity"] * i["selling_price"] for i in order["items"])
        assert order["total"] == subtotal + order["delivery_price"]
        for field in ("created_at", "updated_at"):
            assert TIMESTAMP.match(order[field])
        assert order["updated_at"] >= order["created_at"]
        for entry in order["confirmation_history"]:
            assert set(entry) == {"state_name", "created_at"} and TIMESTAMP.match(entry["created_at"])
        if order["confirmation_state_name"]:
            assert set(order["confirmator"]) == {"id", "name"}
            assert order["confirmation_history"][-1]["state_name"] == order["confirmation_state_name"]
        assert (order["confirmed_at"] is not None) == (order["confirmation_state_name"] == "Confirmé")
    by_id = sorted(orders, key=lambda o: o["id"])
    assert [o["created_at"] for o in by_id] == sorted(o["created_at"] for o in by_id)  # ids grow with time


def test_orders_are_deterministic_per_seed_store_and_id(start):
    sandbox, api, session = start()
    store = sandbox.store(STORE)
    again = EcoManagerSandbox(seed=5)
    again.add_store(STORE, orders=120)
    assert again.store(STORE).order(store.first_id + 3) == store.order(store.first_id + 3)
    assert store.order(store.first_id + 3) != store.order(store.first_id + 4)
    assert session.get(f"{api}/orders/{store.first_id + 3}").json() == store.order(store.first_id + 3)


def test_offset_pages_have_laravels_length_aware_shape_and_drift(start):
    sandbox, api, session = start(orders=30)
    first = session.get(f"{api}/orders", params={"per_page": 10, "page": 1, "sort": "-id"}).json()
    assert set(first["meta"]) == {"current_page", "from", "last_page", "path", "per_page", "to", "total"}
    assert (first["meta"]["from"], first["meta"]["to"], first["meta"]["last_page"]) == (1, 10, 3)
    assert first["links"]["next"].endswith("?page=2") and first["links"]["prev"] is None
    sandbox.add_orders(STORE, 3)
    second = session.get(f"{api}/orders", params={"per_page": 10, "page": 2, "sort": "-id"}).json()
    assert [o["id"] for o in second["data"]][:3] == [o["id"] for o in first["data"]][-3:]  # repeated
    beyond = session.get(f"{api}/orders", params={"per_page": 10, "page": 9}).json()
    assert beyond["data"] == [] and beyond["meta"]["from"] is None


def test_cursor_keyset_is_stable_while_orders_arrive_and_leave(start):
    sandbox, api, session = start(orders=30)
    first = session.get(f"{api}/orders", params={"per_page": 10, "sort": "-id"}).json()
    sandbox.add_orders(STORE, 4)
    sandbox.delete_order(STORE, first["data"][0]["id"])
    second = session.get(f"{api}/orders", params={"per_page": 10, "sort": "-id",
                                                 "cursor": first["meta"]["next_cursor"]}).json()
    assert second["data"][0]["id"] == first["data"][-1]["id"] - 1


# ------------------------------------------------------------------- errors
def test_errors_are_laravels_json(start):
    sandbox, api, session = start()
    plain = requests.get(f"{api}/orders", headers={"Accept": "application/json"})
    assert (plain.status_code, plain.json()) == (401, {"message": "Unauthenticated."})
    wrong = requests.get(f"{api}/orders", headers={"Authorization": "Bearer sandbox-ecomanager-lekidi"})
    assert wrong.status_code == 401  # another store's token
    other = api.replace(STORE, OTHER)
    assert requests.get(f"{other}/orders", headers={"Authorization": "Bearer sandbox-ecomanager-lekidi"}).ok
    unknown = session.get(api.replace(STORE, "nosuchstore") + "/orders")
    assert unknown.status_code == 404 and "message" in unknown.json()
    missing = session.get(f"{api}/orders/1")
    assert missing.status_code == 404 and missing.json()["message"].startswith("No query results for model")
    for params, field in (({"per_page": 101}, "per_page"), ({"per_page": 0}, "per_page"),
                          ({"sort": "created_at"}, "sort"), ({"cursor": "not-a-cursor"}, "cursor"),
                          ({"page": "x"}, "page")):
        response = session.get(f"{api}/orders", params=params)
        assert response.status_code == 422, params
        assert set(response.json()) == {"message", "errors"} and field in response.json()["errors"]
    route = session.get(f"{api}/customers")
    assert route.status_code == 404 and "message" in route.json()


def test_the_per_store_rate_limit_answers_429_with_retry_after(start):
    sandbox, api, session = start(requests_per_minute=2)
    first = session.get(f"{api}/orders", params={"per_page": 1})
    assert first.headers["X-RateLimit-Limit"] == "2" and first.headers["X-RateLimit-Remaining"] == "1"
    assert session.get(f"{api}/orders", params={"per_page": 1}).headers["X-RateLimit-Remaining"] == "0"
    third = session.get(f"{api}/orders", params={"per_page": 1})
    assert third.status_code == 429 and third.json() == {"message": "Too Many Attempts."}
    assert 1 <= int(third.headers["Retry-After"]) <= 60
    assert int(third.headers["X-RateLimit-Reset"]) >= int(time.time())
    other = requests.get(api.replace(STORE, OTHER) + "/orders",
                         headers={"Authorization": "Bearer sandbox-ecomanager-lekidi"})
    assert other.status_code == 200  # each store has its own window
    assert sandbox.stats()["rate_limited_429"] == 1


def test_injected_faults(start):
    sandbox, api, session = start()
    sandbox.faults.configure(retry_after_seconds=7)
    sandbox.faults.fail_next("429", 1)
    sandbox.faults.fail_next("500", 1)
    sandbox.faults.fail_next("invalid_json", 1)
    throttled = session.get(f"{api}/orders")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    failed = session.get(f"{api}/orders")
    assert (failed.status_code, failed.json()) == (500, {"message": "Server Error"})
    garbage = session.get(f"{api}/orders")
    assert garbage.status_code == 200
    with pytest.raises(ValueError):
        garbage.json()
    assert session.get(f"{api}/orders").ok


# ---------------------------------------------------------------- mutations
def test_changes_through_the_control_plane_and_per_kind_call_counts(start):
    sandbox, api, session = start(orders=20)
    base = api.split("/stores/")[0]
    store = sandbox.store(STORE)
    added = requests.post(f"{base}/_sandbox/orders/add", json={"store": STORE, "n": 2}).json()["added"]
    assert added == [store.next_id - 2, store.next_id - 1]
    top = session.get(f"{api}/orders", params={"sort": "-id", "per_page": 2}).json()["data"]
    assert [o["id"] for o in top] == added[::-1] and top[0]["order_state_name"] == "En attente"
    before = session.get(f"{api}/orders/{added[0]}").json()
    after = requests.post(f"{base}/_sandbox/orders/update", json={
        "store": STORE, "id": added[0], "confirmation_state": "Confirmé", "order_state": "En dispatch",
        "confirmator_id": 12}).json()
    assert after["order_state_name"] == "En dispatch" and after["confirmation_state_name"] == "Confirmé"
    assert after["confirmator"] == {"id": 12, "name": "Yacine K."}
    assert after["confirmation_history"][-1]["state_name"] == "Confirmé" and after["confirmed_at"]
    assert after["updated_at"] > before["updated_at"]  # whole seconds, yet always later
    assert after["created_at"] == before["created_at"]
    assert session.get(f"{api}/orders/{added[0]}").json() == after
    bad = requests.post(f"{base}/_sandbox/orders/update",
                        json={"store": STORE, "id": added[0], "order_state": "Shipped"})
    assert bad.status_code == 400
    gone = requests.post(f"{base}/_sandbox/orders/delete", json={"store": STORE, "id": added[1]})
    assert gone.json()["id"] == added[1]
    assert session.get(f"{api}/orders/{added[1]}").status_code == 404
    again = requests.post(f"{base}/_sandbox/orders/delete", json={"store": STORE, "id": added[1]})
    assert again.status_code == 404
    counts = requests.get(f"{base}/_sandbox/stores").json()["stores"][STORE]
    assert counts["orders"] == 21 and counts["deleted"] == 1
    calls = requests.get(f"{base}/_sandbox/stats").json()["calls"]
    assert calls["orders"] == {STORE: 1} and calls["order"] == {STORE: 3}


def test_orders_arrive_after_the_kth_orders_request(start):
    sandbox, api, session = start(orders=20)
    base = api.split("/stores/")[0]
    store = sandbox.store(STORE)
    top = store.next_id - 1
    requests.post(f"{base}/_sandbox/arrivals", json={"store": STORE, "after_requests": 2, "add": 3}).raise_for_status()
    assert session.get(f"{api}/orders", params={"sort": "-id", "per_page": 1}).json()["data"][0]["id"] == top
    second = session.get(f"{api}/orders", params={"sort": "-id", "per_page": 1}).json()
    assert second["data"][0]["id"] == top  # the 2nd request is answered before they arrive
    assert session.get(f"{api}/orders", params={"sort": "-id", "per_page": 1}).json()["data"][0]["id"] == top + 3
    assert store.count() == 23


def test_new_orders_and_changes_take_their_time_from_the_settable_clock(start):
    sandbox, api, session = start(orders=5)
    base = api.split("/stores/")[0]
    requests.post(f"{base}/_sandbox/clock", json={"now": "2026-03-01T09:00:00+00:00"}).raise_for_status()
    [order_id] = sandbox.add_orders(STORE, 1)
    order = session.get(f"{api}/orders/{order_id}").json()
    assert order["created_at"] == order["updated_at"] == "2026-03-01 10:00:00"  # Algeria: UTC+1
    changed = sandbox.update_order(STORE, order_id, confirmation_state="Injoignable")
    assert changed["updated_at"] == "2026-03-01 10:00:01"  # frozen clock: still one second later


def test_drift_adds_and_confirms_orders(start):
    sandbox, api, session = start(orders=50)
    store = sandbox.store(STORE)
    results = [sandbox.drift(STORE) for _ in range(10)]
    assert sum(len(r["added"]) for r in results) == store.count() - 50 > 0
    assert any(r["changed"] for r in results)


# ------------------------------------------------------------------ webhooks
def test_webhook_crud_with_the_activation_probe(start, receiver):
    sandbox, api, session = start()
    recv, dead = receiver(), receiver(probe_status=500)
    created = session.post(f"{api}/webhooks", json=webhook(recv.url))
    assert created.status_code == 200 and recv.probes == 1
    hook = created.json()
    assert hook["is_active"] == 1 and hook["headers"] == [{"X-Custom": "v1"}] and hook["secret"] == SECRET
    assert TIMESTAMP.match(hook["created_at"])
    refused = session.post(f"{api}/webhooks", json=webhook(dead.url))
    assert refused.status_code == 422 and "delivery_url" in refused.json()["errors"] and dead.probes == 1
    inactive = session.post(f"{api}/webhooks", json=webhook(dead.url, "OrderDeleted", is_active=False)).json()
    assert inactive["is_active"] == 0 and dead.probes == 1  # no probe for an inactive webhook
    assert session.put(f"{api}/webhooks/{inactive['id']}/status", json={"status": True}).status_code == 422
    assert session.get(f"{api}/webhooks/{inactive['id']}").json()["is_active"] == 0
    dead.probe_status = 200
    assert session.put(f"{api}/webhooks/{inactive['id']}/status", json={"status": True}).json()["is_active"] == 1
    listing = session.get(f"{api}/webhooks", params={"per_page": 1}).json()
    assert [w["id"] for w in listing["data"]] == [hook["id"]] and listing["meta"]["next_cursor"]
    rest = session.get(f"{api}/webhooks", params={"per_page": 1, "cursor": listing["meta"]["next_cursor"]}).json()
    assert [w["id"] for w in rest["data"]] == [inactive["id"]] and rest["meta"]["next_cursor"] is None
    assert [w["id"] for w in session.get(f"{api}/webhooks", params={"ids": str(inactive["id"])}).json()["data"]] == [
        inactive["id"]]
    renamed = session.put(f"{api}/webhooks/{hook['id']}", json={"name": "renamed"}).json()
    assert renamed["name"] == "renamed" and renamed["event"] == "OrderCreated"
    deleted = session.delete(f"{api}/webhooks/{hook['id']}")
    assert (deleted.status_code, deleted.json()) == (201, {"success": "Webhook deleted successfully."})
    assert session.get(f"{api}/webhooks/{hook['id']}").status_code == 404
    assert session.post(f"{api}/webhooks", json={**webhook(recv.url), "event": "OrderPaid"}).status_code == 422
    assert session.post(f"{api}/webhooks", json={"name": "x"}).status_code == 422
    assert sandbox.stats()["calls"]["webhooks"][STORE] >= 10


def test_deliveries_are_signed_over_the_raw_body_with_the_four_headers(start, receiver):
    sandbox, api, session = start()
    created, confirmed, shipped = receiver(), receiver(), receiver()
    hooks = {
        "created": session.post(f"{api}/webhooks", json=webhook(created.url)).json(),
        "confirmed": session.post(f"{api}/webhooks",
                                  json=webhook(confirmed.url, "OrderConfirmationStatusChanged")).json(),
        "shipped": session.post(f"{api}/webhooks", json=webhook(shipped.url, "OrderShippingStatusChanged",
                                                                 secret="other-secret")).json(),
    }
    [order_id] = sandbox.add_orders(STORE, 1)
    sandbox.update_order(STORE, order_id, confirmation_state="Confirmé", order_state="Confirmé")
    sandbox.update_order(STORE, order_id, order_state="En dispatch")
    sandbox.add_orders(OTHER, 1)  # another store's order reaches none of this store's webhooks
    assert sandbox.sender.flush(10)
    assert len(created.posts) == 1 and len(confirmed.posts) == 1 and len(shipped.posts) == 1
    for recv, event, hook, secret in ((created, "OrderCreated", hooks["created"], SECRET),
                                      (confirmed, "OrderConfirmationStatusChanged", hooks["confirmed"], SECRET),
                                      (shipped, "OrderShippingStatusChanged", hooks["shipped"], "other-secret")):
        headers, body = recv.posts[0]
        assert headers["x-ecomanager-signature"] == hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-ecomanager-source"] == f"https://{STORE}.ecomanager.dz"
        assert headers["x-ecomanager-event"] == event
        assert headers["x-ecomanager-webhook-id"] == str(hook["id"])
        assert headers["x-custom"] == "v1" and headers["content-type"] == "application/json"
        assert json.loads(body)["id"] == order_id
    assert json.loads(shipped.posts[0][1]) == session.get(f"{api}/orders/{order_id}").json()  # as GET renders it
    assert json.loads(created.posts[0][1])["order_state_name"] == "En attente"


def test_deletions_and_inactive_webhooks(start, receiver):
    sandbox, api, session = start()
    gone, muted = receiver(), receiver()
    session.post(f"{api}/webhooks", json=webhook(gone.url, "OrderDeleted"))
    off = session.post(f"{api}/webhooks", json=webhook(muted.url)).json()
    session.put(f"{api}/webhooks/{off['id']}/status", json={"status": False})
    store = sandbox.store(STORE)
    order = store.order(store.first_id + 1)
    sandbox.delete_order(STORE, order["id"])
    sandbox.add_orders(STORE, 2)
    assert sandbox.sender.flush(10)
    assert [json.loads(body) for _, body in gone.posts] == [order]
    assert muted.posts == []


def test_failed_deliveries_are_retried_a_few_times(start, receiver):
    sandbox, api, session = start()
    flaky, down = receiver([500, 503]), receiver([500] * 10)
    session.post(f"{api}/webhooks", json=webhook(flaky.url))
    session.post(f"{api}/webhooks", json=webhook(down.url))
    sandbox.add_orders(STORE, 1)
    assert sandbox.sender.flush(10)
    log = {entry["url"]: entry for entry in sandbox.sender.deliveries()}
    assert (log[flaky.url]["ok"], log[flaky.url]["attempts"]) == (True, 3)
    assert (log[down.url]["ok"], log[down.url]["attempts"]) == (False, 3)
    assert len(flaky.posts) == 3 and len({body for _, body in flaky.posts}) == 1  # the same bytes every time
    control = requests.post(api.split("/stores/")[0] + "/_sandbox/webhooks", json={"max_attempts": 1}).json()
    assert control["max_attempts"] == 1 and len(control["deliveries"]) == 2


def test_command_line_serves_many_stores_on_one_port():
    command = [sys.executable, "-m", "sync_pipelines.sandbox.ecomanager", "--port", "0", "--stores", "a,b",
               "--orders", "100000", "--requests-per-minute", "0"]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            banner = process.stdout.readline()
            match = re.search(r"(http://127\.0\.0\.1:\d+)", banner)
            assert match and "ECOMANAGER_BASE_URL=" in banner, banner
            base = match.group(1)
            assert requests.get(f"{base}/_sandbox/health", timeout=5).json()["stores"] == ["a", "b"]
            page = requests.get(f"{base}/stores/b/api/shop/v2/orders", params={"page": 1, "per_page": 1},
                                headers={"Authorization": "Bearer sandbox-ecomanager-b"}, timeout=5)
            assert page.json()["meta"]["total"] == 100_000
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        stderr = process.stderr.read()
    assert process.returncode == 0, stderr
