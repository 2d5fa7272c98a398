"""Meta Marketing API (Graph API) as a resource: an ad account's daily campaign metrics.

* **Insights** (https://developers.facebook.com/docs/marketing-api/insights/): ``GET
  /{version}/act_<id>/insights`` with ``level=campaign``, ``time_increment=1``, ``time_range=
  {"since","until"}`` (the account's own days), ``fields``, paged by ``paging.next`` (cursor
  paging, https://developers.facebook.com/docs/graph-api/results). Numbers arrive as strings.
* **Async report runs** for ranges longer than `sync_max_days` (Meta recommends them for large
  queries; a large synchronous one fails with "Please reduce the amount of data": then this
  client falls back to a run too): ``POST act_<id>/insights`` → ``report_run_id``; ``GET
  /<report_run_id>`` until ``async_status`` is "Job Completed" (``async_percent_completion``
  100); ``GET /<report_run_id>/insights`` paged
  (https://developers.facebook.com/docs/marketing-api/insights/best-practices/ — "Asynchronous
  Jobs"). A run that fails ("Job Failed"/"Job Skipped") or is not completed within
  `max_poll_seconds` (the documented trap: "Job Running" at 100 % for ever) is retried as two
  halves of its range, down to single days; a single day that still fails fails the window,
  naming the account and the day.
* **Errors** are Graph error bodies whose *code* decides, whatever the HTTP status (Meta throttles
  with HTTP 400): 4, 17, 32, 613 and 80000–80014 are throttling, waited out for Meta's
  ``estimated_time_to_regain_access``; 190 (and 102, 10, 200–299) is a refused token or
  permission; 1, 2 and ``is_transient`` are retried; anything else fails with Meta's message
  (https://developers.facebook.com/docs/graph-api/guides/error-handling,
  https://developers.facebook.com/docs/marketing-api/error-reference). Usage headers slow the
  account down before it is throttled (`usage.MetaUsageHeaders`).
* **Tokens**: long-lived user tokens (about 60 days), sent as the ``access_token`` parameter (the
  form every Graph example uses) and exchanged for a fresh one (``fb_exchange_token``) when
  within `token_refresh_before_seconds` of expiry; a token Meta refuses (190) is exchanged once
  and the call repeated — and an exchange refused with 190 means the person must reconnect
  (`ReauthorisationRequired`; an expired token cannot be exchanged,
  https://developers.facebook.com/docs/facebook-login/guides/access-tokens/get-long-lived).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sync_pipelines.core.credentials import CredentialsError, Tokens
from sync_pipelines.core.dg.resources import HttpApiResource, setting
from sync_pipelines.core.http import (
    MAX_PAGES, ApiSession, AuthenticationError, ErrorVerdict, HttpClient, MalformedResponseError, RateLimiter,
    RequestFailed, rate_limiter_for,
)
from sync_pipelines.core.oauth import ReauthorisationRequired, Refresher, TokenSource, call_with_token
from sync_pipelines.core.registry import Account
from sync_pipelines.defs.meta_ads.provider import NAME, ad_account_number
from sync_pipelines.defs.meta_ads.usage import MetaUsageHeaders, read_usage

Pages = Iterator[list[dict[str, Any]]]

BASE_URL_ENV = "META_ADS_BASE_URL"
DEFAULT_BASE_URL = "https://graph.facebook.com"
API_VERSION_ENV = "META_ADS_API_VERSION"
DEFAULT_API_VERSION = "v23.0"
APP_ID_ENV = "META_APP_ID"
APP_SECRET_ENV = "META_APP_SECRET"
MAX_WINDOW_DAYS = 90
INSIGHTS_FIELDS = ("account_id", "account_currency", "campaign_id", "campaign_name", "impressions", "clicks",
                   "spend", "actions", "action_values", "date_start", "date_stop")
THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
AUTH_CODES = frozenset({190, 102, 104, 10, *range(200, 300)})
TRANSIENT_CODES = frozenset({1, 2})
DONE, FAILED, TIMED_OUT = "done", "failed", "timed out"


# ------------------------------------------------------------------------------ errors
def graph_error(body: Any) -> dict[str, Any] | None:
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def _code(error: Mapping[str, Any], key: str) -> int | None:
    try:
        return int(error.get(key))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def too_much_data(body: Any) -> bool:
    """Meta's "ask for less" answers: code 1 "Please reduce the amount of data…" (a synchronous
    call that timed out) or code 100 subcode 1487534 (the data-per-call limit)."""
    error = graph_error(body)
    if error is None:
        return False
    code, subcode = _code(error, "code"), _code(error, "error_subcode")
    return (code == 1 and "reduce the amount of data" in str(error.get("message", "")).lower()) or \
        (code == 100 and subcode == 1487534)


def classify(status: int, headers: Mapping[str, str], body: Any, *,
             secrets: tuple[str, ...] = ()) -> ErrorVerdict | None:
    """What a Graph error means, by its code (None: not a Graph error body; HttpClient's default
    by status applies). The detail carries Meta's code and message, never a token or secret."""
    error = graph_error(body)
    if error is None:
        return None
    code, subcode = _code(error, "code"), _code(error, "error_subcode")
    message = str(error.get("message", ""))[:300]
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    detail = f"Meta error {code}" + (f"/{subcode}" if subcode is not None else "") + f": {message}"
    if code in THROTTLE_CODES:
        regain = read_usage(headers).regain_seconds
        return ErrorVerdict("throttle", detail, delay=regain or None)
    if code in AUTH_CODES:
        return ErrorVerdict("auth", detail)
    if too_much_data(body):
        return ErrorVerdict("fail", detail)
    if code in TRANSIENT_CODES or error.get("is_transient") is True:
        return ErrorVerdict("retry", detail)
    return ErrorVerdict("fail", detail)


