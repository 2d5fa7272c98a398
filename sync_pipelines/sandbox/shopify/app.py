"""`ShopifySandbox`: in-memory Shopify shops behind a Starlette app, and its command line.

Each role is its own module: ``data`` (records, generation, REST JSON), ``query`` (list
parameters and page_info), ``routes`` (the Admin REST API), ``subscriptions`` (webhooks.json
and the deliveries a change makes), ``webhooks`` (the signed sender), ``mutations`` (changes
over time), ``control`` (the clock and its ``/_sandbox/*`` endpoints); what every provider's
sandbox shares is ``sandbox.base``.
"""

from __future__ import annotations

import argparse
import logging
import re
import threading
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sync_pipelines.sandbox.base import ProviderSandbox
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.ratelimit import LeakyBucket
from sync_pipelines.sandbox.server import cli_main, listed_names
from sync_pipelines.sandbox.shopify.control import TOKEN_PREFIX, ShopifyControl
from sync_pipelines.sandbox.shopify.data import RENDER, ShopData, generate_shop
from sync_pipelines.sandbox.shopify.mutations import ShopifyMutations
from sync_pipelines.sandbox.shopify.routes import SUPPORTED_API_VERSIONS, ShopifyRoutes
from sync_pipelines.sandbox.shopify.subscriptions import ShopifySubscriptions
from sync_pipelines.sandbox.shopify.webhooks import WebhookSender

log = logging.getLogger(__name__)

PLANS = {"advanced": (80, 4.0), "plus": (400, 20.0)}  # "standard" = the sandbox's knobs (40/2)


class ShopifySandbox(ShopifyRoutes, ShopifySubscriptions, ShopifyControl, ShopifyMutations, ProviderSandbox):
    """In-memory Shopify shop(s) behind a Starlette app (``.app``)."""

    provider = "shopify"
    account_kind = "shop"
    stats_by = "requests_by_shop"
    unknown_account = "no sandbox shop {!r}"

    def __init__(self, *, seed: int = 7, api_version: str = "2025-10", bucket_size: int = 40,
                 leak_per_second: float = 2.0, faults: Faults | None = None,
                 app_secret: str = "sandbox-shopify-app-secret", webhook_timeout: float = 5.0) -> None:
        super().__init__(seed=seed, faults=faults, log=log)
        self.api_version = api_version
        self.api_versions = tuple(dict.fromkeys((*SUPPORTED_API_VERSIONS, api_version)))
        LeakyBucket(bucket_size, leak_per_second)  # validate the knobs now, not at the first add_shop
        self.bucket_size, self.leak_per_second = int(bucket_size), float(leak_per_second)
        self.fault_retry_after: str | None = None  # Retry-After of injected 429s; None -> faults knob
        self.app_secret = app_secret
        self.sender = WebhookSender(app_secret=app_secret, timeout=webhook_timeout, seed=seed)
        self._batch_local = threading.local()  # the open batch() of each thread
        self._init_clock()
        self.app = self._build_app()

    # ----------------------------------------------------------------- shops
    def add_shop(self, shop: str, access_token: str, *, orders: int = 100, customers: int = 50,
                 products: int = 30, timezone: str = "America/New_York", plan: str = "standard",
                 bucket_size: int | None = None, leak_per_second: float | None = None) -> ShopData:
        """(Re)create a shop; same seed + domain -> same data, so re-adding resets mutations
        (and drops its webhook subscriptions)."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*\.myshopify\.com", shop or ""):
            raise ValueError(f"shop must be a myshopify domain like 'acme.myshopify.com', got {shop!r}")
        if not access_token:
            raise ValueError("access_token must be non-empty")
        size, leak = self._plan_bucket(plan)
        bucket = LeakyBucket(bucket_size or size, leak_per_second or leak)
        ZoneInfo(timezone)  # unknown zone -> ZoneInfoNotFoundError (a KeyError) before generating
        data = generate_shop(self.seed, shop, access_token, orders=orders, customers=customers,
                             products=products, timezone=timezone, bucket=bucket, plan=plan)
        with self._lock:
            self._accounts[shop] = data
        return data

    def shop(self, shop: str) -> ShopData:
        return self._account(shop)

    @property
    def shops(self) -> list[str]:
        return self._account_keys()

    def _plan_bucket(self, plan: str) -> tuple[int, float]:
        """(bucket size, leak per second) of a Shopify plan; "standard" is the sandbox's knobs."""
        if plan != "standard" and plan not in PLANS:
            raise ValueError(f"plan must be standard, {', '.join(PLANS)}; got {plan!r}")
        return PLANS.get(plan, (self.bucket_size, self.leak_per_second))

    def set_rate_limit(self, shop: str, *, bucket_size: int | None = None, leak_per_second: float | None = None,
                       plan: str | None = None, reset: bool = False) -> dict[str, Any]:
        data = self.shop(shop)
        if plan is not None:
            size, leak = self._plan_bucket(plan)
            bucket_size, leak_per_second = bucket_size or size, leak_per_second or leak
            data.plan = plan
        data.bucket.configure(size=bucket_size, leak_per_second=leak_per_second)
        if reset:
            data.bucket.reset()
        return data.bucket.snapshot()

    def record(self, shop: str, resource: str, record_id: int) -> dict[str, Any]:
        """The REST JSON of one record, as the API would serve it now."""
        with self._lock:
            data = self.shop(shop)
            return RENDER[resource](data, data.record(resource, record_id))

    def records(self, shop: str, resource: str) -> list[dict[str, Any]]:
        """Every record of a resource in id order (no status filter), as REST JSON."""
        with self._lock:
            data = self.shop(shop)
            return [RENDER[resource](data, rec) for rec in data.rows[resource]]

    def close(self) -> None:
        """Stop drift and the webhook worker (pending deliveries are dropped)."""
        super().close()
        self.sender.close()

    # ----------------------------------------------------------------- stats
    def stats(self) -> dict[str, Any]:
        s = super().stats()
        s["deliveries"] = self.sender.stats()
        return s

    def reset_stats(self) -> None:
        super().reset_stats()
        self.sender.reset_stats()


