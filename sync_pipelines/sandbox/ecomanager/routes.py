"""EcoManager shop API v2 as the sync uses it: orders (cursor and legacy offset paging) and webhooks.

Every store is served under ``/stores/{store}`` (so one port serves many stores: a client's base URL
template is ``http://127.0.0.1:PORT/stores/{store}``), each with its own Bearer token.

Contract: EcoManager's published v2 docs (``GET api/shop/v2/webhooks`` answers Laravel's cursor
paginator: ``{data, links{first,last,prev,next}, meta{path, per_page, next_cursor, prev_cursor}}``,
the cursor being base64 JSON such as ``{"id":905448,"_pointsToNextItems":true}``; webhook CRUD at
``api/shop/v2/webhooks``; a deleted webhook answers 201 ``{"success": ...}``) and the public clients
of ``GET api/shop/v2/orders`` (``per_page``, ``sort=-id``, ``cursor``, ``meta.next_cursor``).
Errors are Laravel's JSON: ``{"message": ...}`` (401 "Unauthenticated.", 404, 429 "Too Many
Attempts." with ``Retry-After``), 422 adds ``errors``. Where the docs are silent the choices are ours
and said here: ``per_page`` defaults to 15 (Laravel's default) and may not exceed 100 (422);
``sort`` is ``id`` (the default) or ``-id`` (``sort_direction=asc|desc`` is accepted as an alias);
a cursor that does not decode is a 422 (Laravel would silently restart from the first page);
``page=N`` without a cursor is offset paging with Laravel's length-aware shape.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sync_pipelines.sandbox.base import bounded_int, json_response
from sync_pipelines.sandbox.control import dumps
from sync_pipelines.sandbox.ecomanager.data import StoreOrders, ecomanager_time
from sync_pipelines.sandbox.ecomanager.webhooks import EVENTS, probe

PER_PAGE_DEFAULT = 15
PER_PAGE_MAX = 100
API = "/stores/{store}/api/shop/v2"
_GARBAGE_BODY = b"<html><body><h1>502 Bad Gateway</h1></body></html>\x00\xff{\"data\": [,"


class ApiError(Exception):
    """An error answer: Laravel's ``{"message": ...}`` (plus ``errors`` for a 422)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message}
        if self.field is not None:
            body["errors"] = {self.field: [self.message]}
        return body


def encode_cursor(key: int, forward: bool) -> str:
    """Laravel's cursor: URL-safe base64 of ``{"id": key, "_pointsToNextItems": forward}``, unpadded."""
    raw = json.dumps({"id": key, "_pointsToNextItems": forward}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, bool]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        key, forward = data["id"], data["_pointsToNextItems"]
        if isinstance(key, bool) or not isinstance(key, int) or not isinstance(forward, bool):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise ApiError(422, "The cursor is invalid.", "cursor") from None
    return key, forward


def _per_page(request: Request) -> int:
    try:
        return bounded_int(request.query_params.get("per_page"), PER_PAGE_DEFAULT, 1, PER_PAGE_MAX)
    except ValueError as exc:
        raise ApiError(422, f"The per page field {exc}.", "per_page") from None


def _descending(request: Request) -> bool:
    sort = request.query_params.get("sort")
    if sort is None:
        direction = (request.query_params.get("sort_direction") or "asc").lower()
        if direction not in ("asc", "desc"):
            raise ApiError(422, "The selected sort direction is invalid.", "sort_direction")
        return direction == "desc"
    if sort not in ("id", "-id"):
        raise ApiError(422, "The selected sort is invalid.", "sort")
    return sort == "-id"


