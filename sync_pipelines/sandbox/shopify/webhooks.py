"""Webhook sender for the Shopify sandbox: signs and POSTs deliveries from a worker thread.

Shopify's contract (what a receiver has to verify): the body is the resource's REST JSON
(``{"id": ...}`` for deletes), ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the
raw body bytes keyed with the app's client secret, and ``X-Shopify-Webhook-Id`` names one
delivery (a retry or a duplicate carries the same id, so receivers dedupe on it).
Shopify itself retries for hours; the sandbox retries a few times with a short backoff.

Deliveries are signed when queued (so flipping ``sign_with`` around a mutation affects
exactly that mutation's deliveries) and sent by the single worker of `DeliveryQueue`
(``sandbox.delivery_queue``) in queue order, which makes the ``reorder`` and ``duplicate``
knobs deterministic. Mutations never block on a receiver: ``flush(timeout)`` is how a test
waits for the queue to drain.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from sync_pipelines.sandbox.delivery_queue import DeliveryQueue, Outcome, Request
from sync_pipelines.sandbox.faults import at_least, unit_interval

SUPPORTED_TOPICS = (
    "orders/create", "orders/updated", "orders/paid", "orders/cancelled", "orders/delete",
    "customers/create", "customers/update", "customers/delete",
    "products/create", "products/update", "products/delete",
    "carts/create", "carts/update", "checkouts/create", "checkouts/update",
)

def sign(secret: str, body: bytes) -> str:
    """``X-Shopify-Hmac-Sha256``: base64 of HMAC-SHA256(secret, raw body)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class Delivery:
    """One POST to one address; a duplicate is a second Delivery with the same webhook_id."""

    shop: str
    topic: str
    address: str
    body: bytes
    headers: dict[str, str]
    webhook_id: str
    event_id: str
    raw: bool = False
    duplicate: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


class WebhookSender(DeliveryQueue[Delivery]):
    """`DeliveryQueue` plus Shopify's knobs (``duplicate_rate``, ``reorder``, ``sign_with``),
    ``duplicate_next`` and the delivery counters behind ``/_sandbox/stats``. Shopify accepts
    any 2xx as delivered."""

    thread_name = "shopify-sandbox-webhooks"
    knobs = ("duplicate_rate", "reorder", "sign_with", "max_attempts", "backoff_seconds", "timeout")

    def __init__(self, *, app_secret: str, timeout: float = 5.0, max_attempts: int = 3,
                 backoff_seconds: float = 0.05, seed: int = 0, log_size: int = 10_000) -> None:
        super().__init__(log_size=log_size)
        self.app_secret = app_secret
        self.timeout = float(timeout)
        self.duplicate_rate = 0.0
        self.reorder = False
        self.sign_with: str | None = None
        self._seed = seed
        self._rng = random.Random(f"shopify-webhooks:{seed}")
        self._duplicate_next = 0
        self._counts = {"ok": 0, "failed": 0, "attempts": 0, "duplicates": 0}
        self.configure(max_attempts=max_attempts, backoff_seconds=backoff_seconds)

    # ----------------------------------------------------------------- knobs
    def _check_knob(self, name: str, value: Any) -> Any:
        if name == "duplicate_rate":
            return unit_interval(name, value)
        if name == "reorder":
            if not isinstance(value, bool):
                raise ValueError(f"reorder must be true or false, got {value!r}")
            return value
        if name == "sign_with":
            if value is not None and not isinstance(value, str):
                raise ValueError("sign_with must be a string or null")
            return value
        return super()._check_knob(name, value)

    def duplicate_next(self, n: int = 1) -> None:
        """The next ``n`` deliveries are each sent twice with the same X-Shopify-Webhook-Id."""
        n = at_least("n", n, 0, int)
        with self._lock:
            self._duplicate_next += n

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"duplicate_rate": self.duplicate_rate, "duplicate_next": self._duplicate_next,
                    "reorder": self.reorder, "sign_with": self.sign_with, **super().snapshot()}

    # ----------------------------------------------------------------- queue
    def headers_for(self, *, shop: str, topic: str, body: bytes, api_version: str, webhook_id: str,
                    event_id: str, triggered_at: str) -> dict[str, str]:
        secret = self.sign_with if self.sign_with is not None else self.app_secret
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(secret, body),
            "X-Shopify-Shop-Domain": shop,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Event-Id": event_id,
            "X-Shopify-Triggered-At": triggered_at,
            "X-Shopify-API-Version": api_version,
        }

    def _arrange(self, batch: list[Delivery]) -> list[Delivery]:
        """One mutation batch: reversed when ``reorder`` is on, duplicates adjacent."""
        out: list[Delivery] = []
        for delivery in reversed(batch) if self.reorder else batch:
            out.append(delivery)
            twice = False
            if self._duplicate_next > 0:
                self._duplicate_next -= 1
                twice = True
            elif self.duplicate_rate and self._rng.random() < self.duplicate_rate:
                twice = True
            if twice:
                out.append(Delivery(**{**delivery.__dict__, "duplicate": True}))
        return out

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self._counts, "pending": self._pending}

    def reset_stats(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(self._counts, 0)

    # -------------------------------------------------------------- delivery
    def _sent(self, delivery: Delivery, entry: dict[str, Any]) -> None:
        self._counts["ok" if entry["ok"] else "failed"] += 1
        self._counts["attempts"] += entry["attempts"]
        self._counts["duplicates"] += delivery.duplicate

    def _request(self, delivery: Delivery) -> Request:
        return Request(delivery.topic, delivery.address, delivery.body, delivery.headers)

    def _accepted(self, status: int) -> bool:
        return 200 <= status < 300

    def _error_text(self, exc: Exception) -> str:
        return f"{type(exc).__name__}: {exc}"

    def _entry(self, delivery: Delivery, outcome: Outcome) -> dict[str, Any]:
        return {
            "webhook_id": delivery.webhook_id,
            "event_id": delivery.event_id,
            "shop": delivery.shop,
            "topic": delivery.topic,
            "address": delivery.address,
            "status": outcome.status,
            "ok": outcome.ok,
            "attempts": outcome.attempts,
            "duration_ms": outcome.duration_ms,
            "error": outcome.error,
            "duplicate": delivery.duplicate,
            "raw": delivery.raw,
            **delivery.meta,
        }


def new_delivery(sender: WebhookSender, *, shop: str, topic: str, address: str, body: bytes,
                 api_version: str, triggered_at: str, event_id: str | None = None,
                 extra_headers: dict[str, str | None] | None = None, raw: bool = False,
                 meta: dict[str, Any] | None = None) -> Delivery:
    """A signed Delivery; ``extra_headers`` override (or, with None, remove) standard headers."""
    webhook_id = str(uuid.uuid4())
    event_id = event_id or str(uuid.uuid4())
    headers = sender.headers_for(shop=shop, topic=topic, body=body, api_version=api_version,
                                 webhook_id=webhook_id, event_id=event_id, triggered_at=triggered_at)
    for name, value in (extra_headers or {}).items():
        for existing in [h for h in headers if h.lower() == name.lower()]:
            del headers[existing]
        if value is not None:
            headers[name] = str(value)
    webhook_id = next((v for k, v in headers.items() if k.lower() == "x-shopify-webhook-id"), webhook_id)
    return Delivery(shop=shop, topic=topic, address=address, body=body, headers=headers,
                    webhook_id=webhook_id, event_id=event_id, raw=raw, meta=dict(meta or {}))
