"""The Shopify sandbox's clock and its own ``/_sandbox/*`` endpoints: shops, rate limits,
mutations, the clock, fault knobs beyond the common ones, and webhook delivery knobs.

The endpoints every sandbox has (health, faults, stats) and the loopback-only rule are in
``sandbox.base`` and ``sandbox.control``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request

from sync_pipelines.sandbox.base import ControlRoute
from sync_pipelines.sandbox.control import dumps
from sync_pipelines.sandbox.shopify.data import utc_micro
from sync_pipelines.sandbox.shopify.mutations import MUTATIONS
from sync_pipelines.sandbox.clock import SettableClock

TOKEN_PREFIX = "sandbox-shopify-"  # a shop added without a token gets sandbox-shopify-<name>


class ShopifyControl(SettableClock):
    """Clock and control plane of `ShopifySandbox` (mixed into it). The clock is real time
    unless set; mutations and webhook timestamps read it."""


    def _ts(self) -> int:
        return int(self.now())

    # --------------------------------------------------------------- control
    def _control_table(self) -> list[ControlRoute]:
        return [
            ("/_sandbox/shops", self._ctl_shops, ["GET", "POST"]),
            ("/_sandbox/ratelimit", self._ctl_ratelimit, ["POST"]),
            ("/_sandbox/mutate", self._ctl_mutate, ["POST"]),
            ("/_sandbox/clock", self._ctl_clock, ["GET", "POST"]),
            ("/_sandbox/webhooks", self._ctl_webhooks, ["GET", "POST"]),
            ("/_sandbox/webhooks/flush", self._ctl_flush, ["POST"]),
            ("/_sandbox/webhooks/send", self._ctl_send, ["POST"]),
            ("/_sandbox/deliveries", self._ctl_deliveries, ["GET", "POST"]),
        ]

    def _health(self) -> dict[str, Any]:
        return {"api_version": self.api_version, "shops": self.shops}

    def _ctl_shops(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            domain = body.get("shop")
            if not isinstance(domain, str) or not domain:
                raise ValueError("shop (a myshopify domain) is required")
            unknown = set(body) - {"shop", "access_token", "orders", "customers", "products", "timezone",
                                   "plan", "bucket_size", "leak_per_second"}
            if unknown:
                raise ValueError(f"unknown shop settings {sorted(unknown)}")
            token = body.get("access_token") or f"{TOKEN_PREFIX}{domain.split('.')[0]}"
            data = self.add_shop(domain, token, orders=int(body.get("orders", 100)),
                                 customers=int(body.get("customers", 50)), products=int(body.get("products", 30)),
                                 timezone=str(body.get("timezone", "America/New_York")),
                                 plan=str(body.get("plan", "standard")), bucket_size=body.get("bucket_size"),
                                 leak_per_second=body.get("leak_per_second"))
            return {"shop": domain, "access_token": token, "counts": data.counts()}
        with self._lock:
            return {"shops": {d: {"counts": s.counts(), "timezone": s.timezone, "plan": s.plan,
                                  "rate_limit": s.bucket.snapshot()} for d, s in self._accounts.items()}}

    def _ctl_ratelimit(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - {"shop", "bucket_size", "leak_per_second", "plan", "reset"}
        if unknown or not isinstance(body.get("shop"), str):
            raise ValueError(f"need shop; unknown knobs {sorted(unknown)}")
        return self.set_rate_limit(body["shop"], bucket_size=body.get("bucket_size"),
                                   leak_per_second=body.get("leak_per_second"), plan=body.get("plan"),
                                   reset=bool(body.get("reset")))

    def _ctl_mutate(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """Applied in body order as one webhook batch. Counts for MUTATIONS, or
        ``{"ids": [...]}`` for the update/pay/cancel/close/delete ones."""
        shop = body.get("shop")
        if not isinstance(shop, str):
            raise ValueError("shop is required")
        ops = {k: v for k, v in body.items() if k != "shop"}
        unknown = set(ops) - set(MUTATIONS) - {"cart_event", "checkout_event", "touch_same_second", "drift"}
        if unknown:
            raise ValueError(f"unknown mutations {sorted(unknown)}")
        out: dict[str, Any] = {}
        with self._lock, self.batch():
            self.shop(shop)
            for name, arg in ops.items():
                if name == "drift":
                    out[name] = self.drift(shop) if arg else {}
                elif name in ("cart_event", "checkout_event"):
                    out[name] = getattr(self, name)(shop, str(arg))
                elif name == "touch_same_second":
                    if not isinstance(arg, dict):
                        raise ValueError('touch_same_second must look like {"resource": "orders", "id": 1}')
                    out[name] = self.touch_same_second(shop, str(arg.get("resource")), int(arg.get("id")))
                elif isinstance(arg, dict):
                    if not name.startswith(("update", "pay", "cancel", "close", "delete")):
                        raise ValueError(f"{name} takes a count, not ids")
                    out[name] = getattr(self, name)(shop, ids=[int(i) for i in arg.get("ids", [])])
                else:
                    out[name] = getattr(self, name)(shop, int(arg))
        return out

    def _ctl_clock(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            if "set" in body:
                when = body["set"]
                parsed = None if when is None else datetime.fromisoformat(str(when))
                self.set_clock(parsed, frozen=bool(body.get("frozen", True)))
            if body.get("advance"):
                self.advance(float(body["advance"]))
        with self._clock_lock:
            frozen = self._frozen is not None
        return {"now": utc_micro(self.now()), "frozen": frozen}

    def _ctl_faults(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """Faults' knobs plus ``retry_after`` (the exact Retry-After string of injected 429s,
        e.g. "0"; null -> ``retry_after_seconds``)."""
        if request.method == "POST":
            body = dict(body)
            if body.get("reset"):
                self.fault_retry_after = None
            if "retry_after" in body:
                value = body.pop("retry_after")
                retry = None if value is None else str(value)
                if retry is not None:
                    float(retry)  # must parse as seconds
                self.faults.apply_control(body)
                self.fault_retry_after = retry
            else:
                self.faults.apply_control(body)
        return {**self.faults.snapshot(), "retry_after": self.fault_retry_after}

    def _ctl_webhooks(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            knobs = dict(body)
            dup = knobs.pop("duplicate_next", 0)
            if knobs:
                self.sender.configure(**knobs)
            if dup:
                self.sender.duplicate_next(int(dup))
        return self.sender.snapshot()

    def _ctl_flush(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        flushed = self.flush(float(body.get("timeout", 10.0)))
        return {"flushed": flushed, "pending": self.sender.pending()}

    def _ctl_send(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        shop, topic, payload = body.get("shop"), body.get("topic"), body.get("body")
        if not isinstance(shop, str) or not isinstance(topic, str):
            raise ValueError("shop and topic are required")
        raw = payload.encode() if isinstance(payload, str) else dumps(payload)
        headers = body.get("headers") or {}
        if not isinstance(headers, dict):
            raise ValueError("headers must be an object")
        return {"webhook_ids": self.send_raw(shop, topic, raw, headers=headers, address=body.get("address"))}

    def _ctl_deliveries(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST" and body.get("reset"):
            self.sender.clear_log()
        entries = self.deliveries()
        shop = request.query_params.get("shop")
        return {"deliveries": [e for e in entries if not shop or e["shop"] == shop]}

