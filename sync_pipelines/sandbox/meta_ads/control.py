"""The Meta sandbox's clock and its own ``/_sandbox/meta_ads/*`` endpoints: ad accounts, tokens,
report-run behaviour, throttling, restatement, drift and the truth a test compares with.

The endpoints every sandbox has (health, faults, stats) and the loopback-only rule are in
``sandbox.base`` and ``sandbox.control``. Token values are accepted and returned here (it is the
sandbox's own control plane, loopback-only), never logged.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from sync_pipelines.sandbox.ad_restatement import RestateControl
from sync_pipelines.sandbox.base import ControlRoute
from sync_pipelines.sandbox.clock import SettableClock
from sync_pipelines.sandbox.control import iso_date, only_fields

PREFIX = "/_sandbox/meta_ads"


class MetaAdsControl(RestateControl, SettableClock):
    """Clock and control plane of `MetaAdsSandbox` (mixed into it). The clock is real time
    unless set; "today" of every account, token expiry and report-run times read it."""

    def _control_table(self) -> list[ControlRoute]:
        return [
            (f"{PREFIX}/accounts", self._ctl_accounts, ["GET", "POST"]),
            (f"{PREFIX}/tokens", self._ctl_tokens, ["POST"]),
            (f"{PREFIX}/tokens/expire", self._ctl_token_expire, ["POST"]),
            (f"{PREFIX}/tokens/invalidate", self._ctl_token_invalidate, ["POST"]),
            (f"{PREFIX}/jobs", self._ctl_jobs, ["GET", "POST"]),
            (f"{PREFIX}/throttle", self._ctl_throttle, ["GET", "POST"]),
            (f"{PREFIX}/restate", self._ctl_restate, ["POST"]),
            (f"{PREFIX}/drift", self._ctl_drift, ["POST"]),
            (f"{PREFIX}/clock", self._ctl_clock, ["GET", "POST"]),
            (f"{PREFIX}/insights", self._ctl_insights, ["GET"]),
        ]

    def _health(self) -> dict[str, Any]:
        return {"ad_accounts": self.account_ids, "api_versions": list(self.api_versions)}

    def _ctl_accounts(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            only_fields(body, {"account_id", "name", "currency", "timezone_name", "campaigns", "history_start",
                         "account_status"})
            account = self.add_account(
                str(body.get("account_id", "")), name=body.get("name"), currency=body.get("currency", "USD"),
                timezone_name=body.get("timezone_name", "America/Los_Angeles"), campaigns=body.get("campaigns", 5),
                history_start=iso_date(body["history_start"], "history_start") if "history_start" in body else None,
                account_status=int(body.get("account_status", 1)))
            return {**account.info(self.now()), "campaigns": [c.id for c in account.campaigns]}
        with self._lock:
            accounts = list(self._accounts.values())
        return {"ad_accounts": {a.account_id: {**a.info(self.now()), "campaigns": [
            {"id": c.id, "name": c.name} for c in a.campaigns]} for a in accounts}}

    def _ctl_tokens(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {"token", "accounts", "expires_in"})
        accounts = body.get("accounts")
        if accounts is not None and not isinstance(accounts, list):
            raise ValueError("accounts must be a list of ad account ids (or absent: every account)")
        token = self.issue_token(body.get("token"), accounts=accounts,
                                 expires_in=body.get("expires_in", self.token_lifetime))
        return {"access_token": token.value, **token.snapshot(self.now())}

    def _ctl_token_expire(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {"token"})
        self.expire_token(str(body.get("token", "")))
        return {"expired": True}

    def _ctl_token_invalidate(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {"token", "subcode"})
        self.invalidate_token(str(body.get("token", "")), int(body.get("subcode", 460)))
        return {"invalidated": True}

    def _ctl_jobs(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            only_fields(body, {"account_id", "mode", "polls", "over_days", "count", "clear"})
            account_id = str(body.get("account_id", ""))
            if body.get("clear"):
                self.clear_job_behaviour(account_id)
            if "mode" in body:
                self.set_job_behaviour(account_id, str(body["mode"]), polls=int(body.get("polls", 1)),
                                       over_days=body.get("over_days"), count=body.get("count"))
        with self._lock:
            return {"default_polls": self.job_polls,
                    "rules": {a: [r.snapshot() for r in rules] for a, rules in self._job_rules.items()}}

    def _ctl_throttle(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            burst = body.pop("throttle_next", None)
            self.throttle.configure(**body)
            if burst is not None:
                if not isinstance(burst, dict):
                    raise ValueError('throttle_next must look like {"account_id": "1", "code": 17, "n": 2}')
                only_fields(burst, {"account_id", "code", "n", "regain_minutes"})
                self.throttle_next(str(burst.get("account_id", "")), int(burst.get("code", 80000)),
                                   n=int(burst.get("n", 1)), regain_minutes=int(burst.get("regain_minutes", 0)))
        return self.throttle.snapshot()

    def _ctl_insights(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """The truth: every campaign-day row of an account in since..until, as served now."""
        q = request.query_params
        account_id = q.get("account_id", "")
        return {"data": self.rows(account_id, iso_date(q.get("since"), "since"), iso_date(q.get("until"), "until"))}
