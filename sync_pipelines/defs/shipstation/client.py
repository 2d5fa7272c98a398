"""ShipStation API v2 as a resource that yields pages of records.

Auth is the `api-key` header, one key per store (the registry names the env var holding it).
Lists page through `links.next.href` (stopping at an empty page or when `page` reaches `pages`);
the default limit is 200 requests a minute per key, with `X-Rate-Limit-*` headers and 429 +
`Retry-After` beyond it. v2 lists have no modified-since filter, so every sync pages through the
whole list (`since` is unused) and the upsert skips the records that did not change.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sync_pipelines.core.http import ApiSession, RateLimitHeaders, paginate_links_next, rate_limiter_for
from sync_pipelines.core.registry import Account
from sync_pipelines.core.dg.resources import HttpApiResource, setting
from sync_pipelines.defs.shipstation.provider import NAME

PROVIDER = NAME
Pages = Iterator[list[dict[str, Any]]]

_RATE_LIMIT_HEADERS = RateLimitHeaders(
    limit="X-Rate-Limit-Limit", remaining="X-Rate-Limit-Remaining", reset="X-Rate-Limit-Reset"
)


class ShipStationSession(ApiSession):
    """One store's view of the API: a single HTTP session and its call statistics."""

    def warehouses(self, since: datetime | None = None) -> Pages:
        yield self.http.get_json("/v2/warehouses")["warehouses"]

    def inventory_warehouses(self, since: datetime | None = None) -> Pages:
        return self._list("/v2/inventory_warehouses", "inventory_warehouses", "limit")

    def inventory_locations(self, since: datetime | None = None) -> Pages:
        return self._list("/v2/inventory_locations", "inventory_locations", "limit")

    def products(self, since: datetime | None = None) -> Pages:
        return self._list("/v2/products", "products", "page_size")

    def inventory(self, since: datetime | None = None) -> Pages:
        return self._list("/v2/inventory", "inventory", "limit")

    def _list(self, path: str, items_key: str, size_param: str) -> Pages:
        return paginate_links_next(
            self.http, path, params={size_param: self.page_size}, items_key=items_key
        )



BASE_URL_ENV = "SHIPSTATION_BASE_URL"
DEFAULT_BASE_URL = "https://api.shipstation.com"


class ShipStationClient(HttpApiResource):
    """ShipStation API v2. `sync-pipelines dev` points it at the sandbox through `SHIPSTATION_BASE_URL`."""

    base_url: str | None = None
    """The API's base URL; unset: `SHIPSTATION_BASE_URL` (read at run time), else https://api.shipstation.com."""
    requests_per_minute: int | None = 200
    page_size: int = 100

    def session(self, account: Account) -> ShipStationSession:
        limiter = rate_limiter_for(
            f"{PROVIDER}:{account.account}",
            rate_per_second=self.requests_per_minute / 60 if self.requests_per_minute else None,
            burst=5,
        )
        http = self.http_client(
            integration=PROVIDER,
            account=account,
            base_url=setting(self.base_url, BASE_URL_ENV, DEFAULT_BASE_URL),
            headers={"api-key": account.secret(), "Accept": "application/json"},
            rate_limiter=limiter,
            rate_limit_headers=_RATE_LIMIT_HEADERS,
        )
        return ShipStationSession(http, self.page_size)
