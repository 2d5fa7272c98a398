"""The pieces several sandboxes share, tested once: the ``/_sandbox/ratelimit`` knobs endpoint and
the rate limit command-line options (ShipStation, Maystro, EcoManager), and `DeliveryQueue`, the
webhook senders' queue, worker and retries (Shopify, EcoManager)."""

from __future__ import annotations

import argparse
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from sync_pipelines.sandbox.delivery_queue import DeliveryQueue, Outcome, Request
from sync_pipelines.sandbox.ecomanager import EcoManagerSandbox
from sync_pipelines.sandbox.maystro import MaystroSandbox
from sync_pipelines.sandbox.server import (add_rate_limit_arguments, listed_names, rate_limit_options,
                                             serve_in_thread)
from sync_pipelines.sandbox.shipstation import ShipStationSandbox


@pytest.mark.parametrize("make", [ShipStationSandbox, MaystroSandbox, EcoManagerSandbox])
def test_ratelimit_endpoint_reads_sets_refuses_and_turns_off(make):
    sandbox = make(seed=1, requests_per_minute=50, window_seconds=60)
    with serve_in_thread(sandbox.app) as running:
        url = running.url + "/_sandbox/ratelimit"
        assert requests.get(url, timeout=5).json() == {"requests_per_minute": 50, "window_seconds": 60.0}
        set_ = requests.post(url, json={"requests_per_minute": 5, "window_seconds": 2, "reset": True}, timeout=5)
        assert set_.json() == {"requests_per_minute": 5, "window_seconds": 2.0}
        refused = requests.post(url, json={"requests_per_minute": 9, "burst": 3}, timeout=5)
        assert refused.status_code == 400 and "burst" in refused.json()["error"]
        assert sandbox.limiter.snapshot() == {"requests_per_minute": 5, "window_seconds": 2.0}  # nothing applied
        assert requests.post(url, json={"window_seconds": 0}, timeout=5).status_code == 400
        assert requests.post(url, json={"requests_per_minute": None}, timeout=5).json()["requests_per_minute"] is None
        assert not sandbox.limiter.enabled
    sandbox.close()


def test_rate_limit_options_and_listed_names():
    parser = argparse.ArgumentParser()
    add_rate_limit_arguments(parser, 60, per="per store; ")
    assert rate_limit_options(parser.parse_args([])) == {"requests_per_minute": 60, "window_seconds": 60.0}
    off = parser.parse_args(["--requests-per-minute", "0", "--window-seconds", "6"])
    assert rate_limit_options(off) == {"requests_per_minute": None, "window_seconds": 6.0}
    assert "per store; 0 disables" in parser.format_help()
    assert listed_names(" b, a,,b ,c") == ["b", "a", "c"] and listed_names("") == []


class _Sender(DeliveryQueue[tuple[str, bytes]]):
    """The smallest provider sender: (url, body) deliveries, any 2xx accepted."""

    knobs = ("max_attempts", "backoff_seconds", "timeout", "colour")

    def _request(self, delivery: tuple[str, bytes]) -> Request:
        return Request("test", delivery[0], delivery[1], {"Content-Type": "text/plain"})

    def _accepted(self, status: int) -> bool:
        return 200 <= status < 300

    def _error_text(self, exc: Exception) -> str:
        return type(exc).__name__

    def _entry(self, delivery: tuple[str, bytes], outcome: Outcome) -> dict[str, Any]:
        return {"body": delivery[1].decode(), "ok": outcome.ok, "status": outcome.status,
                "attempts": outcome.attempts, "error": outcome.error}


@pytest.fixture
def answering():
    """A loopback URL answering the queued statuses in turn (then 204), recording the bodies."""
    statuses: list[int] = []
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(statuses.pop(0) if statuses else 204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", statuses, bodies
    httpd.shutdown()
    httpd.server_close()


def test_delivery_queue_sends_in_order_retries_until_accepted_and_logs(answering):
    url, statuses, bodies = answering
    sender = _Sender()
    sender.configure(backoff_seconds=0.001, max_attempts=3)
    statuses.extend([500, 503])  # the first delivery is accepted at its third try
    sender.enqueue([(url, b"one"), (url, b"two")])
    assert sender.flush(10) and sender.pending() == 0
    assert bodies == [b"one", b"one", b"one", b"two"]
    assert sender.deliveries() == [{"body": "one", "ok": True, "status": 204, "attempts": 3, "error": None},
                                   {"body": "two", "ok": True, "status": 204, "attempts": 1, "error": None}]
    statuses.extend([500, 500, 500])
    sender.enqueue([(url, b"three")])
    assert sender.flush(10)
    assert sender.deliveries()[-1] == {"body": "three", "ok": False, "status": 500, "attempts": 3, "error": None}
    sender.enqueue([("http://127.0.0.1:9/unreachable", b"four")])
    assert sender.flush(10)
    assert sender.deliveries()[-1]["status"] is None and sender.deliveries()[-1]["error"] == "ConnectionError"
    sender.clear_log()
    assert sender.deliveries() == []
    sender.close()
    sender.enqueue([(url, b"late")])  # dropped: the sender is closed
    assert sender.pending() == 0 and len(bodies) == 7


def test_delivery_queue_knobs_are_validated_before_any_is_applied():
    sender = _Sender()
    with pytest.raises(ValueError, match="max_attempts must be >= 1"):
        sender.configure(backoff_seconds=1, max_attempts=0)
    with pytest.raises(ValueError, match="timeout must be > 0"):
        sender.configure(timeout=0)
    with pytest.raises(ValueError, match=r"unknown webhook knob 'retries'.*'colour'"):
        sender.configure(retries=2)
    assert sender.snapshot() == {"max_attempts": 3, "backoff_seconds": 0.05, "timeout": 5.0, "pending": 0}
    sender.configure(max_attempts=2, backoff_seconds=0, timeout=1)
    assert sender.snapshot() == {"max_attempts": 2, "backoff_seconds": 0.0, "timeout": 1.0, "pending": 0}
