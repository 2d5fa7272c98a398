"""The webhook receiver over real HTTP, on a real PostgreSQL: what it accepts, what it refuses, and
that a 200 means the delivery is already in `sync.inbox`."""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from sync_pipelines.core.registry import set_active, upsert_account
from sync_pipelines.defs.shopify.provider import DECLARATION as SHOPIFY
from sync_pipelines.defs.shopify.webhooks import signature
from sync_pipelines.receiver.app import create_app
from sync_pipelines.sandbox.server import serve_in_thread

SECRET, PREVIOUS = "current-secret", "previous-secret"
ENVIRON = {"SHOPIFY_WEBHOOK_SECRET": SECRET, "SHOPIFY_WEBHOOK_SECRET_PREVIOUS": PREVIOUS}
MAX_BODY = 4096


@pytest.fixture(scope="module")
def receiver(database_url):
    with serve_in_thread(create_app(database_url, max_body_bytes=MAX_BODY, environ=ENVIRON)) as server:
        yield server.url


@pytest.fixture
def shop(conn, unique):
    name = f"shop-{unique}.myshopify.com"
    upsert_account(conn, "shopify", name, credentials_env="SHOPIFY_TOKEN_TEST")
    return name


def headers_for(shop, body, *, secret=SECRET, topic="orders/create", delivery_id=None):
    return {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": signature(secret, body),
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": delivery_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2025-01-02T03:04:05.123456789Z",
        "X-Shopify-API-Version": "2025-01",
    }


def order(n=1):
    return json.dumps({"id": n, "updated_at": "2025-01-02T03:04:05Z", "note": "ünïcode"}).encode()


def post(receiver, body, headers, provider="shopify"):
    return requests.post(f"{receiver}/webhooks/{provider}", data=body, headers=headers, timeout=10)


def rejections(conn, reason, account=None):
    """Rejections counted (exactly, whatever the sample of detail rows kept)."""
    query = ("SELECT coalesce(sum(count), 0) FROM sync.webhook_rejection_counts"
             " WHERE provider = 'shopify' AND reason = %s")
    params = [reason]
    if account is not None:
        query += " AND account = %s"
        params.append(account)
    return conn.execute(query, params).fetchone()[0]


