"""`EcoManagerSandbox`: many EcoManager stores on one port, and its command line.

Each role is its own module: ``data`` (orders generated lazily from their id), ``routes`` (the v2
API under ``/stores/{store}``), ``mutations`` (changes and the webhooks they fire), ``webhooks``
(the signed sender and the activation probe), ``control`` (its ``/_sandbox/*`` endpoints); what
every provider's sandbox shares is ``sandbox.base``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any, Callable

from sync_pipelines.sandbox.base import ProviderSandbox
from sync_pipelines.sandbox.ecomanager.control import EcoManagerControl
from sync_pipelines.sandbox.ecomanager.data import StoreOrders
from sync_pipelines.sandbox.ecomanager.mutations import EcoManagerMutations
from sync_pipelines.sandbox.ecomanager.routes import EcoManagerRoutes
from sync_pipelines.sandbox.ecomanager.webhooks import WebhookSender
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.ratelimit import RateLimiter
from sync_pipelines.sandbox.server import add_rate_limit_arguments, cli_main, listed_names, rate_limit_options

log = logging.getLogger(__name__)

TOKEN_PREFIX = "sandbox-ecomanager-"
DEFAULT_PORT = 8772


class EcoManagerSandbox(EcoManagerRoutes, EcoManagerControl, EcoManagerMutations, ProviderSandbox):
    """In-memory EcoManager stores behind a Starlette app (``.app``), each at ``/stores/{store}``.

    `requests_per_minute` is per store (None: no limit); EcoManager publishes no figure, 60 is
    Laravel's default API throttle."""

    provider = "ecomanager"
    account_kind = "store"
    stats_by = "requests_by_store"
    unknown_account = "no sandbox store {!r}"

    def __init__(self, *, seed: int = 7, requests_per_minute: int | None = 60, window_seconds: float = 60,
                 faults: Faults | None = None, webhook_attempts: int = 3, webhook_backoff_seconds: float = 0.05,
                 webhook_timeout: float = 5.0) -> None:
        super().__init__(seed=seed, faults=faults, log=log)
        self.limiter = RateLimiter(requests_per_minute, window_seconds)
        self.sender = WebhookSender(max_attempts=webhook_attempts, backoff_seconds=webhook_backoff_seconds,
                                    timeout=webhook_timeout)
        self._init_clock()
        self.app = self._build_app()

    def add_store(self, store: str, *, orders: int = 100, token: str | None = None) -> str:
        """(Re)create a store with `orders` historical orders; its Bearer token (default
        ``sandbox-ecomanager-<store>``). Costs nothing per order: they are generated when read."""
        if not store or "/" in store:
            raise ValueError("store must be a non-empty name without '/'")
        data = StoreOrders(store, token or f"{TOKEN_PREFIX}{store}", self.seed, orders, clock=self.now)
        with self._lock:
            self._accounts[store] = data
        return data.token

    def store(self, store: str) -> StoreOrders:
        return self._account(store)

    @property
    def stores(self) -> list[str]:
        return self._account_keys()

    def base_url_template(self, url: str) -> str:
        """The client's base URL template for this sandbox served at `url`."""
        return f"{url.rstrip('/')}/stores/{{store}}"

    def close(self) -> None:
        super().close()
        self.sender.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m sync_pipelines.sandbox.ecomanager``: serve stores until Ctrl-C."""
    return cli_main(argv, prog="python -m sync_pipelines.sandbox.ecomanager",
                    description="Serve an EcoManager shop API v2 sandbox (many stores, one port) until Ctrl-C.",
                    port=DEFAULT_PORT, accounts="store", add_arguments=_add_arguments, build=_build)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stores", default="natureldz,lekidi",
                        help="comma-separated store subdomains; token = sandbox-ecomanager-<store>")
    parser.add_argument("--orders", type=int, default=10_000, help="historical orders per store")
    add_rate_limit_arguments(parser, 60, per="per store; ")


def _build(args: argparse.Namespace) -> tuple[Any, Callable[[str], list[str]]]:
    sandbox = EcoManagerSandbox(seed=args.seed, **rate_limit_options(args))
    names = listed_names(args.stores)
    for name in names:
        sandbox.add_store(name, orders=args.orders)

    def banner(url: str) -> list[str]:
        return [f"EcoManager sandbox on {url} (Ctrl-C to stop); ECOMANAGER_BASE_URL={sandbox.base_url_template(url)}",
                *(f"  store {name}: Bearer {TOKEN_PREFIX}{name}" for name in names)]

    return sandbox, banner
