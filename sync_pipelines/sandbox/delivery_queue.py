"""What the sandboxes' webhook senders share: a queue, one daemon worker, retried POSTs, a log.

Every provider we emulate that pushes webhooks (Shopify, EcoManager) retries a delivery its
receiver did not accept, and a receiver must cope with deliveries arriving late and in bursts.
The sandbox sends them from one worker in queue order (deterministic for tests), so mutations
never block on a receiver and ``flush(timeout)`` is how a test waits for the queue to drain.
The real providers retry for hours; here ``max_attempts`` tries with an exponential backoff
from ``backoff_seconds``, so tests stay fast.

A provider's sender subclasses `DeliveryQueue` and says what is its own: how a delivery is
POSTed (`_request`), which statuses count as accepted (`_accepted`), how a failure reads
(`_error_text`), the delivery log's entry (`_entry`), and optionally more knobs
(`_check_knob`), how a batch is queued (`_arrange`) and what is tallied per delivery (`_sent`).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Iterable, TypeVar

import requests

from sync_pipelines.sandbox.faults import at_least

log = logging.getLogger(__name__)

D = TypeVar("D")


@dataclass(frozen=True)
class Request:
    """One delivery's POST: ``what`` names it in log lines (its topic or event)."""

    what: str
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    """How a delivery ended: the last status (None: no answer), the last error, how many tries."""

    ok: bool
    status: int | None
    error: str | None
    attempts: int
    duration_ms: float


class DeliveryQueue(ABC, Generic[D]):
    """Thread-safe queue + one daemon worker. The knobs ``max_attempts``, ``backoff_seconds`` and
    ``timeout`` are plain attributes, validated by ``configure`` (the control endpoint's path)."""

    thread_name: ClassVar[str] = "sandbox-webhooks"
    knobs: ClassVar[tuple[str, ...]] = ("max_attempts", "backoff_seconds", "timeout")

    def __init__(self, *, log_size: int = 10_000) -> None:
        self.max_attempts = 3
        self.backoff_seconds = 0.05
        self.timeout = 5.0
        self._lock = threading.Condition()  # re-entrant: a subclass's hooks may take it again
        self._queue: deque[D] = deque()
        self._pending = 0  # queued + in flight
        self._log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self._worker: threading.Thread | None = None
        self._closed = threading.Event()

    # ----------------------------------------------------------------- knobs
    def configure(self, **knobs: Any) -> None:
        """Validate everything before applying anything (a bad control request is a no-op)."""
        clean = {name: self._check_knob(name, value) for name, value in knobs.items()}
        with self._lock:
            for name, value in clean.items():
                setattr(self, name, value)

    def _check_knob(self, name: str, value: Any) -> Any:
        """`value` for knob `name`, validated, or a ValueError naming it."""
        if name == "max_attempts":
            return at_least(name, value, 1, int)
        if name == "backoff_seconds":
            return at_least(name, value, 0)
        if name == "timeout":
            value = float(value)
            if not value > 0:
                raise ValueError(f"timeout must be > 0, got {value}")
            return value
        raise ValueError(f"unknown webhook knob {name!r}; expected one of {self.knobs}")

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"max_attempts": self.max_attempts, "backoff_seconds": self.backoff_seconds,
                    "timeout": self.timeout, "pending": self._pending}

    # ----------------------------------------------------------------- queue
    def enqueue(self, batch: list[D]) -> None:
        """Queue one mutation's deliveries (as `_arrange` orders them); never waits for them."""
        if not batch:
            return
        with self._lock:
            if self._closed.is_set():
                log.warning("sandbox webhook sender is closed; dropping %d deliveries", len(batch))
                return
            for delivery in self._arrange(batch):
                self._queue.append(delivery)
                self._pending += 1
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
                self._worker.start()
            self._lock.notify_all()

    def _arrange(self, batch: list[D]) -> Iterable[D]:
        """What a batch puts in the queue, in order (called under the lock): the batch itself."""
        return batch

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every queued delivery finished (success or final failure)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending == 0, timeout)

    def pending(self) -> int:
        with self._lock:
            return self._pending

    def deliveries(self) -> list[dict[str, Any]]:
        """The delivery log (`_entry` per finished delivery), oldest first."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker; what is still queued is dropped."""
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
                    attempts, backoff, timeout = self.max_attempts, self.backoff_seconds, self.timeout
                entry = self._entry(delivery, self._send(session, self._request(delivery), attempts, backoff,
                                                         timeout))
                with self._lock:
                    self._log.append(entry)
                    self._sent(delivery, entry)
                    self._pending -= 1
                    self._lock.notify_all()
        finally:
            session.close()

    def _send(self, session: requests.Session, request: Request, max_attempts: int, backoff: float,
              timeout: float) -> Outcome:
        """POST until accepted, `max_attempts` tries at most, waiting backoff·2^(n-1) before try n+1."""
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        attempts = 0
        while attempts < max_attempts and not self._closed.is_set():
            if attempts:
                self._closed.wait(backoff * 2 ** (attempts - 1))
            attempts += 1
            try:
                response = session.post(request.url, data=request.body, headers=request.headers,
                                        timeout=timeout, allow_redirects=False)
                status, error = response.status_code, None
                response.close()
                if self._accepted(status):
                    break
            except Exception as exc:  # noqa: BLE001 - any failure is a failed attempt, never a dead worker
                status, error = None, self._error_text(exc)
        ok = status is not None and self._accepted(status)
        if not ok:
            log.info("sandbox webhook %s to %s failed after %d attempts (status=%s, error=%s)",
                     request.what, request.url, attempts, status, error)
        return Outcome(ok, status, error, attempts, round((time.monotonic() - started) * 1000, 3))

    def _sent(self, delivery: D, entry: dict[str, Any]) -> None:
        """Called under the lock once a delivery finished (its log entry written): nothing here."""

    # ------------------------------------------------------- provider's part
    @abstractmethod
    def _request(self, delivery: D) -> Request:
        """The POST that sends `delivery`."""

    @abstractmethod
    def _accepted(self, status: int) -> bool:
        """Whether the receiver's `status` ends the retries."""

    @abstractmethod
    def _error_text(self, exc: Exception) -> str:
        """A failed attempt's ``error`` in the log (no secret: a delivery's headers are not in it)."""

    @abstractmethod
    def _entry(self, delivery: D, outcome: Outcome) -> dict[str, Any]:
        """The delivery log's record of `delivery`."""
