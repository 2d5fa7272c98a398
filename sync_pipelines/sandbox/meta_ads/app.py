"""`MetaAdsSandbox`: in-memory Marketing API ad accounts behind a Starlette app, and its command line.

Each role is its own module: ``data`` (accounts, campaigns, seeded campaign-day metrics),
``reports`` (insights queries, paging, async report runs), ``throttle`` (Business Use Case
limits and usage headers), ``oauth`` (tokens and their exchange), ``errors`` (Graph error
bodies), ``routes`` (the Graph API), ``mutations`` (restatement), ``control`` (the clock and
``/_sandbox/meta_ads/*``); what every provider's sandbox shares is ``sandbox.base``.
"""

from __future__ import annotations

import argparse
import logging
from datetime import date
from typing import Any, Callable

from sync_pipelines.sandbox.base import ProviderSandbox
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.meta_ads.control import MetaAdsControl
from sync_pipelines.sandbox.meta_ads.data import DEFAULT_HISTORY_START, AccountData, generate_account
from sync_pipelines.sandbox.meta_ads.mutations import MetaAdsMutations
from sync_pipelines.sandbox.meta_ads.oauth import LONG_LIVED_SECONDS, Token, TokenStore
from sync_pipelines.sandbox.meta_ads.reports import InsightsQuery, JobRule, ReportRun, compute_rows
from sync_pipelines.sandbox.meta_ads.routes import MetaAdsRoutes
from sync_pipelines.sandbox.meta_ads.throttle import InsightsThrottle
from sync_pipelines.sandbox.server import add_served_arguments, cli_main, served_ids

log = logging.getLogger(__name__)

SUPPORTED_API_VERSIONS = ("v21.0", "v22.0", "v23.0", "v24.0")
DEFAULT_TOKEN = "sandbox-meta-token"
DEFAULT_ACCOUNTS = ["1001", "1002"]  # served when the command line names none


def account_number(account_id: str) -> str:
    """"act_123" and "123" → "123"."""
    raw = str(account_id).strip()
    number = raw[4:] if raw.startswith("act_") else raw
    if not number.isdigit():
        raise ValueError(f"an ad account id is digits, optionally after 'act_', got {raw!r}")
    return number


class MetaAdsSandbox(MetaAdsRoutes, MetaAdsControl, MetaAdsMutations, ProviderSandbox):
    """In-memory Marketing API ad account(s) behind a Starlette app (``.app``)."""

    provider = "meta_ads"
    account_kind = "ad account"
    stats_by = "requests_by_account"
    unknown_account = "no sandbox ad account {!r}"

    def __init__(self, *, seed: int = 7, api_version: str = "v23.0", app_id: str = "sandbox-meta-app",
                 app_secret: str = "sandbox-meta-app-secret", job_polls: int = 1,
                 sync_max_days: int | None = None, token_lifetime: float = LONG_LIVED_SECONDS,
                 exchange_expires_in: int = LONG_LIVED_SECONDS, faults: Faults | None = None) -> None:
        super().__init__(seed=seed, faults=faults, log=log)
        self.api_version = api_version
        self.api_versions = tuple(sorted(set(SUPPORTED_API_VERSIONS) | {api_version},
                                         key=lambda v: tuple(int(p) for p in v[1:].split("."))))
        self.app_id, self.app_secret = app_id, app_secret
        self.job_polls = int(job_polls)
        self.sync_max_days = sync_max_days  # a sync insights call over more days fails (code 1), like a timeout
        self.token_lifetime, self.exchange_expires_in = token_lifetime, exchange_expires_in
        self.tokens = TokenStore()
        self.throttle = InsightsThrottle()
        self._runs: dict[str, ReportRun] = {}
        self._job_rules: dict[str, list[JobRule]] = {}
        self._next_run = 6_120_000_000_000_000
        self._init_clock()
        self.app = self._build_app()

    # ------------------------------------------------------------- accounts
    def add_account(self, account_id: str, *, name: str | None = None, currency: str = "USD",
                    timezone_name: str = "America/Los_Angeles", campaigns: int | list[str] = 5,
                    history_start: date | None = None, account_status: int = 1) -> AccountData:
        """(Re)create an ad account; same seed + id → same campaigns and numbers, so re-adding
        drops its restatements."""
        number = account_number(account_id)
        if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha() and currency.isupper()):
            raise ValueError(f"currency must be an ISO 4217 code like 'USD', got {currency!r}")
        if isinstance(campaigns, int) and campaigns < 0:
            raise ValueError("campaigns must be >= 0")
        account = generate_account(self.seed, number, name=name, currency=currency, timezone_name=timezone_name,
                                   campaigns=campaigns, history_start=history_start or DEFAULT_HISTORY_START,
                                   account_status=account_status)
        with self._lock:
            self._accounts[number] = account
        return account

    def account(self, account_id: str) -> AccountData:
        return self._account(account_number(account_id))

    @property
    def account_ids(self) -> list[str]:
        return self._account_keys()

    def rows(self, account_id: str, since: date, until: date) -> list[dict[str, Any]]:
        """What a campaign-level, daily Insights query for since..until answers now (every field)."""
        account = self.account(account_id)
        query = InsightsQuery(since, until, "campaign", 1, ("account_id", "account_currency", "campaign_id",
                                                            "campaign_name", "impressions", "clicks", "spend",
                                                            "actions", "action_values"))
        with self._lock:
            return compute_rows(account, query, account.today(self.now()))

    # --------------------------------------------------------------- tokens
    def issue_token(self, token: str | None = None, *, accounts: list[str] | None = None,
                    expires_in: float | None = LONG_LIVED_SECONDS) -> Token:
        """A long-lived user token for `accounts` (None: every account) expiring in `expires_in`
        seconds (None: never, like a system user's)."""
        wanted = None if accounts is None else [account_number(a) for a in accounts]
        return self.tokens.issue(self.now(), token=token, accounts=wanted, expires_in=expires_in)

    def expire_token(self, token: str) -> None:
        """The token's expiry passes now: calls get code 190, subcode 463."""
        self.tokens.expire(token, self.now())

    def invalidate_token(self, token: str, subcode: int = 460) -> None:
        """The token is refused from now on with code 190 and `subcode` (460, 467, 458, 463)."""
        self.tokens.invalidate(token, subcode)

    # ----------------------------------------------------------------- jobs
    def set_job_behaviour(self, account_id: str, mode: str, *, polls: int = 1, over_days: int | None = None,
                          count: int | None = None) -> None:
        """Report runs of the account: "complete" after `polls` polls, "stuck" at "Job Running"
        100 %, "failed" / "skipped" after `polls` polls — for runs spanning more than `over_days`
        days (None: every run), the next `count` of them (None: until cleared). Rules added first
        win; runs no rule matches complete after the sandbox's `job_polls`."""
        rule = JobRule(mode, int(polls), None if over_days is None else int(over_days),
                       None if count is None else int(count))
        number = account_number(account_id)
        self.account(number)
        with self._lock:
            self._job_rules.setdefault(number, []).append(rule)

    def clear_job_behaviour(self, account_id: str) -> None:
        with self._lock:
            self._job_rules.pop(account_number(account_id), None)

    # ------------------------------------------------------------- throttle
    def throttle_next(self, account_id: str, code: int, *, n: int = 1, regain_minutes: int = 0) -> None:
        """The account's next `n` calls fail with throttling `code` (4, 17, 613, 80000–80014),
        their usage header saying `regain_minutes`."""
        self.throttle.throttle_next(self.account(account_id).account_id, code, n, regain_minutes)

    # ---------------------------------------------------------------- stats
    def stats(self) -> dict[str, Any]:
        s = super().stats()
        s["token_exchanges"] = self.tokens.exchanges
        return s


