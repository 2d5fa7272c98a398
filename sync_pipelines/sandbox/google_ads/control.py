"""The Google Ads sandbox's clock and its own ``/_sandbox/google_ads/*`` endpoints.

Each endpoint mirrors a Python method of the sandbox: customers (add, list), OAuth grants
(grant, revoke) and access tokens (expire), developer tokens, restatement and drift,
throttling, the clock, and mid-stream failures. The endpoints every sandbox has (health,
faults, stats) and the loopback-only rule are in ``sandbox.base`` and ``sandbox.control``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from sync_pipelines.sandbox.base import ControlRoute
from sync_pipelines.sandbox.clock import SettableClock
from sync_pipelines.sandbox.control import only_fields

_PREFIX = "/_sandbox/google_ads"


class GoogleAdsControl(SettableClock):
    """Clock and control plane of `GoogleAdsSandbox` (mixed into it). The clock is real time
    unless set; customers' days, today's partial numbers and token expiry read it."""


    # --------------------------------------------------------------- control
    def _control_table(self) -> list[ControlRoute]:
        return [
            (f"{_PREFIX}/customers", self._ctl_customers, ["GET", "POST"]),
            (f"{_PREFIX}/grants", self._ctl_grant, ["POST"]),
            (f"{_PREFIX}/grants/revoke", self._ctl_revoke, ["POST"]),
            (f"{_PREFIX}/tokens/expire", self._ctl_expire, ["POST"]),
            (f"{_PREFIX}/oauth", self._ctl_oauth, ["GET", "POST"]),
            (f"{_PREFIX}/developer_tokens", self._ctl_developer_tokens, ["GET", "POST"]),
            (f"{_PREFIX}/restate", self._ctl_restate, ["POST"]),
            (f"{_PREFIX}/throttle", self._ctl_throttle, ["GET", "POST"]),
            (f"{_PREFIX}/clock", self._ctl_clock, ["GET", "POST"]),
            (f"{_PREFIX}/stream_errors", self._ctl_stream_errors, ["POST"]),
        ]

    def _health(self) -> dict[str, Any]:
        return {"api_version": self.api_version, "customers": self.customers}

    def _ctl_customers(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            only_fields(body, {"customer_id", "currency_code", "time_zone", "campaigns", "manager_id", "descriptive_name"})
            if "customer_id" not in body:
                raise ValueError("customer_id is required")
            data = self.add_customer(str(body["customer_id"]), currency_code=str(body.get("currency_code", "USD")),
                                     time_zone=str(body.get("time_zone", "America/New_York")),
                                     campaigns=int(body.get("campaigns", 5)), manager_id=body.get("manager_id"),
                                     descriptive_name=body.get("descriptive_name"))
            return self._describe(data)
        with self._lock:
            return {"customers": {cid: self._describe(c) for cid, c in self._accounts.items()}}

    def _describe(self, data: Any) -> dict[str, Any]:
        today = data.today(self.now())
        return {"customer_id": data.customer_id, "currency_code": data.currency_code, "time_zone": data.time_zone,
                "manager_id": data.manager_id, "today": today.isoformat(),
                "campaigns": [{"id": str(c.id), "name": c.name, "status": c.status(today)} for c in data.campaigns]}

    def _ctl_grant(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {"client_id", "client_secret", "customers", "refresh_token"})
        if not isinstance(body.get("client_id"), str) or not isinstance(body.get("client_secret"), str):
            raise ValueError("client_id and client_secret are required")
        customers = body.get("customers")
        if customers is not None and not isinstance(customers, list):
            raise ValueError("customers must be a list of customer ids")
        token = self.grant(body["client_id"], body["client_secret"], customers=customers,
                           refresh_token=body.get("refresh_token"))
        return {"refresh_token": token}

    def _ctl_revoke(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {"refresh_token"})
        self.oauth.revoke(str(body.get("refresh_token")))
        return {"revoked": True}

    def _ctl_expire(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {"refresh_token"})
        return {"expired": self.oauth.expire_access_tokens(body.get("refresh_token"))}

    def _ctl_oauth(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            only_fields(body, {"access_token_seconds", "rotate_refresh_tokens"})
            if "access_token_seconds" in body:
                seconds = int(body["access_token_seconds"])
                if seconds < 1:
                    raise ValueError("access_token_seconds must be >= 1")
                self.oauth.access_token_seconds = seconds
            if "rotate_refresh_tokens" in body:
                self.oauth.rotate_refresh_tokens = bool(body["rotate_refresh_tokens"])
        return self.oauth.snapshot()

    def _ctl_developer_tokens(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            only_fields(body, {"add", "remove", "required"})
            if "required" in body:
                self.developer_token_required = bool(body["required"])
            if body.get("add"):
                self.add_developer_token(str(body["add"]))
            if body.get("remove"):
                with self._lock:
                    self.developer_tokens.discard(str(body["remove"]))
        with self._lock:
            return {"count": len(self.developer_tokens), "required": self.developer_token_required}

    def _ctl_restate(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {"customer_id", "days", "vanish", "drift"})
        customer_id = str(body.get("customer_id", ""))
        if body.get("drift"):
            return self.drift(customer_id)
        return self.restate(customer_id, days=int(body.get("days", 7)), vanish=int(body.get("vanish", 0)))

    def _ctl_throttle(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            only_fields(body, {"requests", "window_seconds", "scope", "retry_delay_seconds", "retry_info", "reset"})
            self.set_throttle(**{k: v for k, v in body.items() if k != "reset"})
            if body.get("reset"):
                self.limiter.reset()
        return self.throttle_snapshot()

    def _ctl_stream_errors(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {"n"})
        return {"pending": self.fail_stream_next(int(body.get("n", 1)))}
