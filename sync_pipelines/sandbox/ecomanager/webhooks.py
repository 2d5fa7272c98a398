"""EcoManager's webhook deliveries: signed POSTs from a worker thread, and the activation probe.

Contract (EcoManager shop API v2, "Webhooks"): the body is the order exactly as "Retrieve a single
order" returns it; ``X-Ecomanager-Signature`` is the hex HMAC-SHA256 of the full raw body under the
webhook's secret, ``X-Ecomanager-Source`` the account's full URL (``https://STORE.ecomanager.dz``),
``X-Ecomanager-Event`` the event, ``X-Ecomanager-Webhook-ID`` the webhook's id. A webhook is
activated only if a GET to its delivery URL succeeds. A delivery that is not answered 200 within
5 s is retried (EcoManager: 6 times over ~24 h; here `max_attempts` with a short backoff, so tests
stay fast). Deliveries are sent in queue order by the one worker of `DeliveryQueue`
(``sandbox.delivery_queue``); mutations never wait for them, and ``flush(timeout)`` is how a test waits.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import requests

from sync_pipelines.sandbox.delivery_queue import DeliveryQueue, Outcome, Request

EVENTS = ("OrderCreated", "OrderDeleted", "OrderStatusChanged", "OrderConfirmationStatusChanged",
          "OrderShippingStatusChanged")


def sign(secret: str, body: bytes) -> str:
    """``X-Ecomanager-Signature``: lowercase hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def source_url(store: str) -> str:
    """``X-Ecomanager-Source``: the full URL of the account."""
    return f"https://{store}.ecomanager.dz"


@dataclass
class Delivery:
    store: str
    event: str
    webhook_id: int
    url: str
    body: bytes
    headers: dict[str, str]
    order_id: int | None


def delivery_for(store: str, event: str, webhook: dict[str, Any], body: bytes, order_id: int | None) -> Delivery:
    """A signed delivery of `body` to `webhook`; its custom headers first, the four headers over them."""
    headers = {str(h["key"]): str(h["value"]) for h in webhook.get("headers") or [] if isinstance(h, dict)}
    headers.update({"Content-Type": "application/json", "X-Ecomanager-Signature": sign(webhook["secret"], body),
                    "X-Ecomanager-Source": source_url(store), "X-Ecomanager-Event": event,
                    "X-Ecomanager-Webhook-ID": str(webhook["id"])})
    return Delivery(store, event, webhook["id"], webhook["delivery_url"], body, headers, order_id)


def probe(url: str, timeout: float) -> tuple[bool, str]:
    """The activation check: a GET to the delivery URL must answer 200."""
    try:
        response = requests.get(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        return False, type(exc).__name__
    response.close()
    return response.status_code == 200, f"HTTP {response.status_code}"


class WebhookSender(DeliveryQueue[Delivery]):
    """`DeliveryQueue` (``sandbox.delivery_queue``) with EcoManager's rule: only a 200 is delivered."""

    thread_name = "ecomanager-sandbox-webhooks"

    def __init__(self, *, max_attempts: int = 3, backoff_seconds: float = 0.05, timeout: float = 5.0,
                 log_size: int = 10_000) -> None:
        super().__init__(log_size=log_size)
        self.configure(max_attempts=max_attempts, backoff_seconds=backoff_seconds, timeout=timeout)

    def _request(self, delivery: Delivery) -> Request:
        return Request(delivery.event, delivery.url, delivery.body, delivery.headers)

    def _accepted(self, status: int) -> bool:
        return status == 200

    def _error_text(self, exc: Exception) -> str:
        return type(exc).__name__

    def _entry(self, delivery: Delivery, outcome: Outcome) -> dict[str, Any]:
        return {"store": delivery.store, "event": delivery.event, "webhook_id": delivery.webhook_id,
                "url": delivery.url, "order_id": delivery.order_id, "status": outcome.status, "ok": outcome.ok,
                "attempts": outcome.attempts, "error": outcome.error, "duration_ms": outcome.duration_ms}
