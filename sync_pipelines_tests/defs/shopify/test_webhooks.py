"""Shopify's webhook rules, checked against an independent HMAC-SHA256/base64 computation."""

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from sync_pipelines.defs.shopify import webhooks

BODY = b'{"id": 820982911946154508, "email": "jon@example.com"}'


def _reference(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_signature_matches_reference():
    assert webhooks.signature("hush", BODY) == _reference("hush", BODY)
    assert webhooks.signature("hush", b"") == _reference("hush", b"")


def test_verify_accepts_current_and_previous_secret():
    assert webhooks.verify(BODY, _reference("new", BODY), ["new", "old"])
    assert webhooks.verify(BODY, _reference("old", BODY), ["new", "old"])
    assert webhooks.verify(BODY, " " + _reference("new", BODY) + " ", ["new"])


@pytest.mark.parametrize("header", [None, "", "not base64 at all!", "%%%%", "é", "aGVsbG8=",
                                    _reference("other", BODY)])
def test_verify_rejects_missing_garbage_and_wrong_secret(header):
    assert not webhooks.verify(BODY, header, ["hush"])


def test_verify_rejects_one_changed_byte_and_no_secrets():
    good = _reference("hush", BODY)
    tampered = BODY.replace(b"jon", b"jan")
    assert not webhooks.verify(tampered, good, ["hush"])
    assert not webhooks.verify(BODY, good, [])


def test_secrets_from_env_ignores_empty_values():
    assert webhooks.secrets_from_env({}) == []
    assert webhooks.secrets_from_env({"SHOPIFY_WEBHOOK_SECRET": "a"}) == ["a"]
    assert webhooks.secrets_from_env({"SHOPIFY_WEBHOOK_SECRET": "a", "SHOPIFY_WEBHOOK_SECRET_PREVIOUS": "b"}) == ["a", "b"]
    assert webhooks.secrets_from_env({"SHOPIFY_WEBHOOK_SECRET": "", "SHOPIFY_WEBHOOK_SECRET_PREVIOUS": "b"}) == ["b"]


def test_header_accessors_are_case_insensitive_and_keep_no_signature():
    headers = {
        "x-shopify-hmac-sha256": "c2lnbmF0dXJl",
        "X-SHOPIFY-TOPIC": "orders/create",
        "x-shopify-shop-domain": "Shop-One.myshopify.com",
        "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "x-shopify-event-id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "x-shopify-triggered-at": "2023-03-29T18:00:27.877041743Z",
        "x-shopify-api-version": "2025-01",
        "content-type": "application/json",
    }
    assert webhooks.account(headers) == "shop-one.myshopify.com"
    assert webhooks.topic(headers) == "orders/create"
    assert webhooks.delivery_id(headers) == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert webhooks.event_id(headers) == "98880550-7158-44d4-b7cd-2c97c8a091b5"
    assert webhooks.triggered_at(headers) == datetime(2023, 3, 29, 18, 0, 27, 877041, tzinfo=UTC)
    kept = webhooks.kept_headers(headers)
    assert set(kept) == {"X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id",
                         "X-Shopify-Event-Id", "X-Shopify-Triggered-At", "X-Shopify-API-Version"}
    assert "c2lnbmF0dXJl" not in kept.values()


def test_missing_or_bad_headers_are_none():
    assert webhooks.account({}) is None
    assert webhooks.delivery_id({"X-Shopify-Webhook-Id": "  "}) is None
    assert webhooks.triggered_at({"X-Shopify-Triggered-At": "yesterday"}) is None


def test_topics_cover_the_subscribed_resources():
    assert len(webhooks.TOPICS) == len(set(webhooks.TOPICS)) == 15
    assert {"orders/create", "carts/update", "checkouts/create", "products/delete"} <= set(webhooks.TOPICS)
