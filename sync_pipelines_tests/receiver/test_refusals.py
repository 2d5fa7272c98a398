"""Refusals that must stay cheap and bounded: JSON nested too deep (a 400, never a 500) on both
paths, and a flood of forged requests (counted exactly, in a bounded number of rows)."""

from __future__ import annotations

import json
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from sync_pipelines.core import inbox
from sync_pipelines.core.registry import upsert_account
from sync_pipelines.receiver.app import create_app
from sync_pipelines.receiver.limits import ServerLimits
from sync_pipelines_tests.receiver.conftest import read_response, request_bytes, serve_receiver
from sync_pipelines_tests.receiver.test_receiver import ENVIRON as WEBHOOK_ENVIRON
from sync_pipelines_tests.receiver.test_receiver import headers_for
from sync_pipelines_tests.receiver.test_triggers import ENVIRON as TRIGGER_ENVIRON
from sync_pipelines_tests.receiver.test_triggers import TOKEN, qstash_headers

DEEP = b'{"id": 1, "nested": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # 200 KB, valid JSON


@pytest.fixture(scope="module")
def receiver(database_url):
    app = create_app(database_url, environ={**WEBHOOK_ENVIRON, **TRIGGER_ENVIRON})  # 1 MiB bodies
    with serve_receiver(app, ServerLimits()) as server:
        yield server


@pytest.fixture
def provider_rows(conn):
    """Rejection rows and counts of one provider (counters are per hour: compare before/after)."""
    inbox.ensure_inbox_tables(conn)  # the receivers here run without lifespan: tables come with their first request

    def read(provider: str, reason: str) -> tuple[int, int]:
        counted = conn.execute("SELECT coalesce(sum(count), 0) FROM sync.webhook_rejection_counts"
                               " WHERE provider = %s AND reason = %s", (provider, reason)).fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM sync.webhook_rejections WHERE provider = %s AND reason = %s",
                            (provider, reason)).fetchone()[0]
        return int(counted), int(rows)

    return read


def test_json_nested_100000_deep_with_a_valid_signature_is_400_and_counted(receiver, conn, unique, provider_rows):
    shop = f"deep-{unique}.myshopify.com"
    upsert_account(conn, "shopify", shop, credentials_env="SHOPIFY_TOKEN_TEST")
    before = provider_rows("shopify", "too_deep")[0]
    response = requests.post(f"{receiver.url}/webhooks/shopify", data=DEEP, headers=headers_for(shop, DEEP),
                             timeout=30)
    assert (response.status_code, response.json()) == (400, {"error": "too_deep"})
    assert provider_rows("shopify", "too_deep")[0] == before + 1
    assert conn.execute("SELECT count(*) FROM sync.inbox WHERE account = %s", (shop,)).fetchone()[0] == 0


@pytest.mark.parametrize("scheme", ["bearer", "qstash"])
def test_a_trigger_body_nested_100000_deep_is_400_and_counted(receiver, provider_rows, scheme):
    before = provider_rows("trigger", "too_deep")[0]
    headers = ({"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": uuid.uuid4().hex}
               if scheme == "bearer" else qstash_headers(DEEP))
    response = requests.post(f"{receiver.url}/triggers/replication_sync", data=DEEP, headers=headers, timeout=30)
    assert (response.status_code, response.json()) == (400, {"error": "too_deep"})
    assert provider_rows("trigger", "too_deep")[0] == before + 1


def test_a_flood_of_forged_deliveries_is_counted_exactly_in_bounded_rows(receiver, conn, unique, provider_rows):
    """3,000 forged deliveries from 12 keep-alive connections: every one 401 and counted, yet the
    rejection tables gain at most a counter row and a sample per hour, not a row per request."""
    body = json.dumps({"id": 1}).encode()
    headers = headers_for(f"flood-{unique}.myshopify.com", body, secret="not-the-app-secret")
    forged = request_bytes("POST", "/webhooks/shopify", headers, body)
    counted_before, rows_before = provider_rows("shopify", "bad_signature")
    counters_before = conn.execute("SELECT count(*) FROM sync.webhook_rejection_counts").fetchone()[0]

    def send(n: int) -> list[int]:
        statuses = []
        with socket.create_connection((receiver.host, receiver.port), timeout=10) as sock:
            for _ in range(n):
                sock.sendall(forged)
                statuses.append(read_response(sock)[0])
        return statuses

    with ThreadPoolExecutor(12) as pool:
        statuses = [s for batch in pool.map(send, [250] * 12) for s in batch]
    assert statuses == [401] * 3000
    # The last batch may still be on its way (one write at a time): it is counted within a moment.
    deadline = time.monotonic() + 5
    while (counted := provider_rows("shopify", "bad_signature"))[0] < counted_before + 3000:
        assert time.monotonic() < deadline, counted
        time.sleep(0.1)
    counted_after, rows_after = counted
    assert counted_after == counted_before + 3000
    assert rows_after - rows_before <= 2 * 20  # the sample: at most 20 per hour (two hours if one ended)
    assert conn.execute("SELECT count(*) FROM sync.webhook_rejection_counts").fetchone()[0] - counters_before <= 2


def test_json_shallow_enough_to_parse_but_too_deep_to_clean_of_nul_is_400(receiver, conn, unique, provider_rows):
    """800 levels parse, but replacing a U+0000 walks the value again, deeper: still a counted 400."""
    shop = f"deep-nul-{unique}.myshopify.com"
    upsert_account(conn, "shopify", shop, credentials_env="SHOPIFY_TOKEN_TEST")
    body = b'{"id": 1, "nested": ' + b"[" * 800 + b'"\\u0000"' + b"]" * 800 + b"}"
    before = provider_rows("shopify", "too_deep")[0]
    response = requests.post(f"{receiver.url}/webhooks/shopify", data=body, headers=headers_for(shop, body),
                             timeout=30)
    assert (response.status_code, response.json()) == (400, {"error": "too_deep"})
    assert provider_rows("shopify", "too_deep")[0] == before + 1
