"""The LinkedIn Marketing API routes a sync uses: ``GET /rest/adAnalytics`` (Analytics finder),
``GET /rest/adAccounts/{id}`` and ``GET /rest/adAccounts/{id}/adCampaigns?q=search``, and the
token endpoint ``POST /oauth/v2/accessToken`` (standing in for ``https://api.linkedin.com`` and
``https://www.linkedin.com``).

Order of checks on ``/rest/*``: the ``LinkedIn-Version`` header (missing: 400 ``VERSION_MISSING``;
not an active version: 426 ``NONEXISTENT_VERSION``,
https://learn.microsoft.com/en-us/linkedin/marketing/versioning) → the bearer token (401) →
``X-Restli-Protocol-Version: 2.0.0`` (Rest.li 2.0 syntax is refused without it) → injected
faults → the handler. adAnalytics has **no paging** and answers at most `max_elements` (15,000)
elements, silently dropping the rest (the earliest days); an account the token may not read
yields an empty answer, not an error
(https://learn.microsoft.com/en-us/linkedin/marketing/integrations/ads-reporting/ads-reporting).
"""

from __future__ import annotations

import base64
from datetime import date
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sync_pipelines.sandbox.control import dumps
from sync_pipelines.sandbox.linkedin_ads.data import ACCOUNT_URN, AccountData, CAMPAIGN_URN, DEFAULT_FIELDS, FIELDS, STATUSES
from sync_pipelines.sandbox.linkedin_ads.oauth import Grant, OAuthError, api_error
from sync_pipelines.sandbox.linkedin_ads.restli import (
    RestliError, parse_date_range, parse_list, parse_status_search, raw_params,
)

MAX_ELEMENTS = 15_000
MAX_PAGE_SIZE = 1000
_GARBAGE = b"<html><body>502 Bad Gateway</body></html>\x00{\"elements\": [,"


def _bad(message: str) -> OAuthError:
    return api_error(400, "ILLEGAL_ARGUMENT", message)


