"""Maystro's store API as the published client uses it: orders listing and webhook management.

- `GET /api/stores/orders/?page=N` with `Authorization: Token <key>`: Django REST framework page
  numbers under a `list` key, `{"list": {"count", "next", "previous", "results"}}`, 20 per page
  (the seed: "Use default page size as per API docs (20 orders per page)", reading `data.list.results`,
  `data.list.next`, `data.list.count`), newest first; `external_order_id=` filters (the seed's
  `getOrderByReference`). A page past the end is DRF's 404 `{"detail": "Invalid page."}`.
- Errors are DRF's `{"detail": …}`: 401 "Authentication credentials were not provided." /
  "Invalid token." with `WWW-Authenticate: Token`; 429 "Request was throttled. Expected available
  in N seconds." with `Retry-After` (DRF throttling).
- Webhooks (the seed's getWebhookTypes/getWebhooks/createWebhook/deleteWebhook/sendTestWebhook):
  `GET /api/stores/hooks/types/`, `GET|POST /api/stores/hooks/costume/` (`{endpoint,
  trigger_type_id}`), `DELETE /api/stores/hooks/costume/<id>/`, `POST /api/stores/hooks/test/request/`.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sync_pipelines.sandbox.base import json_response
from sync_pipelines.sandbox.control import dumps
from sync_pipelines.sandbox.maystro.data import StoreData

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100  # our choice for `page_size=` (DRF's max_page_size); the default is what matters
HOOK_TYPES = [{"id": "1", "name": "all"}, {"id": "2", "name": "OrderStatusChanged"},
              {"id": "3", "name": "orderCreated"}, {"id": "4", "name": "InventoryMovement"}]
_GARBAGE_BODY = b"<html><body><h1>502 Bad Gateway</h1></body></html>\x00\xff{\"list\": {,"
_AUTH = {"WWW-Authenticate": "Token"}


class NotFound(Exception):
    pass


def drf_page(results: list[Any]) -> dict[str, Any]:
    return {"count": len(results), "next": None, "previous": None, "results": results}


class MaystroRoutes:
    """The `/api/stores/*` routes of `MaystroSandbox` (mixed into it)."""

    def _api_routes(self) -> list[Route]:
        api = self._api
        return [
            Route("/api/stores/orders/", api(self._list_orders), methods=["GET"]),
            Route("/api/stores/hooks/types/", api(self._hook_types), methods=["GET"]),
            Route("/api/stores/hooks/costume/", api(self._hooks), methods=["GET", "POST"]),
            Route("/api/stores/hooks/costume/{hook_id}/", api(self._delete_hook), methods=["DELETE"]),
            Route("/api/stores/hooks/test/request/", api(self._test_hook), methods=["POST"]),
        ]

    def _api(self, handler: Callable[[Request, StoreData, Any], tuple[int, Any]]):
        """Auth (401 before anything counts) → per-key throttle → injected faults → handler;
        every request is counted in flight while it is served (`stats()["peak_in_flight"]`)."""

        async def endpoint(request: Request) -> Response:
            self._enter()
            try:
                await self.faults.delay()
                return await self._serve(request, handler)
            finally:
                self._leave()

        return endpoint

    async def _serve(self, request: Request, handler) -> Response:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "token" or not token.strip():
            self._requests.record(None, 401)
            return json_response({"detail": "Authentication credentials were not provided."}, 401, dict(_AUTH))
        key = token.strip()
        with self._lock:
            store = self._accounts.get(key)
        if store is None:
            self._requests.record(None, 401)
            return json_response({"detail": "Invalid token."}, 401, dict(_AUTH))
        decision = self.limiter.hit(key)
        if decision is not None and not decision.allowed:
            self._requests.record(key, 429, rate_limited=True)
            return json_response({"detail": f"Request was throttled. Expected available in "
                                            f"{decision.retry_after} seconds."}, 429,
                                 {"Retry-After": str(decision.retry_after)})
        fault = self.faults.decide()
        if fault == "429":
            self._requests.record(key, 429, fault_429=True)
            return json_response({"detail": "Request was throttled."}, 429,
                                 {"Retry-After": str(self.faults.retry_after_seconds)})
        if fault in ("500", "503"):
            self._requests.record(key, int(fault))
            return Response(b"<h1>Server Error (500)</h1>", int(fault), media_type="text/html")
        body = None
        if request.method == "POST":
            raw = await request.body()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                self._requests.record(key, 400)
                return json_response({"detail": "JSON parse error"}, 400)
        try:
            status, payload = handler(request, store, body)
        except NotFound as exc:
            status, payload = 404, {"detail": str(exc) or "Not found."}
        self._requests.record(key, status)
        if status == 204:
            return Response(b"", 204)
        return Response(self.faults.corrupt(dumps(payload), fault, _GARBAGE_BODY), status,
                        media_type="application/json")

    def _enter(self) -> None:
        with self._flight_lock:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._flight_lock:
            self._in_flight -= 1

    # ------------------------------------------------------------------ orders
    def _list_orders(self, request: Request, store: StoreData, body: Any) -> tuple[int, Any]:
        self._count("orders", store.api_key)
        query = request.query_params
        try:
            page = int(query.get("page") or 1)
            size = min(int(query.get("page_size") or PAGE_SIZE), MAX_PAGE_SIZE)
            if page < 1 or size < 1:
                raise ValueError
        except ValueError:
            raise NotFound("Invalid page.") from None
        with store.lock:
            wanted = query.get("external_order_id")
            if wanted is not None:
                index = _index_of_reference(store, wanted)
                rows = [store.order(index)] if index else []
                total, results = len(rows), rows[(page - 1) * size:page * size]
            else:
                total = store.size
                results = store.newest_first((page - 1) * size, size)
        pages = max(1, -(-total // size))
        if page > pages:
            raise NotFound("Invalid page.")

        def link(number: int) -> str:
            params = [(k, v) for k, v in query.multi_items() if k != "page"]
            if number > 1:  # DRF drops `page` from the link to page 1
                params.append(("page", str(number)))
            return str(request.url.replace(query=urlencode(params)))

        return 200, {"list": {"count": total, "next": link(page + 1) if page < pages else None,
                              "previous": link(page - 1) if page > 1 else None, "results": results}}

    # ------------------------------------------------------------------- hooks
    def _hook_types(self, request: Request, store: StoreData, body: Any) -> tuple[int, Any]:
        return 200, drf_page(HOOK_TYPES)

    def _hooks(self, request: Request, store: StoreData, body: Any) -> tuple[int, Any]:
        if request.method == "GET":
            with store.lock:
                return 200, drf_page(list(store.hooks))
        endpoint, trigger = (body or {}).get("endpoint"), (body or {}).get("trigger_type_id")
        errors = {}
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            errors["endpoint"] = ["Enter a valid URL."]
        if str(trigger) not in {t["id"] for t in HOOK_TYPES}:
            errors["trigger_type_id"] = [f'Invalid pk "{trigger}" - object does not exist.']
        if errors:
            return 400, errors
        hook = {"id": str(uuid.uuid4()), "endpoint": endpoint, "trigger_type_id": str(trigger),
                "trigger_type": next(t["name"] for t in HOOK_TYPES if t["id"] == str(trigger))}
        with store.lock:
            store.hooks.append(hook)
        return 201, hook

    def _delete_hook(self, request: Request, store: StoreData, body: Any) -> tuple[int, Any]:
        hook_id = request.path_params["hook_id"]
        with store.lock:
            kept = [h for h in store.hooks if h["id"] != hook_id]
            if len(kept) == len(store.hooks):
                raise NotFound("Not found.")
            store.hooks[:] = kept
        return 204, None

    def _test_hook(self, request: Request, store: StoreData, body: Any) -> tuple[int, Any]:
        """Sends the newest order's status to the store's hooks, as a status change would."""
        if store.size == 0:
            return 400, {"detail": "No order to send."}
        threading.Thread(target=self.send_status_webhooks, args=(store.api_key, [store.size]), daemon=True).start()
        return 200, {"detail": "Test request sent."}


def _index_of_reference(store: StoreData, reference: str) -> int | None:
    if not reference.startswith(store.reference_prefix):
        return None
    try:
        index = int(reference[len(store.reference_prefix):])
    except ValueError:
        return None
    return index if 1 <= index <= store.size else None
