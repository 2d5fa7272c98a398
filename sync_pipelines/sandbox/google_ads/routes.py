"""``POST /{version}/customers/{customer_id}/googleAds:searchStream`` and the token endpoint.

Contract (https://developers.google.com/google-ads/api/rest/common/search and
https://developers.google.com/google-ads/api/reference/rpc/v26/SearchGoogleAdsStreamResponse):
a JSON body ``{"query": GAQL}``; the answer is a JSON array of batches, each
``{"results": [GoogleAdsRow…], "fieldMask": "campaign.id,metrics.costMicros", "requestId"}``
with at most 10,000 rows (the last batch also carries ``queryResourceConsumption``; a query
matching nothing is one batch without ``results``). Headers
(https://developers.google.com/google-ads/api/rest/auth): ``Authorization: Bearer <token>``,
``developer-token``, and ``login-customer-id`` (digits, no dashes) when the customer is reached
through a manager account.

The order of checks, each answering with the real error body (see ``failures``): unknown
version/method 404 → access token 401 UNAUTHENTICATED → developer token (missing: 400
``DEVELOPER_TOKEN_PARAMETER_MISSING``; unknown: 401 ``DEVELOPER_TOKEN_INVALID``) → customer id
and ``login-customer-id`` (403 ``USER_PERMISSION_DENIED``) → quota (429 ``RESOURCE_EXHAUSTED``
with ``quotaErrorDetails.retryDelay``; no ``Retry-After`` header, the wait is in the body) →
injected faults → the query (400 ``queryError``). A failure after the first batch (the
``stream_errors`` knob) arrives as the last element of a 200 array, as on the real stream.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sync_pipelines.sandbox.base import json_response
from sync_pipelines.sandbox.control import dumps
from sync_pipelines.sandbox.google_ads import gaql
from sync_pipelines.sandbox.google_ads.data import CustomerData, camel
from sync_pipelines.sandbox.google_ads.failures import (
    INVALID_CREDENTIAL, LOGIN_CUSTOMER_HINT, MISSING_CREDENTIAL, AdsFailure, ads_error, query_failure, quota_failure,
    request_id,
)

# Active major versions in December 2026 (v21 sunset 2026-08-05, v22 2026-10-07; v23 until
# February 2027): https://developers.google.com/google-ads/api/docs/sunset-dates
SUPPORTED_API_VERSIONS = ("v23", "v24", "v25", "v26")
MAX_BATCH_ROWS = 10_000
_GARBAGE_BODY = b"<html><body><h1>502 Bad Gateway</h1></body></html>\x00\xff[{\"results\": [,"
_JSON = "application/json; charset=UTF-8"
_NOT_FOUND = {"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}}


def _stream_error(failure: AdsFailure) -> Response:
    return json_response([failure.body()], failure.http_status, media_type=_JSON)


class GoogleAdsRoutes:
    """The REST routes of `GoogleAdsSandbox` (mixed into it)."""

    def _api_routes(self) -> list[Route]:
        return [Route("/token", self.oauth.token_endpoint, methods=["POST"]),
                Route("/{version}/customers/{rest:path}", self._customers, methods=["GET", "POST"])]

    async def _customers(self, request: Request) -> Response:
        await self.faults.delay()
        version, rest = request.path_params["version"], request.path_params["rest"]
        match = re.fullmatch(r"([^/]+)/googleAds:searchStream", rest)
        if version not in self.api_versions or match is None or request.method != "POST":
            self._requests.record(None, 404)
            return json_response(_NOT_FOUND, 404, media_type=_JSON)
        raw = await request.body()
        customer_id, fault = match.group(1), None
        try:
            grant = self._authenticate(request, version)
            developer_token = self._check_developer_token(request, version)
            customer = self._authorize(customer_id, request, grant, version)
            self._throttle(developer_token, customer.customer_id, version)
            fault = self.faults.decide()
            if fault == "429":
                self._requests.record(customer_id, 429, fault_429=True)
                return _stream_error(quota_failure(self.faults.retry_after_seconds, version,
                                                   retry_info=self.retry_info))
            if fault in ("500", "503"):
                raise AdsFailure("INTERNAL" if fault == "500" else "UNAVAILABLE", version=version)
            rows, field_mask = self._run_query(customer, raw, version)
        except AdsFailure as failure:
            self._requests.record(customer_id, failure.http_status,
                                  rate_limited=failure.status == "RESOURCE_EXHAUSTED")
            return _stream_error(failure)
        self._requests.record(customer_id, 200)
        batches = self._batches(rows, field_mask)
        if self._take_stream_error():
            batches = [*batches[:1], AdsFailure("INTERNAL", version=version).body()]
        body = self.faults.corrupt(dumps(batches), fault, _GARBAGE_BODY)
        return Response(body, 200, media_type=_JSON)

    # ------------------------------------------------------------ checks
    def _authenticate(self, request: Request, version: str) -> Any:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise AdsFailure("UNAUTHENTICATED", message=MISSING_CREDENTIAL, version=version)
        if scheme.lower() != "bearer" or not token.strip():
            raise AdsFailure("UNAUTHENTICATED", [ads_error("authenticationError", "OAUTH_TOKEN_HEADER_INVALID",
                                                           "OAuth token HTTP header is malformed.")],
                             INVALID_CREDENTIAL, version=version)
        grant, problem = self.oauth.check(token.strip())
        if grant is None:
            text = {"OAUTH_TOKEN_EXPIRED": "OAuth token in the header has expired.",
                    "OAUTH_TOKEN_REVOKED": "OAuth token in the header has been revoked."}.get(
                        problem, "OAuth token in the header is not valid.")
            raise AdsFailure("UNAUTHENTICATED", [ads_error("authenticationError", problem, text)],
                             INVALID_CREDENTIAL, version=version)
        return grant

    def _check_developer_token(self, request: Request, version: str) -> str:
        """Developer tokens were sunset on 2026-09-09: since then the header is "optional and
        ignored" (https://developers.google.com/google-ads/api/docs/api-policy/developer-token);
        ``developer_token_required`` (the default, as before the sunset) checks it."""
        token = request.headers.get("developer-token")
        if not self.developer_token_required:
            return token or ""
        if not token:
            raise AdsFailure("INVALID_ARGUMENT", [ads_error("requestError", "DEVELOPER_TOKEN_PARAMETER_MISSING",
                                                            "developer-token parameter is missing.")],
                             version=version)
        with self._lock:
            valid = token in self.developer_tokens
        if not valid:
            raise AdsFailure("UNAUTHENTICATED", [ads_error("authenticationError", "DEVELOPER_TOKEN_INVALID",
                                                           "The developer token is not valid.")],
                             INVALID_CREDENTIAL, version=version)
        return token

    def _authorize(self, customer_id: str, request: Request, grant: Any, version: str) -> CustomerData:
        """The customer, if this grant may read it with this ``login-customer-id``."""
        if not re.fullmatch(r"\d{10}", customer_id):
            raise AdsFailure("INVALID_ARGUMENT", [ads_error("requestError", "INVALID_CUSTOMER_ID",
                                                            f"Invalid customer ID '{customer_id}'.")],
                             version=version)
        login = request.headers.get("login-customer-id")
        if login is not None and not re.fullmatch(r"\d{10}", login.strip()):
            raise AdsFailure("INVALID_ARGUMENT", [ads_error("headerError", "INVALID_LOGIN_CUSTOMER_ID",
                                                            "The login customer ID could not be validated.")],
                             version=version)
        login = login.strip() if login is not None else None
        denied = AdsFailure("PERMISSION_DENIED", [ads_error("authorizationError", "USER_PERMISSION_DENIED",
                                                            LOGIN_CUSTOMER_HINT)], version=version)
        with self._lock:
            customer = self._accounts.get(customer_id)
        if customer is None:
            raise denied
        via = customer.manager_id or customer_id  # the account the user's access goes through
        if customer.manager_id is not None and login != customer.manager_id:
            raise denied
        if customer.manager_id is None and login not in (None, customer_id):
            raise denied
        if grant.customers is not None and via not in grant.customers:
            raise denied
        return customer

    def _throttle(self, developer_token: str, customer_id: str, version: str) -> None:
        key = developer_token if self.throttle_scope == "DEVELOPER" else customer_id
        decision = self.limiter.hit(key)
        if decision is not None and not decision.allowed:
            delay = self.throttle_retry_delay if self.throttle_retry_delay is not None else decision.retry_after
            raise quota_failure(delay, version, scope=self.throttle_scope, retry_info=self.retry_info)

    # ------------------------------------------------------------ the query
    def _run_query(self, customer: CustomerData, raw: bytes, version: str) -> tuple[list[dict], str]:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise AdsFailure("INVALID_ARGUMENT", message="Invalid JSON payload received. Unexpected token.",
                             version=version) from None
        if not isinstance(body, dict):
            raise AdsFailure("INVALID_ARGUMENT", message="Invalid JSON payload received. Expected an object.",
                             version=version)
        unknown = sorted(set(body) - {"query", "summaryRowSetting"})
        if unknown:
            raise AdsFailure("INVALID_ARGUMENT", message=f'Invalid JSON payload received. Unknown name "{unknown[0]}"'
                             ": Cannot find field.", version=version)
        now = self.now()
        try:
            query = gaql.parse(body.get("query", ""), customer.today(now))
        except gaql.GaqlError as exc:
            raise query_failure(exc.code, exc.message, version, exc.trigger) from None
        with self._lock:
            rows = customer.execute(query, now)
        return rows, ",".join(camel(f) for f in query.select)

    def _batches(self, rows: list[dict[str, Any]], field_mask: str) -> list[dict[str, Any]]:
        rid = request_id()
        size = self.batch_size
        batches: list[dict[str, Any]] = [{"results": rows[i:i + size], "fieldMask": field_mask, "requestId": rid}
                                         for i in range(0, len(rows), size)]
        if not batches:
            batches = [{"fieldMask": field_mask, "requestId": rid}]
        batches[-1]["queryResourceConsumption"] = str(max(1, len(rows)) * 12)
        return batches
