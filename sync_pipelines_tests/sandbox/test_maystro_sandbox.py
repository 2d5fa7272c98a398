"""Contract tests of the Maystro sandbox over real HTTP: DRF paging under `list`, Token auth and
DRF error bodies, throttling, lazily generated stores, status changes and base64 webhooks."""

from __future__ import annotations

import argparse
import base64
import json
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sync_pipelines.sandbox.maystro import PAGE_SIZE, STATUS_NAMES, MaystroSandbox
from sync_pipelines.sandbox.maystro.app import _build
from sync_pipelines.sandbox.server import serve_in_thread


@pytest.fixture
def box():
    sandbox = MaystroSandbox(seed=9, requests_per_minute=None)
    sandbox.add_store("key-a", orders=65)
    with serve_in_thread(sandbox.app) as running:
        sandbox.url = running.url
        yield sandbox


def get(box, path, key="key-a", **params):
    return requests.get(box.url + path, params=params, headers={"Authorization": f"Token {key}"}, timeout=5)


def control(box, path, body=None):
    return requests.post(box.url + path, json=body or {}, timeout=5)


class Receiver:
    """A loopback endpoint recording the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/webhooks/maystro/secret-1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.httpd.shutdown()
    r.httpd.server_close()


def test_orders_are_drf_pages_under_list_twenty_newest_first(box):
    first = get(box, "/api/stores/orders/").json()["list"]
    assert first["count"] == 65 and first["previous"] is None
    assert len(first["results"]) == PAGE_SIZE
    assert [o["external_order_id"] for o in first["results"][:2]] == ["ORD-65", "ORD-64"]
    assert parse_qs(urlsplit(first["next"]).query) == {"page": ["2"]}
    second = get(box, "/api/stores/orders/", page=2).json()["list"]
    assert urlsplit(second["previous"]).query == ""  # DRF's link to page 1 carries no page
    last = get(box, "/api/stores/orders/", page=4).json()["list"]
    assert last["next"] is None and len(last["results"]) == 5
    order = last["results"][-1]
    assert {"id", "instance_uuid", "display_id", "external_order_id", "status", "tracking_number",
            "last_update", "customer_name", "wilaya"} <= set(order)
    assert isinstance(order["status"], int) and order["status"] in STATUS_NAMES


@pytest.mark.parametrize("page", ["5", "0", "abc"])
def test_a_page_out_of_range_is_drf_invalid_page(box, page):
    response = get(box, "/api/stores/orders/", page=page)
    assert (response.status_code, response.json()) == (404, {"detail": "Invalid page."})


def test_tokens_are_checked_with_drf_bodies(box):
    missing = requests.get(box.url + "/api/stores/orders/", timeout=5)
    assert (missing.status_code, missing.json()) == (401, {"detail": "Authentication credentials were not provided."})
    assert missing.headers["WWW-Authenticate"] == "Token"
    bearer = requests.get(box.url + "/api/stores/orders/", headers={"Authorization": "Bearer key-a"}, timeout=5)
    assert bearer.status_code == 401
    wrong = get(box, "/api/stores/orders/", key="nope")
    assert (wrong.status_code, wrong.json()) == (401, {"detail": "Invalid token."})
    assert box.stats()["unauthorized_401"] == 3


def test_throttling_answers_429_with_retry_after(box):
    box.limiter.configure(requests_per_minute=2, window_seconds=30)
    assert [get(box, "/api/stores/orders/").status_code for _ in range(3)] == [200, 200, 429]
    throttled = get(box, "/api/stores/orders/")
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.json()["detail"].startswith("Request was throttled. Expected available in")
    assert box.stats()["rate_limited_429"] == 2


def test_a_hundred_thousand_orders_are_cheap_and_deterministic(box):
    tracemalloc.start()
    try:
        box.add_store("key-big", orders=100_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # orders are made when read (100,000 made up front would be ~100 MB)
    page = get(box, "/api/stores/orders/", key="key-big", page=5000).json()["list"]
    assert page["count"] == 100_000 and page["next"] is None
    assert [o["external_order_id"] for o in page["results"]][-1] == "ORD-1"
    again = MaystroSandbox(seed=9)
    assert again.add_store("key-big", orders=100_000).order(1) == box.store("key-big").order(1)


def test_filtering_by_external_order_id(box):
    hit = get(box, "/api/stores/orders/", external_order_id="ORD-7").json()["list"]
    assert hit["count"] == 1 and hit["results"][0]["display_id"] == "100007"
    assert get(box, "/api/stores/orders/", external_order_id="NOPE").json()["list"]["count"] == 0


def test_status_changes_including_an_unknown_code_show_in_the_listing_and_are_sent(box, receiver):
    assert control(box, "/_sandbox/webhooks", {"api_key": "key-a", "url": receiver.url}).status_code == 200
    order_id = box.store("key-a").order(65)["id"]
    changed = control(box, "/_sandbox/orders/status", {"api_key": "key-a", "changes": [
        {"id": order_id, "status": 41}, {"index": 64, "status": 77}]}).json()["changed"]
    assert [o["status"] for o in changed] == [41, 77]
    listed = get(box, "/api/stores/orders/").json()["list"]["results"]
    assert (listed[0]["status"], listed[1]["status"]) == (41, 77)
    assert listed[0]["delivered_at"] is not None
    assert len(receiver.bodies) == 2
    body = receiver.bodies[0]
    assert set(body) == {"message", "subscription"}
    assert {"data", "messageId", "publishTime"} <= set(body["message"])
    event = json.loads(base64.b64decode(body["message"]["data"]))
    assert event["event"] == "OrderStatusChanged"
    assert event["payload"] == {"status": 41, "id": order_id, "display_id_order": "100065",
                                "external_order_id": "ORD-65"}
    deliveries = requests.get(box.url + "/_sandbox/webhooks", timeout=5).json()["deliveries"]["key-a"]
    assert [d["status"] for d in deliveries] == [200, 200]


def test_hooks_registered_through_the_api_receive_status_changes(box, receiver):
    headers = {"Authorization": "Token key-a"}
    types = get(box, "/api/stores/hooks/types/").json()["results"]
    trigger = next(t["id"] for t in types if t["name"] == "OrderStatusChanged")
    bad = requests.post(box.url + "/api/stores/hooks/costume/", json={"endpoint": "nope", "trigger_type_id": "x"},
                        headers=headers, timeout=5)
    assert bad.status_code == 400 and set(bad.json()) == {"endpoint", "trigger_type_id"}
    created = requests.post(box.url + "/api/stores/hooks/costume/", headers=headers, timeout=5,
                            json={"endpoint": receiver.url, "trigger_type_id": trigger})
    assert created.status_code == 201
    box.set_statuses("key-a", [(3, 50)])
    assert json.loads(base64.b64decode(receiver.bodies[0]["message"]["data"]))["payload"]["status"] == 50
    hook_id = created.json()["id"]
    assert requests.delete(f"{box.url}/api/stores/hooks/costume/{hook_id}/", headers=headers,
                           timeout=5).status_code == 204
    box.set_statuses("key-a", [(3, 41)])
    assert len(receiver.bodies) == 1


def test_peak_requests_in_flight_is_observed(box):
    box.faults.configure(latency_ms=400)
    threads = [threading.Thread(target=get, args=(box, "/api/stores/orders/")) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert box.stats()["peak_in_flight"] == 6
    control(box, "/_sandbox/stats/reset")
    assert box.stats()["peak_in_flight"] == 0


def test_drift_adds_orders_on_top_and_changes_statuses(box):
    before = box.store("key-a").size
    result = box.drift("key-a")
    assert box.store("key-a").size == before + result["added"]
    assert result["changed"] and all(c["status"] == box.store("key-a").order(
        box.store("key-a").index_of(c["id"]))["status"] for c in result["changed"])


def test_control_refuses_unknown_fields_and_unknown_stores(box):
    assert control(box, "/_sandbox/orders/add", {"api_key": "key-a", "cuont": 3}).status_code == 400
    assert control(box, "/_sandbox/orders/add", {"api_key": "nope", "count": 3}).status_code == 404
    assert control(box, "/_sandbox/orders/add", {"api_key": "key-a", "count": 3}).json() == {"size": 68}


def test_the_command_line_serves_named_stores_with_a_webhook_url_per_store():
    args = argparse.Namespace(seed=7, requests_per_minute=0, window_seconds=60, stores="north,south", orders=10,
                              reference_prefix="EC-", webhook_url="http://127.0.0.1:1/webhooks/maystro/{store}")
    sandbox, banner = _build(args)
    assert sandbox.api_keys == ["sandbox-maystro-north", "sandbox-maystro-south"]
    assert sandbox.store("sandbox-maystro-south").webhook_urls == ["http://127.0.0.1:1/webhooks/maystro/south"]
    assert sandbox.store("sandbox-maystro-north").order(1)["external_order_id"] == "EC-1"
    assert sandbox.limiter.enabled is False
    assert "Token sandbox-maystro-north" in "\n".join(banner("http://127.0.0.1:8773"))


def test_the_test_request_sends_the_newest_order_to_the_hooks(box, receiver):
    box.store("key-a").webhook_urls.append(receiver.url)
    sent = requests.post(box.url + "/api/stores/hooks/test/request/", headers={"Authorization": "Token key-a"},
                         timeout=5)
    assert sent.status_code == 200
    deadline = time.monotonic() + 5
    while not receiver.bodies and time.monotonic() < deadline:
        time.sleep(0.02)
    assert json.loads(base64.b64decode(receiver.bodies[0]["message"]["data"]))["payload"]["external_order_id"] == "ORD-65"
    box.add_store("key-empty", orders=0)
    empty = requests.post(box.url + "/api/stores/hooks/test/request/", headers={"Authorization": "Token key-empty"},
                          timeout=5)
    assert empty.status_code == 400
