"""`GoogleAdsSandbox`: in-memory Google Ads customers behind a Starlette app, and its command line.

Each role is its own module: ``data`` (customers, campaigns, seeded metrics, GAQL results),
``gaql`` (the query language), ``failures`` (error bodies), ``oauth`` (the token endpoint,
grants, access tokens), ``routes`` (searchStream), ``mutations`` (restatement), ``control``
(the clock and its ``/_sandbox/google_ads/*`` endpoints); what every provider's sandbox shares
is ``sandbox.base``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any, Callable

from sync_pipelines.sandbox.base import ProviderSandbox
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.google_ads import gaql
from sync_pipelines.sandbox.google_ads.control import GoogleAdsControl
from sync_pipelines.sandbox.google_ads.data import CustomerData, generate_customer, normalise_customer_id
from sync_pipelines.sandbox.google_ads.mutations import GoogleAdsMutations
from sync_pipelines.sandbox.google_ads.oauth import OAuthServer
from sync_pipelines.sandbox.google_ads.routes import MAX_BATCH_ROWS, SUPPORTED_API_VERSIONS, GoogleAdsRoutes
from sync_pipelines.sandbox.ratelimit import RateLimiter
from sync_pipelines.sandbox.server import add_served_arguments, cli_main, served_ids

log = logging.getLogger(__name__)

DEVELOPER_TOKEN = "sandbox-google-ads-developer-token"
CLIENT_ID = "sandbox-google-ads-client.apps.googleusercontent.com"
CLIENT_SECRET = "sandbox-google-ads-client-secret"
THROTTLE_SCOPES = ("ACCOUNT", "DEVELOPER")
DEFAULT_CUSTOMERS = ["1234567890"]  # served when the command line names none


class GoogleAdsSandbox(GoogleAdsRoutes, GoogleAdsControl, GoogleAdsMutations, ProviderSandbox):
    """In-memory Google Ads customers behind a Starlette app (``.app``); ``/token`` is its
    OAuth token endpoint."""

    provider = "google_ads"
    account_kind = "customer"
    stats_by = "requests_by_customer"
    unknown_account = "no sandbox customer {!r}"

    def __init__(self, *, seed: int = 7, api_version: str = "v26", batch_size: int = MAX_BATCH_ROWS,
                 developer_tokens: tuple[str, ...] = (DEVELOPER_TOKEN,), developer_token_required: bool = True,
                 faults: Faults | None = None,
                 throttle_requests: int | None = None, throttle_window_seconds: float = 60.0,
                 throttle_scope: str = "ACCOUNT") -> None:
        super().__init__(seed=seed, faults=faults, log=log)
        if not 1 <= batch_size <= MAX_BATCH_ROWS:
            raise ValueError(f"batch_size must be within 1..{MAX_BATCH_ROWS}")
        self.api_version = api_version
        self.api_versions = tuple(dict.fromkeys((*SUPPORTED_API_VERSIONS, api_version)))
        self.batch_size = batch_size
        self.developer_tokens = set(developer_tokens)
        self.developer_token_required = developer_token_required
        self._init_clock()
        self.oauth = OAuthServer(clock=self.now)
        self.limiter = RateLimiter(None, throttle_window_seconds)
        self.throttle_scope = "ACCOUNT"
        self.throttle_retry_delay: int | None = None  # fixed retryDelay; None: seconds left in the window
        self.retry_info = False  # also send google.rpc.RetryInfo with quota errors
        self._stream_errors = 0
        self.set_throttle(requests=throttle_requests, scope=throttle_scope)
        self.app = self._build_app()

    # ------------------------------------------------------------- customers
    def add_customer(self, customer_id: str, *, currency_code: str = "USD", time_zone: str = "America/New_York",
                     campaigns: int = 5, manager_id: str | None = None,
                     descriptive_name: str | None = None) -> CustomerData:
        """(Re)create a customer; same seed + id → same campaigns and numbers, so re-adding
        undoes its restatements. With ``manager_id`` it is reachable only through that manager
        (``login-customer-id``)."""
        cid = normalise_customer_id(customer_id)
        manager = normalise_customer_id(manager_id) if manager_id else None
        data = generate_customer(self.seed, cid, currency_code=currency_code, time_zone=time_zone,
                                 campaigns=campaigns, manager_id=manager, descriptive_name=descriptive_name)
        with self._lock:
            self._accounts[cid] = data
        return data

    def customer(self, customer_id: str) -> CustomerData:
        return self._account(str(customer_id).replace("-", ""))

    @property
    def customers(self) -> list[str]:
        return self._account_keys()

    def search(self, customer_id: str, query: str) -> list[dict[str, Any]]:
        """The rows searchStream would return for ``query`` now (all batches), for tests."""
        customer, now = self.customer(customer_id), self.now()
        with self._lock:
            return customer.execute(gaql.parse(query, customer.today(now)), now)

    # ------------------------------------------------------------- credentials
    def grant(self, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET,
              customers: list[str] | None = None, refresh_token: str | None = None) -> str:
        """A user's consent for an OAuth client: the refresh token. ``customers`` (ids the user
        can access directly, managers included) limits it; None: every customer."""
        ids = None if customers is None else [normalise_customer_id(c) for c in customers]
        return self.oauth.grant(client_id, client_secret, ids, refresh_token)

    def access_token(self, refresh_token: str) -> str:
        """An access token issued from a grant, as the token endpoint would."""
        return self.oauth.issue(refresh_token)

    def revoke(self, refresh_token: str) -> None:
        self.oauth.revoke(refresh_token)

    def expire_access_tokens(self, refresh_token: str | None = None) -> int:
        return self.oauth.expire_access_tokens(refresh_token)

    def add_developer_token(self, token: str) -> None:
        if not token:
            raise ValueError("developer token must be non-empty")
        with self._lock:
            self.developer_tokens.add(token)

    # ------------------------------------------------------------- throttling
    def set_throttle(self, *, requests: int | None | object = ..., window_seconds: float | object = ...,
                     scope: str | None = None, retry_delay_seconds: int | None | object = ...,
                     retry_info: bool | None = None) -> dict[str, Any]:
        """Allow ``requests`` per ``window_seconds`` per customer (scope ``ACCOUNT``) or per
        developer token (``DEVELOPER``); ``requests=None`` turns throttling off (the default).
        Beyond it: 429 RESOURCE_EXHAUSTED whose ``retryDelay`` is the window's remaining
        seconds, or ``retry_delay_seconds`` when set."""
        if scope is not None and scope not in THROTTLE_SCOPES:
            raise ValueError(f"scope must be one of {THROTTLE_SCOPES}, got {scope!r}")
        if retry_delay_seconds is not ... and retry_delay_seconds is not None and int(retry_delay_seconds) < 0:
            raise ValueError("retry_delay_seconds must be >= 0")
        knobs = {}
        if requests is not ...:
            knobs["requests_per_minute"] = requests
        if window_seconds is not ...:
            knobs["window_seconds"] = window_seconds
        self.limiter.configure(**knobs)
        if scope is not None:
            self.throttle_scope = scope
        if retry_delay_seconds is not ...:
            self.throttle_retry_delay = None if retry_delay_seconds is None else int(retry_delay_seconds)
        if retry_info is not None:
            self.retry_info = bool(retry_info)
        return self.throttle_snapshot()

    def throttle_snapshot(self) -> dict[str, Any]:
        limits = self.limiter.snapshot()
        return {"requests": limits["requests_per_minute"], "window_seconds": limits["window_seconds"],
                "scope": self.throttle_scope, "retry_delay_seconds": self.throttle_retry_delay,
                "retry_info": self.retry_info}

    # ------------------------------------------------------------- stream faults
    def fail_stream_next(self, n: int = 1) -> int:
        """The next ``n`` successful streams end with an INTERNAL error after their first batch."""
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._stream_errors += n
            return self._stream_errors

    def _take_stream_error(self) -> bool:
        with self._lock:
            if self._stream_errors <= 0:
                return False
            self._stream_errors -= 1
            return True

    # ------------------------------------------------------------- stats
    def stats(self) -> dict[str, Any]:
        s = super().stats()
        s["oauth"] = self.oauth.snapshot()["token_requests"]
        return s


def main(argv: list[str] | None = None) -> int:
    """``python -m sync_pipelines.sandbox.google_ads``: serve customers until Ctrl-C."""
    return cli_main(argv, prog="python -m sync_pipelines.sandbox.google_ads",
                    description="Serve a Google Ads API (REST) sandbox until Ctrl-C.", port=8768, accounts="customer",
                    add_arguments=_add_arguments, build=_build)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_served_arguments(parser, option="customer", noun="customer", default=DEFAULT_CUSTOMERS,
                         first_id="1000000000", id_note=" (10 digits, dashes allowed)")
    parser.add_argument("--time-zone", default="America/New_York")
    parser.add_argument("--api-version", default="v26")
    parser.add_argument("--refresh-token", default=None,
                        help="the grant's refresh token (default: a random one, printed); a known value lets a"
                             " benchmark store it for every customer before the server starts")
    parser.add_argument("--throttle-requests", type=int, default=0, help="requests per window per scope key; 0: off")
    parser.add_argument("--throttle-window-seconds", type=float, default=60.0)
    parser.add_argument("--throttle-scope", choices=THROTTLE_SCOPES, default="ACCOUNT",
                        help="what a window counts: each customer's requests, or every request made with the"
                             " developer token (all customers together)")
    parser.add_argument("--throttle-retry-delay", type=int, default=None,
                        help="retryDelay seconds quota errors ask for (default: what is left of the window)")


def customer_ids(args: argparse.Namespace) -> list[str]:
    """The ids to serve: ``--customers`` and ``--customer-count`` consecutive ids, in that order, once each."""
    return served_ids(args.customers, args.customer_count, int(normalise_customer_id(args.first_customer_id)),
                      option="customer", default=DEFAULT_CUSTOMERS, normalise=normalise_customer_id, digits=10)


def _build(args: argparse.Namespace) -> tuple[Any, Callable[[str], list[str]]]:
    sandbox = GoogleAdsSandbox(seed=args.seed, api_version=args.api_version,
                               throttle_requests=args.throttle_requests or None,
                               throttle_window_seconds=args.throttle_window_seconds,
                               throttle_scope=args.throttle_scope)
    if args.throttle_retry_delay is not None:
        sandbox.set_throttle(retry_delay_seconds=args.throttle_retry_delay)
    ids = customer_ids(args)
    for cid in ids:
        sandbox.add_customer(cid, currency_code=args.currency, time_zone=args.time_zone, campaigns=args.campaigns)
    refresh_token = sandbox.grant(refresh_token=args.refresh_token)
    shown = 10  # a banner of 1,000 customer lines helps nobody

    def banner(url: str) -> list[str]:
        return [f"Google Ads sandbox on {url} (API {args.api_version}, token endpoint {url}/token)",
                f"  developer-token {DEVELOPER_TOKEN}", f"  client {CLIENT_ID} / {CLIENT_SECRET}",
                f"  refresh token {refresh_token}",
                *(f"  customer {cid}" for cid in ids[:shown]),
                *([f"  … and {len(ids) - shown} more customers (to {ids[-1]})"] if len(ids) > shown else [])]

    return sandbox, banner
