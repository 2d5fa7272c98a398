"""What every provider emulator is built on: `ProviderSandbox` and the helpers they share.

A provider's sandbox (``shipstation/``, ``shopify/``) subclasses `ProviderSandbox` and adds its
data, its API routes and its own control endpoints; the accounts registry, faults, request
tallies, drift and the ``/_sandbox/*`` endpoints that behave the same for every provider
(health, faults, stats) live here once. Like the rest of the sandbox, this imports nothing from
dagster or the pipelines.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
import random
import threading
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sync_pipelines.sandbox.control import ControlHandler, Drift, RequestStats, control_endpoint, dumps
from sync_pipelines.sandbox.faults import Faults

ControlRoute = tuple[str, ControlHandler, list[str]]  # (path, handler, methods)


def bounded_int(raw: str | None, default: int, lo: int, hi: int | None) -> int:
    """A query parameter as an int within [lo, hi] (``hi=None``: no maximum); ``default`` when
    absent or empty. A ValueError's message reads after the parameter's name ("must be ...")."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"must be an integer, got {raw!r}") from None
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"must be {bound}, got {value}")
    return value


def pick_positions(rng: random.Random, size: int, n: int) -> list[int]:
    """``n`` distinct random positions of ``size`` (all of them if fewer), ascending."""
    return sorted(rng.sample(range(size), min(max(n, 0), size)))


def json_response(payload: Any, status: int, headers: dict[str, str] | None = None, *,
                  media_type: str = "application/json") -> Response:
    """Compact JSON, as the real APIs send it."""
    return Response(dumps(payload), status, headers=headers, media_type=media_type)


class ProviderSandbox(ABC):
    """In-memory accounts of one provider behind a Starlette app (``.app``).

    A subclass names itself (``provider``, ``account_kind``, ``stats_by``, ``unknown_account``),
    implements ``drift(key)``, ``_api_routes()`` and ``_control_table()``, and ends its
    ``__init__`` with ``self.app = self._build_app()``. Accounts live in ``_accounts`` under
    ``_lock`` (re-entrant: a mutation may call others).
    """

    provider: ClassVar[str]  # "shipstation": /_sandbox/health's "provider", the drift thread's name
    account_kind: ClassVar[str]  # "store": one account, as drift's log lines name it
    stats_by: ClassVar[str]  # the /_sandbox/stats key counting requests per account
    unknown_account: ClassVar[str]  # the KeyError message for an unknown account, with {!r}

    def __init__(self, *, seed: int, faults: Faults | None, log: logging.Logger) -> None:
        self.seed = seed
        self.faults = faults if faults is not None else Faults(seed=seed)
        self._lock = threading.RLock()
        self._accounts: dict[str, Any] = {}
        self._requests = RequestStats(by=self.stats_by)
        self._calls: dict[str, dict[str, int]] = {}  # kind of call → account → count (`stats()["calls"]`)
        self._drift = Drift(keys=self._account_keys, tick=lambda key: self.drift(key), what=self.account_kind,
                            thread_name=f"{self.provider}-sandbox-drift", log=log)

    # -------------------------------------------------------------- accounts
    def _account(self, key: str) -> Any:
        with self._lock:
            try:
                return self._accounts[key]
            except KeyError:
                raise KeyError(self.unknown_account.format(key)) from None

    def _account_keys(self) -> list[str]:
        with self._lock:
            return list(self._accounts)

    @abstractmethod
    def drift(self, key: str) -> dict[str, Any]:
        """A small random mix of mutations on one account, like a live account between two syncs."""

    def start_drift(self, interval_seconds: float) -> None:
        """Drift every account every ``interval_seconds`` on a daemon thread (``dev`` mode)."""
        self._drift.start(interval_seconds)

    def stop_drift(self) -> None:
        self._drift.stop()

    def close(self) -> None:
        """Stop everything the sandbox runs in the background."""
        self.stop_drift()

    # ----------------------------------------------------------------- stats
    def _count(self, kind: str, account: str | None) -> None:
        """One call of `kind` (e.g. "report", "insights") for `account`, for `stats()["calls"]`."""
        with self._lock:
            per = self._calls.setdefault(kind, {})
            per[account or ""] = per.get(account or "", 0) + 1

    def stats(self) -> dict[str, Any]:
        s = self._requests.snapshot()
        s["faults_injected"] = self.faults.snapshot()["injected"]
        with self._lock:
            s["calls"] = {kind: dict(per) for kind, per in self._calls.items()}
        return s

    def reset_stats(self) -> None:
        self._requests.reset()
        with self._lock:
            self._calls.clear()

    # ------------------------------------------------------------------- app
    def _build_app(self) -> Starlette:
        common: list[ControlRoute] = [
            ("/_sandbox/health", self._ctl_health, ["GET"]),
            ("/_sandbox/faults", self._ctl_faults, ["GET", "POST"]),
            ("/_sandbox/stats", self._ctl_stats, ["GET"]),
            ("/_sandbox/stats/reset", self._ctl_stats_reset, ["POST"]),
        ]
        control = [Route(path, control_endpoint(handler), methods=methods)
                   for path, handler, methods in [*common, *self._control_table()]]
        return Starlette(routes=[*self._api_routes(), *control])

    @abstractmethod
    def _api_routes(self) -> list[Route]:
        """The provider's API."""

    @abstractmethod
    def _control_table(self) -> list[ControlRoute]:
        """The provider's own ``/_sandbox/*`` endpoints (see `control_endpoint`)."""

    @abstractmethod
    def _health(self) -> dict[str, Any]:
        """What /_sandbox/health adds to status and provider."""

    def _ctl_health(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return {"status": "ok", "provider": self.provider, **self._health()}

    def _ctl_faults(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self.faults.apply_control(body) if request.method == "POST" else self.faults.snapshot()

    def _ctl_stats(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self.stats()

    def _ctl_stats_reset(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self.reset_stats()
        return self.stats()

