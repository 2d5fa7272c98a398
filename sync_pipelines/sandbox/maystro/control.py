"""The Maystro sandbox's own `/_sandbox/*` endpoints: rate limit, stores, new orders, status changes
(with or without webhooks), webhook URLs and the deliveries sent."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from sync_pipelines.sandbox.base import ControlRoute
from sync_pipelines.sandbox.control import knobs_endpoint, only_fields, required_name


class MaystroControl:
    """The control plane of `MaystroSandbox` (mixed into it)."""

    def _control_table(self) -> list[ControlRoute]:
        return [
            ("/_sandbox/ratelimit", knobs_endpoint(self.limiter), ["GET", "POST"]),
            ("/_sandbox/stores", self._ctl_stores, ["GET", "POST"]),
            ("/_sandbox/orders/add", self._ctl_add, ["POST"]),
            ("/_sandbox/orders/status", self._ctl_status, ["POST"]),
            ("/_sandbox/webhooks", self._ctl_webhooks, ["GET", "POST"]),
        ]

    def _health(self) -> dict[str, Any]:
        return {"stores": self.api_keys}

    def _ctl_stores(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            only_fields(body, {"api_key", "orders", "reference_prefix", "name"})
            api_key = required_name(body, "api_key")
            self.add_store(api_key, orders=int(body.get("orders", 100)),
                           reference_prefix=str(body.get("reference_prefix", "ORD-")), name=body.get("name"))
        with self._lock:
            return {"stores": {key: {"orders": s.size, "name": self.store_name(key)}
                               for key, s in self._accounts.items()}}

    def _ctl_add(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {"api_key", "count"})
        return self.add_orders(str(body.get("api_key")), int(body.get("count", 1)))

    def _ctl_status(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """`{"api_key", "changes": [{"index" or "id", "status"}], "send_webhooks": true}`; a status
        may be any code, one Maystro does not list included."""
        only_fields(body, {"api_key", "changes", "send_webhooks"})
        changes = body.get("changes")
        if not isinstance(changes, list) or not changes:
            raise ValueError("changes: a non-empty list of {index or id, status}")
        parsed = []
        for change in changes:
            if not isinstance(change, dict) or "status" not in change or not ({"index", "id"} & set(change)):
                raise ValueError("each change needs status and index or id")
            parsed.append((int(change["index"]) if "index" in change else str(change["id"]), change["status"]))
        changed = self.set_statuses(str(body.get("api_key")), parsed,
                                    send_webhooks=bool(body.get("send_webhooks", True)))
        return {"changed": changed}

    def _ctl_webhooks(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """POST `{"api_key", "url"}` adds a URL every status change is sent to (besides the hooks
        registered through the API); GET lists the deliveries sent, newest last."""
        if request.method == "POST":
            only_fields(body, {"api_key", "url"})
            url = body.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ValueError("url: an http(s) URL")
            store = self._account(str(body.get("api_key")))
            with store.lock:
                store.webhook_urls.append(url)
        with self._lock:
            stores = dict(self._accounts)
        return {"deliveries": {key: list(s.deliveries) for key, s in stores.items()},
                "urls": {key: list(s.webhook_urls) for key, s in stores.items()}}
