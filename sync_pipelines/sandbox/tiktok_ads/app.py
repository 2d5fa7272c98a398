"""`TikTokAdsSandbox`: in-memory TikTok Business API advertisers behind a Starlette app, and its
command line.

Each role is its own module: ``data`` (advertisers, campaigns, seeded campaign-day metrics),
``reports`` (the synchronous report's parameters, rows and pages), ``oauth`` (access and refresh
tokens), ``errors`` (the HTTP-200 error answers), ``routes`` (the API), ``mutations``
(restatement), ``control`` (the clock and ``/_sandbox/tiktok_ads/*``); ``sandbox.base`` the rest.
"""

from __future__ import annotations

import argparse
import logging
from collections import deque
from datetime import date, timedelta
from typing import Any, Callable

from sync_pipelines.sandbox.base import ProviderSandbox
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.server import add_served_arguments, cli_main, served_ids
from sync_pipelines.sandbox.tiktok_ads import reports
from sync_pipelines.sandbox.tiktok_ads.control import TikTokAdsControl
from sync_pipelines.sandbox.tiktok_ads.data import DEFAULT_HISTORY_START, Advertiser, generate_advertiser
from sync_pipelines.sandbox.tiktok_ads.errors import MESSAGES
from sync_pipelines.sandbox.tiktok_ads.mutations import TikTokAdsMutations
from sync_pipelines.sandbox.tiktok_ads.oauth import Token, TokenStore
from sync_pipelines.sandbox.tiktok_ads.routes import TikTokAdsRoutes

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "sandbox-tiktok-token"
DEFAULT_ADVERTISERS = ["7001", "7002"]  # served when the command line names none
ALL_METRICS = ("campaign_name", "currency", "spend", "impressions", "clicks", "conversion", "complete_payment",
               "total_complete_payment_rate", "total_purchase_value")


class TikTokAdsSandbox(TikTokAdsRoutes, TikTokAdsControl, TikTokAdsMutations, ProviderSandbox):
    """In-memory advertisers behind a Starlette app (``.app``)."""

    provider = "tiktok_ads"
    account_kind = "advertiser"
    stats_by = "requests_by_advertiser"
    unknown_account = "no sandbox advertiser {!r}"

    def __init__(self, *, seed: int = 7, app_id: str = "sandbox-tiktok-app",
                 app_secret: str = "sandbox-tiktok-app-secret", requests_per_second: int | None = None,
                 faults: Faults | None = None) -> None:
        super().__init__(seed=seed, faults=faults, log=log)
        self.app_id, self.app_secret = app_id, app_secret
        self.requests_per_second = requests_per_second
        self.tokens = TokenStore()
        self._queued: dict[str, deque[list[Any]]] = {}
        self._recent: dict[str, deque[float]] = {}
        self._init_clock()
        self.app = self._build_app()

    # ---------------------------------------------------------- advertisers
    def add_advertiser(self, advertiser_id: str, *, name: str | None = None, currency: str = "USD",
                       timezone: str = "America/Los_Angeles", campaigns: int | list[str] = 5,
                       history_start: date | None = None) -> Advertiser:
        """(Re)create an advertiser; same seed + id → same campaigns and numbers."""
        advertiser_id = str(advertiser_id).strip()
        if not advertiser_id.isdigit():
            raise ValueError(f"an advertiser id is digits, got {advertiser_id!r}")
        if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha() and currency.isupper()):
            raise ValueError(f"currency must be an ISO 4217 code like 'USD', got {currency!r}")
        made = generate_advertiser(self.seed, advertiser_id, name=name, currency=currency, timezone=timezone,
                                   campaigns=campaigns, history_start=history_start or DEFAULT_HISTORY_START)
        with self._lock:
            self._accounts[advertiser_id] = made
        return made

    def advertiser(self, advertiser_id: str) -> Advertiser:
        return self._account(str(advertiser_id))

    @property
    def advertiser_ids(self) -> list[str]:
        return self._account_keys()

    def rows(self, advertiser_id: str, since: date, until: date) -> list[dict[str, Any]]:
        """What a daily campaign report for since..until answers now, every metric (any length)."""
        advertiser = self.advertiser(advertiser_id)
        out = []
        start = since
        while start <= until:
            end = min(until, start + timedelta(days=reports.MAX_DAYS_BY_DAY - 1))
            query = reports.ReportQuery(advertiser.advertiser_id, True, ALL_METRICS, start, end, 1, 1)
            with self._lock:
                out += reports.compute_rows(advertiser, query, advertiser.today(self.now()))
            start = end + timedelta(days=1)
        return out

    # ---------------------------------------------------------------- tokens
    def issue_token(self, token: str | None = None, *, advertisers: list[str] | None = None,
                    expires_in: float | None = None, refreshable: bool = False) -> Token:
        """An access token for `advertisers` (None: all). Without `expires_in` a long-term token,
        as TikTok issues advertisers; `refreshable` adds a refresh token (24-hour access tokens)."""
        return self.tokens.issue(self.now(), token=token, advertisers=advertisers,
                                 expires_in=expires_in if expires_in is not None or not refreshable else 86_400,
                                 refreshable=refreshable)

    # ---------------------------------------------------------------- errors
    def fail_next(self, advertiser_id: str, code: int, *, n: int = 1, message: str | None = None) -> None:
        """The advertiser's next `n` calls answer `code` (HTTP 200), e.g. 40100, 50000, 40105."""
        if int(code) == 0 or int(n) < 1:
            raise ValueError("need a non-zero code and n >= 1")
        self.advertiser(advertiser_id)
        text = message or MESSAGES.get(int(code), "Error.").format(advertiser_id=advertiser_id)
        with self._lock:
            self._queued.setdefault(str(advertiser_id), deque()).append([int(code), int(n), text])

    # ----------------------------------------------------------------- stats
    def stats(self) -> dict[str, Any]:
        s = super().stats()
        s["token_refreshes"] = self.tokens.refreshes
        return s


