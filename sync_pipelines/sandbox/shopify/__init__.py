"""Shopify Admin REST API emulator: orders/customers/products, webhooks, and a control plane.

Contract: Shopify's Admin REST API as documented on shopify.dev, with the behaviours that
trip up sync clients reproduced on purpose, each noted where it is implemented:

- orders default to ``status=open``, and ``page_info`` cursors carry the filters (``query``);
- timestamps with second precision in the shop's UTC offset at that instant (``data``);
- a leaky-bucket rate limit per shop (``sandbox.ratelimit``) reported in
  ``X-Shopify-Shop-Api-Call-Limit`` (``routes``);
- webhooks signed with HMAC-SHA256, delivered asynchronously, possibly twice or out of
  order (``webhooks``, ``subscriptions``).

A shop's API lives under ``/shops/{shop}/admin/api/{version}/`` (standing in for
``https://{shop}/admin/api/{version}/``). Run it with ``python -m sync_pipelines.sandbox.shopify``;
`ShopifySandbox` (in ``app``) is the Python API. Independent of the rest of the project: no
dagster, no ``sync_pipelines.core``.
"""

from sync_pipelines.sandbox.ratelimit import LeakyBucket
from sync_pipelines.sandbox.shopify.app import PLANS, ShopifySandbox, main
from sync_pipelines.sandbox.shopify.control import TOKEN_PREFIX
from sync_pipelines.sandbox.shopify.data import RESOURCES, ShopData
from sync_pipelines.sandbox.shopify.mutations import MUTATIONS
from sync_pipelines.sandbox.shopify.query import (
    LIMIT_DEFAULT, LIMIT_MAX, NOT_FOUND, ORDER_STATUSES, PAGE_INFO_INVALID, PAGINATION_DOCS, PRODUCT_STATUSES, SORTS,
)
from sync_pipelines.sandbox.shopify.routes import CALL_LIMIT_HEADER, SUPPORTED_API_VERSIONS, UNAUTHORIZED
from sync_pipelines.sandbox.shopify.webhooks import SUPPORTED_TOPICS, Delivery, WebhookSender, new_delivery, sign

__all__ = ["CALL_LIMIT_HEADER", "LIMIT_DEFAULT", "LIMIT_MAX", "MUTATIONS", "NOT_FOUND", "ORDER_STATUSES",
           "PAGE_INFO_INVALID", "PAGINATION_DOCS", "PLANS", "PRODUCT_STATUSES", "RESOURCES", "SORTS",
           "SUPPORTED_API_VERSIONS", "SUPPORTED_TOPICS", "TOKEN_PREFIX", "UNAUTHORIZED", "Delivery", "LeakyBucket",
           "ShopData", "ShopifySandbox", "WebhookSender", "main", "new_delivery", "sign"]