def main(argv: list[str] | None = None) -> int:
    """``python -m sync_pipelines.sandbox.meta_ads``: serve ad accounts until Ctrl-C."""
    return cli_main(argv, prog="python -m sync_pipelines.sandbox.meta_ads",
                    description="Serve a Meta Marketing API sandbox until Ctrl-C.", port=8769,
                    accounts="ad account", add_arguments=_add_arguments, build=_build)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_served_arguments(parser, option="account", noun="ad account", default=DEFAULT_ACCOUNTS,
                         first_id="200000000000")
    parser.add_argument("--timezone", default="America/Los_Angeles", help="every account's timezone_name")
    parser.add_argument("--api-version", default="v23.0")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="a long-lived token reading every account")
    parser.add_argument("--app-id", default="sandbox-meta-app")
    parser.add_argument("--app-secret", default="sandbox-meta-app-secret")
    parser.add_argument("--job-polls", type=int, default=2, help="polls before a report run completes")
    parser.add_argument("--throttle-calls", type=int, default=0,
                        help="Insights calls per window and account before throttling (0: off)")
    parser.add_argument("--throttle-window-seconds", type=float, default=300.0)
    parser.add_argument("--throttle-block-seconds", type=float, default=None,
                        help="how long a throttled account stays blocked (default: the sandbox's 60 s)")


def account_ids(args: argparse.Namespace) -> list[str]:
    """The ids to serve: ``--accounts`` and ``--account-count`` consecutive ids, in that order, once each."""
    return served_ids(args.accounts, args.account_count, int(account_number(args.first_account_id)),
                      option="account", default=DEFAULT_ACCOUNTS, normalise=account_number)


def _build(args: argparse.Namespace) -> tuple[Any, Callable[[str], list[str]]]:
    sandbox = MetaAdsSandbox(seed=args.seed, api_version=args.api_version, app_id=args.app_id,
                             app_secret=args.app_secret, job_polls=args.job_polls)
    if args.throttle_calls:
        sandbox.throttle.configure(calls_per_window=args.throttle_calls, window_seconds=args.throttle_window_seconds,
                                   **({} if args.throttle_block_seconds is None
                                      else {"block_seconds": args.throttle_block_seconds}))
    ids = account_ids(args)
    for account_id in ids:
        sandbox.add_account(account_id, currency=args.currency, timezone_name=args.timezone,
                            campaigns=args.campaigns)
    sandbox.issue_token(args.token, expires_in=None)
    shown = 10  # a banner of 1,000 account lines helps nobody

    def banner(url: str) -> list[str]:
        return [f"Meta Marketing API sandbox on {url}/{args.api_version} (Ctrl-C to stop)",
                *(f"  ad account act_{a}" for a in ids[:shown]),
                *([f"  … and {len(ids) - shown} more ad accounts (to act_{ids[-1]})"] if len(ids) > shown else []),
                f"  access token {args.token} (app id {args.app_id})"]

    return sandbox, banner
