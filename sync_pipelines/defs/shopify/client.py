"""Shopify Admin REST API as a resource that yields pages of records.

Auth is `X-Shopify-Access-Token`, one token per shop (the registry names the env var). Lists page
through the RFC 8288 `Link` header (`page_info`); a request carrying `page_info` may only add
`limit`/`fields`, which the core paginator respects. Reads are incremental on `updated_at_min`
(inclusive) sorted by `updated_at asc`, so the cursor can advance with every batch; orders need
`status=any` or closed and cancelled orders are silently missed. The rate limit is a leaky
bucket (40 calls, leaking 2/s on standard plans) reported in `X-Shopify-Shop-Api-Call-Limit`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sync_pipelines.core.http import ApiSession, BucketHeader, paginate_link_header, rate_limiter_for
from sync_pipelines.core.registry import Account
from sync_pipelines.core.dg.resources import HttpApiResource, setting
from sync_pipelines.defs.shopify.provider import NAME

PROVIDER = NAME
Pages = Iterator[list[dict[str, Any]]]
PLANS = {"standard": (40, 2.0), "advanced": (80, 4.0), "plus": (400, 20.0)}


class ShopifySession(ApiSession):
    """One shop's view of the Admin API: a single HTTP session and its call statistics."""

    def orders(self, since: datetime | None = None) -> Pages:
        return self._list("orders", since, status="any")

    def customers(self, since: datetime | None = None) -> Pages:
        return self._list("customers", since)

    def products(self, since: datetime | None = None) -> Pages:
        return self._list("products", since)

    def shop(self) -> dict[str, Any]:
        """The shop's settings (`iana_timezone`, currency, plan) from `shop.json`."""
        return self.http.get_json("shop.json")["shop"]

    def ids(self, resource: str, *, created_since: datetime | None = None) -> Iterator[int]:
        """Every id that exists upstream now (for reconciliation), optionally only of records
        created at or after `created_since`: 250 ids per call."""
        extra: dict[str, Any] = {"status": "any"} if resource == "orders" else {}
        if created_since is not None:
            extra["created_at_min"] = created_since.astimezone(UTC).isoformat()
        params = {"limit": 250, "fields": "id", "order": "id asc", **extra}
        for page in paginate_link_header(self.http, f"{resource}.json", params=params, items_key=resource):
            yield from (record["id"] for record in page)

    def _list(self, resource: str, since: datetime | None, **extra: str) -> Pages:
        params: dict[str, Any] = {"limit": self.page_size, "order": "updated_at asc", **extra}
        if since is not None:
            params["updated_at_min"] = since.astimezone(UTC).isoformat()
        return paginate_link_header(self.http, f"{resource}.json", params=params, items_key=resource)

    # -- webhook subscriptions -----------------------------------------------------------------
    def webhooks(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in paginate_link_header(self.http, "webhooks.json", params={"limit": 250}, items_key="webhooks"):
            found.extend(page)
        return found

    def create_webhook(self, topic: str, address: str) -> dict[str, Any]:
        body = {"webhook": {"topic": topic, "address": address, "format": "json"}}
        return self.http.send_json("POST", "webhooks.json", body)["webhook"]

    def update_webhook(self, webhook_id: int, address: str) -> dict[str, Any]:
        body = {"webhook": {"id": webhook_id, "address": address}}
        return self.http.send_json("PUT", f"webhooks/{webhook_id}.json", body)["webhook"]

    def delete_webhook(self, webhook_id: int) -> None:
        self.http.send_json("DELETE", f"webhooks/{webhook_id}.json")



BASE_URL_TEMPLATE_ENV = "SHOPIFY_BASE_URL_TEMPLATE"
DEFAULT_BASE_URL_TEMPLATE = "https://{shop}"
API_VERSION_ENV = "SHOPIFY_API_VERSION"
DEFAULT_API_VERSION = "2025-10"


class ShopifyClient(HttpApiResource):
    """Shopify Admin REST API. `sync-pipelines dev` points it at the sandbox through
    `SHOPIFY_BASE_URL_TEMPLATE`."""

    base_url_template: str | None = None
    """The shop's base URL, `{shop}` replaced by its myshopify domain; unset: `SHOPIFY_BASE_URL_TEMPLATE`
    (read at run time), else https://{shop}."""
    api_version: str | None = None
    """Admin API version; unset: `SHOPIFY_API_VERSION` (read at run time), else 2025-10."""
    plan: str = "standard"
    page_size: int = 250
    max_retries: int = 8

    def session(self, account: Account) -> ShopifySession:
        size, leak = PLANS[self.plan]
        limiter = rate_limiter_for(f"{PROVIDER}:{account.account}", rate_per_second=leak, burst=size)
        template = setting(self.base_url_template, BASE_URL_TEMPLATE_ENV, DEFAULT_BASE_URL_TEMPLATE)
        base = template.format(shop=account.account).rstrip("/")
        version = setting(self.api_version, API_VERSION_ENV, DEFAULT_API_VERSION)
        http = self.http_client(
            integration=PROVIDER,
            account=account,
            base_url=f"{base}/admin/api/{version}",
            headers={"X-Shopify-Access-Token": account.secret(), "Accept": "application/json"},
            rate_limiter=limiter,
            rate_limit_headers=BucketHeader("X-Shopify-Shop-Api-Call-Limit"),
        )
        return ShopifySession(http, self.page_size)
