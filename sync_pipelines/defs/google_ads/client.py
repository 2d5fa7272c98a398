"""Google Ads API (REST) as a report client: campaign × day metrics through ``searchStream``.

- ``POST {base}/{version}/customers/{customer_id}/googleAds:searchStream`` with ``{"query": GAQL}``
  (https://developers.google.com/google-ads/api/rest/common/search): the answer is a JSON array of
  batches (``SearchGoogleAdsStreamResponse``: ``results``, ``fieldMask``, ``requestId``), each of at
  most 10,000 rows; a query matching nothing is one batch without ``results``. A failure after the
  stream began arrives as an ``{"error": …}`` element of a 200 array, so every element is checked.
- Headers (https://developers.google.com/google-ads/api/rest/auth): ``Authorization: Bearer``,
  ``login-customer-id`` for a customer reached through a manager account (the registry setting
  ``login_customer_id``), and ``developer-token`` when ``GOOGLE_ADS_DEVELOPER_TOKEN`` is set —
  developer tokens were sunset on 2026-09-09 and are now optional and ignored
  (https://developers.google.com/google-ads/api/docs/api-policy/developer-token).
- Errors (https://developers.google.com/google-ads/api/docs/best-practices/understand-api-errors):
  a ``google.rpc.Status`` whose details hold a ``GoogleAdsFailure``. `classify` reads it: quota
  errors (HTTP 429 ``RESOURCE_EXHAUSTED``) wait ``quotaErrorDetails.retryDelay`` (or a
  ``google.rpc.RetryInfo``; there is no Retry-After header); UNAUTHENTICATED refreshes the access
  token once; a refused developer token, a permission or query error fails with Google's error
  code and message, secrets scrubbed.
- Tokens: Google's token endpoint with the refresh grant
  (https://developers.google.com/identity/protocols/oauth2/web-server#offline); ``invalid_grant``
  means the grant was revoked or expired: `ReauthorisationRequired`.

REST rather than the official client library: that library is gRPC-only and would bypass our HTTP
core (its retries, rate limiter, statistics) and the sandbox.

``max_window_days`` = 90: searchStream has no date-range limit for campaign-level queries and
streams any number of rows, so the window is ours to pick. 90 days is the whole initial backfill
in one request per account (the issue's ⌈90 / window⌉ = 1), holds a 28-day restatement, and keeps
one window's replace transaction small (90 days × 100 campaigns = 9,000 rows, one batch); a window
that fails is re-read whole, so a bigger one would only make retries dearer.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

from sync_pipelines.core.credentials import Tokens
from sync_pipelines.core.dg.resources import HttpApiResource, setting
from sync_pipelines.core.http import (
    ApiSession, AuthenticationError, ErrorVerdict, HttpClient, MalformedResponseError, RateLimitError, RequestFailed,
    ServerError, rate_limiter_for,
)
from sync_pipelines.core.oauth import RefreshGrant, Refresher, TokenSource, call_with_token
from sync_pipelines.core.registry import Account
from sync_pipelines.defs.google_ads.provider import NAME, normalise_customer_id

BASE_URL_ENV, DEFAULT_BASE_URL = "GOOGLE_ADS_BASE_URL", "https://googleads.googleapis.com"
API_VERSION_ENV, DEFAULT_API_VERSION = "GOOGLE_ADS_API_VERSION", "v26"  # newest in Dec 2026; v23 sunsets Feb 2027
TOKEN_URL_ENV, DEFAULT_TOKEN_URL = "GOOGLE_ADS_TOKEN_URL", "https://oauth2.googleapis.com/token"
DEVELOPER_TOKEN_ENV = "GOOGLE_ADS_DEVELOPER_TOKEN"
CLIENT_ID_ENV, CLIENT_SECRET_ENV = "GOOGLE_ADS_CLIENT_ID", "GOOGLE_ADS_CLIENT_SECRET"
LOGIN_CUSTOMER_SETTING = "login_customer_id"
MAX_BATCH_ROWS = 10_000
ACCESS_TOKEN_SECONDS = 3600  # Google's access tokens live an hour

# Every campaign, removed ones included (their past spend is real); no ORDER BY: order is ours to
# ignore, and sorting costs the API.
METRICS_QUERY = ("SELECT campaign.id, campaign.name, campaign.status, segments.date, metrics.impressions,"
                 " metrics.clicks, metrics.cost_micros, metrics.conversions, metrics.conversions_value,"
                 " customer.currency_code FROM campaign WHERE segments.date BETWEEN '{first}' AND '{last}'")
TIMEZONE_QUERY = "SELECT customer.id, customer.time_zone, customer.currency_code FROM customer"
# Numbers a row must have: proto3 JSON may leave out a field holding its default (0), which means 0.
_ZERO_METRICS = {"impressions": "0", "clicks": "0", "costMicros": "0", "conversions": 0, "conversionsValue": 0}
_TRANSIENT = frozenset({"INTERNAL", "UNAVAILABLE", "DEADLINE_EXCEEDED", "UNKNOWN", "ABORTED"})


# ------------------------------------------------------------------------------ errors
def error_status(body: Any) -> dict[str, Any] | None:
    """The ``google.rpc.Status`` of an error body: ``{"error": …}``, or searchStream's array
    holding one."""
    if isinstance(body, list):
        body = next((item for item in body if isinstance(item, dict) and "error" in item), None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return None


def ads_errors(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The GoogleAdsError entries of the status's GoogleAdsFailure details."""
    found = []
    for detail in status.get("details") or ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith(".GoogleAdsFailure"):
            found.extend(e for e in detail.get("errors") or () if isinstance(e, dict))
    return found


