"""TikTok Business API as a report client: an advertiser's campaign × day metrics.

- **Report**: ``GET /open_api/v1.3/report/integrated/get/`` ("Run a synchronous report",
  https://business-api.tiktok.com/portal/docs?id=1740302848100353) with ``advertiser_id``,
  ``report_type=BASIC``, ``service_type=AUCTION``, ``data_level=AUCTION_CAMPAIGN``,
  ``dimensions=["campaign_id","stat_time_day"]`` and ``metrics`` JSON-encoded as the API takes
  them, ``start_date``/``end_date`` (the advertiser's own days, inclusive; **at most 30 days** with
  a day dimension, so ranges are split), ``page``/``page_size`` (≤ 1,000) until
  ``page_info.total_page``. ``campaign_name`` and ``currency`` are attribute metrics, read in the
  same request. A window is read whole before it is handed over; if the report changed while it
  was paged (``total_number`` moved, a row came twice) it is read again.
- **Advertiser**: ``GET /open_api/v1.3/advertiser/info/`` (``advertiser_ids``, ``fields``;
  https://business-api.tiktok.com/portal/docs?id=1739593083610113) for ``display_timezone`` (IANA;
  else ``timezone``) and ``currency``.
- **Errors** arrive as **HTTP 200** with a non-zero ``code``, ``message`` and ``request_id``
  ("Appendix — Return codes", https://business-api.tiktok.com/portal/docs?id=1737172488964097; the
  official SDK's ``tiktok_code.py``): 40100/40132/61000 (too frequent) are throttling, waited out
  with backoff; 40102 (expired), 40104 (missing), 40105 (invalid or revoked) and 40001 (no
  permission for the advertiser) refuse the token — refreshed once, then the account needs
  re-authorisation; 50000–59999 and 60001 (maintenance) are retried; anything else fails with
  the code, message and request id. `core.http`'s ``classify_ok`` applies the verdict to a 200.
- **Tokens** (``Access-Token`` header, https://business-api.tiktok.com/portal/docs?id=1738373164380162):
  an advertiser's long-term access token does not expire; only revoking the authorisation ends
  it, so a refused long-term token means reconnecting (`ReauthorisationRequired`). A token stored
  with a refresh token (24-hour access tokens) is refreshed through ``POST
  /open_api/v1.3/oauth2/refresh_token/`` (``app_id``, ``secret``, ``refresh_token``,
  ``grant_type=refresh_token``); 40103/40107 (refresh token expired or invalid) mean reconnecting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sync_pipelines.core.credentials import CredentialsError, Tokens
from sync_pipelines.core.dg.resources import HttpApiResource, setting
from sync_pipelines.core.http import (
    MAX_PAGES, ApiSession, AuthenticationError, ErrorVerdict, HttpClient, MalformedResponseError, rate_limiter_for,
)
from sync_pipelines.core.oauth import ReauthorisationRequired, Refresher, TokenSource, call_with_token
from sync_pipelines.core.registry import Account
from sync_pipelines.core.reports import windows
from sync_pipelines.defs.tiktok_ads.provider import NAME, advertiser_id

Pages = Iterator[list[dict[str, Any]]]

BASE_URL_ENV, DEFAULT_BASE_URL = "TIKTOK_ADS_BASE_URL", "https://business-api.tiktok.com"
APP_ID_ENV, APP_SECRET_ENV = "TIKTOK_APP_ID", "TIKTOK_APP_SECRET"
API = "open_api/v1.3"
REPORT_PATH, INFO_PATH, REFRESH_PATH = (f"{API}/report/integrated/get/", f"{API}/advertiser/info/",
                                        f"{API}/oauth2/refresh_token/")
MAX_DAYS_BY_DAY = 30  # the API refuses longer ranges with stat_time_day
PAGE_SIZE_MAX = 1000
DIMENSIONS = ("campaign_id", "stat_time_day")
METRICS = ("campaign_name", "currency", "spend", "impressions", "clicks", "conversion",
           "total_complete_payment_rate", "total_purchase_value")
THROTTLE_CODES = frozenset({40100, 40132, 61000})
TOKEN_CODES = frozenset({40001, 40102, 40104, 40105})
REAUTH_CODES = frozenset({40103, 40107})
MAINTENANCE = 60001
REREADS = 2  # a window whose report changed while paged is read again this often, then fails


# ------------------------------------------------------------------------------ errors
def classify(status: int, headers: Mapping[str, str], body: Any, *, secrets: tuple[str, ...] = ()
             ) -> ErrorVerdict | None:
    """What an answer's ``code`` means (None: code 0, or no TikTok body — then HttpClient's default
    by status applies). The detail names the code, message and request id, never a token."""
    if not isinstance(body, dict) or "code" not in body:
        return None
    try:
        code = int(body["code"])
    except (TypeError, ValueError):
        return ErrorVerdict("fail", f"TikTok answered code {str(body['code'])[:40]!r}")
    if code == 0:
        return None
    message = str(body.get("message") or "")[:300]
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    detail = f"TikTok code {code}: {message}" + (f" (request_id {body['request_id']})" if body.get("request_id") else "")
    if code in THROTTLE_CODES:
        return ErrorVerdict("throttle", detail)
    if code in TOKEN_CODES or code in REAUTH_CODES:
        return ErrorVerdict("auth", detail)
    if 50000 <= code < 60000 or code == MAINTENANCE:
        return ErrorVerdict("retry", detail)
    return ErrorVerdict("fail", detail)


def _list_param(values: tuple[str, ...] | list[str]) -> str:
    """A list parameter as the API takes it: JSON in the query string."""
    return json.dumps(list(values), separators=(",", ":"))


class _Changed(Exception):
    """The report changed while a window was paged."""


# ------------------------------------------------------------------------------ session
class TikTokAdsSession(ApiSession):
    """One advertiser's view of the API: a single HTTP session and its call statistics."""

    def __init__(self, http: HttpClient, page_size: int, *, advertiser: str, tokens: TokenSource):
        super().__init__(http, page_size)
        self.advertiser, self.tokens = advertiser, tokens
        self._token: str | None = None
        self._currency: str | None = None

    def _classify(self, status: int, headers: Mapping[str, str], body: Any) -> ErrorVerdict | None:
        return classify(status, headers, body, secrets=(self._token or "",))

    def _get(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One call's ``data`` (the token refreshed once if TikTok refuses it)."""
        def attempt(token: str) -> Any:
            if token != self._token:
                self.http.set_header("Access-Token", token)
                self._token = token
            return self.http.call_json("GET", path, params=params, classify=self._classify,
                                       classify_ok=self._classify)

        body = call_with_token(self.tokens, attempt)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise MalformedResponseError(NAME, self.advertiser, "the answer has no 'data' object", status=200,
                                         method="GET", path=f"/{path}")
        return data

    # -- the advertiser
    def _info(self) -> dict[str, Any]:
        data = self._get(INFO_PATH, {"advertiser_ids": _list_param([self.advertiser]),
                                     "fields": _list_param(["advertiser_id", "currency", "timezone",
                                                            "display_timezone"])})
        found = [i for i in data.get("list") or () if isinstance(i, dict)]
        if not found:
            raise MalformedResponseError(NAME, self.advertiser, "advertiser/info returned no advertiser",
                                         status=200, method="GET", path=f"/{INFO_PATH}")
        self._currency = found[0].get("currency") or self._currency
        return found[0]

    def account_timezone(self) -> str:
        """The advertiser's time zone (IANA): report days are that zone's days."""
        info = self._info()
        zone = info.get("display_timezone") or info.get("timezone")
        if not isinstance(zone, str) or not zone:
            raise MalformedResponseError(NAME, self.advertiser, "advertiser/info returned no time zone",
                                         status=200, method="GET", path=f"/{INFO_PATH}")
        return zone

    # -- the report
    def daily_metrics(self, first: date, last: date) -> Pages:
        """Pages of campaign × day rows for first..last (the advertiser's days), ≤ 30 days a read."""
        for start, end in windows(first, last, MAX_DAYS_BY_DAY):
            pages = self._window(start, end)
            for page in pages:
                for row in page:
                    metrics = row.setdefault("metrics", {})
                    if isinstance(metrics, dict) and not metrics.get("currency"):
                        metrics["currency"] = self._currency or self._info().get("currency")
                yield page

    def _window(self, first: date, last: date) -> list[list[dict[str, Any]]]:
        for attempt in range(REREADS + 1):
            try:
                return self._pages(first, last)
            except _Changed as changed:
                if attempt == REREADS:
                    raise MalformedResponseError(
                        NAME, self.advertiser, f"the report for {first}..{last} kept changing while paged ({changed})"
                        f" after {REREADS} re-reads", status=200, method="GET", path=f"/{REPORT_PATH}") from None
        raise AssertionError("unreachable")

    def _pages(self, first: date, last: date) -> list[list[dict[str, Any]]]:
        params = {"advertiser_id": self.advertiser, "report_type": "BASIC", "service_type": "AUCTION",
                  "data_level": "AUCTION_CAMPAIGN", "dimensions": _list_param(DIMENSIONS),
                  "metrics": _list_param(METRICS), "start_date": first.isoformat(), "end_date": last.isoformat(),
                  "page_size": self.page_size}
        pages: list[list[dict[str, Any]]] = []
        seen: set[tuple[Any, Any]] = set()
        total = None
        for number in range(1, MAX_PAGES + 1):
            data = self._get(REPORT_PATH, {**params, "page": number})
            rows, info = data.get("list"), data.get("page_info")
            if not isinstance(rows, list) or not isinstance(info, dict):
                raise MalformedResponseError(NAME, self.advertiser, "the report has no 'list' or 'page_info'",
                                             status=200, method="GET", path=f"/{REPORT_PATH}")
            if total is not None and info.get("total_number") != total:
                raise _Changed(f"total_number {total} → {info.get('total_number')}")
            total = info.get("total_number")
            for row in rows:
                dims = row.get("dimensions") if isinstance(row, dict) else None
                key = (dims.get("campaign_id"), dims.get("stat_time_day")) if isinstance(dims, dict) else None
                if key is None or key in seen:
                    raise _Changed(f"row {key} repeated or without dimensions")
                seen.add(key)
            pages.append(rows)
            try:
                last_page = not rows or number >= int(info.get("total_page") or 0)
            except (TypeError, ValueError):
                last_page = not rows
            if last_page:
                return pages
        raise MalformedResponseError(NAME, self.advertiser, f"paging did not end after {MAX_PAGES} pages",
                                     status=200, method="GET", path=f"/{REPORT_PATH}")


# ------------------------------------------------------------------------------ resource
class TikTokAdsClient(HttpApiResource):
    """TikTok Business API. `sync-pipelines dev` points it at the sandbox through `TIKTOK_ADS_BASE_URL`."""

    base_url: str | None = None
    """API origin; unset: `TIKTOK_ADS_BASE_URL` (read at run time), else https://business-api.tiktok.com."""
    app_id: str | None = None
    """The developer app's id for token refreshes; unset: `TIKTOK_APP_ID` (the secret is only ever read
    from `TIKTOK_APP_SECRET`, at run time)."""
    max_window_days: int = MAX_DAYS_BY_DAY
    """Days per read and per replaced window: 30, the most the API serves by day (a 90-day backfill is 3 reads)."""
    page_size: int = PAGE_SIZE_MAX
    """Rows per page, at most 1,000 (30 days × 33 campaigns fit one page)."""
    requests_per_second: float | None = 10.0
    """Our own pace per advertiser (TikTok limits an app's calls per second and answers 40100 beyond)."""
    token_refresh_before_seconds: float = 3600.0
    """Refreshable (24-hour) access tokens are refreshed this long before they expire."""

    def _base(self) -> str:
        return setting(self.base_url, BASE_URL_ENV, DEFAULT_BASE_URL).rstrip("/")

    def _http(self, account: str, limiter: Any = None) -> HttpClient:
        return HttpClient(integration=NAME, account=account, base_url=self._base(),
                          headers={"Accept": "application/json"},
                          timeout=(self.connect_timeout_seconds, self.read_timeout_seconds),
                          max_retries=self.max_retries, backoff_factor=self.backoff_factor,
                          backoff_max=self.backoff_max_seconds, malformed_retries=self.malformed_retries,
                          rate_limiter=limiter, classify=classify, classify_ok=classify)

    def session(self, account: Account, tokens: TokenSource) -> TikTokAdsSession:
        number = advertiser_id(account.account)
        if not 1 <= self.page_size <= PAGE_SIZE_MAX:
            raise ValueError(f"{NAME}: page_size must be between 1 and {PAGE_SIZE_MAX}, not {self.page_size}")
        rate = self.requests_per_second
        limiter = rate_limiter_for(f"{NAME}:{number}", rate if rate else None, burst=max(1, int(rate or 1)))
        return TikTokAdsSession(self._http(number, limiter), self.page_size, advertiser=number, tokens=tokens)

    def refresher(self, account: str = "") -> Refresher:
        """For core's `TokenSource`. A long-term token (no refresh token stored) cannot be renewed:
        TikTok refusing it means the authorisation was revoked (`ReauthorisationRequired`); a
        refreshable one goes through ``/oauth2/refresh_token/``."""
        app_id = setting(self.app_id, APP_ID_ENV, "")

        def refresh(stored: Tokens) -> Tokens:
            if not stored.refresh_token:
                raise ReauthorisationRequired(NAME, account, "TikTok refused the advertiser's long-term access token"
                                              " (it never expires: the authorisation was revoked); reconnect it")
            secret = os.environ.get(APP_SECRET_ENV, "")
            if not app_id or not secret:
                raise CredentialsError(f"{NAME} [{account}]: set {APP_ID_ENV} and {APP_SECRET_ENV} (the developer"
                                       " app's id and secret) to refresh access tokens")
            return self._refresh(account, app_id, secret, stored.refresh_token)

        return refresh

    def _refresh(self, account: str, app_id: str, secret: str, refresh_token: str) -> Tokens:
        refused: dict[str, int] = {}

        def check(status: int, headers: Mapping[str, str], body: Any) -> ErrorVerdict | None:
            verdict = classify(status, headers, body, secrets=(secret, refresh_token))
            if verdict is not None and isinstance(body, dict):
                refused["code"] = int(body.get("code") or 0)
            return verdict

        with self._http(account) as http:
            try:
                body = http.call_json("POST", REFRESH_PATH, classify=check, classify_ok=check, json={
                    "app_id": app_id, "secret": secret, "refresh_token": refresh_token, "grant_type": "refresh_token"})
            except AuthenticationError as error:
                if refused.get("code") in REAUTH_CODES:
                    raise ReauthorisationRequired(NAME, account, f"TikTok refused the refresh token: {error}") from None
                raise AuthenticationError(NAME, account, f"TikTok refused the token refresh: {error}",
                                          hint=f"check {APP_ID_ENV} and {APP_SECRET_ENV}") from None
        data = body.get("data") if isinstance(body, dict) else None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise MalformedResponseError(NAME, account, "the token refresh answered without an access_token")
        expires_in = data.get("expires_in")
        expires_at = (datetime.now(UTC) + timedelta(seconds=float(expires_in))
                      if isinstance(expires_in, (int, float)) and expires_in > 0 else None)
        new_refresh = data.get("refresh_token")
        return Tokens(token, new_refresh if isinstance(new_refresh, str) and new_refresh else None, expires_at)
