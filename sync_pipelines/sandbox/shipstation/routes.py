"""ShipStation API v2's read endpoints, as the sync uses them: auth, rate limit, faults, paging.

Contract: ShipStation's published OpenAPI spec (``/v2/warehouses``, ``/v2/inventory_warehouses``,
``/v2/inventory_locations``, ``/v2/products``, ``/v2/inventory``); the sandbox test suite
validates real responses against it. Where the spec is silent the choices are ours and
are written down next to the code (e.g. the ``limit`` maximum).
"""

from __future__ import annotations

import uuid
from typing import Any, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sync_pipelines.sandbox.base import bounded_int, json_response
from sync_pipelines.sandbox.control import dumps
from sync_pipelines.sandbox.shipstation.data import StoreData

PRODUCTS_PAGE_SIZE_MAX = 100  # from the spec (page_size: minimum 1, maximum 100, default 100)
LIMIT_DEFAULT = 100
# The spec declares `limit` on the inventory endpoints with no maximum; 500 is our
# choice, and out-of-range values get a 400 so a client relying on bigger pages
# finds out here rather than in production.
LIMIT_MAX = 500

_GARBAGE_BODY = b"<html><body><h1>502 Bad Gateway</h1></body></html>\x00\xff{\"products\": [,"


def error_body(error_type: str, error_code: str, message: str) -> dict[str, Any]:
    """The spec's ``error_response_body``; note the spec spells the source ``ShipStation``."""
    return {
        "request_id": str(uuid.uuid4()),
        "errors": [{"error_source": "ShipStation", "error_type": error_type,
                    "error_code": error_code, "message": message}],
    }


class _BadRequest(Exception):
    pass


def _int_param(request: Request, name: str, default: int, lo: int, hi: int | None) -> int:
    try:
        return bounded_int(request.query_params.get(name), default, lo, hi)
    except ValueError as exc:
        raise _BadRequest(f"{name} {exc}") from None


