"""The ShipStation sandbox's own ``/_sandbox/*`` endpoints: rate limit knobs, stores, mutations.

The endpoints every sandbox has (health, faults, stats) and the loopback-only rule are in
``sandbox.base`` and ``sandbox.control``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from sync_pipelines.sandbox.base import ControlRoute
from sync_pipelines.sandbox.control import knobs_endpoint, required_name


class ShipStationControl:
    """The control plane of `ShipStationSandbox` (mixed into it)."""

    def _control_table(self) -> list[ControlRoute]:
        return [
            ("/_sandbox/ratelimit", knobs_endpoint(self.limiter), ["GET", "POST"]),
            ("/_sandbox/stores", self._ctl_stores, ["GET", "POST"]),
            ("/_sandbox/mutate", self._ctl_mutate, ["POST"]),
        ]

    def _health(self) -> dict[str, Any]:
        return {"stores": self.api_keys}

    def _ctl_stores(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            api_key = required_name(body, "api_key")
            self.add_store(api_key, products=int(body.get("products", 50)),
                           warehouses=int(body.get("warehouses", 2)),
                           locations_per_warehouse=int(body.get("locations_per_warehouse", 3)))
            return {"api_key": api_key, "counts": self.store(api_key).counts()}
        with self._lock:
            return {"stores": {key: store.counts() for key, store in self._accounts.items()}}

    def _ctl_mutate(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        api_key = body.get("api_key")
        if not isinstance(api_key, str):
            raise ValueError("api_key is required")
        unknown = set(body) - {"api_key", "update_products", "add_products", "update_inventory",
                               "rename_warehouse", "drift"}
        if unknown:
            raise ValueError(f"unknown mutations {sorted(unknown)}")
        if body.get("drift"):
            return self.drift(api_key)
        return self.mutate(api_key, update_products=int(body.get("update_products", 0)),
                           add_products=int(body.get("add_products", 0)),
                           update_inventory=int(body.get("update_inventory", 0)),
                           rename_warehouse=bool(body.get("rename_warehouse", False)))