def keyset_page(request: Request, per_page: int, below: Callable[[int | None, int], list[int]],
                above: Callable[[int | None, int], list[int]], descending: bool) -> tuple[list[int], dict[str, Any]]:
    """The ids of one cursor page and its ``links``/``meta``: keyset on id, so a page never shifts
    when records are added or removed elsewhere in the listing."""
    raw = request.query_params.get("cursor")
    cursor = decode_cursor(raw) if raw else None
    ahead, behind = (below, above) if descending else (above, below)
    if cursor is None or cursor[1]:
        ids = ahead(cursor[0] if cursor else None, per_page + 1)
        more_ahead, more_behind = len(ids) > per_page, cursor is not None
        ids = ids[:per_page]
    else:
        ids = behind(cursor[0], per_page + 1)
        more_ahead, more_behind = True, len(ids) > per_page
        ids = list(reversed(ids[:per_page]))
    path = str(request.url.replace(query=""))
    next_cursor = encode_cursor(ids[-1], True) if ids and more_ahead else None
    prev_cursor = encode_cursor(ids[0], False) if ids and more_behind else None
    return ids, {
        "links": {"first": None, "last": None,
                  "prev": f"{path}?cursor={prev_cursor}" if prev_cursor else None,
                  "next": f"{path}?cursor={next_cursor}" if next_cursor else None},
        "meta": {"path": path, "per_page": per_page, "next_cursor": next_cursor, "prev_cursor": prev_cursor},
    }


def render_webhook(webhook: dict[str, Any]) -> dict[str, Any]:
    """A webhook as the docs show it: headers/payload as ``[{key: value}]``, is_active 1/0."""
    return {**webhook, "headers": [{h["key"]: h["value"]} for h in webhook["headers"]],
            "payload": [{p["key"]: p["value"]} for p in webhook["payload"]],
            "is_active": 1 if webhook["is_active"] else 0}


