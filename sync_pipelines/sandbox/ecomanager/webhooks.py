"""EcoManager's webhook deliveries: signed POSTs from a worker thread, and the activation probe.

Contract (EcoManager shop API v2, "Webhooks"): the body is the order exactly as "Retrieve a single
order" returns it; ``X-Ecomanager-Signature`` is the hex HMAC-SHA256 of the full raw body under the
webhook's secret, ``X-Ecomanager-Source`` the account's full URL (``https://STORE.ecomanager.dz``),
``X-Ecomanager-Event`` the event, ``X-Ecomanager-Webhook-ID`` the webhook's id. A webhook is
activated only if a GET to its delivery URL succeeds. A delivery that is not answered 200 within
5 s is retried (EcoManager: 6 times over ~24 h; here `max_attempts` with a short backoff, so tests
stay fast). Deliveries are sent in queue order by one worker; mutations never wait for them, and
``flush(timeout)`` is how a test waits.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import requests

from sync_pipelines.sandbox.faults import at_least

log = logging.getLogger(__name__)

EVENTS = ("OrderCreated", "OrderDeleted", "OrderStatusChanged", "OrderConfirmationStatusChanged",
          "OrderShippingStatusChanged")
_KNOBS = ("max_attempts", "backoff_seconds", "timeout")


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


class WebhookSender:
    """A queue and one daemon worker; knobs validated by ``configure``."""

    def __init__(self, *, max_attempts: int = 3, backoff_seconds: float = 0.05, timeout: float = 5.0,
                 log_size: int = 10_000) -> None:
        self.max_attempts, self.backoff_seconds, self.timeout = 3, 0.05, 5.0
        self._lock = threading.Condition()
        self._queue: deque[Delivery] = deque()
        self._pending = 0
        self._log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self._worker: threading.Thread | None = None
        self._closed = threading.Event()
        self.configure(max_attempts=max_attempts, backoff_seconds=backoff_seconds, timeout=timeout)

    def configure(self, **knobs: Any) -> None:
        clean: dict[str, Any] = {}
        for name, value in knobs.items():
            if name == "max_attempts":
                clean[name] = at_least(name, value, 1, int)
            elif name == "backoff_seconds":
                clean[name] = at_least(name, value, 0)
            elif name == "timeout":
                value = float(value)
                if not value > 0:
                    raise ValueError(f"timeout must be > 0, got {value}")
                clean[name] = value
            else:
                raise ValueError(f"unknown webhook knob {name!r}; expected one of {_KNOBS}")
        with self._lock:
            for name, value in clean.items():
                setattr(self, name, value)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"max_attempts": self.max_attempts, "backoff_seconds": self.backoff_seconds,
                    "timeout": self.timeout, "pending": self._pending}

    def enqueue(self, deliveries: list[Delivery]) -> None:
        if not deliveries:
            return
        with self._lock:
            if self._closed.is_set():
                log.warning("sandbox webhook sender is closed; dropping %d deliveries", len(deliveries))
                return
            self._queue.extend(deliveries)
            self._pending += len(deliveries)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="ecomanager-sandbox-webhooks", daemon=True)
                self._worker.start()
            self._lock.notify_all()

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every queued delivery succeeded or finally failed."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending == 0, timeout)

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._log]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def close(self, timeout: float = 5.0) -> None:
        self._closed.set()
        with self._lock:
            self._lock.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout)

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
                    attempts, backoff, timeout = self.max_attempts, self.backoff_seconds, self.timeout
                entry = self._send(session, delivery, attempts, backoff, timeout)
                with self._lock:
                    self._log.append(entry)
                    self._pending -= 1
                    self._lock.notify_all()
        finally:
            session.close()

    def _send(self, session: requests.Session, delivery: Delivery, max_attempts: int, backoff: float,
              timeout: float) -> dict[str, Any]:
        status: int | None = None
        error: str | None = None
        attempts = 0
        started = time.monotonic()
        while attempts < max_attempts and not self._closed.is_set():
            if attempts:
                self._closed.wait(backoff * 2 ** (attempts - 1))
            attempts += 1
            try:
                response = session.post(delivery.url, data=delivery.body, headers=delivery.headers,
                                        timeout=timeout, allow_redirects=False)
                status, error = response.status_code, None
                response.close()
                if status == 200:
                    break
            except Exception as exc:  # noqa: BLE001 - a failed attempt, never a dead worker
                status, error = None, type(exc).__name__
        ok = status == 200
        if not ok:
            log.info("sandbox webhook %s to %s failed after %d attempts (status=%s, error=%s)",
                     delivery.event, delivery.url, attempts, status, error)
        return {"store": delivery.store, "event": delivery.event, "webhook_id": delivery.webhook_id,
                "url": delivery.url, "order_id": delivery.order_id, "status": status, "ok": ok,
                "attempts": attempts, "error": error, "duration_ms": round((time.monotonic() - started) * 1000, 3)}
