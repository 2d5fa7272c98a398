"""The receiver's connection limits over real sockets: header size, header and body deadlines,
requests per connection, connections at once — and that real deliveries get through."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest
import requests

from sync_pipelines.core.embedded import _free_port
from sync_pipelines.core.registry import upsert_account
from sync_pipelines.receiver.app import create_app
from sync_pipelines.receiver.limits import ServerLimits
from sync_pipelines_tests.receiver.conftest import closed_by_server, read_response, request_bytes, serve_receiver
from sync_pipelines_tests.receiver.test_receiver import ENVIRON, SECRET, headers_for, order

QUICK = ServerLimits(max_header_bytes=4096, header_timeout=1.0, body_timeout=1.0, keep_alive_timeout=5,
                     max_requests_per_connection=3, max_connections=6)


@pytest.fixture(scope="module")
def receiver(database_url):
    with serve_receiver(create_app(database_url, environ=ENVIRON), QUICK) as server:
        yield server


@pytest.fixture
def shop(conn, unique):
    name = f"limits-{unique}.myshopify.com"
    upsert_account(conn, "shopify", name, credentials_env="SHOPIFY_TOKEN_TEST")
    yield name
    conn.execute("DELETE FROM sync.inbox WHERE account = %s", (name,))  # never applied: keep /health green


def connect(server) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=5)


def deliver(server, shop, n=1) -> requests.Response:
    body = order(n)
    return requests.post(f"{server.url}/webhooks/shopify", data=body, headers=headers_for(shop, body), timeout=10)


def test_headers_over_the_budget_get_431_and_the_connection_closes(receiver, shop):
    with connect(receiver) as sock:
        sock.sendall(b"POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 5000)  # never ends
        status, headers, _ = read_response(sock)
        assert (status, headers["connection"]) == (431, "close")
        assert closed_by_server(sock, within=2)
    # Headers just under the budget, and a body far over it: the body is not counted as headers.
    body = order(1)[:-1] + b', "padding": "' + b"p" * 200_000 + b'"}'
    headers = headers_for(shop, body) | {"X-Padding": "h" * 2500}
    response = requests.post(f"{receiver.url}/webhooks/shopify", data=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text


def test_a_client_slow_to_send_its_headers_is_dropped_at_the_deadline(receiver):
    with connect(receiver) as silent, connect(receiver) as trickling:
        started = time.monotonic()
        trickling.sendall(b"POST /webhooks/shopify HTTP/1.1\r\n")
        for _ in range(3):  # a byte every 0.2 s: each one resets no timer
            time.sleep(0.2)
            trickling.sendall(b"X")
        status, _, _ = read_response(trickling)
        assert status == 408
        assert closed_by_server(trickling, within=1)
        assert closed_by_server(silent, within=1)  # a connection that never sent a byte goes too
        assert 0.9 <= time.monotonic() - started < 2.5


def test_a_client_slow_to_send_its_body_is_dropped_at_the_deadline(receiver, shop):
    body = order(2)
    request = request_bytes("POST", "/webhooks/shopify", headers_for(shop, body), body)
    with connect(receiver) as sock:
        started = time.monotonic()
        sock.sendall(request[:-100])  # headers and most of the body, then nothing
        assert closed_by_server(sock, within=3)
        assert 0.9 <= time.monotonic() - started < 2.5


def test_keep_alive_connection_closes_after_its_request_budget(receiver):
    with connect(receiver) as sock:
        for n in range(1, 4):
            sock.sendall(request_bytes("POST", "/webhooks/not-a-provider"))
            status, headers, _ = read_response(sock)
            assert status == 404
            assert (headers.get("connection") == "close") == (n == 3)
        assert closed_by_server(sock, within=2)


def test_connections_over_the_cap_get_503_and_deliveries_resume_when_slots_free(receiver, shop):
    time.sleep(1.2)  # connections left by earlier tests are gone (header deadline)
    held = [connect(receiver) for _ in range(QUICK.max_connections)]
    try:
        time.sleep(0.1)
        with connect(receiver) as extra:
            status, headers, body = read_response(extra)
            assert (status, headers["connection"], body) == (503, "close", b"Too many connections.")
        try:  # refused (503, or reset before requests reads it): not stored, so the provider retries
            refused = deliver(receiver, shop).status_code
        except requests.ConnectionError:
            refused = None
        assert refused in (503, None)
        held.pop().close()  # one slot frees: the next delivery is served at once
        time.sleep(0.1)
        assert deliver(receiver, shop, 3).status_code == 200
        # The idle connections that held the rest are dropped at the header deadline.
        assert all(closed_by_server(sock, within=2) for sock in held)
        assert all(deliver(receiver, shop, n).status_code == 200 for n in range(4, 10))
    finally:
        for sock in held:
            sock.close()


def test_memory_stays_flat_under_endless_header_lines(database_url):
    """16 clients each sending a 16 MiB header line that never ends: the receiver reads 16 KiB of
    each, answers 431 and closes; its memory does not grow with what they send."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SHOPIFY_WEBHOOK_SECRET": SECRET}
    process = subprocess.Popen([sys.executable, "-m", "sync_pipelines.receiver", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        assert "webhook receiver on" in process.stdout.readline()
        deadline = time.monotonic() + 30
        while True:
            try:
                assert requests.get(f"{url}/health", timeout=5).status_code == 200
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        rss_before = psutil.Process(process.pid).memory_info().rss
        sent: list[int] = []
        chunk = b"a" * 65536

        def flood():
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            total = 0
            try:
                sock.sendall(b"POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\nX-Long: ")
                while total < 16 * 1024 * 1024:
                    sock.sendall(chunk)
                    total += len(chunk)
            except OSError:  # the receiver closed the connection on us: what we want
                pass
            finally:
                sent.append(total)
                sock.close()

        threads = [threading.Thread(target=flood) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        growth_mb = (psutil.Process(process.pid).memory_info().rss - rss_before) / 2**20
        assert growth_mb < 24, f"receiver grew by {growth_mb:.0f} MB"
        assert max(sent) < 16 * 1024 * 1024  # every flood was cut short
        assert requests.get(f"{url}/health", timeout=5).status_code == 200
    finally:
        process.terminate()
        process.communicate(timeout=30)
