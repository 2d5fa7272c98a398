"""The Admin REST routes: ``/shops/{shop}/admin/api/{version}/...`` (standing in for
``https://{shop}/admin/api/{version}/...``): shop, orders, customers, products and their counts,
with Shopify's order of checks, its leaky bucket reported in ``X-Shopify-Shop-Api-Call-Limit``
and keyset ``page_info`` paging. The ``webhooks.json`` resource is in ``subscriptions``.
"""

from __future__ import annotations

import bisect
import hmac
import json
import re
import uuid
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sync_pipelines.sandbox.base import json_response
from sync_pipelines.sandbox.control import dumps
from sync_pipelines.sandbox.shopify.data import RENDER, RESOURCES, ShopData, only_fields, shop_json
from sync_pipelines.sandbox.shopify.query import (
    NOT_FOUND, PAGINATION_DOCS, ApiError, decode_page_info, encode_page_info, filters_from_query, parse_limit,
    parse_order, row_matcher, sort_key,
)

CALL_LIMIT_HEADER = "X-Shopify-Shop-Api-Call-Limit"
SUPPORTED_API_VERSIONS = ("2025-01", "2025-04", "2025-07", "2025-10", "2026-01", "2026-04",
                          "2026-07", "2026-10", "unstable")
UNAUTHORIZED = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
_GARBAGE_BODY = b"<html><body><h1>502 Bad Gateway</h1></body></html>\x00\xff{\"orders\": [,"