def test_signed_delivery_is_in_the_inbox_when_the_200_arrives(receiver, conn, shop):
    body = order(7)
    headers = headers_for(shop, body)
    response = post(receiver, body, headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"
    row = conn.execute(
        "SELECT provider, account, topic, delivery_id, event_id, triggered_at, headers, payload, duplicates"
        " FROM sync.inbox WHERE id = %s", (response.json()["id"],)
    ).fetchone()
    provider, account, topic, delivery_id, event_id, triggered_at, kept, payload, duplicates = row
    assert (provider, account, topic, duplicates) == ("shopify", shop, "orders/create", 0)
    assert delivery_id == headers["X-Shopify-Webhook-Id"] and event_id == headers["X-Shopify-Event-Id"]
    assert triggered_at.isoformat() == "2025-01-02T03:04:05.123456+00:00"
    assert payload == json.loads(body)
    assert kept["X-Shopify-API-Version"] == "2025-01"
    assert "X-Shopify-Hmac-Sha256" not in kept and headers["X-Shopify-Hmac-Sha256"] not in json.dumps(kept)


def test_previous_secret_is_accepted_during_rotation(receiver, shop):
    body = order()
    assert post(receiver, body, headers_for(shop, body, secret=PREVIOUS)).status_code == 200


@pytest.mark.parametrize("case", ["wrong_secret", "tampered", "missing"])
def test_bad_or_missing_signature_is_401_and_recorded(receiver, conn, shop, case):
    body = order()
    headers = headers_for(shop, body, secret="not-the-secret" if case == "wrong_secret" else SECRET)
    if case == "tampered":
        body = body.replace(b'"id": 1', b'"id": 2')  # one byte changed after signing
    if case == "missing":
        del headers["X-Shopify-Hmac-Sha256"]
    reason = "missing_signature" if case == "missing" else "bad_signature"
    before = rejections(conn, reason)
    response = post(receiver, body, headers)
    assert (response.status_code, response.json()) == (401, {"error": reason})
    assert SECRET not in response.text
    assert rejections(conn, reason) == before + 1
    assert conn.execute("SELECT count(*) FROM sync.inbox WHERE account = %s", (shop,)).fetchone()[0] == 0


def test_missing_headers_and_unknown_topic_are_400(receiver, conn, shop):
    body = order()
    headers = headers_for(shop, body)
    del headers["X-Shopify-Webhook-Id"]
    response = post(receiver, body, headers)
    assert (response.status_code, response.json()) == (400, {"error": "missing_headers"})
    response = post(receiver, body, headers_for(shop, body, topic="app/uninstalled"))
    assert (response.status_code, response.json()) == (400, {"error": "unknown_topic"})
    assert rejections(conn, "missing_headers", shop) == 1
    assert rejections(conn, "unknown_topic", shop) == 1


def test_unknown_or_inactive_shop_is_403(receiver, conn, unique):
    body = order()
    stranger = f"stranger-{unique}.myshopify.com"
    response = post(receiver, body, headers_for(stranger, body))
    assert (response.status_code, response.json()) == (403, {"error": "unknown_account"})
    assert rejections(conn, "unknown_account", stranger) == 1
    gone = f"gone-{unique}.myshopify.com"
    upsert_account(conn, "shopify", gone, credentials_env="X")
    set_active(conn, "shopify", gone, False)
    assert post(receiver, body, headers_for(gone, body)).status_code == 403


def test_shop_domain_is_matched_case_insensitively(receiver, shop):
    body = order()
    assert post(receiver, body, headers_for(shop.upper(), body)).status_code == 200


def test_a_shop_registered_in_mixed_case_receives_its_webhooks(receiver, conn, unique):
    typed = f"Mixed-{unique}.MyShopify.com"
    upsert_account(conn, SHOPIFY, typed, credentials_env="SHOPIFY_TOKEN_TEST")
    body = order()
    response = post(receiver, body, headers_for(typed, body))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("field", ["delivery_id", "account"])
def test_over_long_keys_are_400_not_retried_forever(receiver, conn, shop, field):
    """Random text no index row can hold: the insert would fail, answer 503 and be retried for ever."""
    body = order()
    long = secrets.token_urlsafe(6000)
    headers = headers_for(long if field == "account" else shop, body,
                          delivery_id=long if field == "delivery_id" else None)
    reason = f"bad_{field}"
    before = rejections(conn, reason)
    response = post(receiver, body, headers)
    assert (response.status_code, response.json()) == (400, {"error": reason})
    assert rejections(conn, reason) == before + 1
    assert conn.execute("SELECT count(*) FROM sync.inbox WHERE provider = 'shopify' AND delivery_id = %s",
                        (long,)).fetchone()[0] == 0


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_body_is_413(receiver, conn, shop, chunked):
    body = json.dumps({"id": 1, "padding": "x" * (2 * MAX_BODY)}).encode()
    headers = headers_for(shop, body)
    before = rejections(conn, "too_large")
    data = iter([body[i:i + 1024] for i in range(0, len(body), 1024)]) if chunked else body
    response = post(receiver, data, headers)
    assert (response.status_code, response.json()) == (413, {"error": "too_large"})
    assert rejections(conn, "too_large") == before + 1


def test_body_at_the_limit_is_accepted(receiver, shop):
    body = json.dumps({"id": 1, "padding": ""}).encode()
    body = body.replace(b'""', b'"' + b"x" * (MAX_BODY - len(body)) + b'"')
    assert len(body) == MAX_BODY
    assert post(receiver, iter([body]), headers_for(shop, body)).status_code == 200


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"n": NaN}', b"\xff\xfe{}"])
def test_malformed_json_is_400(receiver, conn, shop, body):
    response = post(receiver, body, headers_for(shop, body))
    assert response.status_code == 400
    assert response.json()["error"] in {"malformed_json", "unstorable_json"}
    assert conn.execute("SELECT count(*) FROM sync.inbox WHERE account = %s", (shop,)).fetchone()[0] == 0


