"""`LinkedInAdsSandbox`: in-memory LinkedIn ad accounts behind a Starlette app, and its command line.

Each role is its own module: ``data`` (accounts, campaigns, seeded metrics on UTC days),
``restli`` (Rest.li 2.0 query syntax), ``oauth`` (grants, access tokens, the token endpoint),
``routes`` (adAnalytics, adAccounts, adCampaigns), ``mutations`` (restatement), ``control`` (the
clock and ``/_sandbox/linkedin_ads/*``); what every provider's sandbox shares is ``sandbox.base``.
"""

from __future__ import annotations

import argparse
import logging
import random
from datetime import date
from typing import Any, Callable

from sync_pipelines.sandbox.base import ProviderSandbox
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.linkedin_ads.control import LinkedInAdsControl
from sync_pipelines.sandbox.linkedin_ads.data import (
    DEFAULT_HISTORY_START, METRIC_FIELDS, AccountData, generate_account, new_campaign,
)
from sync_pipelines.sandbox.linkedin_ads.mutations import LinkedInAdsMutations
from sync_pipelines.sandbox.linkedin_ads.oauth import REFRESH_SECONDS, OAuthServer
from sync_pipelines.sandbox.linkedin_ads.routes import MAX_ELEMENTS, LinkedInAdsRoutes
from sync_pipelines.sandbox.server import add_served_arguments, cli_main, served_ids

log = logging.getLogger(__name__)

CLIENT_ID = "sandbox-linkedin-client"
CLIENT_SECRET = "sandbox-linkedin-client-secret"
LATEST_VERSION = "202611"
DEFAULT_ACCOUNTS = ["508000001", "508000002"]  # served when the command line names none


def active_versions(latest: str = LATEST_VERSION, months: int = 12) -> tuple[str, ...]:
    """LinkedIn keeps each monthly version for about a year: the `months` versions up to `latest`."""
    year, month = int(latest[:4]), int(latest[4:])
    out = []
    for _ in range(months):
        out.append(f"{year:04d}{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return tuple(reversed(out))


def account_number(account_id: str) -> str:
    """"urn:li:sponsoredAccount:123" and "123" → "123"."""
    raw = str(account_id).strip()
    number = raw.rsplit(":", 1)[-1] if raw.startswith("urn:li:sponsoredAccount:") else raw
    if not number.isdigit():
        raise ValueError(f"an ad account id is digits (or its urn:li:sponsoredAccount URN), got {raw!r}")
    return number


class LinkedInAdsSandbox(LinkedInAdsRoutes, LinkedInAdsControl, LinkedInAdsMutations, ProviderSandbox):
    """In-memory LinkedIn ad accounts behind a Starlette app (``.app``)."""

    provider = "linkedin_ads"
    account_kind = "ad account"
    stats_by = "requests_by_account"
    unknown_account = "no sandbox ad account {!r}"

    def __init__(self, *, seed: int = 7, latest_version: str = LATEST_VERSION, max_elements: int = MAX_ELEMENTS,
                 client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET,
                 faults: Faults | None = None) -> None:
        super().__init__(seed=seed, faults=faults, log=log)
        self.api_versions = active_versions(latest_version)
        self.max_elements = MAX_ELEMENTS
        self.set_max_elements(max_elements)
        self.truncated_responses = 0
        self._init_clock()
        self.oauth = OAuthServer(client_id, client_secret)
        self.app = self._build_app()

    # ------------------------------------------------------------- accounts
    def add_account(self, account_id: str, *, name: str | None = None, currency: str = "USD", campaigns: int = 5,
                    history_start: date = DEFAULT_HISTORY_START) -> AccountData:
        """(Re)create an ad account; same seed + id → same campaigns and numbers."""
        number = account_number(account_id)
        if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha() and currency.isupper()):
            raise ValueError(f"currency must be an ISO 4217 code like 'USD', got {currency!r}")
        if int(campaigns) < 0:
            raise ValueError("campaigns must be >= 0")
        account = generate_account(self.seed, number, name=name, currency=currency, campaigns=campaigns,
                                   history_start=history_start)
        with self._lock:
            self._accounts[number] = account
        return account

    def add_unlisted_campaigns(self, account_id: str, n: int) -> list[int]:
        """`n` delivering campaigns the adCampaigns finder does not list (created after a sync
        listed them): a client planning by the listing alone under-counts."""
        with self._lock:
            account = self.account(account_id)
            rng = random.Random(f"unlisted:{self.seed}:{account.account_id}:{len(account.campaigns)}")
            top = max((c.id for c in account.campaigns), default=100_000_000)
            made = [new_campaign(rng, top + i + 1, DEFAULT_HISTORY_START, len(account.campaigns) + i, listed=False)
                    for i in range(n)]
            account.campaigns.extend(made)
        return [c.id for c in made]

    def account(self, account_id: str) -> AccountData:
        return self._account(account_number(account_id))

    @property
    def account_ids(self) -> list[str]:
        return self._account_keys()

    def elements(self, account_id: str, since: date, until: date) -> list[dict[str, Any]]:
        """What an uncapped daily, campaign-pivoted adAnalytics read of since..until answers now."""
        account = self.account(account_id)
        with self._lock:
            return account.elements(since, min(until, self.today()),
                                    ("dateRange", "pivotValues", *METRIC_FIELDS))

    def set_max_elements(self, n: int) -> None:
        if int(n) < 1:
            raise ValueError("max_elements must be >= 1")
        self.max_elements = int(n)

    # ------------------------------------------------------------- credentials
    def grant(self, *, accounts: list[str] | None = None, refresh_token: str | None = None,
              lifetime: float = REFRESH_SECONDS) -> tuple[str, str]:
        """A member's authorisation of the app: (refresh token, access token)."""
        wanted = None if accounts is None else [account_number(a) for a in accounts]
        grant = self.oauth.grant(self.now(), accounts=wanted, refresh_token=refresh_token, lifetime=lifetime)
        return grant.refresh_token, self.oauth.issue(grant.refresh_token, self.now())

    def access_token(self, refresh_token: str, token: str | None = None) -> str:
        return self.oauth.issue(refresh_token, self.now(), token)

    def revoke(self, refresh_token: str) -> None:
        self.oauth.revoke(refresh_token)

    def expire_access_tokens(self) -> int:
        return self.oauth.expire_access_tokens(self.now())

    # ------------------------------------------------------------- stats
    def stats(self) -> dict[str, Any]:
        s = super().stats()
        with self._lock:
            s["truncated_responses"] = self.truncated_responses
        s["token_refreshes"] = self.oauth.refreshes
        return s

    def reset_stats(self) -> None:
        super().reset_stats()
        with self._lock:
            self.truncated_responses = 0