class ShipStationRoutes:
    """The ``/v2/*`` routes of `ShipStationSandbox` (mixed into it)."""

    def _api_routes(self) -> list[Route]:
        v2 = self._v2
        return [
            Route("/v2/warehouses", v2(self._list_warehouses), methods=["GET"]),
            Route("/v2/inventory_warehouses", v2(self._list_inventory_warehouses), methods=["GET"]),
            Route("/v2/inventory_locations", v2(self._list_inventory_locations), methods=["GET"]),
            Route("/v2/products", v2(self._list_products), methods=["GET"]),
            Route("/v2/inventory", v2(self._list_inventory), methods=["GET"]),
            Route("/v2/{rest:path}", v2(self._not_found), methods=["GET"]),
        ]

    def _v2(self, handler: Callable[[Request, StoreData], tuple[int, Any]]):
        """Wrap a read handler in the provider's cross-cutting behaviour, in ShipStation's
        order: auth (401 before anything counts) -> per-key rate limit -> injected faults."""

        async def endpoint(request: Request) -> Response:
            await self.faults.delay()
            key = request.headers.get("api-key")
            with self._lock:
                store = self._accounts.get(key) if key else None
            if store is None:
                self._requests.record(None, 401)
                return json_response(error_body("security", "unauthorized",
                                                "The API key is missing or invalid (header 'api-key')."), 401)
            decision = self.limiter.hit(key)
            headers = decision.headers() if decision is not None else {}
            if decision is not None and not decision.allowed:
                headers["Retry-After"] = str(decision.retry_after)
                self._requests.record(key, 429, rate_limited=True)
                return json_response(error_body(
                    "system", "rate_limit_exceeded",
                    f"You have exceeded the rate limit of {decision.limit} requests per "
                    f"{self.limiter.window_seconds:g} seconds. Retry in {decision.retry_after} seconds."),
                    429, headers)
            fault = self.faults.decide()
            if fault == "429":
                headers["Retry-After"] = str(self.faults.retry_after_seconds)
                self._requests.record(key, 429, fault_429=True)
                return json_response(error_body("system", "rate_limit_exceeded",
                                                "You have exceeded the rate limit."), 429, headers)
            if fault in ("500", "503"):
                # The spec's ServerError response is an empty body.
                self._requests.record(key, int(fault))
                return Response(b"", int(fault), headers=headers, media_type="text/plain")
            try:
                status, payload = handler(request, store)
            except _BadRequest as exc:
                status, payload = 400, error_body("validation", "invalid_field_value", str(exc))
            body = self.faults.corrupt(dumps(payload), fault, _GARBAGE_BODY)
            self._requests.record(key, status)
            return Response(body, status, headers=headers, media_type="application/json")

        return endpoint

    def _not_found(self, request: Request, store: StoreData) -> tuple[int, Any]:
        return 404, error_body("validation", "invalid_identifier",
                               f"The sandbox does not emulate {request.url.path}")

    def _list_warehouses(self, request: Request, store: StoreData) -> tuple[int, Any]:
        with self._lock:
            return 200, {"warehouses": list(store.warehouses)}

    def _list_inventory_warehouses(self, request: Request, store: StoreData) -> tuple[int, Any]:
        return self._paged(request, store, "inventory_warehouses", "limit", LIMIT_DEFAULT, LIMIT_MAX, {})

    def _list_inventory_locations(self, request: Request, store: StoreData) -> tuple[int, Any]:
        return self._paged(request, store, "inventory_locations", "limit", LIMIT_DEFAULT, LIMIT_MAX, {})

    def _list_products(self, request: Request, store: StoreData) -> tuple[int, Any]:
        """Ordered by product_id. Filters (spec): ``sku`` exact, ``name`` case-insensitive
        substring, ``active`` true/false."""
        filters = {k: v for k in ("sku", "name", "active") if (v := request.query_params.get(k))}
        if "active" in filters and filters["active"].lower() not in ("true", "false"):
            raise _BadRequest(f"active must be true or false, got {filters['active']!r}")
        return self._paged(request, store, "products", "page_size", PRODUCTS_PAGE_SIZE_MAX,
                           PRODUCTS_PAGE_SIZE_MAX, filters)

    def _list_inventory(self, request: Request, store: StoreData) -> tuple[int, Any]:
        """Filters: ``sku`` (one or comma-separated), ``inventory_warehouse_id``,
        ``inventory_location_id``. ``group_by`` is accepted and ignored: with one location
        per product every grouping returns the same rows."""
        filters = {k: v for k in ("sku", "inventory_warehouse_id", "inventory_location_id")
                   if (v := request.query_params.get(k))}
        return self._paged(request, store, "inventory", "limit", LIMIT_DEFAULT, LIMIT_MAX, filters)

    def _paged(self, request: Request, store: StoreData, items_key: str, size_param: str,
               default_size: int, max_size: int, filters: dict[str, str]) -> tuple[int, Any]:
        """1-based ``page``; a page beyond ``pages`` is an empty list (not an error)."""
        size = _int_param(request, size_param, default_size, 1, max_size)
        page = _int_param(request, "page", 1, 1, None)
        with self._lock:
            rows = self._filtered(store, items_key, filters)
            total = len(rows)
            start = (page - 1) * size
            items = rows[start:start + size]
        pages = -(-total // size)
        last = max(pages, 1)

        def link(p: int) -> dict[str, str]:
            query = urlencode({"page": p, size_param: size, **filters})
            return {"href": str(request.url.replace(query=query))}

        links = {"first": link(1), "last": link(last)}
        if page > 1:
            links["prev"] = link(min(page - 1, last))
        if page < pages:
            links["next"] = link(page + 1)
        return 200, {items_key: items, "total": total, "page": page, "pages": pages, "links": links}

    def _filtered(self, store: StoreData, items_key: str, filters: dict[str, str]) -> list[dict[str, Any]]:
        """Matching rows (caller holds the lock); cached per filter set until the next
        mutation, so walking 1000 filtered pages doesn't rescan 100k rows each time."""
        rows: list[dict[str, Any]] = getattr(store, items_key)
        if not filters:
            return rows
        cache_key = (items_key, tuple(sorted(filters.items())))
        hit = store._filter_cache.get(cache_key)
        if hit is not None and hit[0] == store._version:
            return hit[1]
        if "sku" in filters:  # served from the sku index: skus are unique per store
            wanted = filters["sku"].split(",") if items_key == "inventory" else [filters["sku"]]
            positions = sorted({p for s in wanted if (p := store._pos_by_sku.get(s.strip())) is not None})
            rows = [rows[p] for p in positions]
        checks: list[Callable[[dict[str, Any]], bool]] = []
        if "name" in filters:
            needle = filters["name"].casefold()
            checks.append(lambda row: needle in row["name"].casefold())
        if "active" in filters:
            active = filters["active"].lower() == "true"
            checks.append(lambda row: row["active"] is active)
        for field in ("inventory_warehouse_id", "inventory_location_id"):
            if field in filters:
                checks.append(lambda row, f=field, v=filters[field]: row[f] == v)
        if checks:
            rows = [row for row in rows if all(check(row) for check in checks)]
        if len(store._filter_cache) > 64:
            store._filter_cache.clear()
        store._filter_cache[cache_key] = (store._version, rows)
        return rows

