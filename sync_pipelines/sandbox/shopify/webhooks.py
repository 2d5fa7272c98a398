"""Webhook sender for the Shopify sandbox: signs and POSTs deliveries from a worker thread.

Shopify's contract (what a receiver has to verify): the body is the resource's REST JSON
(``{"id": ...}`` for deletes), ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the
raw body bytes keyed with the app's client secret, and ``X-Shopify-Webhook-Id`` names one
delivery (a retry or a duplicate carries the same id, so receivers dedupe on it).
Shopify itself retries for hours; the sandbox retries a few times with a short backoff.

Deliveries are signed when queued (so flipping ``sign_with`` around a mutation affects
exactly that mutation's deliveries) and sent by a single worker in queue order, which
makes the ``reorder`` and ``duplicate`` knobs deterministic. Mutations never block on a
receiver: ``flush(timeout)`` is how a test waits for the queue to drain.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import requests

from sync_pipelines.sandbox.faults import at_least, unit_interval

log = logging.getLogger(__name__)

SUPPORTED_TOPICS = (
    "orders/create", "orders/updated", "orders/paid", "orders/cancelled", "orders/delete",
    "customers/create", "customers/update", "customers/delete",
    "products/create", "products/update", "products/delete",
    "carts/create", "carts/update", "checkouts/create", "checkouts/update",
)

_KNOBS = ("duplicate_rate", "reorder", "sign_with", "max_attempts", "backoff_seconds", "timeout")


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


class WebhookSender:
    """Thread-safe queue + one daemon worker. Knobs are plain attributes, validated by
    ``configure`` (the control endpoint's path)."""

    def __init__(self, *, app_secret: str, timeout: float = 5.0, max_attempts: int = 3,
                 backoff_seconds: float = 0.05, seed: int = 0, log_size: int = 10_000) -> None:
        self.app_secret = app_secret
        self.timeout = float(timeout)
        self.max_attempts = 3
        self.backoff_seconds = 0.05
        self.duplicate_rate = 0.0
        self.reorder = False
        self.sign_with: str | None = None
        self._seed = seed
        self._rng = random.Random(f"shopify-webhooks:{seed}")
        self._lock = threading.Condition()
        self._queue: deque[Delivery] = deque()
        self._pending = 0  # queued + in flight
        self._duplicate_next = 0
        self._log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self._counts = {"ok": 0, "failed": 0, "attempts": 0, "duplicates": 0}
        self._worker: threading.Thread | None = None
        self._closed = threading.Event()
        self.configure(max_attempts=max_attempts, backoff_seconds=backoff_seconds)

    # ----------------------------------------------------------------- knobs
    def configure(self, **knobs: Any) -> None:
        """Validate everything before applying anything (a bad control request is a no-op)."""
        clean: dict[str, Any] = {}
        for name, value in knobs.items():
            if name == "duplicate_rate":
                value = unit_interval(name, value)
            elif name == "reorder":
                if not isinstance(value, bool):
                    raise ValueError(f"reorder must be true or false, got {value!r}")
            elif name == "sign_with":
                if value is not None and not isinstance(value, str):
                    raise ValueError("sign_with must be a string or null")
            elif name == "max_attempts":
                value = at_least(name, value, 1, int)
            elif name in ("backoff_seconds", "timeout"):
                value = float(value)
                if value < 0 or (name == "timeout" and value == 0):
                    raise ValueError(f"{name} must be {'> 0' if name == 'timeout' else '>= 0'}, got {value}")
            else:
                raise ValueError(f"unknown webhook knob {name!r}; expected one of {_KNOBS}")
            clean[name] = value
        with self._lock:
            for name, value in clean.items():
                setattr(self, name, value)

    def duplicate_next(self, n: int = 1) -> None:
        """The next ``n`` deliveries are each sent twice with the same X-Shopify-Webhook-Id."""
        n = at_least("n", n, 0, int)
        with self._lock:
            self._duplicate_next += n

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"duplicate_rate": self.duplicate_rate, "duplicate_next": self._duplicate_next,
                    "reorder": self.reorder, "sign_with": self.sign_with,
                    "max_attempts": self.max_attempts, "backoff_seconds": self.backoff_seconds,
                    "timeout": self.timeout, "pending": self._pending}

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

    def enqueue(self, batch: list[Delivery]) -> None:
        """Queue one mutation batch: reversed when ``reorder`` is on, duplicates adjacent."""
        if not batch:
            return
        with self._lock:
            if self._closed.is_set():
                log.warning("sandbox webhook sender is closed; dropping %d deliveries", len(batch))
                return
            ordered = list(reversed(batch)) if self.reorder else list(batch)
            for delivery in ordered:
                self._queue.append(delivery)
                self._pending += 1
                twice = False
                if self._duplicate_next > 0:
                    self._duplicate_next -= 1
                    twice = True
                elif self.duplicate_rate and self._rng.random() < self.duplicate_rate:
                    twice = True
                if twice:
                    copy = Delivery(**{**delivery.__dict__, "duplicate": True})
                    self._queue.append(copy)
                    self._pending += 1
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="shopify-sandbox-webhooks",
                                                daemon=True)
                self._worker.start()
            self._lock.notify_all()

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every queued delivery finished (success or final failure)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending == 0, timeout)

    def pending(self) -> int:
        with self._lock:
            return self._pending

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._log]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self._counts, "pending": self._pending}

    def reset_stats(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(self._counts, 0)

    def close(self, timeout: float = 5.0) -> None:
        self._closed.set()
        with self._lock:
            self._lock.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout)

    # ---------------------------------------------------------------- worker
    def _run(self) -> None:
        session = requests.Session()
        try:
            while True:
                with self._lock:
                    self._lock.wait_for(lambda: self._queue or self._closed.is_set())
                    if self._closed.is_set():
                        self._queue.clear()
                        self._pending = 0
                        self._lock.notify_all()
                        return
                    delivery = self._queue.popleft()
                    attempts_allowed, backoff, timeout = self.max_attempts, self.backoff_seconds, self.timeout
                entry = self._send(session, delivery, attempts_allowed, backoff, timeout)
                with self._lock:
                    self._log.append(entry)
                    self._counts["ok" if entry["ok"] else "failed"] += 1
                    self._counts["attempts"] += entry["attempts"]
                    self._counts["duplicates"] += delivery.duplicate
                    self._pending -= 1
                    self._lock.notify_all()
        finally:
            session.close()

    def _send(self, session: requests.Session, delivery: Delivery, max_attempts: int,
              backoff: float, timeout: float) -> dict[str, Any]:
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        attempts = 0
        while attempts < max_attempts and not self._closed.is_set():
            if attempts:
                self._closed.wait(backoff * 2 ** (attempts - 1))
            attempts += 1
            try:
                response = session.post(delivery.address, data=delivery.body, headers=delivery.headers,
                                        timeout=timeout, allow_redirects=False)
                status, error = response.status_code, None
                response.close()
                if 200 <= status < 300:
                    break
            except Exception as exc:  # noqa: BLE001 - any failure is a failed attempt, never a dead worker
                status, error = None, f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        if not ok:
            log.info("sandbox webhook %s to %s failed after %d attempts (status=%s, error=%s)",
                     delivery.topic, delivery.address, attempts, status, error)
        return {
            "webhook_id": delivery.webhook_id,
            "event_id": delivery.event_id,
            "shop": delivery.shop,
            "topic": delivery.topic,
            "address": delivery.address,
            "status": status,
            "ok": ok,
            "attempts": attempts,
            "duration_ms": round((time.monotonic() - started) * 1000, 3),
            "error": error,
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
