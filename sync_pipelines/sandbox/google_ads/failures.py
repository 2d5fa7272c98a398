"""The Google Ads API's error bodies, as its REST interface sends them.

An error is a ``google.rpc.Status`` in JSON (``{"error": {"code", "message", "status",
"details"}}``) whose ``details`` carry a ``GoogleAdsFailure``: a list of ``GoogleAdsError``
(``errorCode`` — a one-key object naming the error family and its enum value, e.g.
``{"queryError": "UNRECOGNIZED_FIELD"}`` — ``message``, optional ``trigger``/``location``
and ``details``, e.g. ``quotaErrorDetails.retryDelay``) and the ``requestId``.
``searchStream`` answers with a JSON *array*, so its error arrives as the array's one element
(or, when the failure happens after batches were sent, as the last element of a 200 stream).

- Error model, canonical codes: https://developers.google.com/google-ads/api/docs/best-practices/understand-api-errors
- GoogleAdsFailure / GoogleAdsError / ErrorDetails / QuotaErrorDetails:
  https://developers.google.com/google-ads/api/reference/rpc/v26/GoogleAdsFailure
- QuotaError (RESOURCE_EXHAUSTED, RESOURCE_TEMPORARILY_EXHAUSTED):
  https://developers.google.com/google-ads/api/reference/rpc/v26/QuotaErrorEnum.QuotaError
- QueryError: https://developers.google.com/google-ads/api/reference/rpc/v26/QueryErrorEnum.QueryError
- AuthenticationError (OAUTH_TOKEN_EXPIRED, DEVELOPER_TOKEN_INVALID):
  https://developers.google.com/google-ads/api/reference/rpc/v26/AuthenticationErrorEnum.AuthenticationError
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

# gRPC canonical status name -> HTTP status, as the REST transcoding maps them.
HTTP_STATUS = {"INVALID_ARGUMENT": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
               "RESOURCE_EXHAUSTED": 429, "INTERNAL": 500, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504}
_STATUS_MESSAGE = {
    "INVALID_ARGUMENT": "Request contains an invalid argument.",
    "PERMISSION_DENIED": "The caller does not have permission",
    "RESOURCE_EXHAUSTED": "Resource has been exhausted (e.g. check quota).",
    "INTERNAL": "Internal error encountered.",
    "UNAVAILABLE": "The service is currently unavailable.",
}
MISSING_CREDENTIAL = ("Request is missing required authentication credential. Expected OAuth 2 access token, "
                      "login cookie or other valid authentication credential. "
                      "See https://developers.google.com/identity/sign-in/web/devconsole-project.")
INVALID_CREDENTIAL = ("Request had invalid authentication credentials. Expected OAuth 2 access token, "
                      "login cookie or other valid authentication credential. "
                      "See https://developers.google.com/identity/sign-in/web/devconsole-project.")
LOGIN_CUSTOMER_HINT = ("User doesn't have permission to access customer. Note: If you're accessing a client "
                       "customer, the manager's customer id must be set in the 'login-customer-id' header. "
                       "See https://developers.google.com/google-ads/api/docs/concepts/call-structure#cid")


def request_id() -> str:
    """A 22-character id like the API's (``Kl748ALLigZZjqVCuANPZA``)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class AdsFailure(Exception):
    """One failed call: the canonical status plus the GoogleAdsError entries (none for the
    front end's own errors, such as a missing access token)."""

    def __init__(self, status: str, errors: list[dict[str, Any]] | None = None, message: str | None = None,
                 *, version: str = "v26", extra_details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(status)
        self.status, self.errors, self.version = status, errors or [], version
        self.extra_details = extra_details or []
        self.message = message or _STATUS_MESSAGE.get(status, status)
        self.request_id = request_id()

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.status]

    def body(self) -> dict[str, Any]:
        """``{"error": {...}}``; the caller wraps it in a list for ``searchStream``."""
        error: dict[str, Any] = {"code": self.http_status, "message": self.message, "status": self.status}
        if self.errors:
            error["details"] = [{
                "@type": f"type.googleapis.com/google.ads.googleads.{self.version}.errors.GoogleAdsFailure",
                "errors": self.errors,
                "requestId": self.request_id,
            }]
        if self.extra_details:
            error.setdefault("details", []).extend(self.extra_details)
        return {"error": error}


def ads_error(family: str, code: str, message: str, *, trigger: str | None = None,
              details: dict[str, Any] | None = None) -> dict[str, Any]:
    """One GoogleAdsError (JSON names: ``errorCode``, ``message``, ``trigger``, ``details``)."""
    entry: dict[str, Any] = {"errorCode": {family: code}, "message": message}
    if trigger is not None:
        entry["trigger"] = {"stringValue": trigger}
    if details is not None:
        entry["details"] = details
    return entry


def query_failure(code: str, message: str, version: str, trigger: str | None = None) -> AdsFailure:
    return AdsFailure("INVALID_ARGUMENT", [ads_error("queryError", code, message, trigger=trigger)], version=version)


def quota_failure(retry_seconds: int, version: str, *, scope: str = "ACCOUNT",
                  code: str = "RESOURCE_TEMPORARILY_EXHAUSTED", retry_info: bool = False) -> AdsFailure:
    """HTTP 429 RESOURCE_EXHAUSTED, the wait in ``quotaErrorDetails.retryDelay`` (a protobuf
    Duration: ``"23s"``); with ``retry_info`` also a ``google.rpc.RetryInfo`` detail."""
    rate_name = "Requests per account" if scope == "ACCOUNT" else "Number of operations for basic access"
    extra = ([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_seconds}s"}]
             if retry_info else None)
    return AdsFailure("RESOURCE_EXHAUSTED", [ads_error(
        "quotaError", code, f"Too many requests. Retry in {retry_seconds} seconds.",
        details={"quotaErrorDetails": {"rateScope": scope, "rateName": rate_name,
                                       "retryDelay": f"{retry_seconds}s"}})], version=version, extra_details=extra)