class EcoManagerRoutes:
    """The ``/stores/{store}/api/shop/v2/*`` routes of `EcoManagerSandbox` (mixed into it)."""

    def _api_routes(self) -> list[Route]:
        api = self._api
        return [
            Route(f"{API}/orders", api(self._list_orders), methods=["GET"]),
            Route(API + "/orders/{order_id}", api(self._get_order), methods=["GET"]),
            Route(f"{API}/webhooks", api(self._webhooks), methods=["GET", "POST"]),
            Route(API + "/webhooks/{webhook_id}", api(self._webhook), methods=["GET", "PUT", "DELETE"]),
            Route(API + "/webhooks/{webhook_id}/status", api(self._webhook_status), methods=["PUT"]),
            Route("/stores/{store}/{rest:path}", api(self._not_found),
                  methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ]

    def _api(self, handler: Callable[[Request, StoreOrders, Any], tuple[int, Any]]):
        """Cross-cutting behaviour in a Laravel app's order: unknown store (404) → Bearer token
        (401, counted before anything else) → the store's rate limit (429) → injected faults →
        the handler (in the thread pool: an activation probe may call back into this server)."""

        async def endpoint(request: Request) -> Response:
            await self.faults.delay()
            name = request.path_params["store"]
            with self._lock:
                store = self._accounts.get(name)
            if store is None:
                self._requests.record(None, 404)
                return json_response({"message": f"No EcoManager store {name!r} in this sandbox."}, 404)
            auth = request.headers.get("authorization", "")
            if auth != f"Bearer {store.token}":
                self._requests.record(None, 401)
                return json_response({"message": "Unauthenticated."}, 401)
            decision = self.limiter.hit(name)
            headers: dict[str, str] = {}
            if decision is not None:
                headers = {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining)}
                if not decision.allowed:
                    headers.update({"Retry-After": str(decision.retry_after),
                                    "X-RateLimit-Reset": str(int(self.now()) + decision.retry_after)})
                    self._requests.record(name, 429, rate_limited=True)
                    return json_response({"message": "Too Many Attempts."}, 429, headers)
            fault = self.faults.decide()
            if fault == "429":
                self._requests.record(name, 429, fault_429=True)
                return json_response({"message": "Too Many Attempts."}, 429,
                                     {**headers, "Retry-After": str(self.faults.retry_after_seconds)})
            if fault in ("500", "503"):
                self._requests.record(name, int(fault))
                return json_response({"message": "Server Error" if fault == "500" else "Service Unavailable"},
                                     int(fault), headers)
            body: Any = None
            if request.method in ("POST", "PUT"):
                raw = await request.body()
                try:
                    body = json.loads(raw) if raw.strip() else {}
                except ValueError:
                    body = None
            try:
                if request.method in ("POST", "PUT") and not isinstance(body, dict):
                    raise ApiError(400, "The request body must be a JSON object.")
                status, payload = await run_in_threadpool(handler, request, store, body)
            except ApiError as exc:
                status, payload = exc.status, exc.body()
            self._requests.record(name, status)
            return Response(self.faults.corrupt(dumps(payload), fault, _GARBAGE_BODY), status, headers=headers,
                            media_type="application/json")

        return endpoint

    def _not_found(self, request: Request, store: StoreOrders, body: Any) -> tuple[int, Any]:
        raise ApiError(404, f"The route {request.url.path.split('/', 3)[-1]} could not be found.")

    # ------------------------------------------------------------- orders
    def _list_orders(self, request: Request, store: StoreOrders, body: Any) -> tuple[int, Any]:
        per_page, descending = _per_page(request), _descending(request)
        self._count("orders", store.store)
        with self._lock:
            if request.query_params.get("cursor") is None and request.query_params.get("page") is not None:
                result = self._offset_page(request, store, per_page, descending)
            else:
                ids, paging = keyset_page(request, per_page, store.ids_below, store.ids_above, descending)
                result = {"data": [store.order(i) for i in ids], **paging}
        self._after_orders_request(store.store)
        return 200, result

    def _offset_page(self, request: Request, store: StoreOrders, per_page: int, descending: bool) -> dict[str, Any]:
        """Laravel's length-aware page ``page`` of the listing as it is now (it drifts)."""
        try:
            page = bounded_int(request.query_params.get("page"), 1, 1, None)
        except ValueError as exc:
            raise ApiError(422, f"The page field {exc}.", "page") from None
        total = store.count()
        ids = store.ids_at_offset((page - 1) * per_page, per_page, descending)
        last = max(1, -(-total // per_page))
        path = str(request.url.replace(query=""))

        def url(p: int) -> str:
            return f"{path}?{urlencode({'page': p})}"

        return {"data": [store.order(i) for i in ids],
                "links": {"first": url(1), "last": url(last), "prev": url(page - 1) if page > 1 else None,
                          "next": url(page + 1) if page < last else None},
                "meta": {"current_page": page, "from": (page - 1) * per_page + 1 if ids else None,
                         "last_page": last, "path": path, "per_page": per_page,
                         "to": (page - 1) * per_page + len(ids) if ids else None, "total": total}}

    def _get_order(self, request: Request, store: StoreOrders, body: Any) -> tuple[int, Any]:
        self._count("order", store.store)
        raw = request.path_params["order_id"]
        with self._lock:
            order = store.order(int(raw)) if raw.isdigit() else None
        if order is None:
            raise ApiError(404, f"No query results for model [App\\Models\\Order] {raw}")
        return 200, order

    # ----------------------------------------------------------- webhooks
    def _find_webhook(self, store: StoreOrders, raw: str) -> dict[str, Any]:
        webhook = store.webhooks.get(int(raw)) if raw.isdigit() else None
        if webhook is None:
            raise ApiError(404, f"No query results for model [App\\Models\\Webhook] {raw}")
        return webhook

    def _webhooks(self, request: Request, store: StoreOrders, body: Any) -> tuple[int, Any]:
        self._count("webhooks", store.store)
        if request.method == "POST":
            fields = _webhook_fields(body, partial=False)
            if fields["is_active"]:
                self._activate(fields["delivery_url"])
            with self._lock:
                stamp = ecomanager_time(self.now())
                webhook = {"id": store.next_webhook_id, **fields, "created_at": stamp, "updated_at": stamp}
                store.webhooks[webhook["id"]] = webhook
                store.next_webhook_id += 1
                return 200, render_webhook(webhook)
        per_page = _per_page(request)
        wanted = {int(x) for x in (request.query_params.get("ids") or "").split(",") if x.strip().isdigit()}
        with self._lock:
            keys = sorted(k for k in store.webhooks if not wanted or k in wanted)

            def above(bound: int | None, n: int) -> list[int]:
                return [k for k in keys if bound is None or k > bound][:n]

            def below(bound: int | None, n: int) -> list[int]:
                return [k for k in reversed(keys) if bound is None or k < bound][:n]

            ids, paging = keyset_page(request, per_page, below, above, False)
            return 200, {"data": [render_webhook(store.webhooks[i]) for i in ids], **paging}

    def _webhook(self, request: Request, store: StoreOrders, body: Any) -> tuple[int, Any]:
        self._count("webhooks", store.store)
        with self._lock:
            webhook = dict(self._find_webhook(store, request.path_params["webhook_id"]))
            if request.method == "GET":
                return 200, render_webhook(webhook)
            if request.method == "DELETE":
                del store.webhooks[webhook["id"]]
                return 201, {"success": "Webhook deleted successfully."}
        fields = _webhook_fields(body, partial=True)
        changed = {**webhook, **fields}
        if changed["is_active"] and (not webhook["is_active"] or changed["delivery_url"] != webhook["delivery_url"]):
            self._activate(changed["delivery_url"])
        return 200, self._save_webhook(store, changed)

    def _webhook_status(self, request: Request, store: StoreOrders, body: Any) -> tuple[int, Any]:
        self._count("webhooks", store.store)
        status = body.get("status")
        if not isinstance(status, bool) and status not in (0, 1):
            raise ApiError(422, "The status field must be true or false.", "status")
        with self._lock:
            webhook = dict(self._find_webhook(store, request.path_params["webhook_id"]))
        if status and not webhook["is_active"]:
            self._activate(webhook["delivery_url"])
        return 200, self._save_webhook(store, {**webhook, "is_active": bool(status)})

    def _save_webhook(self, store: StoreOrders, webhook: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if webhook["id"] not in store.webhooks:  # deleted while the probe ran
                raise ApiError(404, f"No query results for model [App\\Models\\Webhook] {webhook['id']}")
            webhook["updated_at"] = ecomanager_time(self.now())
            store.webhooks[webhook["id"]] = webhook
            return render_webhook(webhook)

    def _activate(self, url: str) -> None:
        """The activation GET; no lock held (the URL may be served by this very process)."""
        self._count("probes", None)
        ok, detail = probe(url, self.sender.timeout)
        if not ok:
            raise ApiError(422, f"The delivery url could not be validated ({detail}).", "delivery_url")


def _pairs(value: Any, field: str, most: int) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > most or not all(
            isinstance(p, dict) and isinstance(p.get("key"), str) and "value" in p for p in value):
        raise ApiError(422, f"The {field} field must be a list of at most {most} {{key, value}} pairs.", field)
    return [{"key": p["key"], "value": str(p["value"])} for p in value]


def _webhook_fields(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """A webhook's fields as the create/update docs list them; 422 like Laravel's validator."""
    unknown = set(body) - {"name", "event", "http_method", "delivery_url", "headers", "payload", "secret", "is_active"}
    if unknown:
        raise ApiError(422, f"Unknown fields: {', '.join(sorted(unknown))}.", sorted(unknown)[0])
    required = () if partial else ("name", "event", "delivery_url", "secret", "is_active")
    for field in required:
        if body.get(field) in (None, ""):
            raise ApiError(422, f"The {field.replace('_', ' ')} field is required.", field)
    out: dict[str, Any] = {}
    for field in ("name", "delivery_url", "secret"):
        if field in body:
            if not isinstance(body[field], str) or not body[field]:
                raise ApiError(422, f"The {field.replace('_', ' ')} field must be a string.", field)
            out[field] = body[field]
    if "delivery_url" in out and not out["delivery_url"].startswith(("https://", "http://")):
        raise ApiError(422, "The delivery url field must be a valid URL.", "delivery_url")
    if "event" in body:
        if body["event"] not in EVENTS:
            raise ApiError(422, "The selected event is invalid.", "event")
        out["event"] = body["event"]
    method = str(body.get("http_method") or "post").lower()
    if method not in ("post", "get"):
        raise ApiError(422, "The selected http method is invalid.", "http_method")
    if method == "get":
        raise ApiError(422, "The sandbox delivers webhooks by POST only.", "http_method")
    if not partial or "http_method" in body:
        out["http_method"] = method
    if "is_active" in body:
        if not isinstance(body["is_active"], bool) and body["is_active"] not in (0, 1):
            raise ApiError(422, "The is active field must be true or false.", "is_active")
        out["is_active"] = bool(body["is_active"])
    for field, most in (("headers", 5), ("payload", 10)):
        if not partial or field in body:
            out[field] = _pairs(body.get(field), field, most)
    return out
