"""`MaystroSandbox`: in-memory Maystro stores behind a Starlette app, and its command line.

Each role is its own module: ``data`` (lazily generated orders), ``routes`` (the store API),
``mutations`` (new orders, status changes, webhook deliveries), ``webhooks`` (the delivery format),
``control`` (its ``/_sandbox/*`` endpoints); what every sandbox shares is ``sandbox.base``.
"""

from __future__ import annotations

import argparse
import logging
import threading
from typing import Any, Callable

from sync_pipelines.sandbox.base import ProviderSandbox
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.maystro.control import MaystroControl
from sync_pipelines.sandbox.maystro.data import StoreData
from sync_pipelines.sandbox.maystro.mutations import MaystroMutations
from sync_pipelines.sandbox.maystro.routes import MaystroRoutes
from sync_pipelines.sandbox.ratelimit import RateLimiter
from sync_pipelines.sandbox.server import add_rate_limit_arguments, cli_main, listed_names, rate_limit_options

log = logging.getLogger(__name__)

API_KEY_PREFIX = "sandbox-maystro-"
DEFAULT_REQUESTS_PER_MINUTE = 1200
"""Maystro publishes no limit; the seed's client spaces requests 50 ms apart (1,200 a minute)."""


class MaystroSandbox(MaystroRoutes, MaystroControl, MaystroMutations, ProviderSandbox):
    """In-memory Maystro store(s), one API key each, behind a Starlette app (``.app``)."""

    provider = "maystro"
    account_kind = "store"
    stats_by = "requests_by_key"
    unknown_account = "no sandbox store with api key {!r}"

    def __init__(self, *, seed: int = 7, requests_per_minute: int | None = DEFAULT_REQUESTS_PER_MINUTE,
                 window_seconds: float = 60, faults: Faults | None = None) -> None:
        super().__init__(seed=seed, faults=faults, log=log)
        self.limiter = RateLimiter(requests_per_minute, window_seconds)
        self._flight_lock = threading.Lock()
        self._in_flight = self._peak_in_flight = 0
        self._names: dict[str, str] = {}
        self.app = self._build_app()

    def add_store(self, api_key: str, *, orders: int = 100, reference_prefix: str = "ORD-",
                  name: str | None = None) -> StoreData:
        """(Re)create a store of `orders` orders; same seed + key → same orders."""
        if not api_key:
            raise ValueError("api_key must be non-empty")
        if orders < 0:
            raise ValueError("orders must be >= 0")
        store = StoreData(api_key=api_key, seed=self.seed, size=orders, reference_prefix=reference_prefix)
        with self._lock:
            self._accounts[api_key] = store
            self._names[api_key] = name or api_key.removeprefix(API_KEY_PREFIX)
        return store

    def store(self, api_key: str) -> StoreData:
        return self._account(api_key)

    def store_name(self, api_key: str) -> str:
        with self._lock:
            return self._names.get(api_key, api_key)

    @property
    def api_keys(self) -> list[str]:
        return self._account_keys()

    def stats(self) -> dict[str, Any]:
        s = super().stats()
        with self._flight_lock:
            s["peak_in_flight"] = self._peak_in_flight
        return s

    def reset_stats(self) -> None:
        super().reset_stats()
        with self._flight_lock:
            self._peak_in_flight = self._in_flight


def main(argv: list[str] | None = None) -> int:
    """``python -m sync_pipelines.sandbox.maystro``: serve stores until Ctrl-C."""
    return cli_main(argv, prog="python -m sync_pipelines.sandbox.maystro",
                    description="Serve a Maystro delivery API sandbox until Ctrl-C.", port=8773, accounts="store",
                    add_arguments=_add_arguments, build=_build)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stores", default="store-a",
                        help="comma-separated store names; api key = sandbox-maystro-<name>")
    parser.add_argument("--orders", type=int, default=1000, help="orders per store (100000 is cheap)")
    parser.add_argument("--reference-prefix", default="ORD-",
                        help="external_order_id = <prefix><n> (our orders' references)")
    parser.add_argument("--webhook-url", default=None,
                        help="where status changes are POSTed; {store} is replaced by the store name")
    add_rate_limit_arguments(parser, DEFAULT_REQUESTS_PER_MINUTE)


def _build(args: argparse.Namespace) -> tuple[Any, Callable[[str], list[str]]]:
    sandbox = MaystroSandbox(seed=args.seed, **rate_limit_options(args))
    names = listed_names(args.stores)
    for name in names:
        store = sandbox.add_store(f"{API_KEY_PREFIX}{name}", orders=args.orders,
                                  reference_prefix=args.reference_prefix, name=name)
        if args.webhook_url:
            store.webhook_urls.append(args.webhook_url.replace("{store}", name))

    def banner(url: str) -> list[str]:
        return [f"Maystro sandbox on {url} (Ctrl-C to stop)",
                *(f"  store {name}: Authorization: Token {API_KEY_PREFIX}{name}" for name in names)]

    return sandbox, banner
