"""A database outage costs a delivery a fast 503 (inside the provider's deadline), and the
receiver recovers by itself when the database is back. Each test has its own database, so it can
refuse connections without touching the session's."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import psycopg
import pytest
import requests

from sync_pipelines.core.registry import upsert_account
from sync_pipelines.receiver.app import create_app
from sync_pipelines.sandbox.server import serve_in_thread
from sync_pipelines_tests.receiver.test_receiver import ENVIRON, headers_for, order

SHOP = "outage.myshopify.com"


@pytest.fixture
def own_database(postgres_server, unique):
    name = f"receiver_outage_{unique}"
    url = postgres_server.ensure_database(name)
    admin = psycopg.connect(postgres_server.url(), autocommit=True)
    with psycopg.connect(url, autocommit=True) as conn:
        upsert_account(conn, "shopify", SHOP, credentials_env="SHOPIFY_TOKEN_TEST")
    try:
        yield name, url, admin
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def timed_delivery(url: str, n: int) -> tuple[int, float]:
    body = order(n)
    started = time.monotonic()
    response = requests.post(f"{url}/webhooks/shopify", data=body, headers=headers_for(SHOP, body), timeout=10)
    return response.status_code, time.monotonic() - started


def test_deliveries_get_503_within_a_second_while_the_database_refuses_and_200_once_it_is_back(own_database):
    name, url, admin = own_database
    with serve_in_thread(create_app(url, environ=ENVIRON)) as server:
        assert timed_delivery(server.url, 1)[0] == 200  # the pool is open, the shop cached as active
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        outage = [timed_delivery(server.url, n) for n in range(2, 12)]
        assert [status for status, _ in outage] == [503] * 10
        assert max(seconds for _, seconds in outage) < 1.0, outage
        health = requests.get(f"{server.url}/health", timeout=10)
        assert health.status_code == 503 and health.elapsed.total_seconds() < 1.0
        forged = order(50)
        for _ in range(3):  # refusals are answered at once too, and counted once the database is back
            response = requests.post(f"{server.url}/webhooks/shopify", data=forged, timeout=10,
                                     headers=headers_for(SHOP, forged, secret="not-the-app-secret"))
            assert response.status_code == 401 and response.elapsed.total_seconds() < 1.0

        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        deadline = time.monotonic() + 5
        while (status := timed_delivery(server.url, 99)[0]) != 200:  # no restart: the probe finds it back
            assert status == 503 and time.monotonic() < deadline
            time.sleep(0.1)
        assert requests.get(f"{server.url}/health", timeout=10).status_code == 200
        deadline = time.monotonic() + 5
        while (counted := rejected(url, "bad_signature")) < 3:
            assert time.monotonic() < deadline, counted
            time.sleep(0.1)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM sync.inbox WHERE account = %s", (SHOP,)).fetchone()[0] == 2
    assert rejected(url, "bad_signature") == 3


def rejected(url: str, reason: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT coalesce(sum(count), 0) FROM sync.webhook_rejection_counts WHERE reason = %s",
                            (reason,)).fetchone()[0]


class SilencingProxy:
    """A TCP proxy to PostgreSQL that can go silent: existing connections stop forwarding and new
    ones are accepted but never answered — a database host that vanished from the network."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.silent = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            if self.silent.is_set():
                continue  # held open, never answered
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets.append(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                while self.silent.is_set():  # swallow nothing, forward nothing
                    time.sleep(0.05)
                sink.sendall(data)

    def close(self) -> None:
        self.listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def test_a_database_that_stops_answering_costs_a_delivery_under_a_second(own_database, postgres_server):
    name, url, _ = own_database
    proxy = SilencingProxy(postgres_server.port)
    proxied = url.replace(f":{postgres_server.port}/", f":{proxy.port}/")
    assert proxied != url
    try:
        with serve_in_thread(create_app(proxied, environ=ENVIRON)) as server:
            assert timed_delivery(server.url, 1)[0] == 200
            proxy.silent.set()
            outage = [timed_delivery(server.url, n) for n in range(2, 7)]
            assert [status for status, _ in outage] == [503] * 5
            assert max(seconds for _, seconds in outage) < 1.0, outage
            proxy.silent.clear()
            deadline = time.monotonic() + 8
            while timed_delivery(server.url, 99)[0] != 200:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        proxy.close()