def main(argv: list[str] | None = None) -> int:
    """``python -m sync_pipelines.sandbox.tiktok_ads``: serve advertisers until Ctrl-C."""
    return cli_main(argv, prog="python -m sync_pipelines.sandbox.tiktok_ads",
                    description="Serve a TikTok Business API sandbox until Ctrl-C.", port=8771,
                    accounts="advertiser", add_arguments=_add_arguments, build=_build)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_served_arguments(parser, option="advertiser", noun="advertiser", default=DEFAULT_ADVERTISERS,
                         first_id="7100000000")
    parser.add_argument("--timezone", default="America/Los_Angeles", help="every advertiser's time zone")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="a long-term token reading every advertiser")
    parser.add_argument("--app-id", default="sandbox-tiktok-app")
    parser.add_argument("--app-secret", default="sandbox-tiktok-app-secret")
    parser.add_argument("--requests-per-second", type=int, default=0, help="per advertiser, then 40100 (0: off)")


def advertiser_ids(args: argparse.Namespace) -> list[str]:
    """The ids to serve: ``--advertisers`` and ``--advertiser-count`` consecutive ids, in that order, once each."""
    if not args.first_advertiser_id.strip().isdigit():
        raise SystemExit("--first-advertiser-id is digits")
    return served_ids(args.advertisers, args.advertiser_count, int(args.first_advertiser_id), option="advertiser",
                      default=DEFAULT_ADVERTISERS)


def _build(args: argparse.Namespace) -> tuple[Any, Callable[[str], list[str]]]:
    sandbox = TikTokAdsSandbox(seed=args.seed, app_id=args.app_id, app_secret=args.app_secret,
                               requests_per_second=args.requests_per_second or None)
    ids = advertiser_ids(args)
    for advertiser_id in ids:
        sandbox.add_advertiser(advertiser_id, currency=args.currency, timezone=args.timezone,
                               campaigns=args.campaigns)
    sandbox.issue_token(args.token)
    shown = 10  # a banner of 1,000 advertiser lines helps nobody

    def banner(url: str) -> list[str]:
        return [f"TikTok Business API sandbox on {url}/open_api/v1.3 (Ctrl-C to stop)",
                *(f"  advertiser {a}" for a in ids[:shown]),
                *([f"  … and {len(ids) - shown} more advertisers (to {ids[-1]})"] if len(ids) > shown else []),
                f"  long-term access token {args.token} (app id {args.app_id})"]

    return sandbox, banner
