"""Graph API error bodies, as the Marketing API sends them.

Contract: "Handling Errors" (https://developers.facebook.com/docs/graph-api/guides/error-handling)
— every failure is ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`` and
the *code* (not the HTTP status) says what happened; the Marketing API's own codes are in
https://developers.facebook.com/docs/marketing-api/error-reference. Graph answers nearly every
error with HTTP 400 (throttling included: the codes 4/17/613/80000-range arrive in a 400 body),
so the sandbox does too unless a knob says otherwise.
"""

from __future__ import annotations

import secrets
from typing import Any

# Access-token subcodes of code 190 (error-handling page, "Authentication Error Subcodes").
SUBCODE_EXPIRED = 463
SUBCODE_PASSWORD_CHANGED = 460
SUBCODE_INVALID = 467
SUBCODE_APP_NOT_INSTALLED = 458
TOKEN_SUBCODES = (SUBCODE_APP_NOT_INSTALLED, SUBCODE_PASSWORD_CHANGED, SUBCODE_EXPIRED, SUBCODE_INVALID)

_TOKEN_MESSAGES = {
    SUBCODE_APP_NOT_INSTALLED: "Error validating access token: The user has not authorized application.",
    SUBCODE_PASSWORD_CHANGED: ("Error validating access token: The session has been invalidated because the user "
                               "changed their password or Facebook has changed the session for security reasons."),
    SUBCODE_EXPIRED: "Error validating access token: Session has expired.",
    SUBCODE_INVALID: "Error validating access token: The session is invalid because the user logged out.",
}


def fbtrace_id() -> str:
    return secrets.token_urlsafe(8)


class GraphError(Exception):
    """An error the sandbox answers with: HTTP `status` and Graph's error object."""

    def __init__(self, code: int, message: str, *, subcode: int | None = None, status: int = 400,
                 error_type: str = "OAuthException", transient: bool | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.subcode = code, message, subcode
        self.status, self.error_type, self.transient = status, error_type, transient
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.error_type, "code": self.code}
        if self.transient is not None:
            error["is_transient"] = self.transient
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["fbtrace_id"] = fbtrace_id()
        return {"error": error}


def invalid_parameter(message: str, *, subcode: int | None = None) -> GraphError:
    """Code 100, "Invalid parameter" (a GraphMethodException for a bad id, OAuthException otherwise)."""
    return GraphError(100, f"(#100) {message}", subcode=subcode)


def unsupported_get(object_id: str) -> GraphError:
    """What Graph answers for an id that does not exist or the token may not read."""
    return GraphError(100, f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be "
                           "loaded due to missing permissions, or does not support this operation. Please read "
                           "the Graph API documentation at https://developers.facebook.com/docs/graph-api",
                      subcode=33, error_type="GraphMethodException")


def token_required() -> GraphError:
    return GraphError(104, "An access token is required to request this resource.")


def token_unparsable() -> GraphError:
    """Code 190 without a subcode: a string that was never a token."""
    return GraphError(190, "Invalid OAuth access token - Cannot parse access token")


def token_rejected(subcode: int) -> GraphError:
    """Code 190 with the subcode that says why (expired, password changed, invalid...)."""
    return GraphError(190, _TOKEN_MESSAGES.get(subcode, "Error validating access token."), subcode=subcode)


def server_error(status: int) -> GraphError:
    """Code 2, "Temporary issue due to downtime. Wait and retry the operation."."""
    return GraphError(2, "An unexpected error has occurred. Please retry your request later.",
                      status=status, transient=True)
