"""TikTok Business API answers: every one is **HTTP 200** with ``{"code", "message", "request_id",
"data"}``; ``code`` 0 is success, anything else an error ("Appendix — Return codes",
https://business-api.tiktok.com/portal/docs?id=1737172488964097; the official SDK's
``tiktok_business/tiktok_code.py`` lists the same numbers).

The codes the sandbox sends: 40001 no permission for the advertiser, 40002 a parameter error,
40100 requests too frequent (also 40132, and 61000 for a blocked burst), 40102 access token
expired, 40103 refresh token expired, 40104 access token missing, 40105 access token invalid or
revoked, 40107 refresh token invalid, 50000 system error, 50002 system timeout.
"""

from __future__ import annotations

import random
import time
from typing import Any

MESSAGES = {
    40001: "No permission to operate advertiser {advertiser_id}. Please check your authorization.",
    40002: "Invalid parameter.",
    40100: "Too many requests. Please retry in some time.",
    40102: "Access token has expired. Please refresh it or re-authorize.",
    40103: "Refresh token has expired. Please re-authorize.",
    40104: "Access token is null. Please pass it in the Access-Token header.",
    40105: "Access token is incorrect or has been revoked.",
    40107: "Refresh token is invalid.",
    40132: "Request frequency is limited.",
    50000: "System error. Please retry.",
    50002: "System timeout. Please retry.",
    61000: "Too many requests: this app is temporarily blocked.",
}


def request_id() -> str:
    """Like TikTok's: a timestamp and random hex."""
    return time.strftime("%Y%m%d%H%M%S") + "".join(random.choice("0123456789ABCDEF") for _ in range(20))


class TikTokError(Exception):
    """An error answer (always HTTP 200)."""

    def __init__(self, code: int, message: str | None = None, **fmt: Any):
        self.code = int(code)
        template = message or MESSAGES.get(self.code, "Error.")
        self.message = template.format(**fmt) if fmt else template
        super().__init__(f"{self.code}: {self.message}")

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "request_id": request_id(), "data": {}}


def param_error(message: str) -> TikTokError:
    return TikTokError(40002, message)


def ok(data: Any) -> dict[str, Any]:
    return {"code": 0, "message": "OK", "request_id": request_id(), "data": data}
