"""Maystro's store API as a resource that yields pages of orders, 10 requests in flight.

Contract (the seed's maystro.service.ts and its Maystro notes, the published client of this API):
`Authorization: Token <key>` (one key per store), base URL `https://backend.maystro-delivery.com`;
`GET /api/stores/orders/?page=N` answers Django REST framework page numbers under `list`:
`{"list": {"count", "next", "previous", "results"}}`, 20 orders a page; the seed fetched 10 pages
at once. The page count comes from `list.count` and the first page's length, and pages after the
last planned one are followed while a page still has a `next` (orders arriving mid-sync lengthen
the listing). A page past the end is DRF's 404 `{"detail": "Invalid page."}`: the listing ended
(orders were removed while paging), not an error. Webhook management:
`/api/stores/hooks/types/`, `/api/stores/hooks/costume/` (list, create `{endpoint,
trigger_type_id}`, delete), `/api/stores/hooks/test/request/`.

Rate: Maystro publishes no limit and sends no rate-limit headers. The seed spaced requests 50 ms
apart (1,200 a minute); we default to half that, 600 a minute per store (10 a second, bursts of
`max_in_flight`), and a 429 with `Retry-After` pauses every thread of the store's session.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sync_pipelines.core.concurrent_pages import Page, concurrent_pages
from sync_pipelines.core.dg.resources import HttpApiResource, setting
from sync_pipelines.core.http import ApiSession, HttpClient, MalformedResponseError, RequestFailed, rate_limiter_for
from sync_pipelines.core.registry import Account
from sync_pipelines.defs.maystro.provider import NAME

PROVIDER = NAME
Pages = Iterator[list[dict[str, Any]]]

BASE_URL_ENV = "MAYSTRO_BASE_URL"
DEFAULT_BASE_URL = "https://backend.maystro-delivery.com"
ORDERS_PATH = "/api/stores/orders/"
HOOKS_PATH = "/api/stores/hooks/costume/"


class MaystroSession(ApiSession):
    """One store's view of the API: one HTTP session (shared by the page threads) and its statistics."""

    def __init__(self, http: HttpClient, page_size: int, max_in_flight: int):
        super().__init__(http, page_size)
        self.max_in_flight = max_in_flight

    def orders(self, since: datetime | None = None) -> Pages:
        """Every order of the store, a page (20) at a time, in listing order; `since` is unused
        (the listing has no updated-since filter documented)."""
        return concurrent_pages(self.http, self._orders_page, max_in_flight=self.max_in_flight)

    def order_by_reference(self, reference: str) -> dict[str, Any] | None:
        """The order whose `external_order_id` is `reference` (the seed's getOrderByReference)."""
        results = self._list_body(self.http.get_json(ORDERS_PATH, {"external_order_id": reference}))["results"]
        return results[0] if results else None

    def _orders_page(self, number: int) -> Page:
        try:
            body = self.http.get_json(ORDERS_PATH, {"page": number})  # the seed asks ?page=1 too
        except RequestFailed as error:
            if error.status == 404 and number > 1:  # "Invalid page.": the listing got shorter
                return Page([], False)
            raise
        listing = self._list_body(body)
        results, count = listing["results"], listing.get("count")
        size = len(results) if listing.get("next") and results else self.page_size
        total = -(-count // size) if isinstance(count, int) and size > 0 else None
        return Page(results, bool(listing.get("next")), total)

    def _list_body(self, body: Any) -> dict[str, Any]:
        listing = body.get("list") if isinstance(body, dict) else None
        if not isinstance(listing, dict) or not isinstance(listing.get("results"), list):
            raise self.http._error(MalformedResponseError, "response has no list.results", ORDERS_PATH)
        return listing

    # ------------------------------------------------------------- webhook management
    def hook_types(self) -> list[dict[str, Any]]:
        return self.http.get_json("/api/stores/hooks/types/").get("results") or []

    def hooks(self) -> list[dict[str, Any]]:
        return self.http.get_json(HOOKS_PATH).get("results") or []

    def create_hook(self, endpoint: str, trigger_type_id: str) -> dict[str, Any]:
        return self.http.send_json("POST", HOOKS_PATH, {"endpoint": endpoint, "trigger_type_id": trigger_type_id})

    def delete_hook(self, hook_id: str) -> None:
        self.http.send_json("DELETE", f"{HOOKS_PATH}{hook_id}/")

    def send_test_hook(self) -> None:
        self.http.send_json("POST", "/api/stores/hooks/test/request/")

    def ensure_hook(self, endpoint: str, event: str = "OrderStatusChanged") -> dict[str, Any]:
        """The hook sending `event` (or "all") to `endpoint`, created when missing."""
        for hook in self.hooks():
            if hook.get("endpoint") == endpoint:
                return hook
        types = {t.get("name"): str(t.get("id")) for t in self.hook_types()}
        trigger = types.get(event) or types.get("all")
        if trigger is None:
            raise self.http._error(MalformedResponseError, f"no webhook type {event!r} offered", HOOKS_PATH)
        return self.create_hook(endpoint, trigger)


class MaystroClient(HttpApiResource):
    """Maystro's store API. `sync-pipelines dev` points it at the sandbox through `MAYSTRO_BASE_URL`."""

    base_url: str | None = None
    """The API's base URL; unset: `MAYSTRO_BASE_URL` (read at run time), else https://backend.maystro-delivery.com."""
    page_size: int = 20
    """Orders per page (the API's default, 20): with `list.count`, how many pages to ask for."""
    max_in_flight: int = 10
    """Pages requested at once per store (the seed's concurrency)."""
    requests_per_minute: int | None = 600
    """Per store; Maystro publishes none (see the module docstring). None: no pacing but 429s."""

    def session(self, account: Account) -> MaystroSession:
        limiter = rate_limiter_for(
            f"{PROVIDER}:{account.account}",
            rate_per_second=self.requests_per_minute / 60 if self.requests_per_minute else None,
            burst=self.max_in_flight,
        )
        http = self.http_client(
            integration=PROVIDER,
            account=account,
            base_url=setting(self.base_url, BASE_URL_ENV, DEFAULT_BASE_URL),
            headers={"Authorization": f"Token {account.secret()}", "Accept": "application/json"},
            rate_limiter=limiter,
            rate_limit_headers=None,
            pool_size=self.max_in_flight,
        )
        return MaystroSession(http, self.page_size, self.max_in_flight)
