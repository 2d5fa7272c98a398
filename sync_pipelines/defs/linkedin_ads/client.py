"""LinkedIn Marketing API as a report client: campaign × day metrics through ``adAnalytics``.

- ``GET /rest/adAnalytics?q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY&dateRange=(start:(year:…,
  month:…,day:…),end:(…))&accounts=List(urn%3Ali%3AsponsoredAccount%3A…)&fields=…``
  (https://learn.microsoft.com/en-us/linkedin/marketing/integrations/ads-reporting/ads-reporting).
  Rest.li 2.0 query syntax (https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/
  protocol-version): ``(``, ``)``, ``,`` and ``:`` are syntax, so the URNs inside ``List()`` are
  percent-encoded and the structure is not; the query string is built here, never by a generic
  encoder. Headers: ``LinkedIn-Version: YYYYMM`` (https://learn.microsoft.com/en-us/linkedin/
  marketing/versioning: each version lives about a year, then 426 ``NONEXISTENT_VERSION``),
  ``X-Restli-Protocol-Version: 2.0.0``, ``Authorization: Bearer``.
- **No paging, and at most 15,000 elements per response, the rest silently dropped.** With pivot
  CAMPAIGN and DAILY an element is one campaign-day, so a request over d days of an account with
  N campaigns has at most N × d elements: requests are planned at ⌊14,999 / N⌋ days (N from the
  adCampaigns finder, every status), and a response that still holds 15,000 (campaigns the
  listing missed) is treated as truncated: its range is halved and re-read, down to one day,
  then that day is read in campaign sets (``campaigns=List(…)``). Such a response is never
  yielded, so it is never stored as complete.
- Days are **UTC days**: adAnalytics reports ``dateRange`` in UTC and ad accounts have no time
  zone of their own (``/rest/adAccounts/{id}`` carries ``currency``, not a zone), so
  `account_timezone` is "UTC" and the engine's "today" is UTC's.
- Campaign names come from ``GET /rest/adAccounts/{id}/adCampaigns?q=search`` (cursor paging:
  ``pageSize``/``pageToken`` → ``metadata.nextPageToken``), one listing per session: a few
  requests per account (≤ 5,000 campaigns an account, 1,000 a page) that the cap planning needs
  anyway, so naming costs nothing extra. The currency comes from ``/rest/adAccounts/{id}``, read
  before every range — which also turns a lost permission into a 403 instead of adAnalytics'
  silent empty answer (that would otherwise replace the window with nothing).
- Errors are Rest.li bodies ``{status, code, serviceErrorCode, message}``
  (https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/error-handling): 429
  (daily quotas, infrastructure protection) is waited out with backoff (``Retry-After`` honoured
  when sent); 401 refreshes the token once; 426/400 ``VERSION_MISSING`` fail naming the version
  setting; 403 fails naming the missing role or scope; 5xx is retried.
- Tokens (https://learn.microsoft.com/en-us/linkedin/shared/authentication/programmatic-refresh-tokens):
  access tokens live 60 days, refresh tokens a year *from the first authorisation* and are not
  extended by use (the refresh answer's ``refresh_token_expires_in`` is what is left). A refused
  refresh (``invalid_grant``, or LinkedIn's ``invalid_request`` "…refresh token is invalid,
  expired or revoked") is `ReauthorisationRequired`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import UTC, date, timedelta
from typing import Any
from urllib.parse import quote

from sync_pipelines.core.credentials import Tokens
from sync_pipelines.core.dg.resources import HttpApiResource, setting
from sync_pipelines.core.http import (
    ApiSession, ErrorVerdict, HttpClient, MalformedResponseError, RequestFailed, rate_limiter_for,
)
from sync_pipelines.core.oauth import RefreshGrant, Refresher, TokenSource, call_with_token
from sync_pipelines.core.registry import Account
from sync_pipelines.core.reports import windows
from sync_pipelines.defs.linkedin_ads.provider import ACCOUNT_URN, NAME, ad_account_id

BASE_URL_ENV, DEFAULT_BASE_URL = "LINKEDIN_ADS_BASE_URL", "https://api.linkedin.com"
API_VERSION_ENV, DEFAULT_API_VERSION = "LINKEDIN_ADS_API_VERSION", "202609"  # newest listed in Sep 2026
TOKEN_URL_ENV, DEFAULT_TOKEN_URL = "LINKEDIN_ADS_TOKEN_URL", "https://www.linkedin.com/oauth/v2/accessToken"
CLIENT_ID_ENV, CLIENT_SECRET_ENV = "LINKEDIN_ADS_CLIENT_ID", "LINKEDIN_ADS_CLIENT_SECRET"
CAMPAIGN_URN = "urn:li:sponsoredCampaign:"
MAX_ELEMENTS = 15_000
CAMPAIGN_PAGE_SIZE = 1000
ACCESS_TOKEN_SECONDS = 60 * 24 * 3600
ANALYTICS_FIELDS = ("dateRange", "pivotValues", "impressions", "clicks", "costInLocalCurrency",
                    "externalWebsiteConversions", "conversionValueInLocalCurrency")
# Every status: a campaign archived or removed since still has real past spend to name.
CAMPAIGN_STATUSES = ("ACTIVE", "PAUSED", "ARCHIVED", "COMPLETED", "CANCELED", "DRAFT", "PENDING_DELETION", "REMOVED")
_ZERO_METRICS = {"impressions": 0, "clicks": 0, "costInLocalCurrency": "0", "externalWebsiteConversions": 0,
                 "conversionValueInLocalCurrency": "0"}


# ------------------------------------------------------------------------------ Rest.li 2.0
def restli_list(values: Sequence[str]) -> str:
    """``List(a,b)`` with each value's reserved characters (a URN's ``:``) percent-encoded."""
    return "List(" + ",".join(quote(str(v), safe="") for v in values) + ")"


def restli_date(day: date) -> str:
    return f"(year:{day.year},month:{day.month},day:{day.day})"


def analytics_query(account: str, first: date, last: date, campaigns: Sequence[str] | None = None) -> str:
    """The Analytics finder's query string for one account's campaign-days of first..last."""
    parts = ["q=analytics", "pivot=CAMPAIGN", "timeGranularity=DAILY",
             f"dateRange=(start:{restli_date(first)},end:{restli_date(last)})",
             f"accounts={restli_list([ACCOUNT_URN + account])}"]
    if campaigns is not None:
        parts.append(f"campaigns={restli_list([CAMPAIGN_URN + c for c in campaigns])}")
    parts.append("fields=" + ",".join(ANALYTICS_FIELDS))
    return "&".join(parts)


# ------------------------------------------------------------------------------ errors
def classify(status: int, headers: Any, body: Any) -> ErrorVerdict:
    """What a LinkedIn error means: throttle, auth (refresh once), retry, or fail with its code."""
    error = body if isinstance(body, dict) else {}
    code = str(error.get("code") or "")
    message = str(error.get("message") or "")[:300]
    detail = f"{code or f'HTTP {status}'}: {message}" if message else (code or f"HTTP {status}")
    if status == 429 or code == "TOO_MANY_REQUESTS":
        return ErrorVerdict("throttle", detail)
    if status == 401:
        return ErrorVerdict("auth", detail)
    if status == 426 or code in ("NONEXISTENT_VERSION", "VERSION_MISSING"):
        return ErrorVerdict("fail", f"{detail} — set {API_VERSION_ENV} to an active LinkedIn-Version (YYYYMM)")
    if status >= 500:
        return ErrorVerdict("retry", detail)
    if status == 403:
        return ErrorVerdict("fail", f"{detail} — the member who connected the account needs a role on it and the"
                                    " r_ads_reporting scope")
    return ErrorVerdict("fail", detail)


def _oauth_refused_grant(error: str | None, description: str) -> bool:
    """RFC 6749's ``invalid_grant``, or LinkedIn's ``invalid_request`` saying the refresh token is
    invalid, expired or revoked (only the person can fix either)."""
    text = description.lower()
    return error == "invalid_grant" or (error == "invalid_request" and "refresh token" in text
                                        and any(w in text for w in ("invalid", "expired", "revoked")))


# LinkedIn's refresh grant (https://learn.microsoft.com/linkedin/shared/authentication/programmatic-refresh-tokens):
# the answer's refresh_token_expires_in is what is left of the refresh token's year (it does not slide).
REFRESH_GRANT = RefreshGrant(NAME, "LinkedIn", CLIENT_ID_ENV, CLIENT_SECRET_ENV,
                             default_lifetime=timedelta(seconds=ACCESS_TOKEN_SECONDS), refused=_oauth_refused_grant,
                             refresh_expires_field="refresh_token_expires_in",
                             refused_detail="it expired (a year after authorisation) or was revoked; reconnect the account")


# ------------------------------------------------------------------------------ session
class LinkedInAdsSession(ApiSession):
    """One ad account's view of the API: one HTTP session, the account's token, its statistics."""

    def __init__(self, http: HttpClient, tokens: TokenSource, *, account: str, max_elements: int = MAX_ELEMENTS,
                 campaigns_per_request: int = 200, secrets: Sequence[str] = ()):
        super().__init__(http, CAMPAIGN_PAGE_SIZE)
        self.tokens, self.account = tokens, account
        self.max_elements = max(2, max_elements)
        self.campaigns_per_request = max(1, min(campaigns_per_request, self.max_elements - 1))
        self._secrets = [s for s in secrets if s and len(s) >= 4]
        self._token: str | None = None
        self._names: dict[str, str | None] | None = None
        self.analytics_requests = 0
        self.capped_responses = 0

    # -- the two report methods
    def account_timezone(self) -> str:
        """LinkedIn reports UTC days and ad accounts have no zone: "UTC" (no request)."""
        return "UTC"

    def daily_metrics(self, first: date, last: date) -> Iterator[list[dict[str, Any]]]:
        """The account's campaign × UTC-day records of first..last, in requests that cannot reach
        the cap; a response at the cap is split and re-read, never yielded."""
        currency = self.currency()
        names = self.campaigns()
        days = max(1, (self.max_elements - 1) // max(1, len(names)))
        for start, end in windows(first, last, days):
            for elements in self._read(start, end, None):
                yield [self._record(element, currency, names) for element in elements]

    # -- the account
    def currency(self) -> str:
        """The ad account's currency (ISO 4217), read from ``/rest/adAccounts/{id}``."""
        body = self._get(f"rest/adAccounts/{self.account}")
        currency = body.get("currency")
        if not isinstance(currency, str) or not currency:
            raise self._malformed(f"/rest/adAccounts/{self.account}", "the ad account has no currency")
        return currency

    def campaigns(self) -> dict[str, str | None]:
        """Campaign id → name, every status (cached for the session)."""
        if self._names is None:
            names: dict[str, str | None] = {}
            path = f"rest/adAccounts/{self.account}/adCampaigns"
            query = (f"q=search&search=(status:(values:List({','.join(CAMPAIGN_STATUSES)})))"
                     f"&pageSize={CAMPAIGN_PAGE_SIZE}")
            token, seen = None, set()
            while True:
                body = self._get(f"{path}?{query}" + (f"&pageToken={quote(token, safe='')}" if token else ""))
                elements = body.get("elements")
                if not isinstance(elements, list) or not all(isinstance(e, dict) and "id" in e for e in elements):
                    raise self._malformed(f"/{path}", "the campaign listing has no list of campaigns with ids")
                names.update({str(e["id"]): e.get("name") for e in elements})
                metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
                token = metadata.get("nextPageToken")
                if not token or not elements:
                    break
                if token in seen:
                    raise self._malformed(f"/{path}", "the campaign listing's nextPageToken repeated")
                seen.add(token)
            self._names = names
        return self._names

    # -- analytics
    def _read(self, start: date, end: date, chunk: list[str] | None) -> Iterator[list[dict[str, Any]]]:
        elements = self._analytics(start, end, chunk)
        if len(elements) < self.max_elements:
            if elements:
                yield elements
            return
        self.capped_responses += 1  # possibly truncated: never trusted
        if start < end:
            middle = start + timedelta(days=(end - start).days // 2)
            yield from self._read(start, middle, chunk)
            yield from self._read(middle + timedelta(days=1), end, chunk)
            return
        ids = chunk if chunk is not None else sorted(self.campaigns())
        if len(ids) <= 1:
            raise RequestFailed(NAME, self.account, f"adAnalytics for {start} returned {len(elements)} elements"
                                f" for {len(ids)} campaign(s): still at the {self.max_elements:,}-element cap",
                                path="/rest/adAnalytics")
        size = self.campaigns_per_request if chunk is None else (len(ids) + 1) // 2
        for i in range(0, len(ids), size):
            yield from self._read(start, end, ids[i:i + size])

    def _analytics(self, start: date, end: date, chunk: list[str] | None) -> list[dict[str, Any]]:
        body = self._get("rest/adAnalytics?" + analytics_query(self.account, start, end, chunk))
        elements = body.get("elements")
        if not isinstance(elements, list) or not all(isinstance(e, dict) for e in elements):
            raise self._malformed("/rest/adAnalytics", "the answer has no list under 'elements'")
        self.analytics_requests += 1
        return elements

    def _record(self, element: dict[str, Any], currency: str, names: dict[str, str | None]) -> dict[str, Any]:
        """The element with its campaign (id from ``pivotValues``, name), UTC day and currency."""
        pivots = element.get("pivotValues")
        urn = pivots[0] if isinstance(pivots, list) and pivots else element.get("pivotValue")
        if not isinstance(urn, str) or not urn.startswith(CAMPAIGN_URN):
            raise self._malformed("/rest/adAnalytics", f"an element's pivot is not a campaign URN: {urn!r}")
        try:
            span = element["dateRange"]
            first = date(**{k: int(span["start"][k]) for k in ("year", "month", "day")})
            last = date(**{k: int(span.get("end", span["start"])[k]) for k in ("year", "month", "day")})
        except (KeyError, TypeError, ValueError):
            raise self._malformed("/rest/adAnalytics", "an element has no valid dateRange") from None
        if first != last:
            raise self._malformed("/rest/adAnalytics", f"a DAILY element spans {first}..{last}")
        campaign_id = urn[len(CAMPAIGN_URN):]
        return {"analytics": {**_ZERO_METRICS, **element}, "campaign": {"id": campaign_id, "name": names.get(campaign_id)},
                "date": first.isoformat(), "account": {"id": self.account, "currency": currency}}

    # -- calls
    def _get(self, path_and_query: str) -> dict[str, Any]:
        """One GET with the account's token (refreshed once when refused); a body that is not
        JSON is re-read up to the client's malformed budget."""
        for attempt in range(self.http.malformed_retries + 1):
            try:
                body = call_with_token(self.tokens, lambda token: self._call(path_and_query, token))
            except MalformedResponseError:
                self.http.stats.malformed += 1
                if attempt >= self.http.malformed_retries:
                    raise
                continue
            if not isinstance(body, dict):
                raise self._malformed("/" + path_and_query.partition("?")[0], "the answer is not a JSON object")
            return body
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _call(self, path_and_query: str, token: str) -> Any:
        if token != self._token:
            self.http.set_header("Authorization", f"Bearer {token}")
            self._secrets.append(token)
            self._token = token
        return self.http.call_json("GET", path_and_query, classify=self._classify)

    def _classify(self, status: int, headers: Any, body: Any) -> ErrorVerdict:
        return classify(status, headers, body).redacted(self._secrets)

    def _malformed(self, path: str, detail: str) -> MalformedResponseError:
        return MalformedResponseError(NAME, self.account, detail, status=200, method="GET", path=path)


# ------------------------------------------------------------------------------ resource
class LinkedInAdsClient(HttpApiResource):
    """LinkedIn Marketing API. The OAuth client comes from the environment (`LINKEDIN_ADS_CLIENT_ID`,
    `LINKEDIN_ADS_CLIENT_SECRET`), read when a run refreshes a token; each account's tokens are
    stored encrypted by core."""

    base_url: str | None = None
    """API origin; unset: `LINKEDIN_ADS_BASE_URL` (read at run time), else https://api.linkedin.com."""
    api_version: str | None = None
    """LinkedIn-Version header (YYYYMM); unset: `LINKEDIN_ADS_API_VERSION`, else 202609."""
    token_url: str | None = None
    """OAuth token endpoint; unset: `LINKEDIN_ADS_TOKEN_URL`, else https://www.linkedin.com/oauth/v2/accessToken."""
    max_window_days: int = 90
    """Days one replaced window covers (a 90-day backfill is one window; its requests are split below the cap)."""
    max_elements: int = MAX_ELEMENTS
    """adAnalytics' silent cap per response: a response this long is treated as truncated."""
    campaigns_per_request: int = 200
    """Campaign URNs per request when one day must be read in campaign sets (keeps URLs short)."""
    requests_per_minute: int | None = 60
    """Our own pace per account (LinkedIn's quotas are daily and unpublished; 429s are waited out)."""
    token_refresh_before_seconds: int = 24 * 3600
    """Refresh an access token this long before it expires (LinkedIn's live 60 days)."""

    def session(self, account: Account, tokens: TokenSource) -> LinkedInAdsSession:
        number = ad_account_id(account.account)
        headers = {"Accept": "application/json", "X-Restli-Protocol-Version": "2.0.0",
                   "LinkedIn-Version": setting(self.api_version, API_VERSION_ENV, DEFAULT_API_VERSION)}
        limiter = rate_limiter_for(f"{NAME}:{number}",
                                   self.requests_per_minute / 60 if self.requests_per_minute else None, burst=5)
        http = self.http_client(integration=NAME, account=account,
                                base_url=setting(self.base_url, BASE_URL_ENV, DEFAULT_BASE_URL), headers=headers,
                                rate_limiter=limiter, rate_limit_headers=None)
        return LinkedInAdsSession(http, tokens, account=number, max_elements=self.max_elements,
                                  campaigns_per_request=self.campaigns_per_request,
                                  secrets=[os.environ.get(CLIENT_SECRET_ENV, "")])

    def refresher(self, account: str = "") -> Refresher:
        """LinkedIn's refresh grant, for core's `TokenSource`: a new access token (60 days); the
        refresh token keeps its original expiry. A refused grant raises `ReauthorisationRequired`."""
        token_url = setting(self.token_url, TOKEN_URL_ENV, DEFAULT_TOKEN_URL)
        return REFRESH_GRANT.refresher(account, token_url, lambda url: self.token_http(NAME, account, url))


