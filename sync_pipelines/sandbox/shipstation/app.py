"""`ShipStationSandbox`: in-memory ShipStation v2 stores behind a Starlette app, and its command line.

Each role is its own module: ``data`` (records and their generation), ``routes`` (the v2 API),
``mutations`` (changes over time), ``control`` (its ``/_sandbox/*`` endpoints); what every
provider's sandbox shares is ``sandbox.base``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any, Callable

from sync_pipelines.sandbox.base import ProviderSandbox
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.ratelimit import RateLimiter
from sync_pipelines.sandbox.server import add_rate_limit_arguments, cli_main, listed_names, rate_limit_options
from sync_pipelines.sandbox.shipstation.control import ShipStationControl
from sync_pipelines.sandbox.shipstation.data import StoreData, generate_store
from sync_pipelines.sandbox.shipstation.mutations import ShipStationMutations
from sync_pipelines.sandbox.shipstation.routes import ShipStationRoutes

log = logging.getLogger(__name__)

API_KEY_PREFIX = "sandbox-shipstation-"


class ShipStationSandbox(ShipStationRoutes, ShipStationControl, ShipStationMutations, ProviderSandbox):
    """In-memory ShipStation v2 account(s) behind a Starlette app (``.app``)."""

    provider = "shipstation"
    account_kind = "store"
    stats_by = "requests_by_key"
    unknown_account = "no sandbox store with api key {!r}"

    def __init__(self, *, seed: int = 7, requests_per_minute: int | None = 200,
                 window_seconds: float = 60, faults: Faults | None = None) -> None:
        super().__init__(seed=seed, faults=faults, log=log)
        self.limiter = RateLimiter(requests_per_minute, window_seconds)
        self.app = self._build_app()

    def add_store(self, api_key: str, *, products: int = 50, warehouses: int = 2,
                  locations_per_warehouse: int = 3) -> None:
        """(Re)create a store; same seed + key -> same data, so re-adding resets mutations."""
        if not api_key:
            raise ValueError("api_key must be non-empty")
        store = generate_store(self.seed, api_key, products, warehouses, locations_per_warehouse)
        with self._lock:
            self._accounts[api_key] = store

    def store(self, api_key: str) -> StoreData:
        return self._account(api_key)

    @property
    def api_keys(self) -> list[str]:
        return self._account_keys()


def main(argv: list[str] | None = None) -> int:
    """``python -m sync_pipelines.sandbox.shipstation`` (or ``.server``): serve stores until Ctrl-C."""
    return cli_main(argv, prog="python -m sync_pipelines.sandbox.server",
                    description="Serve a ShipStation v2 sandbox until Ctrl-C.", port=8765, accounts="store",
                    add_arguments=_add_arguments, build=_build)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stores", default="store-a",
                        help="comma-separated store names; api key = sandbox-shipstation-<name>")
    parser.add_argument("--products", type=int, default=500, help="products per store")
    parser.add_argument("--warehouses", type=int, default=2)
    parser.add_argument("--locations-per-warehouse", type=int, default=3)
    add_rate_limit_arguments(parser, 200)


def _build(args: argparse.Namespace) -> tuple[Any, Callable[[str], list[str]]]:
    sandbox = ShipStationSandbox(seed=args.seed, **rate_limit_options(args))
    names = listed_names(args.stores)
    for name in names:
        sandbox.add_store(f"{API_KEY_PREFIX}{name}", products=args.products, warehouses=args.warehouses,
                          locations_per_warehouse=args.locations_per_warehouse)

    def banner(url: str) -> list[str]:
        return [f"ShipStation sandbox on {url} (Ctrl-C to stop)",
                *(f"  store {name}: api-key {API_KEY_PREFIX}{name}" for name in names)]

    return sandbox, banner
