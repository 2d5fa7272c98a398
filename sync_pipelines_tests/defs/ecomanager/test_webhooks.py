"""EcoManager's webhooks: hex HMAC-SHA256 of the raw body (checked against an independent
computation), the store from `X-Ecomanager-Source`, de-duplication of retries, and the activation
probe — through the real receiver into the inbox."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests

from sync_pipelines.core.registry import upsert_account
from sync_pipelines.core.webhooks import WebhookRequest
from sync_pipelines.defs.ecomanager import webhooks
from sync_pipelines.receiver.app import create_app
from sync_pipelines.sandbox.server import serve_in_thread

SECRET = "supersecretkey"
ORDER = {"id": 905448, "reference": "NATU905448", "order_state_name": "En attente",
         "updated_at": "2026-12-04 10:00:00", "full_name": "Amina B."}


def reference_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(store: str, body: bytes, event: str = "OrderCreated", webhook_id: str = "61", secret: str = SECRET):
    return {"X-Ecomanager-Signature": reference_signature(secret, body),
            "X-Ecomanager-Source": f"https://{store}.ecomanager.dz", "X-Ecomanager-Event": event,
            "X-Ecomanager-Webhook-ID": webhook_id, "Content-Type": "application/json"}


def test_signature_is_hex_hmac_sha256_of_the_raw_body_under_current_or_previous_secret():
    body = json.dumps(ORDER).encode()
    assert webhooks.signature(SECRET, body) == reference_signature(SECRET, body)
    assert webhooks.verify(body, reference_signature("old", body), [SECRET, "old"])
    assert webhooks.verify(body, reference_signature(SECRET, body).upper(), [SECRET])
    for bad in (None, "", "zz", reference_signature("other", body)):
        assert not webhooks.verify(body, bad, [SECRET])
    assert not webhooks.verify(body.replace(b"Amina", b"Amine"), reference_signature(SECRET, body), [SECRET])
    assert not webhooks.verify(body, reference_signature(SECRET, body), [])


def test_facts_store_from_source_and_delivery_id_from_webhook_and_body():
    body = json.dumps(ORDER).encode()
    facts = webhooks.WEBHOOKS.facts(WebhookRequest(headers=headers("NatureLDZ", body), body=body))
    assert facts.account == "natureldz" and facts.topic == "OrderCreated"
    assert facts.delivery_id.startswith("61:") and facts.triggered_at.isoformat() == "2026-12-04T10:00:00+01:00"
    assert "X-Ecomanager-Signature" not in facts.kept_headers
    again = webhooks.WEBHOOKS.facts(WebhookRequest(headers=headers("natureldz", body), body=body))
    changed = json.dumps({**ORDER, "updated_at": "2026-12-04 10:05:00"}).encode()
    later = webhooks.WEBHOOKS.facts(WebhookRequest(headers=headers("natureldz", changed), body=changed))
    assert again.delivery_id == facts.delivery_id != later.delivery_id  # a retry repeats, an event differs


@pytest.fixture
def receiver(database_url):
    app = create_app(database_url, environ={webhooks.SECRET_ENV: SECRET})
    with serve_in_thread(app) as server:
        yield server.url


def test_deliveries_through_the_receiver(receiver, conn, unique):
    store = f"eco{unique}"
    upsert_account(conn, "ecomanager", store, credentials_env="UNUSED")
    url = f"{receiver}/webhooks/ecomanager"
    assert requests.get(url, timeout=10).status_code == 200  # the activation probe
    body = json.dumps({**ORDER, "id": 1}).encode()
    first = requests.post(url, data=body, headers=headers(store, body), timeout=10)
    assert first.status_code == 200 and first.json()["status"] == "accepted"
    retry = requests.post(url, data=body, headers=headers(store, body), timeout=10)
    assert retry.json() == {"status": "duplicate", "id": first.json()["id"]}
    bad = requests.post(url, data=body, headers=headers(store, body, secret="wrong"), timeout=10)
    assert bad.status_code == 401 and bad.json() == {"error": "bad_signature"}
    stranger = requests.post(url, data=body, headers=headers(f"x{unique}", body), timeout=10)
    assert stranger.status_code == 403
    odd = requests.post(url, data=body, headers=headers(store, body, event="OrderExploded"), timeout=10)
    assert odd.json() == {"error": "unknown_topic"}
    rows = conn.execute("SELECT account, topic, payload->>'id', headers FROM sync.inbox WHERE provider = 'ecomanager'"
                        " AND account = %s", (store,)).fetchall()
    assert rows == [(store, "OrderCreated", "1", {"X-Ecomanager-Source": f"https://{store}.ecomanager.dz",
                                                   "X-Ecomanager-Event": "OrderCreated",
                                                   "X-Ecomanager-Webhook-ID": "61"})]