def main(argv: list[str] | None = None) -> int:
    """``python -m sync_pipelines.sandbox.shopify``: serve shops until Ctrl-C."""
    return cli_main(argv, prog="python -m sync_pipelines.sandbox.shopify",
                    description="Serve a Shopify Admin REST sandbox until Ctrl-C.", port=8766, accounts="shop",
                    add_arguments=_add_arguments, build=_build)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shops", default="acme",
                        help="comma-separated names; shop = <name>.myshopify.com, token = sandbox-shopify-<name>")
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--products", type=int, default=30)
    parser.add_argument("--timezone", default="America/New_York")
    parser.add_argument("--api-version", default="2025-10")
    parser.add_argument("--bucket-size", type=int, default=40)
    parser.add_argument("--leak-per-second", type=float, default=2.0)
    parser.add_argument("--app-secret", default="sandbox-shopify-app-secret")


def _build(args: argparse.Namespace) -> tuple[Any, Callable[[str], list[str]]]:
    sandbox = ShopifySandbox(seed=args.seed, api_version=args.api_version, bucket_size=args.bucket_size,
                             leak_per_second=args.leak_per_second, app_secret=args.app_secret)
    names = listed_names(args.shops)
    for name in names:
        sandbox.add_shop(f"{name}.myshopify.com", f"{TOKEN_PREFIX}{name}", orders=args.orders,
                         customers=args.customers, products=args.products, timezone=args.timezone)

    def banner(url: str) -> list[str]:
        return [f"Shopify sandbox on {url}",
                *(f"  shop {name}.myshopify.com: X-Shopify-Access-Token {TOKEN_PREFIX}{name} "
                  f"(base {url}/shops/{name}.myshopify.com/admin/api/{args.api_version})" for name in names)]

    return sandbox, banner