def _json(payload: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return json_response(payload, status, headers, media_type="application/json; charset=utf-8")


class ShopifyRoutes:
    """The Admin REST routes of `ShopifySandbox` (mixed into it)."""

    def _api_routes(self) -> list[Route]:
        return [Route("/shops/{shop}/admin/api/{version}/{rest:path}", self._admin,
                      methods=["GET", "POST", "PUT", "DELETE"])]

    async def _admin(self, request: Request) -> Response:
        """Shopify's order: unknown shop/version 404 -> token 401 (uncounted) -> leaky bucket
        -> injected faults -> the handler."""
        await self.faults.delay()
        domain, version = request.path_params["shop"], request.path_params["version"]
        with self._lock:
            data = self._accounts.get(domain)
        if data is None or version not in self.api_versions:
            self._requests.record(None, 404)
            return _json(NOT_FOUND, 404)
        token = request.headers.get("x-shopify-access-token", "")
        if not hmac.compare_digest(token.encode(), data.access_token.encode()):
            self._requests.record(domain, 401)
            return _json(UNAUTHORIZED, 401)
        allowed, used = data.bucket.take()
        headers = {CALL_LIMIT_HEADER: f"{used}/{data.bucket.size}", "X-Shopify-API-Version": version,
                   "X-Request-Id": str(uuid.uuid4())}
        throttled = {"errors": f"Exceeded {data.bucket.leak_per_second:g} calls per second for api client. "
                               "Reduce request rates to resume uninterrupted service."}
        if not allowed:
            self._requests.record(domain, 429, rate_limited=True)
            return _json(throttled, 429, {**headers, "Retry-After": "2.0"})
        fault = self.faults.decide()
        if fault == "429":  # not counted: the header may well say the bucket is nearly empty
            headers[CALL_LIMIT_HEADER] = f"{data.bucket.refund()}/{data.bucket.size}"
            retry = self.fault_retry_after or str(self.faults.retry_after_seconds)
            self._requests.record(domain, 429, fault_429=True)
            return _json(throttled, 429, {**headers, "Retry-After": retry})
        if fault in ("500", "503"):
            self._requests.record(domain, int(fault))
            message = "Internal Server Error" if fault == "500" else "Service Unavailable"
            return _json({"errors": message}, int(fault), headers)
        raw = await request.body() if request.method in ("POST", "PUT") else b""
        try:
            status, payload, extra = self._dispatch(request, data, version, request.path_params["rest"], raw)
        except ApiError as exc:
            status, payload, extra = exc.status, exc.payload, {}
        body = self.faults.corrupt(dumps(payload), fault, _GARBAGE_BODY)
        self._requests.record(domain, status)
        return Response(body, status, headers={**headers, **extra}, media_type="application/json; charset=utf-8")

    def _dispatch(self, request: Request, data: ShopData, version: str, rest: str,
                  raw: bytes) -> tuple[int, Any, dict[str, str]]:
        match = re.fullmatch(r"(shop|orders|customers|products|webhooks)(?:/(count|\d+))?\.json", rest)
        method = request.method
        if match is None:
            raise ApiError(404, NOT_FOUND)
        resource, sub = match.groups()
        params = request.query_params
        if resource == "shop":
            if sub or method != "GET":
                raise ApiError(404, NOT_FOUND)
            return 200, {"shop": shop_json(data)}, {}
        if resource == "webhooks":
            return self._webhooks_api(data, version, method, sub, params, raw)
        if method != "GET":
            raise ApiError(404, NOT_FOUND)
        if sub == "count":
            filters = filters_from_query(data, resource, params)
            with self._lock:
                rows, _ = self._view(data, resource, filters, "id asc")
                return 200, {"count": len(rows)}, {}
        fields = [f.strip() for f in (params.get("fields") or "").split(",") if f.strip()] or None
        if sub is not None:
            with self._lock:
                rec = data.by_id[resource].get(int(sub))
                if rec is None:
                    raise ApiError(404, NOT_FOUND)
                return 200, {RESOURCES[resource][0]: only_fields(RENDER[resource](data, rec), fields)}, {}
        return self._list(request, data, resource, fields)

    def _view(self, data: ShopData, resource: str, filters: dict[str, Any],
              order: str) -> tuple[list[Any], list[tuple[int, int]]]:
        """Filtered, sorted rows + their keyset keys; cached until the resource changes, so
        walking 400 pages of 100k orders doesn't re-filter and re-sort each time. Caller
        holds the lock."""
        cache_key = (resource, json.dumps(filters, sort_keys=True), order)
        version = data._versions[resource]
        hit = data._views.get(cache_key)
        if hit is not None and hit[0] == version:
            return hit[1], hit[2]
        rows = data.rows[resource]
        matcher = row_matcher(filters)
        if matcher is not None:
            rows = [rec for rec in rows if matcher(rec)]
        key = sort_key(order)
        if order != "id asc":
            rows = sorted(rows, key=key)
        keys = [key(rec) for rec in rows]
        if len(data._views) >= 16:
            data._views.clear()
        data._views[cache_key] = (version, rows, keys)
        return rows, keys

    def _list(self, request: Request, data: ShopData, resource: str,
              fields: list[str] | None) -> tuple[int, Any, dict[str, str]]:
        """Keyset cursor pagination: page_info = base64url JSON of (filters, order, direction,
        last sort value, last id), so pages stay gap/dup-free while data changes."""
        params = request.query_params
        limit = parse_limit(params)
        if "page_info" in params:
            extra = [name for name in params.keys() if name not in ("page_info", "limit", "fields")]
            if extra:
                raise ApiError(400, {"errors": {extra[0]: f"{extra[0]} cannot be passed when page_info is "
                                                           f"present. See {PAGINATION_DOCS} for more information."}})
            token: dict[str, Any] | None = decode_page_info(params["page_info"], resource)
            filters, order = token["filters"], token["order"]
        else:
            token = None
            filters, order = filters_from_query(data, resource, params), parse_order(params.get("order"))
        with self._lock:
            rows, keys = self._view(data, resource, filters, order)
            if token is None:
                start, end = 0, min(limit, len(rows))
            else:
                last = (token["last_value"], token["last_id"])
                last = last if order.endswith("asc") else (-last[0], -last[1])
                if token["direction"] == "next":
                    start = bisect.bisect_right(keys, last)
                    end = min(start + limit, len(rows))
                else:
                    end = bisect.bisect_left(keys, last)
                    start = max(0, end - limit)
            page = rows[start:end]
            items = [only_fields(RENDER[resource](data, rec), fields) for rec in page]
            links = []
            if page and token is not None and start > 0:
                links.append((page[0], "prev", "previous"))
            if page and end < len(rows):
                links.append((page[-1], "next", "next"))
            attr = {"id": "id", "updated_at": "updated", "created_at": "created"}[order.split()[0]]
            cursors = [(getattr(rec, attr), rec.id, direction, rel) for rec, direction, rel in links]
        headers = {}
        if cursors:
            parts = []
            for value, rec_id, direction, rel in cursors:
                page_info = encode_page_info({"direction": direction, "last_id": rec_id, "last_value": value,
                                               "resource": resource, "order": order, "filters": filters})
                query = {"limit": limit, **({"fields": ",".join(fields)} if fields else {}), "page_info": page_info}
                parts.append(f'<{request.url.replace(query=urlencode(query))}>; rel="{rel}"')
            headers["Link"] = ", ".join(parts)
        return 200, {resource: items}, headers