def test_a_nul_character_jsonb_cannot_hold_is_replaced_not_refused(receiver, conn, shop):
    """Refusing would lose the delivery for good (retried, then the subscription is dropped)."""
    body = b'{"id": 5, "note": "a\\u0000b", "k\\u0000": ["\\u0000"], "path": "C:\\\\u0000"}'
    response = post(receiver, body, headers_for(shop, body))
    assert response.status_code == 200
    stored = conn.execute("SELECT payload FROM sync.inbox WHERE account = %s", (shop,)).fetchone()[0]
    assert stored == {"id": 5, "note": "a\ufffdb", "k\ufffd": ["\ufffd"], "path": "C:\\u0000"}


def test_duplicate_delivery_is_one_row(receiver, conn, shop):
    body = order()
    headers = headers_for(shop, body)
    first = post(receiver, body, headers)
    second = post(receiver, body, headers)
    assert first.json()["status"] == "accepted"
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate", "id": first.json()["id"]}
    rows = conn.execute("SELECT id, duplicates FROM sync.inbox WHERE account = %s", (shop,)).fetchall()
    assert rows == [(first.json()["id"], 1)]


def test_concurrent_retries_of_one_delivery_are_one_row(receiver, conn, shop):
    body = order()
    headers = headers_for(shop, body)
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda _: post(receiver, body, headers), range(20)))
    assert {r.status_code for r in responses} == {200}
    assert sorted(r.json()["status"] for r in responses).count("accepted") == 1
    assert len({r.json()["id"] for r in responses}) == 1
    assert conn.execute("SELECT count(*), sum(duplicates) FROM sync.inbox WHERE account = %s",
                        (shop,)).fetchone() == (1, 19)


def test_unknown_provider_is_404(receiver):
    response = post(receiver, b"{}", {"Content-Type": "application/json"}, provider="nope")
    assert response.status_code == 404


def test_health(receiver):
    response = requests.get(f"{receiver}/health", timeout=10)
    assert response.status_code == 200
    payload = response.json()
    assert payload["status"] == "healthy"
    assert payload["checks"]["database"]["status"] == "ok"
    assert payload["checks"]["database"]["response_ms"] >= 0
    assert payload["checks"]["inbox"]["pending"] >= 0


def test_health_is_503_when_the_database_goes_away(postgres_server, unique):
    name = f"receiver_health_{unique}"
    url = postgres_server.ensure_database(name)
    admin = psycopg.connect(postgres_server.url(), autocommit=True)
    try:
        with serve_in_thread(create_app(url, environ=ENVIRON)) as server:
            assert requests.get(f"{server.url}/health", timeout=10).status_code == 200
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            response = requests.get(f"{server.url}/health", timeout=30)
            assert response.status_code == 503
            assert response.json()["status"] == "unhealthy"
            body = order()
            assert post(server.url, body, headers_for("any.myshopify.com", body)).status_code == 503
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_unconfigured_secret_answers_503(database_url, shop):
    with serve_in_thread(create_app(database_url, environ={})) as server:
        body = order()
        response = post(server.url, body, headers_for(shop, body))
        assert (response.status_code, response.json()) == (503, {"error": "not_configured"})


def test_unknown_accounts_are_cached_briefly(database_url, conn, unique):
    late = f"late-{unique}.myshopify.com"
    with serve_in_thread(create_app(database_url, account_cache_seconds=0.3, environ=ENVIRON)) as server:
        body = order()
        assert post(server.url, body, headers_for(late, body)).status_code == 403
        upsert_account(conn, "shopify", late, credentials_env="X")
        time.sleep(0.4)
        assert post(server.url, body, headers_for(late, body)).status_code == 200


def test_main_serves_with_lifespan(database_url):
    """`python -m sync_pipelines.receiver`: startup opens the pool, Ctrl-C closes it cleanly."""
    from sync_pipelines.core.embedded import _free_port

    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SHOPIFY_WEBHOOK_SECRET": SECRET}
    process = subprocess.Popen([sys.executable, "-m", "sync_pipelines.receiver", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout.readline().strip() == f"webhook receiver on http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        assert response.json()["status"] == "healthy"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_receiver_does_not_import_dagster():
    code = "import sys, sync_pipelines.receiver.app, sync_pipelines.receiver.__main__; print('dagster' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
