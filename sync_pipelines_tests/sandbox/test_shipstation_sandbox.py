"""The ShipStation sandbox must behave like the real API, or tests built on it prove nothing.

The contract tests validate live sandbox responses against ShipStation's published OpenAPI
spec; the rest pin the behaviours clients depend on (pagination, auth, rate limiting, fault
injection, deterministic and mutable data).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS31Validator, validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.ratelimit import RateLimiter
from sync_pipelines.sandbox.server import serve_in_thread
from sync_pipelines.sandbox.shipstation import ShipStationSandbox

REPO = Path(__file__).resolve().parents[2]
SPEC_NAME = "shipstation-v2-openapi.yaml"
SPEC_URI = "urn:shipstation-v2-openapi"
KEY = "sandbox-shipstation-test"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
LIST_ENDPOINTS = {  # path -> JSON pointer of its 200 response schema in the spec
    "/v2/warehouses": "/components/schemas/list_warehouses_response_body",
    **{path: f"/paths/{path.replace('/', '~1')}/get/responses/200/content/application~1json/schema"
       for path in ("/v2/inventory_warehouses", "/v2/inventory_locations", "/v2/products", "/v2/inventory")},
}
ERROR_BODY = "/components/schemas/error_response_body"


# ----------------------------------------------------------------------------- spec
def _spec_path() -> Path:
    candidates = [os.environ.get("SHIPSTATION_OPENAPI_SPEC"), REPO / "specs" / SPEC_NAME,
                  REPO / "sync_pipelines_tests" / "specs" / SPEC_NAME, REPO.parent / "shared" / "specs" / SPEC_NAME]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.fail(f"{SPEC_NAME} not found (set SHIPSTATION_OPENAPI_SPEC); tried {candidates}")


def _normalize(node: Any) -> Any:
    """Give the spec's OAS 3.0 idioms their JSON Schema 2020-12 meaning (the file says 3.1.0):

    - ``nullable: true`` / ``x-nullable: true`` -> ``type: [T, "null"]`` (OAS31Validator ignores both);
    - ``additionalProperties: false`` beside ``allOf`` with no own ``properties`` (e.g. ``address``)
      would reject every field under 2020-12; ``unevaluatedProperties: false`` is the intent.
    """
    if isinstance(node, list):
        return [_normalize(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _normalize(value) for key, value in node.items()}
    if (out.get("nullable") is True or out.get("x-nullable") is True) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if out.get("additionalProperties") is False and "allOf" in out and "properties" not in out:
        del out["additionalProperties"]
        out["unevaluatedProperties"] = False
    return out


def _close_objects(schema: dict[str, Any]) -> None:
    """The inline list schemas don't forbid extra fields; for us an undeclared field is a
    typo or an invention, so make them strict."""
    if schema.get("type") == "object" and "properties" in schema:
        schema.setdefault("additionalProperties", False)
        for sub in schema["properties"].values():
            _close_objects(sub)
    if isinstance(schema.get("items"), dict):
        _close_objects(schema["items"])


def _resolve(spec: dict[str, Any], pointer: str) -> Any:
    node: Any = spec
    for part in pointer.strip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    raw = yaml.load(_spec_path().read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    normalized = _normalize(raw)
    for path, pointer in LIST_ENDPOINTS.items():
        if pointer.startswith("/paths/"):
            _close_objects(_resolve(normalized, pointer))
    return normalized


@pytest.fixture(scope="module")
def check(spec):
    """``check(instance, pointer)`` validates against the schema at ``pointer`` in the spec,
    with ``$ref``s resolved through a registry holding the whole document."""
    registry = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(spec))

    def _check(instance: Any, pointer: str) -> None:
        validate(instance, {"$ref": f"{SPEC_URI}#{pointer}"}, cls=OAS31Validator, registry=registry,
                 format_checker=OAS31Validator.FORMAT_CHECKER)

    return _check


# -------------------------------------------------------------------------- servers
@pytest.fixture
def start():
    """``start(**sandbox_kwargs) -> (sandbox, base_url, session)``, all torn down after the test."""
    running = []

    def _start(stores: dict[str, int] | None = None, **kwargs: Any):
        sandbox = ShipStationSandbox(**kwargs)
        for api_key, products in (stores or {KEY: 30}).items():
            sandbox.add_store(api_key, products=products)
        server = serve_in_thread(sandbox.app)
        session = requests.Session()
        session.headers["api-key"] = next(iter(stores or {KEY: 30}))
        running.append((server, session))
        return sandbox, server.url, session

    yield _start
    for server, session in running:
        session.close()
        server.stop()


def _walk(session: requests.Session, url: str, items_key: str, params: dict | None = None):
    """Follow links.next.href to the end, like the production client does."""
    bodies = []
    response = session.get(url, params=params, timeout=10)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        bodies.append(body)
        nxt = body["links"].get("next")
        if nxt is None:
            break
        response = session.get(nxt["href"], timeout=10)
    return bodies


# ------------------------------------------------------------------------- contract
def test_list_responses_match_spec(start, check, spec):
    sandbox, url, session = start(requests_per_minute=None)
    store = sandbox.store(KEY)
    for path, pointer in LIST_ENDPOINTS.items():
        response = session.get(url + path, timeout=10)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"].startswith("application/json")
        check(response.json(), pointer)

    # Every field the spec declares is served (and _close_objects made extras fail above).
    for path, items_key in (("/v2/products", "products"), ("/v2/inventory", "inventory")):
        declared = set(_resolve(spec, LIST_ENDPOINTS[path])["properties"][items_key]["items"]["properties"])
        assert {frozenset(record) for record in getattr(store, items_key)} == {frozenset(declared)}
    for record in store.products:
        assert TIMESTAMP.match(record["create_date"]) and TIMESTAMP.match(record["modify_date"])
    for record in store.inventory_warehouses + store.inventory_locations:
        assert TIMESTAMP.match(record["created_at"]) and TIMESTAMP.match(record["updated_at"])


def test_error_responses_match_spec(start, check):
    sandbox, url, session = start(requests_per_minute=1)
    unauthorized = requests.get(url + "/v2/products", timeout=10)
    assert unauthorized.status_code == 401
    check(unauthorized.json(), ERROR_BODY)
    assert unauthorized.json()["errors"][0]["error_type"] == "security"
    assert unauthorized.json()["errors"][0]["error_code"] == "unauthorized"

    bad_page_size = session.get(url + "/v2/products", params={"page_size": 101}, timeout=10)
    assert bad_page_size.status_code == 400
    check(bad_page_size.json(), ERROR_BODY)

    limited = session.get(url + "/v2/products", timeout=10)
    assert limited.status_code == 429
    check(limited.json(), ERROR_BODY)
    assert limited.json()["errors"][0]["error_code"] == "rate_limit_exceeded"

    sandbox.limiter.configure(requests_per_minute=None)
    sandbox.faults.fail_next("429", 1)
    injected = session.get(url + "/v2/inventory", timeout=10)
    assert injected.status_code == 429
    check(injected.json(), ERROR_BODY)


def test_contract_check_can_fail(start, check):
    sandbox, url, session = start(requests_per_minute=None)
    products = session.get(url + "/v2/products", timeout=10).json()
    check(products, LIST_ENDPOINTS["/v2/products"])

    broken = json.loads(json.dumps(products))
    broken["products"][0]["product_id"] = str(broken["products"][0]["product_id"])
    with pytest.raises(ValidationError):
        check(broken, LIST_ENDPOINTS["/v2/products"])

    bad_date = json.loads(json.dumps(products))
    bad_date["products"][0]["modify_date"] = "07/07/2025"
    with pytest.raises(ValidationError):
        check(bad_date, LIST_ENDPOINTS["/v2/products"])

    invented = json.loads(json.dumps(products))
    invented["products"][0]["sku_code"] = "X"
    with pytest.raises(ValidationError):
        check(invented, LIST_ENDPOINTS["/v2/products"])

    warehouses = session.get(url + "/v2/warehouses", timeout=10).json()
    bad_warehouse = json.loads(json.dumps(warehouses))
    bad_warehouse["warehouses"][0]["origin_address"]["country_code"] = "USA"
    with pytest.raises(ValidationError):
        check(bad_warehouse, LIST_ENDPOINTS["/v2/warehouses"])

    error = requests.get(url + "/v2/products", timeout=10).json()
    error["errors"][0]["error_source"] = "shipstation"  # the spec's enum says "ShipStation"
    with pytest.raises(ValidationError):
        check(error, ERROR_BODY)


# ----------------------------------------------------------------------- pagination
def test_products_pagination_follows_next_links(start):
    sandbox, url, session = start({KEY: 250}, requests_per_minute=None)
    bodies = _walk(session, url + "/v2/products", "products", {"page_size": 40})
    ids = [p["product_id"] for body in bodies for p in body["products"]]
    assert len(ids) == bodies[0]["total"] == 250
    assert len(set(ids)) == 250 and ids == sorted(ids)
    assert ids == [p["product_id"] for p in sandbox.store(KEY).products]
    assert len(bodies) == bodies[0]["pages"] == math.ceil(250 / 40)
    assert "prev" not in bodies[0]["links"] and "prev" in bodies[1]["links"]
    assert bodies[1]["links"]["next"]["href"].startswith(url + "/v2/products?")
    assert "page_size=40" in bodies[1]["links"]["next"]["href"]
    assert bodies[0]["links"]["last"]["href"] == bodies[-1]["links"]["last"]["href"]

    beyond = session.get(url + "/v2/products", params={"page": 99, "page_size": 40}, timeout=10).json()
    assert beyond["products"] == [] and beyond["total"] == 250 and "next" not in beyond["links"]

    for bad in (0, 101, "ten"):
        response = session.get(url + "/v2/products", params={"page_size": bad}, timeout=10)
        assert response.status_code == 400, bad
        assert response.json()["errors"][0]["error_type"] == "validation"
    assert session.get(url + "/v2/products", params={"page": 0}, timeout=10).status_code == 400


def test_inventory_pagination_keeps_filters(start):
    sandbox, url, session = start({KEY: 120}, requests_per_minute=None)
    store = sandbox.store(KEY)
    location = store.inventory_locations[0]["inventory_location_id"]
    expected = [row for row in store.inventory if row["inventory_location_id"] == location]
    bodies = _walk(session, url + "/v2/inventory", "inventory", {"inventory_location_id": location, "limit": 7})
    rows = [row for body in bodies for row in body["inventory"]]
    assert rows == expected and bodies[0]["total"] == len(expected) > 7
    assert all(f"inventory_location_id={location}" in b["links"]["next"]["href"] for b in bodies[:-1])

    skus = [store.inventory[3]["sku"], store.inventory[50]["sku"]]
    by_sku = session.get(url + "/v2/inventory", params={"sku": ",".join(skus)}, timeout=10).json()
    assert [row["sku"] for row in by_sku["inventory"]] == skus

    all_rows = [r for b in _walk(session, url + "/v2/inventory", "inventory", {"limit": 500}) for r in b["inventory"]]
    assert len(all_rows) == 120
    assert session.get(url + "/v2/inventory", params={"limit": 501}, timeout=10).status_code == 400
    locations = _walk(session, url + "/v2/inventory_locations", "inventory_locations", {"limit": 4})
    assert sum(len(b["inventory_locations"]) for b in locations) == len(store.inventory_locations) == 6


def test_products_filters(start):
    sandbox, url, session = start({KEY: 60}, requests_per_minute=None)
    store = sandbox.store(KEY)
    sku = store.products[10]["sku"]
    assert session.get(url + "/v2/products", params={"sku": sku}, timeout=10).json()["products"] == [store.products[10]]
    inactive = session.get(url + "/v2/products", params={"active": "false"}, timeout=10).json()
    assert inactive["products"] == [p for p in store.products if not p["active"]]


# ----------------------------------------------------------------- auth, rate limits
def test_auth_required(start):
    sandbox, url, _ = start(requests_per_minute=1)
    for headers in ({}, {"api-key": "not-a-key"}):
        response = requests.get(url + "/v2/warehouses", headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json()["errors"][0]["error_code"] == "unauthorized"
    # 401s don't spend the key's budget.
    assert requests.get(url + "/v2/warehouses", headers={"api-key": KEY}, timeout=10).status_code == 200


def test_rate_limit_per_key(start):
    sandbox, url, session = start({KEY: 5, "other-key": 5}, requests_per_minute=5)
    for expected_remaining in (4, 3, 2, 1, 0):
        response = session.get(url + "/v2/warehouses", timeout=10)
        assert response.status_code == 200
        assert response.headers["X-Rate-Limit-Limit"] == "5"
        assert response.headers["X-Rate-Limit-Remaining"] == str(expected_remaining)
        assert 0 <= int(response.headers["X-Rate-Limit-Reset"]) <= 60
    limited = session.get(url + "/v2/warehouses", timeout=10)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["X-Rate-Limit-Remaining"] == "0"
    assert limited.headers["X-Rate-Limit-Limit"] == "5" and int(limited.headers["X-Rate-Limit-Reset"]) >= 0
    assert limited.json()["errors"][0]["error_code"] == "rate_limit_exceeded"
    other = requests.get(url + "/v2/warehouses", headers={"api-key": "other-key"}, timeout=10)
    assert other.status_code == 200 and other.headers["X-Rate-Limit-Remaining"] == "4"
    stats = sandbox.stats()
    assert stats["rate_limited_429"] == 1 and stats["requests_by_key"] == {KEY: 6, "other-key": 1}


def test_rate_limit_window_resets(start):
    _, url, session = start(requests_per_minute=2, window_seconds=1)
    assert [session.get(url + "/v2/warehouses", timeout=10).status_code for _ in range(3)] == [200, 200, 429]
    time.sleep(1.05)
    response = session.get(url + "/v2/warehouses", timeout=10)
    assert response.status_code == 200 and response.headers["X-Rate-Limit-Remaining"] == "1"


def test_rate_limiter_window_arithmetic():
    now = [1000.0]
    limiter = RateLimiter(20, window_seconds=6, clock=lambda: now[0])
    first = limiter.hit("k")
    assert (first.allowed, first.remaining, first.reset_seconds) == (True, 19, 6)
    for _ in range(19):
        limiter.hit("k")
    now[0] += 2.5
    blocked = limiter.hit("k")
    assert (blocked.allowed, blocked.remaining, blocked.reset_seconds, blocked.retry_after) == (False, 0, 4, 4)
    now[0] += 3.5
    assert limiter.hit("k").allowed and limiter.hit("other").remaining == 19
    now[0] += 5.9999
    assert limiter.hit("k").retry_after == 1  # never 0, even a hair before the reset
    assert RateLimiter(None).hit("k") is None


# ---------------------------------------------------------------------------- faults
def test_fail_next_429_burst_then_ok(start):
    sandbox, url, session = start(requests_per_minute=None)
    sandbox.faults.configure(retry_after_seconds=0)
    sandbox.faults.fail_next("429", 3)
    statuses = []
    for _ in range(4):
        response = session.get(url + "/v2/products", timeout=10)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.headers["Retry-After"] == "0"
    assert statuses == [429, 429, 429, 200]
    assert sandbox.stats()["fault_429"] == 3

    control = requests.post(url + "/_sandbox/faults", json={"fail_next": {"kind": "503", "n": 2}}, timeout=10)
    assert control.status_code == 200 and control.json()["pending"] == [{"kind": "503", "n": 2}]
    assert [session.get(url + "/v2/warehouses", timeout=10).status_code for _ in range(3)] == [503, 503, 200]
    assert requests.post(url + "/_sandbox/faults", json={"fail_next": {"kind": "418"}}, timeout=10).status_code == 400


def test_truncated_and_invalid_json(start):
    sandbox, url, session = start(requests_per_minute=None)
    good = session.get(url + "/v2/products", timeout=10)
    sandbox.faults.fail_next("truncated", 1)
    sandbox.faults.fail_next("invalid_json", 1)
    truncated = session.get(url + "/v2/products", timeout=10)
    assert truncated.status_code == 200
    assert truncated.content == good.content[: len(good.content) // 2]
    with pytest.raises(ValueError):
        truncated.json()
    garbage = session.get(url + "/v2/products", timeout=10)
    assert garbage.status_code == 200
    with pytest.raises(ValueError):
        garbage.json()
    assert session.get(url + "/v2/products", timeout=10).json() == good.json()


def test_latency_knob(start):
    sandbox, url, session = start(requests_per_minute=None)
    control = requests.post(url + "/_sandbox/faults", json={"latency_ms": 150}, timeout=10)
    assert control.json()["latency_ms"] == 150
    started = time.monotonic()
    assert session.get(url + "/v2/warehouses", timeout=10).status_code == 200
    assert time.monotonic() - started >= 0.15
    requests.post(url + "/_sandbox/faults", json={"reset": True}, timeout=10)
    assert sandbox.faults.latency_ms == 0


def test_probabilistic_faults_are_seeded():
    def sequence():
        faults = Faults(seed=3, rate_5xx=0.2, rate_429=0.2, rate_truncated_json=0.1, rate_invalid_json=0.1)
        return [faults.decide() for _ in range(200)]

    first = sequence()
    assert first == sequence()
    assert {"429", "500", "503", "truncated", "invalid_json", None} == set(first)
    always = Faults(rate_5xx=1.0)
    assert {always.decide() for _ in range(50)} <= {"500", "503"}
    with pytest.raises(ValueError):
        Faults(rate_429=1.5)


# ------------------------------------------------------------------ data generation
def test_generates_100k_products():
    sandbox = ShipStationSandbox(requests_per_minute=None)
    sandbox.add_store(KEY, products=100_000)
    store = sandbox.store(KEY)
    assert len(store.products) == len(store.inventory) == 100_000
    skus = [p["sku"] for p in store.products]
    assert len(set(skus)) == 100_000
    assert [row["sku"] for row in store.inventory] == skus
    ids = [p["product_id"] for p in store.products]
    assert all(a < b for a, b in zip(ids, ids[1:]))
    assert all(row["available"] == row["on_hand"] - row["allocated"] >= 0 for row in store.inventory)


def test_same_seed_same_data():
    def build(seed: int, key: str = KEY):
        sandbox = ShipStationSandbox(seed=seed)
        sandbox.add_store(key, products=300)
        store = sandbox.store(key)
        return [store.warehouses, store.inventory_warehouses, store.inventory_locations,
                store.products, store.inventory]

    assert build(7) == build(7)
    assert build(7) != build(8)
    assert build(7)[3] != build(7, "another-key")[3]


def test_mutations_are_served(start):
    sandbox, url, session = start({KEY: 40}, requests_per_minute=None)
    store = sandbox.store(KEY)
    before = {p["product_id"]: p for p in store.products}
    newest = max(p["modify_date"] for p in store.products)

    updated = sandbox.update_products(KEY, 5)
    assert len(set(updated)) == 5
    served = {p["product_id"]: p for b in _walk(session, url + "/v2/products", "products") for p in b["products"]}
    for product_id in updated:
        old, new = before[product_id], served[product_id]
        assert new["modify_date"] > newest and TIMESTAMP.match(new["modify_date"])
        assert new["price"] != old["price"] and new["name"] != old["name"]
        assert new["create_date"] == old["create_date"]
    assert all(served[i] == before[i] for i in before if i not in updated)

    added = sandbox.add_products(KEY, 3)
    assert len(added) == 3 and min(added) > max(before)
    body = session.get(url + "/v2/products", params={"page_size": 100}, timeout=10).json()
    assert body["total"] == 43 and [p["product_id"] for p in body["products"][-3:]] == added
    inventory = session.get(url + "/v2/inventory", params={"limit": 500}, timeout=10).json()["inventory"]
    assert {row["sku"] for row in inventory} >= {p["sku"] for p in body["products"][-3:]}

    rows_before = {row["sku"]: row for row in store.inventory}
    changed = sandbox.update_inventory(KEY, 4)
    assert len(changed) == 4
    served_rows = {row["sku"]: row for row in
                   session.get(url + "/v2/inventory", params={"limit": 500}, timeout=10).json()["inventory"]}
    for sku, location, on_hand, available in changed:
        row = served_rows[sku]
        assert (row["inventory_location_id"], row["on_hand"], row["available"]) == (location, on_hand, available)
        assert row["on_hand"] != rows_before[sku]["on_hand"]
        assert row["available"] == row["on_hand"] - row["allocated"]

    warehouse_id = sandbox.rename_warehouse(KEY, name="Renamed HQ")
    names = {w["warehouse_id"]: w["name"] for w in session.get(url + "/v2/warehouses", timeout=10).json()["warehouses"]}
    assert names[warehouse_id] == "Renamed HQ"


def test_drift_changes_data_in_background():
    sandbox = ShipStationSandbox()
    sandbox.add_store(KEY, products=50)
    snapshot = [dict(p) for p in sandbox.store(KEY).products], [dict(r) for r in sandbox.store(KEY).inventory]
    sandbox.start_drift(0.01)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            store = sandbox.store(KEY)
            if (store.products, store.inventory) != snapshot:
                break
            time.sleep(0.02)
        else:
            pytest.fail("drift never changed anything")
    finally:
        sandbox.stop_drift()


def test_concurrent_reads_during_mutations(start):
    """Pages served while another thread mutates are never torn (copy-on-write records)."""
    sandbox, url, session = start({KEY: 2000}, requests_per_minute=None)
    stop = threading.Event()

    def mutate():
        for tick in range(100_000):
            if stop.is_set():
                return
            sandbox.mutate(KEY, update_products=20, update_inventory=20, add_products=int(tick < 50))
            time.sleep(0.001)

    worker = threading.Thread(target=mutate, daemon=True)
    worker.start()
    try:
        products = [p for b in _walk(session, url + "/v2/products", "products") for p in b["products"]]
        inventory = [r for b in _walk(session, url + "/v2/inventory", "inventory") for r in b["inventory"]]
    finally:
        stop.set()
        worker.join()
    assert 2000 <= len(products) <= 2050 and 2000 <= len(inventory) <= 2050
    assert all(row["available"] == row["on_hand"] - row["allocated"] for row in inventory)


# ------------------------------------------------------------------- control plane
def test_control_endpoints(start):
    sandbox, url, _ = start(requests_per_minute=None)
    assert requests.get(url + "/_sandbox/health", timeout=10).json()["status"] == "ok"

    created = requests.post(url + "/_sandbox/stores", json={"api_key": "new-store", "products": 25}, timeout=10)
    assert created.status_code == 200 and created.json()["counts"]["products"] == 25
    page = requests.get(url + "/v2/products", headers={"api-key": "new-store"}, timeout=10).json()
    assert page["total"] == 25

    mutated = requests.post(url + "/_sandbox/mutate", json={"api_key": "new-store", "update_products": 2,
                                                            "add_products": 1, "update_inventory": 3}, timeout=10)
    body = mutated.json()
    assert mutated.status_code == 200
    assert len(body["updated_products"]) == 2 and len(body["added_products"]) == 1
    assert len(body["updated_inventory"]) == 3
    assert requests.post(url + "/_sandbox/mutate", json={"api_key": "nope", "add_products": 1},
                         timeout=10).status_code == 404

    limits = requests.post(url + "/_sandbox/ratelimit", json={"requests_per_minute": 20, "window_seconds": 6},
                           timeout=10)
    assert limits.json() == {"requests_per_minute": 20, "window_seconds": 6.0}
    response = requests.get(url + "/v2/warehouses", headers={"api-key": "new-store"}, timeout=10)
    assert response.headers["X-Rate-Limit-Limit"] == "20"

    stats = requests.get(url + "/_sandbox/stats", timeout=10).json()
    assert stats["requests_by_key"] == {"new-store": 2}
    assert stats["status_counts"] == {"200": 2} and stats["total_429"] == 0


def test_server_lifecycle():
    with pytest.raises(ValueError):
        serve_in_thread(ShipStationSandbox().app, host="0.0.0.0")
    with serve_in_thread(ShipStationSandbox().app) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert requests.get(server.url + "/_sandbox/health", timeout=10).status_code == 200
    assert not server.running
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/_sandbox/health", timeout=2)


def test_command_line_entry_point():
    command = [sys.executable, "-m", "sync_pipelines.sandbox.server", "--port", "0", "--stores", "a,b",
               "--products", "20"]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        try:
            banner = process.stdout.readline()  # printed once the port is bound and listening
            match = re.search(r"(http://127\.0\.0\.1:\d+)", banner)
            assert match, banner
            base = match.group(1)
            health = requests.get(base + "/_sandbox/health", timeout=5).json()
            assert health["stores"] == ["sandbox-shipstation-a", "sandbox-shipstation-b"]
            products = requests.get(base + "/v2/products", headers={"api-key": "sandbox-shipstation-b"}, timeout=5)
            assert products.json()["total"] == 20
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        stderr = process.stderr.read()
    assert process.returncode == 0, stderr
