"""The EcoManager sandbox's own ``/_sandbox/*`` endpoints: stores, rate limit, order changes,
mid-sync arrivals, webhook deliveries, clock.

The endpoints every sandbox has (health, faults, stats with per-kind ``calls``: ``orders``,
``order``, ``webhooks``, ``probes``) and the loopback-only rule are in ``sandbox.base`` and
``sandbox.control``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from sync_pipelines.sandbox.base import ControlRoute
from sync_pipelines.sandbox.clock import SettableClock
from sync_pipelines.sandbox.control import knobs_endpoint, only_fields, required_name


class EcoManagerControl(SettableClock):
    """The control plane of `EcoManagerSandbox` (mixed into it)."""

    def _control_table(self) -> list[ControlRoute]:
        return [
            ("/_sandbox/stores", self._ctl_stores, ["GET", "POST"]),
            ("/_sandbox/ratelimit", knobs_endpoint(self.limiter), ["GET", "POST"]),
            ("/_sandbox/orders/add", self._ctl_add, ["POST"]),
            ("/_sandbox/orders/update", self._ctl_update, ["POST"]),
            ("/_sandbox/orders/delete", self._ctl_delete, ["POST"]),
            ("/_sandbox/arrivals", self._ctl_arrivals, ["POST"]),
            ("/_sandbox/drift", self._ctl_drift, ["POST"]),
            ("/_sandbox/webhooks", self._ctl_webhooks, ["GET", "POST"]),
            ("/_sandbox/clock", self._ctl_clock, ["GET", "POST"]),
        ]

    def _health(self) -> dict[str, Any]:
        return {"stores": self.stores}

    def _ctl_stores(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``{"store", "orders"?, "token"?}`` (re)creates a store; GET lists their counts."""
        if request.method == "POST":
            only_fields(body, {"store", "orders", "token"})
            store = _store(body)
            self.add_store(store, orders=int(body.get("orders", 100)), token=body.get("token"))
            return {"store": store, "token": self.store(store).token, "counts": self.store(store).counts()}
        with self._lock:
            return {"stores": {name: store.counts() for name, store in self._accounts.items()}}

    def _ctl_add(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """``{"store", "n"}``: n new orders; their ids."""
        only_fields(body, {"store", "n"})
        return {"added": self.add_orders(_store(body), int(body.get("n", 1)))}

    def _ctl_update(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """``{"store", "id", "order_state"?, "confirmation_state"?, "confirmator_id"?}``: the new order."""
        only_fields(body, {"store", "id", "order_state", "confirmation_state", "confirmator_id"})
        return self.update_order(_store(body), int(body["id"]), order_state=body.get("order_state"),
                                 confirmation_state=body.get("confirmation_state"),
                                 confirmator_id=body.get("confirmator_id"))

    def _ctl_delete(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """``{"store", "id"}``: the deleted order."""
        only_fields(body, {"store", "id"})
        return self.delete_order(_store(body), int(body["id"]))

    def _ctl_arrivals(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """``{"store", "after_requests": k, "add": n}``: n orders arrive after the k-th orders request."""
        only_fields(body, {"store", "after_requests", "add"})
        self.arrive_after(_store(body), int(body.get("after_requests", 1)), int(body.get("add", 1)))
        with self._lock:
            return {"pending": list(self.store(_store(body)).arrivals)}

    def _ctl_drift(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {"store"})
        return self.drift(_store(body))

    def _ctl_webhooks(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """GET: the delivery log; POST knobs ``max_attempts``/``backoff_seconds``/``timeout``,
        ``flush`` (seconds to wait for the queue), ``clear`` (the log)."""
        if request.method == "POST":
            only_fields(body, {"max_attempts", "backoff_seconds", "timeout", "flush", "clear"})
            knobs = {k: body[k] for k in ("max_attempts", "backoff_seconds", "timeout") if k in body}
            if knobs:
                self.sender.configure(**knobs)
            if body.get("flush"):
                self.sender.flush(float(body["flush"]))
            if body.get("clear"):
                self.sender.clear_log()
        return {**self.sender.snapshot(), "deliveries": self.sender.deliveries()}


def _store(body: dict[str, Any]) -> str:
    return required_name(body, "store")
