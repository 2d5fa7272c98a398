"""The TikTok sandbox's clock and its own ``/_sandbox/tiktok_ads/*`` endpoints: advertisers,
tokens, queued error codes, the rate limit, restatement, drift and the truth a test compares with.

Health, faults and stats are common to every sandbox (``sandbox.base``); control endpoints are
loopback-only (``sandbox.control``). Token values are accepted and returned here, never logged.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request

from sync_pipelines.sandbox.ad_restatement import RestateControl
from sync_pipelines.sandbox.base import ControlRoute
from sync_pipelines.sandbox.clock import SettableClock
from sync_pipelines.sandbox.control import iso_date, only_fields

PREFIX = "/_sandbox/tiktok_ads"


class TikTokAdsControl(RestateControl, SettableClock):
    """Clock and control plane of `TikTokAdsSandbox` (mixed into it). The clock is real time
    unless set; every advertiser's "today" and token expiry read it."""

    restate_field = "advertiser_id"

    def _control_table(self) -> list[ControlRoute]:
        return [
            (f"{PREFIX}/advertisers", self._ctl_advertisers, ["GET", "POST"]),
            (f"{PREFIX}/tokens", self._ctl_tokens, ["POST"]),
            (f"{PREFIX}/tokens/revoke", self._ctl_revoke, ["POST"]),
            (f"{PREFIX}/fail_next", self._ctl_fail_next, ["POST"]),
            (f"{PREFIX}/rate_limit", self._ctl_rate_limit, ["POST"]),
            (f"{PREFIX}/restate", self._ctl_restate, ["POST"]),
            (f"{PREFIX}/drift", self._ctl_drift, ["POST"]),
            (f"{PREFIX}/clock", self._ctl_clock, ["GET", "POST"]),
            (f"{PREFIX}/report", self._ctl_report, ["GET"]),
        ]

    def _health(self) -> dict[str, Any]:
        return {"advertisers": self.advertiser_ids}

    def _ctl_advertisers(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            only_fields(body, {"advertiser_id", "name", "currency", "timezone", "campaigns", "history_start"})
            made = self.add_advertiser(
                str(body.get("advertiser_id", "")), name=body.get("name"), currency=body.get("currency", "USD"),
                timezone=body.get("timezone", "America/Los_Angeles"), campaigns=body.get("campaigns", 5),
                history_start=iso_date(body["history_start"], "history_start") if "history_start" in body else None)
            return {**made.info(), "campaigns": [c.id for c in made.campaigns]}
        with self._lock:
            found = list(self._accounts.values())
        return {"advertisers": {a.advertiser_id: {**a.info(), "campaigns": [{"id": c.id, "name": c.name}
                                                                            for c in a.campaigns]} for a in found}}

    def _ctl_tokens(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {"token", "advertisers", "expires_in", "refreshable"})
        token = self.issue_token(body.get("token"), advertisers=body.get("advertisers"),
                                 expires_in=body.get("expires_in"), refreshable=bool(body.get("refreshable")))
        return {"access_token": token.value, "refresh_token": token.refresh_token, "expires_at": token.expires_at}

    def _ctl_revoke(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {"token"})
        self.tokens.revoke(str(body.get("token", "")))
        return {"revoked": True}

    def _ctl_fail_next(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {"advertiser_id", "code", "n", "message"})
        self.fail_next(str(body.get("advertiser_id", "")), int(body.get("code", 40100)), n=int(body.get("n", 1)),
                       message=body.get("message"))
        return {"queued": True}

    def _ctl_rate_limit(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {"requests_per_second"})
        value = body.get("requests_per_second")
        self.requests_per_second = None if not value else int(value)
        return {"requests_per_second": self.requests_per_second}

    def _ctl_report(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """The truth: every campaign-day row of an advertiser in since..until, as served now."""
        q = request.query_params
        return {"list": self.rows(q.get("advertiser_id", ""), iso_date(q.get("since"), "since"),
                                  iso_date(q.get("until"), "until"))}
