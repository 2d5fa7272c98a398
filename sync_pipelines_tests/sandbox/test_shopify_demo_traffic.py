"""The demo traffic (`drift`, what `sync-pipelines dev` runs) sends every topic the project
subscribes to — read from the project's topic map, so a topic added there and never sent fails
here — each signed as Shopify signs it and shaped so the apply job can place it."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from sync_pipelines.defs.shopify.webhooks import HMAC_HEADER, ROUTES, TOPIC_HEADER, verify
from sync_pipelines.dev import WEBHOOK_SECRET
from sync_pipelines.sandbox.server import serve_in_thread
from sync_pipelines.sandbox.shopify import ShopifySandbox
from sync_pipelines.sandbox.shopify.mutations import DRIFT_ROTATION

SHOP, TOKEN, VERSION = "demo.myshopify.com", "sandbox-shopify-demo", "2025-10"


class Capture:
    """A loopback endpoint keeping every POST's headers and raw body."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        lock, outer = threading.Lock(), self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    outer.received.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/shopify"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def signed_topics(self) -> set[str]:
        return {h[TOPIC_HEADER] for h, body in list(self.received) if verify(body, h.get(HMAC_HEADER), [WEBHOOK_SECRET])}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def demo():
    """A sandbox as `dev` builds it (same seed and app secret), its shop subscribed to every
    topic of the project's map at a capturing endpoint."""
    sandbox = ShopifySandbox(seed=7, app_secret=WEBHOOK_SECRET, bucket_size=100_000)
    sandbox.add_shop(SHOP, TOKEN, orders=60, customers=20, products=8)
    capture = Capture()
    with serve_in_thread(sandbox.app) as server, requests.Session() as session:
        session.headers["X-Shopify-Access-Token"] = TOKEN
        api = f"{server.url}/shops/{SHOP}/admin/api/{VERSION}"
        for topic in ROUTES:
            created = session.post(f"{api}/webhooks.json", json={"webhook": {"topic": topic, "address": capture.url}},
                                   timeout=10)
            assert created.status_code == 201, (topic, created.text)
        try:
            yield sandbox, capture
        finally:
            sandbox.close()
            capture.close()


def test_the_demo_traffic_sends_every_subscribed_topic_signed(demo):
    sandbox, capture = demo
    sandbox.start_drift(0.02)
    deadline = time.monotonic() + 30
    while not set(ROUTES) <= capture.signed_topics() and time.monotonic() < deadline:
        time.sleep(0.05)
    sandbox.stop_drift()
    assert sandbox.flush(10)
    assert set(ROUTES) - capture.signed_topics() == set()
    for headers, body in capture.received:
        route = ROUTES[headers[TOPIC_HEADER]]
        payload = json.loads(body)
        if route.delete:
            assert isinstance(payload[route.id_path], int)
            continue
        keys = [c for c in route.table.primary_key.columns if c.name != "account"]
        assert all(payload.get(c.info.get("path", c.name)) is not None for c in keys), headers[TOPIC_HEADER]
        assert payload["updated_at"]


def test_one_rotation_of_drift_covers_every_subscribed_topic(demo):
    """Not left to chance: `len(DRIFT_ROTATION)` ticks send each topic."""
    sandbox, capture = demo
    for _ in DRIFT_ROTATION:
        sandbox.drift(SHOP)
    assert sandbox.flush(10)
    assert set(ROUTES) - capture.signed_topics() == set()