class LinkedInAdsRoutes:
    """The API routes of `LinkedInAdsSandbox` (mixed into it)."""

    def _api_routes(self) -> list[Route]:
        return [
            Route("/oauth/v2/accessToken", self._token, methods=["POST"]),
            Route("/rest/adAnalytics", self._analytics_route, methods=["GET"]),
            Route("/rest/adAccounts/{account_id}", self._account_route, methods=["GET"]),
            Route("/rest/adAccounts/{account_id}/adCampaigns", self._campaigns_route, methods=["GET"]),
        ]

    # ------------------------------------------------------------ plumbing
    def _reply(self, payload: Any, status: int = 200, fault: str | None = None) -> Response:
        body = self.faults.corrupt(dumps(payload), fault, _GARBAGE)
        return Response(body, status, headers={"x-li-uuid": "sandbox", "x-restli-protocol-version": "2.0.0"},
                        media_type="application/json")

    async def _serve(self, request: Request, handler, *, restli: bool) -> Response:
        await self.faults.delay()
        account: str | None = request.path_params.get("account_id")
        fault = None
        try:
            version = request.headers.get("linkedin-version")
            if not version:
                raise api_error(400, "VERSION_MISSING", "A version must be present. Please specify a version by"
                                                        " adding the LinkedIn-Version header.")
            if version not in self.api_versions:
                raise api_error(426, "NONEXISTENT_VERSION", f"Requested version {version} is not active")
            grant = self.oauth.check(request.headers.get("authorization"), self.now())
            if restli and request.headers.get("x-restli-protocol-version") != "2.0.0":
                raise _bad("Invalid query parameters passed to request (Rest.li 2.0 syntax needs the"
                           " X-Restli-Protocol-Version: 2.0.0 header)")
            fault = self.faults.decide()
            if fault == "429":
                raise api_error(429, "TOO_MANY_REQUESTS",
                                "Resource level throttle limit for calls to this resource is reached.")
            if fault in ("500", "503"):
                raise api_error(int(fault), "INTERNAL_SERVER_ERROR" if fault == "500" else "SERVICE_UNAVAILABLE",
                                "Internal Server Error" if fault == "500" else "Service Unavailable")
            payload = handler(request, grant)
        except RestliError as error:
            self._requests.record(account, 400)
            return self._reply(_bad(str(error)).body, 400)
        except OAuthError as error:
            self._requests.record(account, error.status, fault_429=fault == "429")
            return self._reply(error.body, error.status)
        self._requests.record(account, 200)
        return self._reply(payload, 200, fault)

    def _readable(self, grant: Grant, account_id: str) -> bool:
        with self._lock:
            known = account_id in self._accounts
        return known and (grant.accounts is None or account_id in grant.accounts)

    # ------------------------------------------------------------ token
    async def _token(self, request: Request) -> Response:
        await self.faults.delay()
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
        try:
            payload = self.oauth.token_endpoint(form, self.now())
        except OAuthError as error:
            self._requests.record(None, error.status)
            return Response(dumps(error.body), error.status, media_type="application/json")
        self._requests.record(None, 200)
        return Response(dumps(payload), 200, media_type="application/json")

    # ------------------------------------------------------------ ad accounts
    async def _account_route(self, request: Request) -> Response:
        return await self._serve(request, self._account_info, restli=False)

    def _account_info(self, request: Request, grant: Grant) -> dict[str, Any]:
        account_id = request.path_params["account_id"]
        if not self._readable(grant, account_id):
            raise api_error(403, "ACCESS_DENIED", f"Not enough permissions to access: adAccounts.GET.{account_id}")
        self._count("account", account_id)
        return self.account(account_id).info()

    async def _campaigns_route(self, request: Request) -> Response:
        return await self._serve(request, self._campaigns, restli=True)

    def _campaigns(self, request: Request, grant: Grant) -> dict[str, Any]:
        """The search finder, cursor-paged with ``pageSize`` / ``pageToken`` → ``metadata.nextPageToken``."""
        account_id = request.path_params["account_id"]
        params = raw_params(request.scope["query_string"])
        if params.get("q") != "search":
            raise _bad("q must be search")
        if not self._readable(grant, account_id):
            raise api_error(403, "ACCESS_DENIED", "Not enough permissions to access: adCampaigns.FINDER-search")
        statuses = parse_status_search(params.get("search", ""))
        if statuses is not None and statuses - set(STATUSES):
            raise _bad(f"unknown campaign status {sorted(statuses - set(STATUSES))[0]}")
        try:
            size = int(params.get("pageSize") or 100)
            offset = int(base64.urlsafe_b64decode(params["pageToken"]).decode()) if params.get("pageToken") else 0
        except ValueError:
            raise _bad("pageSize must be a number and pageToken one this server sent") from None
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise _bad(f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
        self._count("campaign_pages", account_id)
        with self._lock:
            listed = [c.info(account_id) for c in self.account(account_id).campaigns
                      if c.listed and (statuses is None or c.status in statuses)]
        page = listed[offset:offset + size]
        metadata = {}
        if offset + size < len(listed):
            metadata["nextPageToken"] = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
        return {"elements": page, "metadata": metadata, "paging": {"start": 0, "count": size, "links": []}}

    # ------------------------------------------------------------ analytics
    async def _analytics_route(self, request: Request) -> Response:
        return await self._serve(request, self._analytics, restli=True)

    def _analytics(self, request: Request, grant: Grant) -> dict[str, Any]:
        params = raw_params(request.scope["query_string"])
        if params.get("q") != "analytics":
            raise _bad("q must be analytics (the sandbox has no statistics finder)")
        if params.get("pivot") != "CAMPAIGN":
            raise _bad("the sandbox supports pivot=CAMPAIGN only")
        if params.get("timeGranularity") != "DAILY":
            raise _bad("the sandbox supports timeGranularity=DAILY only")
        if "dateRange" not in params:
            raise _bad("dateRange is required")
        first, last = parse_date_range(params["dateRange"])
        accounts = parse_list(params.get("accounts", ""), "accounts") if "accounts" in params else []
        if not accounts or any(not a.startswith(ACCOUNT_URN) for a in accounts):
            raise _bad("accounts must be a List of urn:li:sponsoredAccount URNs")
        campaigns = None
        if "campaigns" in params:
            urns = parse_list(params["campaigns"], "campaigns")
            if any(not u.startswith(CAMPAIGN_URN) or not u[len(CAMPAIGN_URN):].isdigit() for u in urns):
                raise _bad("campaigns must be a List of urn:li:sponsoredCampaign URNs")
            campaigns = {int(u[len(CAMPAIGN_URN):]) for u in urns}
        fields = tuple(f for f in params.get("fields", "").split(",") if f) or DEFAULT_FIELDS
        unknown = [f for f in fields if f not in FIELDS]
        if unknown:
            raise _bad(f"unknown field {unknown[0]} in fields")
        today = self.today()
        last = min(last or today, today)
        elements: list[dict[str, Any]] = []
        for urn in accounts:
            account_id = urn[len(ACCOUNT_URN):]
            if not self._readable(grant, account_id):
                continue  # "an empty response is returned if you don't have read access"
            self._count("analytics", account_id)
            if first <= last:
                with self._lock:
                    elements += self.account(account_id).elements(first, last, fields, campaigns)
        if len(elements) > self.max_elements:
            with self._lock:
                self.truncated_responses += 1
            elements = elements[-self.max_elements:]  # silently: no paging, no warning
        return {"paging": {"start": 0, "count": 10, "links": []}, "elements": elements}

    def today(self) -> date:
        return AccountData.today(self.now())