def classify_exchange(status: int, headers: Mapping[str, str], body: Any, *,
                      secrets: tuple[str, ...] = ()) -> ErrorVerdict | None:
    """A token exchange's errors: as `classify`, except that codes 1 ("Error validating client
    secret") and 101 ("Invalid application ID") there are the app's configuration, not a glitch."""
    verdict = classify(status, headers, body, secrets=secrets)
    error = graph_error(body)
    if verdict is not None and error is not None and _code(error, "code") in (1, 101):
        return ErrorVerdict("fail", verdict.detail)
    return verdict


def _without_token(url: str) -> str:
    """A `paging.next` URL without its ``access_token`` (Meta echoes the one sent): the current
    token is added again, so a refreshed token is never traded for a stale one mid-listing."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "access_token"]
    return urlunsplit(parts._replace(query=urlencode(query)))


# ------------------------------------------------------------------------------ session
class MetaAdsSession(ApiSession):
    """One ad account's view of the Marketing API: a single HTTP session and its call statistics."""

    def __init__(self, http: HttpClient, page_size: int, *, account: str, tokens: TokenSource,
                 sync_max_days: int, poll_interval: float, max_poll_seconds: float,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        super().__init__(http, page_size)
        self.account = account  # the number; Graph paths say act_<number>
        self.tokens = tokens
        self.sync_max_days, self.poll_interval, self.max_poll_seconds = sync_max_days, poll_interval, max_poll_seconds
        self._sleep, self._clock = sleep, clock
        self._sent: tuple[str, ...] = ()
        self._asked_for_less = False
        self.report_runs = 0

    # -- calls
    def _classify(self, status: int, headers: Mapping[str, str], body: Any) -> ErrorVerdict | None:
        self._asked_for_less = self._asked_for_less or too_much_data(body)
        return classify(status, headers, body, secrets=self._sent)

    def _call(self, method: str, path_or_url: str, params: Mapping[str, Any] | None = None) -> Any:
        """One Graph call with the account's token (refreshed once if Meta refuses it)."""
        def attempt(token: str) -> Any:
            self._sent = (token,)
            query = {**(params or {}), "access_token": token}
            if method == "POST":
                return self.http.call_json("POST", path_or_url, data=query, classify=self._classify)
            return self.http.call_json("GET", path_or_url, params=query, classify=self._classify)

        body = call_with_token(self.tokens, attempt)
        if not isinstance(body, dict):
            raise self._malformed(path_or_url, "response is not a JSON object")
        return body

    def _malformed(self, path_or_url: str, detail: str) -> MalformedResponseError:
        return MalformedResponseError(NAME, self.account, detail, path=urlsplit(path_or_url).path or path_or_url)

    def _paged(self, path: str, params: Mapping[str, Any]) -> Pages:
        """Every page of a Graph list, following ``paging.next`` (same origin only) to the end."""
        body, seen = self._call("GET", path, params), set()
        while True:
            data = body.get("data")
            if not isinstance(data, list):
                raise self._malformed(path, "response has no list under 'data'")
            yield data
            following = body.get("paging", {}).get("next") if isinstance(body.get("paging"), dict) else None
            if not following or not data:
                return
            url = _without_token(self.http.resolve(following))
            if url in seen or len(seen) >= MAX_PAGES:
                raise self._malformed(path, "pagination did not end (a next link repeated)")
            seen.add(url)
            body = self._call("GET", url)

    # -- the account
    def account_timezone(self) -> str:
        """The ad account's ``timezone_name`` (IANA): Insights days are that zone's days."""
        body = self._call("GET", f"act_{self.account}", {"fields": "timezone_name"})
        zone = body.get("timezone_name")
        if not isinstance(zone, str) or not zone:
            raise self._malformed(f"act_{self.account}", "ad account has no timezone_name")
        return zone

    # -- insights
    def _params(self, first: date, last: date) -> dict[str, Any]:
        return {"level": "campaign", "time_increment": "1", "fields": ",".join(INSIGHTS_FIELDS),
                "time_range": json.dumps({"since": first.isoformat(), "until": last.isoformat()},
                                         separators=(",", ":")),
                "limit": self.page_size}

    def daily_metrics(self, first: date, last: date) -> Pages:
        """Pages of campaign × day Insights rows for first..last (inclusive, the account's days)."""
        for page in self._read(first, last, (first, last)):
            for row in page:  # Meta leaves the lists out when nothing happened: none is zero
                row.setdefault("actions", [])
                row.setdefault("action_values", [])
            yield page

    def _read(self, first: date, last: date, whole: tuple[date, date]) -> Pages:
        if (last - first).days + 1 <= self.sync_max_days:
            pages = self._sync(first, last)
            if pages is not None:
                yield from pages
                return
        yield from self._async(first, last, whole)

    def _sync(self, first: date, last: date) -> list[list[dict[str, Any]]] | None:
        """The range read synchronously (a few days: buffered, so a fallback never repeats rows),
        or None when Meta asks for less data per call."""
        self._asked_for_less = False
        try:
            return list(self._paged(f"act_{self.account}/insights", self._params(first, last)))
        except RequestFailed:
            if self._asked_for_less:
                return None
            raise

    def _async(self, first: date, last: date, whole: tuple[date, date]) -> Pages:
        run = self._call("POST", f"act_{self.account}/insights", self._params(first, last))
        run_id = run.get("report_run_id")
        if not isinstance(run_id, (str, int)) or not str(run_id).isdigit():
            raise self._malformed(f"act_{self.account}/insights", "no report_run_id in the answer")
        self.report_runs += 1
        outcome, status = self._wait(str(run_id))
        if outcome == DONE:
            yield from self._paged(f"{run_id}/insights", {"limit": self.page_size})
            return
        if first == last:
            raise RequestFailed(NAME, self.account, f"Insights for {whole[0]}..{whole[1]}: the report run for "
                                f"{first} {outcome} ({status}), after splitting the range down to single days",
                                path=f"/act_{self.account}/insights",
                                hint="Meta's async Insights jobs keep failing for this account: retry later")
        middle = first + timedelta(days=((last - first).days + 1) // 2 - 1)
        yield from self._read(first, middle, whole)
        yield from self._read(middle + timedelta(days=1), last, whole)

    def _wait(self, run_id: str) -> tuple[str, str]:
        """Poll a report run until it completes, fails, or `max_poll_seconds` pass."""
        deadline = self._clock() + self.max_poll_seconds
        while True:
            body = self._call("GET", run_id, {"fields": "async_status,async_percent_completion"})
            status = str(body.get("async_status", ""))
            percent = body.get("async_percent_completion")
            said = f"{status or 'no async_status'}, {percent}%"
            if status == "Job Completed":
                return DONE, said
            if status in ("Job Failed", "Job Skipped"):
                return FAILED, said
            if self._clock() >= deadline:
                return TIMED_OUT, f"{said} after {self.max_poll_seconds:g}s"
            self._sleep(self.poll_interval)


class _SkippedTime:
    """A clock that moves on by every wait handed to a `sleep` that does not really wait, so a
    limiter's pause ends after its "sleep" instead of spinning."""

    def __init__(self, sleep: Callable[[float], None]):
        self._sleep, self._skipped = sleep, 0.0

    def sleep(self, seconds: float) -> None:
        self._skipped += max(0.0, seconds)
        self._sleep(seconds)

    def clock(self) -> float:
        return time.monotonic() + self._skipped


# ------------------------------------------------------------------------------ resource
class MetaAdsClient(HttpApiResource):
    """Meta Marketing API. `sync-pipelines dev` points it at the sandbox through `META_ADS_BASE_URL`."""

    base_url: str | None = None
    """Graph API origin; unset: `META_ADS_BASE_URL` (read at run time), else https://graph.facebook.com."""
    api_version: str | None = None
    """Graph API version; unset: `META_ADS_API_VERSION` (read at run time), else v23.0."""
    app_id: str | None = None
    """The Meta app's id for token exchanges; unset: `META_APP_ID` (the secret is only ever read from
    `META_APP_SECRET`, at run time)."""
    max_window_days: int = MAX_WINDOW_DAYS
    """Days per read (and per replaced window). 90: one async report run covers a 90-day backfill
    (⌈90/90⌉ = 1 job instead of 90 days), a 28-day restatement fits one window, and a window of
    campaigns × 90 days is a small transaction. A run Meta cannot finish is split anyway."""
    sync_max_days: int = 7
    """Ranges up to this many days are read synchronously (the nightly 1–2 days: one call, no job);
    longer ones through an async report run, as Meta recommends for large queries."""
    poll_interval_seconds: float = 5.0
    max_poll_seconds: float = 600.0
    """How long one report run may take before its range is split in halves (a stuck run reports
    "Job Running" at 100 % for ever)."""
    page_size: int = 500
    max_throttle_wait_seconds: float = 900.0
    """Longest wait Meta's ``estimated_time_to_regain_access`` may impose before the account's sync
    fails as rate limited instead (it is retried by the next run)."""
    slow_down_at_percent: float = 75.0
    max_slowdown_seconds: float = 30.0
    token_refresh_before_seconds: float = 7 * 24 * 3600.0
    """Long-lived tokens (~60 days) are exchanged for fresh ones this long before they expire."""

    def _base(self) -> tuple[str, str]:
        base = setting(self.base_url, BASE_URL_ENV, DEFAULT_BASE_URL).rstrip("/")
        return base, setting(self.api_version, API_VERSION_ENV, DEFAULT_API_VERSION)

    def _http(self, account: str, base_url: str, *, limiter: Any = None, headers: Any = None,
              sleep: Callable[[float], None] = time.sleep) -> HttpClient:
        return HttpClient(
            integration=NAME, account=account, base_url=base_url, headers={"Accept": "application/json"},
            timeout=(self.connect_timeout_seconds, self.read_timeout_seconds), max_retries=self.max_retries,
            backoff_factor=self.backoff_factor, backoff_max=self.backoff_max_seconds,
            malformed_retries=self.malformed_retries, rate_limiter=limiter, rate_limit_headers=headers,
            max_retry_after=self.max_throttle_wait_seconds, classify=classify, sleep=sleep)

    def session(self, account: Account, tokens: TokenSource, *,
                sleep: Callable[[float], None] | None = None) -> MetaAdsSession:
        """The account's session. Its limiter is shared by every session of the account in this
        process; given a `sleep` (something that must not really wait, e.g. a test recording the
        waits), the session waits with it everywhere, on a limiter of its own."""
        number = ad_account_number(account.account)
        base, version = self._base()
        if sleep is None:
            sleep, clock = time.sleep, time.monotonic
            limiter = rate_limiter_for(f"{NAME}:{number}", rate_per_second=None)
        else:
            skipped = _SkippedTime(sleep)
            sleep, clock = skipped.sleep, skipped.clock
            limiter = RateLimiter(None, clock=clock, sleep=sleep)
        usage = MetaUsageHeaders(slow_down_at=self.slow_down_at_percent, max_slowdown=self.max_slowdown_seconds)
        http = self._http(number, f"{base}/{version}", limiter=limiter, headers=usage, sleep=sleep)
        return MetaAdsSession(http, self.page_size, account=number, tokens=tokens, sync_max_days=self.sync_max_days,
                              poll_interval=self.poll_interval_seconds, max_poll_seconds=self.max_poll_seconds,
                              sleep=sleep, clock=clock)

    def refresher(self, account: str = "") -> Refresher:
        """For core's `TokenSource`: exchanges the account's long-lived token for a fresh one (``GET
        /oauth/access_token?grant_type=fb_exchange_token``); Meta refusing the token (190) means the
        person must reconnect (`ReauthorisationRequired`)."""
        base, version = self._base()
        app_id = setting(self.app_id, APP_ID_ENV, "")

        def refresh(stored: Tokens) -> Tokens:
            secret = os.environ.get(APP_SECRET_ENV, "")
            if not app_id or not secret:
                raise CredentialsError(f"{NAME} [{account}]: set {APP_ID_ENV} and {APP_SECRET_ENV} (the Meta app's"
                                       " id and secret) to exchange long-lived tokens")
            params = {"grant_type": "fb_exchange_token", "client_id": app_id, "client_secret": secret,
                      "fb_exchange_token": stored.access_token}
            with self._http(account, f"{base}/{version}") as http:
                try:
                    body = http.call_json("GET", "oauth/access_token", params=params,
                                          classify=lambda s, h, b: classify_exchange(
                                              s, h, b, secrets=(secret, stored.access_token)))
                except AuthenticationError as error:
                    raise ReauthorisationRequired(NAME, error.account, f"Meta refused to exchange the token: {error}"
                                                  ) from None
            token = body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                raise MalformedResponseError(NAME, account, "no access_token in the token exchange's answer")
            expires_in = body.get("expires_in")
            expires_at = (datetime.now(UTC) + timedelta(seconds=float(expires_in))
                          if isinstance(expires_in, (int, float)) and expires_in > 0 else None)
            return Tokens(token, None, expires_at)

        return refresh
