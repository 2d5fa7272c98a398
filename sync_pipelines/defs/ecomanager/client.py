"""EcoManager shop API v2 as a resource: each store's orders, newest first or complete.

Contract (EcoManager's published v2 docs and its public clients): a store is reached at
`https://{store}.ecomanager.dz/api/shop/v2/…` with `Authorization: Bearer <the store's API token>`
and `Accept: application/json` (a Laravel app: without it a 401 becomes a redirect to a login
page). `GET orders` takes `per_page` (100, the largest page public clients use) and `sort=-id`
(newest first) and answers Laravel's cursor paginator `{data, links, meta{next_cursor, …}}`; the
next page is the same request plus `cursor=<meta.next_cursor>` (`links.next` drops `per_page`
and `sort`, so the cursor is re-sent with our own parameters rather than following the link). A
keyset cursor does not drift while orders arrive; `page=N` offsets do (the sandbox's tests show
it), so pages are never numbered here.

`GET orders/{id}` answers the order unwrapped (the webhook body is "formatted exactly like the
response from the Retrieve a single order endpoint"). EcoManager publishes no rate limit: we
pace each store at `requests_per_minute` (60, Laravel's default API throttle), read Laravel's
`X-RateLimit-Limit`/`X-RateLimit-Remaining` (and `X-RateLimit-Reset`) when sent, and otherwise
rely on 429 + `Retry-After`, which core/http honours.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sync_pipelines.core.dg.resources import HttpApiResource, setting
from sync_pipelines.core.http import (
    ApiSession,
    MalformedResponseError,
    RateLimitHeaders,
    RequestFailed,
    paginate_body_cursor,
    rate_limiter_for,
)
from sync_pipelines.core.registry import Account
from sync_pipelines.defs.ecomanager.provider import NAME, normalise_store

PROVIDER = NAME
Pages = Iterator[list[dict[str, Any]]]

ORDERS_PATH = "/api/shop/v2/orders"
WEBHOOKS_PATH = "/api/shop/v2/webhooks"
BASE_URL_ENV = "ECOMANAGER_BASE_URL"
DEFAULT_BASE_URL = "https://{store}.ecomanager.dz"
PER_PAGE_MAX = 100

_RATE_LIMIT_HEADERS = RateLimitHeaders(
    limit="X-RateLimit-Limit", remaining="X-RateLimit-Remaining", reset="X-RateLimit-Reset"
)


def store_base_url(template: str, store: str) -> str:
    """`template` with `{store}` replaced by the store's subdomain; a template without `{store}`
    (one host serving every store) is used as it is."""
    return template.replace("{store}", store).rstrip("/")


def _int_id(order: Any) -> int | None:
    """An order's id as an int (EcoManager sends numbers; digit strings are read too), else None."""
    value = order.get("id") if isinstance(order, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


class EcoManagerSession(ApiSession):
    """One store's view of the API: a single HTTP session and its call statistics."""

    def orders_newest_first(self, since: datetime | None = None) -> Pages:
        """Pages of orders, highest id first, fetched one at a time as the caller asks: a caller
        that stops at the first id it already has pays for exactly the pages it read. Ids must
        fall strictly from one order to the next; if they do not (an API that ignored `sort=-id`),
        raising beats silently stopping at the wrong place."""
        last: int | None = None
        pages = paginate_body_cursor(self.http, ORDERS_PATH, params={"per_page": self.page_size, "sort": "-id"})
        try:
            for page in pages:
                for order in page:
                    order_id = _int_id(order)
                    if order_id is not None:
                        if last is not None and order_id >= last:
                            raise self.http._error(
                                MalformedResponseError,
                                f"orders are not newest first (id {order_id} after {last}) despite sort=-id",
                                ORDERS_PATH)
                        last = order_id
                yield page
        finally:
            pages.close()

    def orders(self, since: datetime | None = None) -> Pages:
        """Every order of the store, lowest id first (the daily reconciliation). The API has no
        updated-since filter, so `since` is unused; orders created during the walk have higher
        ids and are still reached."""
        return paginate_body_cursor(self.http, ORDERS_PATH, params={"per_page": self.page_size, "sort": "id"})

    def order(self, order_id: int | str) -> dict[str, Any] | None:
        """One order as the API (and a webhook) renders it; None when the store has no such
        order (deleted, or never existed)."""
        try:
            body = self.http.get_json(f"{ORDERS_PATH}/{quote(str(order_id), safe='')}")
        except RequestFailed as error:
            if error.status == 404:
                return None
            raise
        if isinstance(body, dict) and "id" not in body and isinstance(body.get("data"), dict):
            return body["data"]  # tolerate a resource wrapped in {"data": …}
        if not isinstance(body, dict):
            raise self.http._error(MalformedResponseError, "an order is not a JSON object", f"{ORDERS_PATH}/{order_id}")
        return body


    # ------------------------------------------------------------ webhooks
    def webhooks(self) -> list[dict[str, Any]]:
        """The store's webhooks (`GET api/shop/v2/webhooks`, cursor paged like the orders)."""
        pages = paginate_body_cursor(self.http, WEBHOOKS_PATH, params={"per_page": self.page_size})
        return [webhook for page in pages for webhook in page]

    def create_webhook(self, *, name: str, event: str, delivery_url: str, secret: str,
                       active: bool = True) -> dict[str, Any]:
        """`POST api/shop/v2/webhooks`. Activating sends EcoManager's validation GET to
        `delivery_url`, so the receiver must already answer it with 200 (else RequestFailed, 422)."""
        return self.http.send_json("POST", WEBHOOKS_PATH, {
            "name": name, "event": event, "http_method": "post", "delivery_url": delivery_url,
            "secret": secret, "is_active": active})

    def set_webhook_active(self, webhook_id: int, active: bool) -> dict[str, Any]:
        """`PUT api/shop/v2/webhooks/{id}/status` (activation sends the validation GET again)."""
        return self.http.send_json("PUT", f"{WEBHOOKS_PATH}/{int(webhook_id)}/status", {"status": active})

    def delete_webhook(self, webhook_id: int) -> None:
        """`DELETE api/shop/v2/webhooks/{id}` (EcoManager answers 201)."""
        self.http.send_json("DELETE", f"{WEBHOOKS_PATH}/{int(webhook_id)}")


class EcoManagerClient(HttpApiResource):
    """EcoManager shop API v2. `sync-pipelines dev` points it at the sandbox through `ECOMANAGER_BASE_URL`."""

    base_url_template: str | None = None
    """Each store's base URL, `{store}` replaced by its subdomain; unset: `ECOMANAGER_BASE_URL` (read at
    run time), else https://{store}.ecomanager.dz. A value without `{store}` is used for every store."""
    requests_per_minute: int | None = 60
    """Per store (EcoManager publishes no limit; 60 is Laravel's default API throttle). None: unpaced."""
    page_size: int = 100
    """`per_page` of order listings (at most 100)."""

    def session(self, account: Account) -> EcoManagerSession:
        if not 1 <= self.page_size <= PER_PAGE_MAX:
            raise ValueError(f"page_size must be between 1 and {PER_PAGE_MAX}, not {self.page_size}")
        store = normalise_store(account.account)
        limiter = rate_limiter_for(
            f"{PROVIDER}:{store}",
            rate_per_second=self.requests_per_minute / 60 if self.requests_per_minute else None,
            # No burst: a burst on top of 60/min sends 65 in a fixed 60-s window and the 61st is
            # refused (benchmarks-cod.md); evenly spaced, a store is read as fast without a 429.
            burst=1,
        )
        http = self.http_client(
            integration=PROVIDER,
            account=account,
            base_url=store_base_url(setting(self.base_url_template, BASE_URL_ENV, DEFAULT_BASE_URL), store),
            headers={"Authorization": f"Bearer {account.secret()}", "Accept": "application/json"},
            rate_limiter=limiter,
            rate_limit_headers=_RATE_LIMIT_HEADERS,
        )
        return EcoManagerSession(http, self.page_size)