def main(argv: list[str] | None = None) -> int:
    """``python -m sync_pipelines.sandbox.linkedin_ads``: serve ad accounts until Ctrl-C."""
    return cli_main(argv, prog="python -m sync_pipelines.sandbox.linkedin_ads",
                    description="Serve a LinkedIn Marketing API sandbox until Ctrl-C.", port=8770,
                    accounts="ad account", add_arguments=_add_arguments, build=_build)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_served_arguments(parser, option="account", noun="ad account", default=DEFAULT_ACCOUNTS,
                         first_id="600000000")
    parser.add_argument("--big-account", default="508000999",
                        help="an extra account with 200 campaigns: 90 days exceed the 15,000-element cap ('' for none)")
    parser.add_argument("--latest-version", default=LATEST_VERSION, help="newest active LinkedIn-Version (YYYYMM)")
    parser.add_argument("--refresh-token", default=None,
                        help="the grant's refresh token (default: a random one), so a caller can store it beforehand")
    parser.add_argument("--access-token", default=None, help="also a valid access token of that grant with this value")


def account_ids(args: argparse.Namespace) -> list[str]:
    """The ids to serve: ``--accounts`` and ``--account-count`` consecutive ids, in that order, once each."""
    return served_ids(args.accounts, args.account_count, int(account_number(args.first_account_id)),
                      option="account", default=DEFAULT_ACCOUNTS, normalise=account_number)


def _build(args: argparse.Namespace) -> tuple[Any, Callable[[str], list[str]]]:
    sandbox = LinkedInAdsSandbox(seed=args.seed, latest_version=args.latest_version)
    ids = account_ids(args)
    for account_id in ids:
        sandbox.add_account(account_id, currency=args.currency, campaigns=args.campaigns)
    if args.big_account:
        sandbox.add_account(args.big_account, currency=args.currency, campaigns=200, name="Sandbox big account")
        ids.append(account_number(args.big_account))
    refresh, access = sandbox.grant(refresh_token=args.refresh_token or None)
    if args.access_token:
        access = sandbox.access_token(refresh, args.access_token)
    shown = 10  # a banner of 1,000 account lines helps nobody

    def banner(url: str) -> list[str]:
        return [f"LinkedIn Marketing API sandbox on {url}/rest (LinkedIn-Version {sandbox.api_versions[0]}.."
                f"{sandbox.api_versions[-1]}; token endpoint {url}/oauth/v2/accessToken)",
                f"  client {CLIENT_ID} / {CLIENT_SECRET}", f"  refresh token {refresh}",
                f"  access token {access}", *(f"  ad account {a}" for a in ids[:shown]),
                *([f"  … and {len(ids) - shown} more ad accounts (to {ids[-1]})"] if len(ids) > shown else [])]

    return sandbox, banner
