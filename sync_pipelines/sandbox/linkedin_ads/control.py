"""The LinkedIn sandbox's clock and its ``/_sandbox/linkedin_ads/*`` endpoints: ad accounts,
grants and tokens, the response cap, restatement, drift, and the truth a test compares with.

The endpoints every sandbox has (health, faults, stats) and the loopback-only rule are in
``sandbox.base`` and ``sandbox.control``. Token values are accepted and returned here (the
sandbox's own loopback-only control plane), never logged.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request

from sync_pipelines.sandbox.ad_restatement import RestateControl
from sync_pipelines.sandbox.base import ControlRoute
from sync_pipelines.sandbox.clock import SettableClock
from sync_pipelines.sandbox.control import iso_date, only_fields

PREFIX = "/_sandbox/linkedin_ads"


class LinkedInAdsControl(RestateControl, SettableClock):
    """Clock and control plane of `LinkedInAdsSandbox` (mixed into it). The clock is real time
    unless set; "today" (UTC), token expiry and restatement read it."""

    def _control_table(self) -> list[ControlRoute]:
        return [
            (f"{PREFIX}/accounts", self._ctl_accounts, ["GET", "POST"]),
            (f"{PREFIX}/grants", self._ctl_grants, ["POST"]),
            (f"{PREFIX}/grants/revoke", self._ctl_revoke, ["POST"]),
            (f"{PREFIX}/tokens/expire", self._ctl_expire, ["POST"]),
            (f"{PREFIX}/cap", self._ctl_cap, ["GET", "POST"]),
            (f"{PREFIX}/restate", self._ctl_restate, ["POST"]),
            (f"{PREFIX}/drift", self._ctl_drift, ["POST"]),
            (f"{PREFIX}/clock", self._ctl_clock, ["GET", "POST"]),
            (f"{PREFIX}/analytics", self._ctl_analytics, ["GET"]),
        ]

    def _health(self) -> dict[str, Any]:
        return {"ad_accounts": self.account_ids, "api_versions": list(self.api_versions),
                "max_elements": self.max_elements}

    def _ctl_accounts(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            only_fields(body, {"account_id", "name", "currency", "campaigns"})
            account = self.add_account(str(body.get("account_id", "")), name=body.get("name"),
                                       currency=body.get("currency", "USD"), campaigns=int(body.get("campaigns", 5)))
            return {**account.info(), "campaigns": [c.id for c in account.campaigns]}
        with self._lock:
            accounts = list(self._accounts.values())
        return {"ad_accounts": {a.account_id: {**a.info(), "campaigns": [
            {"id": c.id, "name": c.name, "status": c.status} for c in a.campaigns]} for a in accounts}}

    def _ctl_grants(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """A member's authorisation: ``{"accounts": [...], "lifetime_seconds": …}`` → the tokens a
        connect would store (``accounts connect`` JSON, plus the refresh token's expiry)."""
        only_fields(body, {"accounts", "lifetime_seconds"})
        accounts = body.get("accounts")
        if accounts is not None and not isinstance(accounts, list):
            raise ValueError("accounts must be a list of ad account ids (or absent: every account)")
        refresh, access = self.grant(accounts=accounts, lifetime=float(body.get("lifetime_seconds", 365 * 86400)))
        grant_expiry = self.oauth.grant_expiry(refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_in": self.oauth.access_seconds,
                "refresh_token_expires_in": int(grant_expiry - self.now())}

    def _ctl_revoke(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {"refresh_token"})
        self.revoke(str(body.get("refresh_token", "")))
        return {"revoked": True}

    def _ctl_expire(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, set())
        return {"expired": self.expire_access_tokens()}

    def _ctl_cap(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            only_fields(body, {"max_elements"})
            self.set_max_elements(int(body["max_elements"]))
        return {"max_elements": self.max_elements, "truncated_responses": self.truncated_responses}

    def _ctl_analytics(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """The truth: every campaign-day element of an account in since..until (no cap)."""
        q = request.query_params
        return {"elements": self.elements(q.get("account_id", ""), iso_date(q.get("since"), "since"),
                                          iso_date(q.get("until"), "until"))}