def error_codes(errors: list[dict[str, Any]]) -> list[str]:
    """``family.CODE`` of each error, e.g. ``quotaError.RESOURCE_EXHAUSTED``."""
    return [f"{family}.{code}" for e in errors if isinstance(e.get("errorCode"), dict)
            for family, code in e["errorCode"].items()]


def _seconds(duration: Any) -> float | None:
    """A protobuf Duration in JSON (``"23s"``, ``"1.5s"``) as seconds; garbage → None."""
    if isinstance(duration, dict):  # defensive: {"seconds": "23", "nanos": 0}
        try:
            return float(duration.get("seconds", 0)) + float(duration.get("nanos", 0)) / 1e9
        except (TypeError, ValueError):
            return None
    text = str(duration or "").strip()
    if not text.endswith("s"):
        return None
    try:
        value = float(text[:-1])
    except ValueError:
        return None
    return value if 0 <= value < float("inf") else None


def retry_delay(status: dict[str, Any]) -> float | None:
    """The wait Google asks for: ``quotaErrorDetails.retryDelay`` of a GoogleAdsError, or a
    ``google.rpc.RetryInfo`` detail; the longest when several."""
    delays = [_seconds((e.get("details") or {}).get("quotaErrorDetails", {}).get("retryDelay"))
              for e in ads_errors(status) if isinstance(e.get("details"), dict)]
    delays += [_seconds(d.get("retryDelay")) for d in status.get("details") or ()
               if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo")]
    known = [d for d in delays if d is not None]
    return max(known) if known else None


def classify(status: int, headers: Any, body: Any) -> ErrorVerdict:
    """What a Google Ads error means: throttle (with Google's wait), auth (refresh the token
    once), retry (transient), or fail (with Google's error code and message)."""
    rpc = error_status(body)
    if rpc is None:
        if status == 429:
            return ErrorVerdict("throttle", "HTTP 429 without an error body")
        if status >= 500:
            return ErrorVerdict("retry", f"HTTP {status} without an error body")
        if status == 401:
            return ErrorVerdict("auth", "access token refused")
        return ErrorVerdict("fail", f"HTTP {status} without an error body")
    errors = ads_errors(rpc)
    codes = error_codes(errors)
    name = str(rpc.get("status") or "")
    message = next((str(e["message"]) for e in errors if e.get("message")), None) or str(rpc.get("message") or name)
    request_id = next((str(d["requestId"]) for d in rpc.get("details") or ()
                       if isinstance(d, dict) and d.get("requestId")), None)
    detail = f"{codes[0] if codes else name or 'error'}: {message[:300]}"
    if request_id:
        detail += f" (request id {request_id})"
    if status == 429 or name == "RESOURCE_EXHAUSTED" or any(c.startswith("quotaError.") for c in codes):
        return ErrorVerdict("throttle", detail, retry_delay(rpc))
    if any(c.partition(".")[2].startswith("DEVELOPER_TOKEN") for c in codes):
        return ErrorVerdict("fail", f"{detail} — check {DEVELOPER_TOKEN_ENV}")
    if status == 401 or name == "UNAUTHENTICATED":
        return ErrorVerdict("auth", detail)
    if status >= 500 or name in _TRANSIENT:
        return ErrorVerdict("retry", detail)
    if "authorizationError.USER_PERMISSION_DENIED" in codes:
        detail += f" — a customer reached through a manager needs the setting {LOGIN_CUSTOMER_SETTING}"
    return ErrorVerdict("fail", detail)


class _StreamBroke(Exception):
    """A 200 stream that ended in an error element that waiting may fix."""

    def __init__(self, verdict: ErrorVerdict):
        super().__init__(verdict.detail)
        self.verdict = verdict


# ------------------------------------------------------------------------------ session
class GoogleAdsSession(ApiSession):
    """One customer's view of the API: one HTTP session, the customer's token, its statistics."""

    def __init__(self, http: HttpClient, tokens: TokenSource, *, customer_id: str, api_version: str,
                 secrets: list[str], backoff_factor: float = 0.5, backoff_max: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__(http, MAX_BATCH_ROWS)
        self.tokens, self.customer_id = tokens, customer_id
        self.path = f"/{api_version}/customers/{customer_id}/googleAds:searchStream"
        self._secrets = [s for s in secrets if s and len(s) >= 4]
        self._token: str | None = None
        self._backoff_factor, self._backoff_max, self._sleep = backoff_factor, backoff_max, sleep

    # -- the two report methods
    def daily_metrics(self, first: date, last: date) -> Iterator[list[dict[str, Any]]]:
        """The customer's campaign × day rows for [first, last] (its own days), batch by batch."""
        query = METRICS_QUERY.format(first=first.isoformat(), last=last.isoformat())
        for batch in self.search_stream(query):
            rows = batch.get("results") or []
            if rows:
                yield [_with_zero_metrics(row) for row in rows]

    def account_timezone(self) -> str:
        """The customer's time zone (IANA name): its days are that zone's calendar days."""
        rows = [row for batch in self.search_stream(TIMEZONE_QUERY) for row in batch.get("results") or ()]
        zone = rows[0].get("customer", {}).get("timeZone") if rows and isinstance(rows[0], dict) else None
        if not isinstance(zone, str) or not zone:
            raise MalformedResponseError(NAME, self.customer_id, "the customer query returned no time zone",
                                         method="POST", path=self.path)
        return zone

    # -- searchStream
    def search_stream(self, query: str) -> list[dict[str, Any]]:
        """Every batch of the query's stream. A refused token is refreshed once; a truncated body or
        a stream that broke off is read again (up to the client's retry budget)."""
        budget = self.http.max_retries
        for attempt in range(budget + 1):
            try:
                return call_with_token(self.tokens, lambda token: self._post(query, token))
            except (MalformedResponseError, _StreamBroke) as problem:
                verdict = problem.verdict if isinstance(problem, _StreamBroke) else None
                if isinstance(problem, MalformedResponseError):
                    self.http.stats.malformed += 1
                    if attempt >= min(budget, self.http.malformed_retries):
                        raise
                elif attempt >= budget:
                    cls = RateLimitError if verdict.kind == "throttle" else ServerError
                    raise cls(NAME, self.customer_id, f"{verdict.detail} (stream broke off, after {budget} retries)",
                              status=200, method="POST", path=self.path) from None
                asked = verdict.delay if verdict is not None and verdict.delay is not None else 0.0
                if asked > self.http.max_retry_after:
                    raise RateLimitError(NAME, self.customer_id, f"{verdict.detail}: asked to wait {asked:.0f} s",
                                         status=200, method="POST", path=self.path) from None
                self._wait(max(asked, self._backoff(attempt + 1)))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _post(self, query: str, token: str) -> list[dict[str, Any]]:
        if token != self._token:
            self.http.set_header("Authorization", f"Bearer {token}")
            self._secrets.append(token)
            self._token = token
        body = self.http.call_json("POST", self.path, json={"query": query}, classify=self._classify)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise MalformedResponseError(NAME, self.customer_id, "searchStream did not answer a JSON array of "
                                         "batches", status=200, method="POST", path=self.path)
        for item in body:
            if "error" in item:
                rpc = item["error"] if isinstance(item["error"], dict) else {}
                verdict = self._classify(int(rpc.get("code") or 500), {}, item)
                if verdict.kind == "auth":
                    raise AuthenticationError(NAME, self.customer_id, verdict.detail, status=200, method="POST",
                                              path=self.path)
                if verdict.kind == "fail":
                    raise RequestFailed(NAME, self.customer_id, verdict.detail, status=200, method="POST",
                                        path=self.path)
                raise _StreamBroke(verdict)
        return body

    def _classify(self, status: int, headers: Any, body: Any) -> ErrorVerdict:
        return classify(status, headers, body).redacted(self._secrets)

    def _backoff(self, attempt: int) -> float:
        return min(self._backoff_max, self._backoff_factor * 2 ** (attempt - 1) + random.random() * 0.1)

    def _wait(self, seconds: float) -> None:
        self.http.stats.retries += 1
        self.http.stats.wait_seconds += seconds
        self._sleep(seconds)


def _with_zero_metrics(row: dict[str, Any]) -> dict[str, Any]:
    metrics = row.get("metrics")
    if isinstance(metrics, dict) and all(k in metrics for k in _ZERO_METRICS):
        return row
    return {**row, "metrics": {**_ZERO_METRICS, **(metrics if isinstance(metrics, dict) else {})}}


# Google's OAuth 2.0 token endpoint (https://developers.google.com/identity/protocols/oauth2/web-server#offline)
REFRESH_GRANT = RefreshGrant(NAME, "Google", CLIENT_ID_ENV, CLIENT_SECRET_ENV,
                             default_lifetime=timedelta(seconds=ACCESS_TOKEN_SECONDS))


# ------------------------------------------------------------------------------ resource
class GoogleAdsClient(HttpApiResource):
    """Google Ads API (REST). The developer token and the OAuth client come from the environment
    (`GOOGLE_ADS_DEVELOPER_TOKEN`, `GOOGLE_ADS_CLIENT_ID`, `GOOGLE_ADS_CLIENT_SECRET`), read when a
    run uses them; each customer's tokens are stored encrypted by core."""

    base_url: str | None = None
    """The API's base URL; unset: `GOOGLE_ADS_BASE_URL` (read at run time), else https://googleads.googleapis.com."""
    api_version: str | None = None
    """API version, e.g. v26; unset: `GOOGLE_ADS_API_VERSION`, else v26."""
    token_url: str | None = None
    """OAuth token endpoint; unset: `GOOGLE_ADS_TOKEN_URL`, else https://oauth2.googleapis.com/token."""
    max_window_days: int = 90
    """Days one searchStream request covers (a 90-day backfill is one request per customer)."""
    requests_per_minute: int | None = 60
    """Our own pace per customer (Google publishes no fixed per-customer rate; its quota errors say how long to wait)."""
    token_refresh_before_seconds: int = 120
    """Refresh an access token this long before it expires (Google's live an hour)."""

    def session(self, account: Account, tokens: TokenSource) -> GoogleAdsSession:
        headers = {"Accept": "application/json"}
        developer_token = os.environ.get(DEVELOPER_TOKEN_ENV, "").strip()
        if developer_token:
            headers["developer-token"] = developer_token
        login = (account.settings or {}).get(LOGIN_CUSTOMER_SETTING)
        if login:
            headers["login-customer-id"] = normalise_customer_id(str(login))
        limiter = rate_limiter_for(f"{NAME}:{account.account}",
                                   self.requests_per_minute / 60 if self.requests_per_minute else None, burst=5)
        http = self.http_client(integration=NAME, account=account,
                                base_url=setting(self.base_url, BASE_URL_ENV, DEFAULT_BASE_URL), headers=headers,
                                rate_limiter=limiter, rate_limit_headers=None)
        return GoogleAdsSession(http, tokens, customer_id=account.account,
                                api_version=setting(self.api_version, API_VERSION_ENV, DEFAULT_API_VERSION),
                                secrets=[developer_token, os.environ.get(CLIENT_SECRET_ENV, "")],
                                backoff_factor=self.backoff_factor, backoff_max=self.backoff_max_seconds)

    def refresher(self, account: str = "") -> Refresher:
        """Google's refresh grant, for core's `TokenSource`: a new access token (and expiry); a
        revoked or expired grant (``invalid_grant``) raises `ReauthorisationRequired`."""
        token_url = setting(self.token_url, TOKEN_URL_ENV, DEFAULT_TOKEN_URL)
        return REFRESH_GRANT.refresher(account, token_url, lambda url: self.token_http(NAME, account, url))
