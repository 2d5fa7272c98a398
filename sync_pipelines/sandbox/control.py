"""Plumbing every provider emulator shares: the ``/_sandbox/*`` control plane and drift.

One implementation so the emulators behave alike where they should (same loopback-only rule,
same JSON errors for a bad control call, same drift ticker, same request tallies) and each
provider's package holds only what is specific to that provider (``base.ProviderSandbox`` wires
these together). Like the rest of the sandbox, this imports nothing from dagster or the
pipelines.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import date
from ipaddress import ip_address
from typing import Any, Callable, Iterable, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

ControlHandler = Callable[[Request, dict[str, Any]], Any]


def dumps(payload: Any) -> bytes:
    """Compact JSON bytes, as the real APIs send them (and cheaper to serialize)."""
    return json.dumps(payload, separators=(",", ":")).encode()


def is_loopback_client(request: Request) -> bool:
    """Whether the caller is on this machine: the control endpoints have no auth, so only
    loopback clients (and Starlette's in-process TestClient) may use them."""
    client = request.client
    if client is None or client.host == "testclient":  # starlette's in-process TestClient
        return True
    try:
        return ip_address(client.host).is_loopback
    except ValueError:
        return client.host == "localhost"


def control_endpoint(handler: ControlHandler):
    """A Starlette endpoint for ``handler(request, body)`` on the control plane.

    No auth, but loopback clients only (403). A POST body, if any, must be a JSON object (400);
    GET passes ``{}``. The handler runs in the thread pool and returns what becomes the JSON
    reply; a KeyError from it is a 404, a TypeError/ValueError a 400, each ``{"error": ...}``.
    """

    async def endpoint(request: Request) -> Response:
        if not is_loopback_client(request):
            return JSONResponse({"error": "sandbox control endpoints are loopback-only"}, 403)
        body: Any = {}
        if request.method == "POST":
            raw = await request.body()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    return JSONResponse({"error": "body must be JSON"}, 400)
            if not isinstance(body, dict):
                return JSONResponse({"error": "body must be a JSON object"}, 400)
        try:
            result = await run_in_threadpool(handler, request, body)
        except KeyError as exc:
            return JSONResponse({"error": str(exc.args[0]) if exc.args else "not found"}, 404)
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(result)

    return endpoint


class Knobs(Protocol):
    """What ``knobs_endpoint`` serves (e.g. `RateLimiter`, `Faults`): knobs read and set as JSON."""

    def snapshot(self) -> dict[str, Any]: ...

    def apply_control(self, body: dict[str, Any]) -> dict[str, Any]: ...


def knobs_endpoint(knobs: Knobs) -> ControlHandler:
    """The handler of a knobs endpoint (``/_sandbox/ratelimit``): GET the knobs, POST a body of
    knobs to apply (validated before anything changes) and get them back."""

    def handler(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return knobs.apply_control(body) if request.method == "POST" else knobs.snapshot()

    return handler


class Drift:
    """Mutates every account every ``interval_seconds`` on a daemon thread (``dev`` mode), so
    incremental syncs have something to pick up. ``keys()`` lists the accounts at each tick and
    ``tick(key)`` mutates one; a failing tick is logged on ``log`` (as "<what> <key>") and the
    ticker carries on."""

    def __init__(self, *, keys: Callable[[], Iterable[str]], tick: Callable[[str], Any], what: str,
                 thread_name: str, log: logging.Logger) -> None:
        self._keys, self._tick, self._what = keys, tick, what
        self._thread_name, self._log = thread_name, log
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None

    def start(self, interval_seconds: float) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be > 0")
        self.stop()
        stop = threading.Event()
        thread = threading.Thread(target=self._loop, args=(interval_seconds, stop),
                                  name=self._thread_name, daemon=True)
        self._stop, self._thread = stop, thread
        thread.start()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._stop = self._thread = None

    def _loop(self, interval: float, stop: threading.Event) -> None:
        while not stop.wait(interval):
            for key in self._keys():
                try:
                    self._tick(key)
                except Exception:  # a dev convenience must not die silently on one bad tick
                    self._log.exception("sandbox drift failed for %s %s", self._what, key)


class RequestStats:
    """The request tallies behind ``/_sandbox/stats``: requests per account (under `by`), counts
    per status, and the 429s (rate limit vs injected fault) and 401s; under a lock, since the
    handlers run on many threads."""

    def __init__(self, by: str) -> None:
        self._by = by
        self._lock = threading.Lock()
        self._counts = self._empty()

    def _empty(self) -> dict[str, Any]:
        return {self._by: {}, "status_counts": {}, "rate_limited_429": 0, "fault_429": 0, "unauthorized_401": 0}

    def record(self, account: str | None, status: int, *, rate_limited: bool = False,
               fault_429: bool = False) -> None:
        with self._lock:
            s = self._counts
            if account is not None:
                s[self._by][account] = s[self._by].get(account, 0) + 1
            s["status_counts"][str(status)] = s["status_counts"].get(str(status), 0) + 1
            s["rate_limited_429"] += rate_limited
            s["fault_429"] += fault_429
            s["unauthorized_401"] += status == 401

    def snapshot(self) -> dict[str, Any]:
        """A copy of the tallies plus ``total_429``."""
        with self._lock:
            s = json.loads(json.dumps(self._counts))
        s["total_429"] = s["rate_limited_429"] + s["fault_429"]
        return s

    def reset(self) -> None:
        with self._lock:
            self._counts = self._empty()


def only_fields(body: dict[str, Any], allowed: set[str]) -> None:
    """Refuse a control request naming fields the endpoint does not take (a typo must not be ignored)."""
    unknown = set(body) - allowed
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}; expected some of {sorted(allowed)}")


def required_name(body: dict[str, Any], field: str) -> str:
    """``body[field]``, which must be a non-empty string (a store's name, an API key)."""
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} (non-empty string) is required")
    return value


def iso_date(raw: Any, name: str) -> date:
    """A ``YYYY-MM-DD`` control parameter (a query's ``since``, a body's ``history_start``) as a
    date; anything else is a 400 naming the parameter."""
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise ValueError(f"{name} must be a YYYY-MM-DD date, got {raw!r}") from None
