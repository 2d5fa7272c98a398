"""Shopify Admin REST API emulator: orders/customers/products, webhooks, and a control plane.

Contract: Shopify's Admin REST API as documented on shopify.dev, with the behaviours that
trip up sync clients reproduced on purpose:

- orders default to ``status=open`` (closed and cancelled orders are invisible unless the
  client asks for ``status=any``);
- cursor pagination through an RFC 8288 ``Link`` header whose ``page_info`` token carries
  the filters, so a page_info request may only add ``limit`` and ``fields``;
- timestamps with second precision in the shop's UTC offset *at that instant* (DST-aware),
  so two updates in one second share ``updated_at`` and string comparison of timestamps
  across a DST change is wrong;
- a leaky-bucket rate limit per shop reported in ``X-Shopify-Shop-Api-Call-Limit``;
- webhooks signed with HMAC-SHA256, delivered asynchronously, possibly twice or out of
  order (see ``shopify_webhooks``).

A shop's API lives under ``/shops/{shop}/admin/api/{version}/`` (standing in for
``https://{shop}/admin/api/{version}/``). Data is generated per shop from ``(seed, shop)``
so runs are reproducible. Records are compact ``__slots__`` objects rendered to REST JSON
only when served, so 100k orders stay cheap; they are mutated in place under the lock
(every read renders under the same lock, so nobody sees a half-updated record).
Independent of the rest of the project: no dagster, no ``sync_pipelines.core``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import hmac
import json
import logging
import math
import random
import re
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone as dt_timezone
from typing import Any, Callable, Iterator
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sync_pipelines.sandbox.control import ControlHandler, Drift, RequestStats, control_endpoint, dumps
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.shopify_webhooks import SUPPORTED_TOPICS, WebhookSender, new_delivery

log = logging.getLogger(__name__)

TOKEN_PREFIX = "sandbox-shopify-"
CALL_LIMIT_HEADER = "X-Shopify-Shop-Api-Call-Limit"
SUPPORTED_API_VERSIONS = ("2025-01", "2025-04", "2025-07", "2025-10", "2026-01", "2026-04",
                          "2026-07", "2026-10", "unstable")
LIMIT_DEFAULT = 50
LIMIT_MAX = 250
PLANS = {"advanced": (80, 4.0), "plus": (400, 20.0)}  # "standard" = the sandbox's knobs (40/2)
ORDER_STATUSES = ("open", "closed", "cancelled", "any")
PRODUCT_STATUSES = ("active", "archived", "draft")
SORTS = ("id asc", "id desc", "updated_at asc", "updated_at desc", "created_at asc", "created_at desc")
MUTATIONS = ("update_orders", "add_orders", "pay_orders", "cancel_orders", "close_orders", "delete_orders",
             "update_customers", "add_customers", "delete_customers",
             "update_products", "add_products", "delete_products")
RESOURCES = {"orders": ("order", "Order"), "customers": ("customer", "Customer"),
             "products": ("product", "Product")}
UNAUTHORIZED = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
NOT_FOUND = {"errors": "Not Found"}
PAGE_INFO_INVALID = {"errors": {"page_info": "Invalid value."}}  # Shopify's wording for a bad token
PAGINATION_DOCS = "https://shopify.dev/api/usage/pagination-rest"

# Generated history ends here (2025-07-01T00:00:00Z) so the same seed always yields the same
# data; mutations use the sandbox clock (real time unless set).
_ANCHOR = 1_751_328_000
_DAY = 86_400
_GARBAGE_BODY = b"<html><body><h1>502 Bad Gateway</h1></body></html>\x00\xff{\"orders\": [,"

_FIRST = ("Ava", "Liam", "Noah", "Emma", "Mia", "Lucas", "Zoe", "Omar", "Sofia", "Ethan", "Maya", "Leo",
          "Nora", "Kai", "Ines", "Yuki", "Amara", "Diego", "Hana", "Felix")
_LAST = ("Smith", "Garcia", "Chen", "Okafor", "Muller", "Rossi", "Kowalski", "Haddad", "Silva", "Kim",
         "Novak", "Dubois", "Larsen", "Patel", "Moreau", "Tanaka", "Brown", "Ivanova")
_ADJ = ("Classic", "Organic", "Everyday", "Premium", "Vintage", "Modern", "Cozy", "Rugged", "Minimal", "Bold")
_MAT = ("Cotton", "Linen", "Wool", "Leather", "Canvas", "Bamboo", "Ceramic", "Walnut", "Steel", "Silk")
_NOUN = ("Tee", "Hoodie", "Tote", "Beanie", "Mug", "Candle", "Notebook", "Scarf", "Socks", "Cap", "Apron",
         "Blanket", "Backpack", "Wallet", "Planter")
_VENDORS = ("Northwind Goods", "Acme Supply", "Bluebird Studio", "Driftwood & Co", "Lumen Works")
_TYPES = ("Apparel", "Accessories", "Home", "Stationery", "Kitchen")
_TAGS = ("", "", "sale", "new", "bestseller", "gift", "eco", "limited")
_CUSTOMER_TAGS = ("", "", "", "vip", "wholesale", "newsletter", "returning")
_SIZES = ("Small", "Medium", "Large")
_CANCEL_REASONS = ("customer", "inventory", "fraud", "declined", "other")
_FINANCIAL = (("paid", 0.80), ("pending", 0.87), ("authorized", 0.91), ("partially_refunded", 0.95),
              ("refunded", 1.0))


# ------------------------------------------------------------------------ helpers
class _ApiError(Exception):
    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(status, payload)
        self.status, self.payload = status, payload


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _utc_micro(ts: float) -> str:
    """``X-Shopify-Triggered-At``: ISO UTC with microseconds."""
    return datetime.fromtimestamp(ts, dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_instant(raw: str, tz: ZoneInfo, name: str) -> float:
    """Any ISO-8601 form -> epoch seconds; a naive value is read in the shop's time zone.
    An unencoded ``+02:00`` arrives as `` 02:00`` (form decoding), so that is accepted too."""
    text = raw.strip()
    text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _ApiError(400, {"errors": {name: f"{raw!r} is not an ISO 8601 date-time"}}) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.timestamp()


# ------------------------------------------------------------------------- records
class _Order:
    __slots__ = ("id", "number", "email", "customer_id", "created", "updated", "processed", "closed",
                 "cancelled", "cancel_reason", "financial", "fulfillment", "line_items", "subtotal", "tax",
                 "tags", "note")


class _Customer:
    __slots__ = ("id", "email", "first", "last", "state", "orders_count", "total_spent", "created",
                 "updated", "tags", "note", "verified")


class _Variant:
    __slots__ = ("id", "title", "sku", "price", "inventory", "position", "created", "updated")


class _Product:
    __slots__ = ("id", "title", "handle", "vendor", "product_type", "status", "tags", "created", "updated",
                 "variants")


class LeakyBucket:
    """Shopify's REST limiter: each call adds 1, the bucket leaks ``leak_per_second``; a call
    that would overflow ``size`` is refused (and not counted)."""

    def __init__(self, size: int, leak_per_second: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._level = 0.0
        self._at = clock()
        self.size, self.leak_per_second = 40, 2.0
        self.configure(size=size, leak_per_second=leak_per_second)

    def configure(self, *, size: int | None = None, leak_per_second: float | None = None) -> None:
        size = self.size if size is None else int(size)
        leak = self.leak_per_second if leak_per_second is None else float(leak_per_second)
        if size < 1 or not leak > 0:
            raise ValueError(f"need bucket_size >= 1 and leak_per_second > 0, got {size}, {leak}")
        with self._lock:
            self._drain()
            self.size, self.leak_per_second = size, leak

    def _drain(self) -> None:
        now = self._clock()
        self._level = max(0.0, self._level - (now - self._at) * self.leak_per_second)
        self._at = now

    def _used(self) -> int:
        return min(self.size, max(0, math.ceil(self._level - 1e-6)))

    def take(self) -> tuple[bool, int]:
        """(allowed, used after counting this call)."""
        with self._lock:
            self._drain()
            if self._level + 1 > self.size + 1e-9:
                return False, self._used()
            self._level += 1
            return True, self._used()

    def refund(self) -> int:
        with self._lock:
            self._drain()
            self._level = max(0.0, self._level - 1)
            return self._used()

    def reset(self) -> None:
        with self._lock:
            self._level, self._at = 0.0, self._clock()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            self._drain()
            return {"bucket_size": self.size, "leak_per_second": self.leak_per_second, "used": self._used()}


class ShopData:
    """One shop: records in id order (``rows``) plus id indexes (``by_id``)."""

    def __init__(self, domain: str, access_token: str, timezone: str, bucket: LeakyBucket, plan: str) -> None:
        self.domain = domain
        self.access_token = access_token
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        self.bucket = bucket
        self.plan = plan
        self.currency = "USD"
        self.shop_id = 0
        self.created = _ANCHOR - 1200 * _DAY
        self.rows: dict[str, list[Any]] = {name: [] for name in RESOURCES}
        self.by_id: dict[str, dict[int, Any]] = {name: {} for name in RESOURCES}
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.carts: dict[str, dict[str, Any]] = {}
        self.checkouts: dict[str, dict[str, Any]] = {}
        self._rng = random.Random()
        self._next: dict[str, int] = {}
        self._next_number = 1000
        self._sku_prefix = ""
        self._touches = 0
        self._versions = dict.fromkeys(RESOURCES, 0)
        self._views: dict[tuple, tuple[int, list[Any], list[tuple[int, int]]]] = {}
        self._iso_cache: dict[int, str] = {}

    @property
    def name(self) -> str:
        return self.domain.split(".", 1)[0]

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.rows.items()} | {"webhooks": len(self.webhooks)}

    def iso(self, ts: int | None) -> str | None:
        """Second precision in the shop's offset at that instant (``-05:00`` / ``-04:00``)."""
        if ts is None:
            return None
        text = self._iso_cache.get(ts)
        if text is None:
            if len(self._iso_cache) > 50_000:
                self._iso_cache.clear()
            text = self._iso_cache[ts] = datetime.fromtimestamp(ts, self.tz).isoformat()
        return text

    def next_id(self, kind: str, rng: random.Random, spread: int = 1000) -> int:
        self._next[kind] += 1 + int(rng.random() * spread)
        return self._next[kind]

    def add(self, resource: str, record: Any) -> None:
        self.rows[resource].append(record)  # ids only grow, so appending keeps id order
        self.by_id[resource][record.id] = record

    def remove(self, resource: str, record: Any) -> None:
        rows = self.rows[resource]
        pos = bisect.bisect_left(rows, record.id, key=lambda r: r.id)
        del rows[pos]
        del self.by_id[resource][record.id]

    def touch(self, *resources: str) -> None:
        for resource in resources:
            self._versions[resource] += 1


# ---------------------------------------------------------------------- generation
def _make_products(shop: ShopData, rng: random.Random, count: int, now: int | None) -> list[_Product]:
    r = rng.random
    made = []
    for _ in range(count):
        p = _Product()
        p.id = shop.next_id("products", rng)
        p.title = f"{_ADJ[int(r() * 10)]} {_MAT[int(r() * 10)]} {_NOUN[int(r() * 15)]}"
        p.handle = f"{p.title.lower().replace(' ', '-')}-{p.id % 100_000}"
        p.vendor = _VENDORS[int(r() * 5)]
        p.product_type = _TYPES[int(r() * 5)]
        roll = r()
        p.status = "active" if roll < 0.85 else "draft" if roll < 0.95 else "archived"
        p.tags = ", ".join(sorted({t for t in (_TAGS[int(r() * 8)], _TAGS[int(r() * 8)]) if t}))
        if now is None:
            p.created = _ANCHOR - 1000 * _DAY + int(r() * 200 * _DAY)
            p.updated = p.created + (int(r() * (_ANCHOR - p.created)) if r() < 0.6 else 0)
        else:
            p.created = p.updated = now
        n_variants = 1 + int(r() * 3)
        base_price = 500 + int(r() * 15_000)
        p.variants = []
        for j in range(n_variants):
            v = _Variant()
            v.id = shop.next_id("variants", rng)
            v.title = "Default Title" if n_variants == 1 else _SIZES[j]
            v.sku = f"{shop._sku_prefix}-{p.id % 1_000_000:06d}-{j + 1}"
            v.price = base_price + j * 200
            v.inventory = int(r() * 300)
            v.position = j + 1
            v.created = p.created
            v.updated = p.created + int(r() * (p.updated - p.created + 1))
            p.variants.append(v)
        shop.add("products", p)
        made.append(p)
    return made


def _make_customers(shop: ShopData, rng: random.Random, count: int, now: int | None) -> list[_Customer]:
    r = rng.random
    made = []
    for _ in range(count):
        c = _Customer()
        c.id = shop.next_id("customers", rng)
        c.first, c.last = _FIRST[int(r() * 20)], _LAST[int(r() * 18)]
        c.email = f"{c.first}.{c.last}.{c.id % 100_000}@example.com".lower()
        roll = r()
        c.state = "enabled" if roll < 0.8 else "disabled" if roll < 0.9 else "invited"
        c.orders_count, c.total_spent = 0, 0
        c.tags = _CUSTOMER_TAGS[int(r() * 7)]
        c.note = None
        c.verified = r() < 0.9
        if now is None:
            c.created = _ANCHOR - 900 * _DAY + int(r() * 160 * _DAY)
            c.updated = c.created + int(r() * 30 * _DAY)
        else:
            c.created = c.updated = now
        shop.add("customers", c)
        made.append(c)
    return made


def _make_orders(shop: ShopData, rng: random.Random, count: int, now: int | None) -> list[_Order]:
    """Historical orders (``now=None``) are spread over the two years before the anchor with
    created_at increasing with id, like Shopify's."""
    r = rng.random
    customers = shop.rows["customers"]
    n_cust = len(customers)
    variants = [(p, v) for p in shop.rows["products"] for v in p.variants]
    n_var = len(variants)
    start = _ANCHOR - 730 * _DAY
    step = (730 * _DAY - 3600) / max(count, 1)
    made = []
    for i in range(count):
        o = _Order()
        o.id = shop.next_id("orders", rng, 4000)
        shop._next_number += 1
        o.number = shop._next_number
        customer = customers[int(r() * n_cust)] if n_cust and r() < 0.97 else None
        o.customer_id = customer.id if customer else None
        o.email = customer.email if customer else f"guest{o.number}@example.net"
        items = []
        subtotal = 0
        for _ in range(1 + int(r() * r() * 4)):
            qty = 1 + int(r() * r() * 5)
            if n_var:
                p, v = variants[int(r() * n_var)]
                item = (shop.next_id("line_items", rng, 50), p.id, v.id, p.title, v.title, v.sku, qty, v.price)
            else:
                price = 500 + int(r() * 5000)
                item = (shop.next_id("line_items", rng, 50), None, None, "Custom item", None, None, qty, price)
            items.append(item)
            subtotal += qty * item[7]
        o.line_items = tuple(items)
        o.subtotal, o.tax = subtotal, subtotal * 8 // 100
        o.tags, o.note = _TAGS[int(r() * 8)], None
        o.cancelled = o.closed = o.cancel_reason = None
        if now is None:
            o.created = int(start + i * step + r() * step)
            age = _ANCHOR - o.created
            roll = r()
            if roll < 0.05:
                o.cancelled = o.closed = o.created + int(r() * min(age, 3 * _DAY))
                o.cancel_reason = _CANCEL_REASONS[int(r() * 5)]
                o.financial = "voided" if r() < 0.6 else "refunded"
                o.fulfillment = None
            else:
                fin = r()
                o.financial = next(name for name, edge in _FINANCIAL if fin < edge)
                paid = o.financial in ("paid", "partially_refunded")
                ful = r()
                o.fulfillment = ("fulfilled" if paid and ful < 0.75 else "partial" if paid and ful < 0.8
                                 else None)
                if o.fulfillment == "fulfilled" and r() < 0.7:
                    o.closed = o.created + int(r() * min(age, 30 * _DAY))
            last = max(o.created, o.closed or 0)
            o.updated = min(_ANCHOR, last + (int(r() * min(age, 60 * _DAY)) if r() < 0.5 else 0))
            o.processed = o.created
        else:
            o.created = o.updated = o.processed = now
            o.financial, o.fulfillment = ("paid" if r() < 0.85 else "pending"), None
        if customer is not None:
            customer.orders_count += 1
            if o.cancelled is None:
                customer.total_spent += o.subtotal + o.tax
            customer.updated = max(customer.updated, o.created)
        shop.add("orders", o)
        made.append(o)
    return made


def _generate_shop(seed: int, domain: str, access_token: str, *, orders: int, customers: int, products: int,
                   timezone: str, bucket: LeakyBucket, plan: str) -> ShopData:
    if min(orders, customers, products) < 0:
        raise ValueError("orders, customers and products must be >= 0")
    rng = random.Random(f"shopify:{seed}:{domain}")  # str seeds are stable across processes
    shop = ShopData(domain, access_token, timezone, bucket, plan)
    shop._rng = random.Random(f"shopify-mutations:{seed}:{domain}")
    shop.shop_id = 50_000_000_000 + rng.randrange(10**10)
    shop._sku_prefix = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(3))
    shop._next = {"orders": 5_500_000_000_000 + rng.randrange(10**11),
                  "customers": 7_100_000_000_000 + rng.randrange(10**11),
                  "products": 8_000_000_000_000 + rng.randrange(10**11),
                  "variants": 44_000_000_000_000 + rng.randrange(10**11),
                  "line_items": 13_000_000_000_000 + rng.randrange(10**11),
                  "webhooks": 1_400_000_000_000 + rng.randrange(10**11),
                  "checkouts": 30_000_000_000_000 + rng.randrange(10**11)}
    _make_products(shop, rng, products, None)
    _make_customers(shop, rng, customers, None)
    _make_orders(shop, rng, orders, None)
    return shop


# ------------------------------------------------------------------------ rendering
def _customer_json(shop: ShopData, c: _Customer, *, aggregates: bool = True) -> dict[str, Any]:
    out = {
        "id": c.id, "email": c.email, "created_at": shop.iso(c.created), "updated_at": shop.iso(c.updated),
        "first_name": c.first, "last_name": c.last, "state": c.state, "note": c.note,
        "verified_email": c.verified, "multipass_identifier": None, "tax_exempt": False, "phone": None,
        "tags": c.tags, "currency": shop.currency, "admin_graphql_api_id": f"gid://shopify/Customer/{c.id}",
    }
    if aggregates:
        out["orders_count"] = c.orders_count
        out["total_spent"] = _money(c.total_spent)
    return out


def _order_json(shop: ShopData, o: _Order) -> dict[str, Any]:
    customer = shop.by_id["customers"].get(o.customer_id) if o.customer_id else None
    total = _money(o.subtotal + o.tax)
    return {
        "id": o.id, "admin_graphql_api_id": f"gid://shopify/Order/{o.id}", "name": f"#{o.number}",
        "order_number": o.number, "number": o.number - 1000, "email": o.email, "contact_email": o.email,
        "created_at": shop.iso(o.created), "updated_at": shop.iso(o.updated),
        "processed_at": shop.iso(o.processed), "closed_at": shop.iso(o.closed),
        "cancelled_at": shop.iso(o.cancelled), "cancel_reason": o.cancel_reason,
        "financial_status": o.financial, "fulfillment_status": o.fulfillment, "confirmed": True,
        "test": False, "currency": shop.currency, "presentment_currency": shop.currency,
        "subtotal_price": _money(o.subtotal), "total_line_items_price": _money(o.subtotal),
        "total_discounts": "0.00", "total_tax": _money(o.tax), "total_price": total,
        "current_total_price": total, "taxes_included": False, "tags": o.tags, "note": o.note,
        "source_name": "web",
        "customer": _customer_json(shop, customer, aggregates=False) if customer else None,
        "line_items": [{
            "id": li[0], "admin_graphql_api_id": f"gid://shopify/LineItem/{li[0]}", "product_id": li[1],
            "variant_id": li[2], "title": li[3], "variant_title": li[4],
            "name": li[3] if li[4] in (None, "Default Title") else f"{li[3]} - {li[4]}", "sku": li[5],
            "quantity": li[6], "price": _money(li[7]), "taxable": True, "requires_shipping": True,
            "fulfillable_quantity": 0 if o.fulfillment == "fulfilled" or o.cancelled else li[6],
        } for li in o.line_items],
    }


def _variant_json(shop: ShopData, p: _Product, v: _Variant) -> dict[str, Any]:
    return {
        "id": v.id, "product_id": p.id, "title": v.title, "price": _money(v.price), "sku": v.sku,
        "position": v.position, "inventory_policy": "deny", "compare_at_price": None, "option1": v.title,
        "created_at": shop.iso(v.created), "updated_at": shop.iso(v.updated), "taxable": True,
        "barcode": None, "inventory_item_id": v.id + 3_000_000_000_000, "inventory_quantity": v.inventory,
        "admin_graphql_api_id": f"gid://shopify/ProductVariant/{v.id}",
    }


def _product_json(shop: ShopData, p: _Product) -> dict[str, Any]:
    return {
        "id": p.id, "title": p.title, "body_html": f"<p>{p.title} by {p.vendor}.</p>", "vendor": p.vendor,
        "product_type": p.product_type, "created_at": shop.iso(p.created), "handle": p.handle,
        "updated_at": shop.iso(p.updated),
        "published_at": shop.iso(p.created) if p.status == "active" else None,
        "template_suffix": None, "published_scope": "web", "tags": p.tags, "status": p.status,
        "admin_graphql_api_id": f"gid://shopify/Product/{p.id}",
        "variants": [_variant_json(shop, p, v) for v in p.variants],
    }


_RENDER: dict[str, Callable[[ShopData, Any], dict[str, Any]]] = {
    "orders": _order_json, "customers": _customer_json, "products": _product_json}


def _webhook_json(shop: ShopData, w: dict[str, Any]) -> dict[str, Any]:
    return {"id": w["id"], "address": w["address"], "topic": w["topic"], "created_at": shop.iso(w["created"]),
            "updated_at": shop.iso(w["updated"]), "format": w["format"], "fields": list(w["fields"]),
            "metafield_namespaces": list(w["metafield_namespaces"]), "api_version": w["api_version"],
            "private_metafield_namespaces": []}


# ----------------------------------------------------------------- query handling
def _filters_from_query(shop: ShopData, resource: str, params: Any) -> dict[str, Any]:
    """Canonical filter set (JSON-able: it travels inside page_info)."""
    f: dict[str, Any] = {}
    if resource == "orders":
        status = params.get("status") or "open"
        if status not in ORDER_STATUSES:
            raise _ApiError(400, {"errors": {"status": f"must be one of {', '.join(ORDER_STATUSES)}"}})
        f["status"] = status
    elif resource == "products" and params.get("status"):
        wanted = sorted({s.strip() for s in params["status"].split(",") if s.strip()})
        if not set(wanted) <= set(PRODUCT_STATUSES):
            raise _ApiError(400, {"errors": {"status": f"must be among {', '.join(PRODUCT_STATUSES)}"}})
        f["status"] = wanted
    for name in ("ids", "since_id"):
        raw = params.get(name)
        if raw:
            try:
                values = sorted({int(part) for part in raw.split(",") if part.strip()})
            except ValueError:
                raise _ApiError(400, {"errors": {name: "expected integer ids"}}) from None
            if name == "since_id":
                if len(values) != 1:
                    raise _ApiError(400, {"errors": {name: "expected one integer id"}})
                f[name] = values[0]
            else:
                f[name] = values
    for name in ("created_at_min", "created_at_max", "updated_at_min", "updated_at_max"):
        if params.get(name):
            f[name] = _parse_instant(params[name], shop.tz, name)
    return f


def _valid_filters(resource: str, f: Any) -> bool:
    """For filters that came back inside a page_info token (which a client could forge)."""
    if not isinstance(f, dict):
        return False
    for name, value in f.items():
        if name == "status":
            ok = (value in ORDER_STATUSES if resource == "orders"
                  else resource == "products" and isinstance(value, list) and set(value) <= set(PRODUCT_STATUSES))
        elif name == "ids":
            ok = isinstance(value, list) and all(isinstance(v, int) for v in value)
        elif name == "since_id":
            ok = isinstance(value, int)
        elif name in ("created_at_min", "created_at_max", "updated_at_min", "updated_at_max"):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = False
        if not ok:
            return False
    return resource != "orders" or "status" in f


def _matcher(f: dict[str, Any]) -> Callable[[Any], bool] | None:
    checks: list[Callable[[Any], bool]] = []
    status = f.get("status")
    if status == "open":
        checks.append(lambda r: r.closed is None and r.cancelled is None)
    elif status == "closed":
        checks.append(lambda r: r.closed is not None)
    elif status == "cancelled":
        checks.append(lambda r: r.cancelled is not None)
    elif isinstance(status, list):
        wanted = set(status)
        checks.append(lambda r: r.status in wanted)
    if "ids" in f:
        ids = set(f["ids"])
        checks.append(lambda r: r.id in ids)
    if "since_id" in f:
        since = f["since_id"]
        checks.append(lambda r: r.id > since)
    for name, attr in (("created_at_min", "created"), ("updated_at_min", "updated")):
        if name in f:
            checks.append(lambda r, a=attr, v=f[name]: getattr(r, a) >= v)
    for name, attr in (("created_at_max", "created"), ("updated_at_max", "updated")):
        if name in f:
            checks.append(lambda r, a=attr, v=f[name]: getattr(r, a) <= v)
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda r: all(check(r) for check in checks)


def _sort_key(order: str) -> Callable[[Any], tuple[int, int]]:
    """Keyset key: (sort value, id), negated for desc, so bisect works on ascending keys."""
    field, direction = order.split()
    attr = {"id": "id", "updated_at": "updated", "created_at": "created"}[field]
    if direction == "asc":
        return lambda r: (getattr(r, attr), r.id)
    return lambda r: (-getattr(r, attr), -r.id)


def _parse_order(raw: str | None) -> str:
    if not raw:
        return "id asc"
    parts = raw.strip().lower().split()
    order = " ".join(parts if len(parts) == 2 else parts + ["asc"])
    if order not in SORTS:
        raise _ApiError(400, {"errors": {"order": f"must be one of {', '.join(SORTS)}"}})
    return order


def _parse_limit(params: Any) -> int:
    raw = params.get("limit")
    if raw is None or raw == "":
        return LIMIT_DEFAULT
    try:
        value = int(raw)
    except ValueError:
        raise _ApiError(400, {"errors": {"limit": f"must be an integer, got {raw!r}"}}) from None
    if not 1 <= value <= LIMIT_MAX:
        raise _ApiError(400, {"errors": {"limit": f"must be between 1 and {LIMIT_MAX}, got {value}"}})
    return value


def _encode_page_info(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(dumps(payload)).rstrip(b"=").decode()


def _decode_page_info(raw: str, resource: str) -> dict[str, Any]:
    try:
        token = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        ok = (isinstance(token, dict) and token.get("resource") == resource
              and token.get("direction") in ("next", "prev") and token.get("order") in SORTS
              and isinstance(token.get("last_id"), int) and isinstance(token.get("last_value"), int)
              and _valid_filters(resource, token.get("filters")))
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise _ApiError(400, PAGE_INFO_INVALID)
    return token


def _only_fields(item: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    return item if not fields else {k: v for k, v in item.items() if k in fields}


class _SenderKnob:
    """A sandbox attribute that reads/writes one WebhookSender knob (validated)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else getattr(obj.sender, self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        obj.sender.configure(**{self.name: value})


# --------------------------------------------------------------------------- sandbox
class ShopifySandbox:
    """In-memory Shopify shop(s) behind a Starlette app (``.app``)."""

    duplicate_rate = _SenderKnob()
    reorder = _SenderKnob()
    sign_with = _SenderKnob()

    def __init__(self, *, seed: int = 7, api_version: str = "2025-10", bucket_size: int = 40,
                 leak_per_second: float = 2.0, faults: Faults | None = None,
                 app_secret: str = "sandbox-shopify-app-secret", webhook_timeout: float = 5.0) -> None:
        self.seed = seed
        self.api_version = api_version
        self.api_versions = tuple(dict.fromkeys((*SUPPORTED_API_VERSIONS, api_version)))
        LeakyBucket(bucket_size, leak_per_second)  # validate the knobs now, not at the first add_shop
        self.bucket_size, self.leak_per_second = int(bucket_size), float(leak_per_second)
        self.faults = faults if faults is not None else Faults(seed=seed)
        self.fault_retry_after: str | None = None  # Retry-After of injected 429s; None -> faults knob
        self.app_secret = app_secret
        self.sender = WebhookSender(app_secret=app_secret, timeout=webhook_timeout, seed=seed)
        self._lock = threading.RLock()
        self._shops: dict[str, ShopData] = {}
        self._batch_local = threading.local()
        self._clock_lock = threading.Lock()
        self._frozen: float | None = None
        self._offset = 0.0
        self._requests = RequestStats(by="requests_by_shop")
        self._drift = Drift(keys=lambda: self.shops, tick=lambda key: self.drift(key), what="shop",
                            thread_name="shopify-sandbox-drift", log=log)
        self.app = self._build_app()

    # ----------------------------------------------------------------- shops
    def add_shop(self, shop: str, access_token: str, *, orders: int = 100, customers: int = 50,
                 products: int = 30, timezone: str = "America/New_York", plan: str = "standard",
                 bucket_size: int | None = None, leak_per_second: float | None = None) -> ShopData:
        """(Re)create a shop; same seed + domain -> same data, so re-adding resets mutations
        (and drops its webhook subscriptions)."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*\.myshopify\.com", shop or ""):
            raise ValueError(f"shop must be a myshopify domain like 'acme.myshopify.com', got {shop!r}")
        if not access_token:
            raise ValueError("access_token must be non-empty")
        if plan != "standard" and plan not in PLANS:
            raise ValueError(f"plan must be standard, {', '.join(PLANS)}; got {plan!r}")
        size, leak = PLANS.get(plan, (self.bucket_size, self.leak_per_second))
        bucket = LeakyBucket(bucket_size or size, leak_per_second or leak)
        ZoneInfo(timezone)  # unknown zone -> ZoneInfoNotFoundError (a KeyError) before generating
        data = _generate_shop(self.seed, shop, access_token, orders=orders, customers=customers,
                              products=products, timezone=timezone, bucket=bucket, plan=plan)
        with self._lock:
            self._shops[shop] = data
        return data

    def shop(self, shop: str) -> ShopData:
        with self._lock:
            try:
                return self._shops[shop]
            except KeyError:
                raise KeyError(f"no sandbox shop {shop!r}") from None

    @property
    def shops(self) -> list[str]:
        with self._lock:
            return list(self._shops)

    def set_rate_limit(self, shop: str, *, bucket_size: int | None = None, leak_per_second: float | None = None,
                       plan: str | None = None, reset: bool = False) -> dict[str, Any]:
        data = self.shop(shop)
        if plan is not None:
            if plan != "standard" and plan not in PLANS:
                raise ValueError(f"plan must be standard, {', '.join(PLANS)}; got {plan!r}")
            size, leak = PLANS.get(plan, (self.bucket_size, self.leak_per_second))
            bucket_size, leak_per_second = bucket_size or size, leak_per_second or leak
            data.plan = plan
        data.bucket.configure(size=bucket_size, leak_per_second=leak_per_second)
        if reset:
            data.bucket.reset()
        return data.bucket.snapshot()

    def record(self, shop: str, resource: str, record_id: int) -> dict[str, Any]:
        """The REST JSON of one record, as the API would serve it now."""
        with self._lock:
            data = self.shop(shop)
            rec = data.by_id[resource].get(record_id)
            if rec is None:
                raise KeyError(f"no {resource} {record_id} in shop {shop!r}")
            return _RENDER[resource](data, rec)

    def records(self, shop: str, resource: str) -> list[dict[str, Any]]:
        """Every record of a resource in id order (no status filter), as REST JSON."""
        with self._lock:
            data = self.shop(shop)
            return [_RENDER[resource](data, rec) for rec in data.rows[resource]]

    # ----------------------------------------------------------------- clock
    def now(self) -> float:
        with self._clock_lock:
            return self._frozen if self._frozen is not None else time.time() + self._offset

    def set_clock(self, when: datetime | None, *, frozen: bool = True) -> None:
        """Freeze the clock at ``when`` (aware datetime) or, with ``frozen=False``, let it run
        from there; ``None`` goes back to the real clock."""
        with self._clock_lock:
            if when is None:
                self._frozen, self._offset = None, 0.0
                return
            if when.tzinfo is None:
                raise ValueError("set_clock needs an aware datetime")
            if frozen:
                self._frozen, self._offset = when.timestamp(), 0.0
            else:
                self._frozen, self._offset = None, when.timestamp() - time.time()

    def advance(self, seconds: float) -> float:
        with self._clock_lock:
            if self._frozen is not None:
                self._frozen += seconds
            else:
                self._offset += seconds
        return self.now()

    def _ts(self) -> int:
        return int(self.now())

    # ------------------------------------------------------------- webhooks
    @contextmanager
    def batch(self) -> Iterator[None]:
        """Deliveries of every mutation inside are queued together when the outermost
        block exits (reversed as one batch in ``reorder`` mode)."""
        local = self._batch_local
        depth = getattr(local, "depth", 0)
        if depth == 0:
            local.buffer = []
        local.depth = depth + 1
        try:
            yield
        finally:
            local.depth -= 1
            if local.depth == 0:
                buffer, local.buffer = local.buffer, None
                self.sender.enqueue(buffer)

    def _emit(self, data: ShopData, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Queue one delivery per (event, matching subscription); caller holds the lock."""
        triggered = _utc_micro(self.now())
        buffer = getattr(self._batch_local, "buffer", None)
        out = buffer if buffer is not None else []
        for topic, payload in events:
            subs = [w for w in data.webhooks.values() if w["topic"] == topic]
            event_id = str(uuid.uuid4())
            for w in subs:
                body = dumps(_only_fields(payload, w["fields"]))
                out.append(new_delivery(self.sender, shop=data.domain, topic=topic, address=w["address"],
                                        body=body, api_version=w["api_version"], triggered_at=triggered,
                                        event_id=event_id, meta={"subscription_id": w["id"]}))
        if buffer is None:
            self.sender.enqueue(out)

    def send_raw(self, shop: str, topic: str, body: bytes, *, headers: dict[str, str | None] | None = None,
                 address: str | None = None) -> list[str]:
        """A hand-made delivery of ``body`` to every subscription for ``topic`` (or only to
        ``address``), signed like the real ones unless ``headers`` override (None removes a
        header). Returns the X-Shopify-Webhook-Ids."""
        with self._lock:
            data = self.shop(shop)
            if address is not None:
                targets = [(address, self.api_version)]
            else:
                targets = [(w["address"], w["api_version"]) for w in data.webhooks.values() if w["topic"] == topic]
        triggered = _utc_micro(self.now())
        event_id = str(uuid.uuid4())
        batch = [new_delivery(self.sender, shop=shop, topic=topic, address=addr, body=bytes(body),
                              api_version=version, triggered_at=triggered, event_id=event_id,
                              extra_headers=headers, raw=True) for addr, version in targets]
        buffer = getattr(self._batch_local, "buffer", None)
        if buffer is not None:
            buffer.extend(batch)
        else:
            self.sender.enqueue(batch)
        return [d.webhook_id for d in batch]

    def configure_webhooks(self, **knobs: Any) -> dict[str, Any]:
        """duplicate_rate, reorder, sign_with, max_attempts, backoff_seconds, timeout."""
        self.sender.configure(**knobs)
        return self.sender.snapshot()

    def duplicate_next(self, n: int = 1) -> None:
        self.sender.duplicate_next(n)

    def flush(self, timeout: float | None = 10.0) -> bool:
        return self.sender.flush(timeout)

    def deliveries(self) -> list[dict[str, Any]]:
        return self.sender.deliveries()

    def subscribe(self, shop: str, topic: str, address: str, *, fields: list[str] | None = None) -> dict[str, Any]:
        """Python shortcut for ``POST webhooks.json`` (same validation)."""
        with self._lock:
            return _webhook_json(self.shop(shop), self._create_webhook(
                self.shop(shop), {"topic": topic, "address": address, "fields": fields or []}, self.api_version))

    # ------------------------------------------------------------ mutations
    def _pick(self, data: ShopData, resource: str, n: int, ids: list[int] | None,
              eligible: Callable[[Any], bool] | None = None) -> list[Any]:
        if ids is not None:
            missing = [i for i in ids if i not in data.by_id[resource]]
            if missing:
                raise KeyError(f"no {resource} {missing} in shop {data.domain!r}")
            return [data.by_id[resource][i] for i in ids]
        pool = data.rows[resource]
        if eligible is not None:
            pool = [rec for rec in pool if eligible(rec)]
        picks = data._rng.sample(range(len(pool)), min(max(int(n), 0), len(pool)))
        return [pool[p] for p in sorted(picks)]

    def _mutate_orders(self, shop: str, n: int, ids: list[int] | None, eligible: Callable[[_Order], bool] | None,
                       change: Callable[[_Order, int], None], topics: tuple[str, ...]) -> list[int]:
        with self._lock, self.batch():
            data = self.shop(shop)
            now = self._ts()
            picked = self._pick(data, "orders", n, ids, eligible)
            events = []
            for o in picked:
                change(o, now)
                o.updated = now
                payload = _order_json(data, o)
                events.extend((topic, payload) for topic in topics)
            if picked:
                data.touch("orders")
            self._emit(data, events)
            return [o.id for o in picked]

    def update_orders(self, shop: str, n: int = 1, *, ids: list[int] | None = None) -> list[int]:
        """Edit note/tags (and sometimes fulfil) ``n`` random orders -> orders/updated."""
        rng = self.shop(shop)._rng

        def change(o: _Order, now: int) -> None:
            o.note = f"Sandbox edit {rng.randrange(10**6)}"
            o.tags = _TAGS[rng.randrange(len(_TAGS))]
            if o.fulfillment is None and o.cancelled is None and rng.random() < 0.4:
                o.fulfillment = "fulfilled"

        return self._mutate_orders(shop, n, ids, None, change, ("orders/updated",))

    def pay_orders(self, shop: str, n: int = 1, *, ids: list[int] | None = None) -> list[int]:
        """Mark pending/authorized orders paid -> orders/paid + orders/updated."""
        def change(o: _Order, now: int) -> None:
            o.financial = "paid"

        return self._mutate_orders(shop, n, ids,
                                   lambda o: o.financial in ("pending", "authorized") and o.cancelled is None,
                                   change, ("orders/paid", "orders/updated"))

    def cancel_orders(self, shop: str, n: int = 1, *, ids: list[int] | None = None) -> list[int]:
        """Cancel (and close) orders -> orders/cancelled + orders/updated."""
        def change(o: _Order, now: int) -> None:
            o.cancelled, o.cancel_reason = now, "customer"
            o.closed = o.closed or now
            o.financial = "refunded" if o.financial in ("paid", "partially_refunded") else "voided"

        return self._mutate_orders(shop, n, ids, lambda o: o.cancelled is None, change,
                                   ("orders/cancelled", "orders/updated"))

    def close_orders(self, shop: str, n: int = 1, *, ids: list[int] | None = None) -> list[int]:
        """Close (archive) open orders -> orders/updated; they leave the default status=open view."""
        def change(o: _Order, now: int) -> None:
            o.closed = now

        return self._mutate_orders(shop, n, ids, lambda o: o.closed is None and o.cancelled is None, change,
                                   ("orders/updated",))

    def add_orders(self, shop: str, n: int = 1) -> list[int]:
        """New orders now -> orders/create (+ orders/paid when paid, customers/update for the buyer)."""
        with self._lock, self.batch():
            data = self.shop(shop)
            made = _make_orders(data, data._rng, max(int(n), 0), self._ts())
            events: list[tuple[str, dict[str, Any]]] = []
            buyers: dict[int, _Customer] = {}
            for o in made:
                payload = _order_json(data, o)
                events.append(("orders/create", payload))
                if o.financial == "paid":
                    events.append(("orders/paid", payload))
                if o.customer_id is not None:
                    buyers[o.customer_id] = data.by_id["customers"][o.customer_id]
            for c in buyers.values():
                c.updated = self._ts()
                events.append(("customers/update", _customer_json(data, c)))
            if made:
                data.touch("orders", "customers")
            self._emit(data, events)
            return [o.id for o in made]

    def _delete(self, shop: str, resource: str, n: int, ids: list[int] | None, topic: str) -> list[int]:
        with self._lock, self.batch():
            data = self.shop(shop)
            picked = self._pick(data, resource, n, ids)
            for rec in picked:
                data.remove(resource, rec)
            if picked:
                data.touch(resource)
            self._emit(data, [(topic, {"id": rec.id}) for rec in picked])
            return [rec.id for rec in picked]

    def delete_orders(self, shop: str, n: int = 1, *, ids: list[int] | None = None) -> list[int]:
        return self._delete(shop, "orders", n, ids, "orders/delete")

    def delete_customers(self, shop: str, n: int = 1, *, ids: list[int] | None = None) -> list[int]:
        """Orders of a deleted customer render ``"customer": null``."""
        with self._lock:
            deleted = self._delete(shop, "customers", n, ids, "customers/delete")
            if deleted:
                self.shop(shop).touch("orders")
            return deleted

    def delete_products(self, shop: str, n: int = 1, *, ids: list[int] | None = None) -> list[int]:
        return self._delete(shop, "products", n, ids, "products/delete")

    def update_customers(self, shop: str, n: int = 1, *, ids: list[int] | None = None) -> list[int]:
        """Edit note/tags/state -> customers/update."""
        with self._lock, self.batch():
            data = self.shop(shop)
            rng, now = data._rng, self._ts()
            picked = self._pick(data, "customers", n, ids)
            for c in picked:
                c.note = f"Sandbox edit {rng.randrange(10**6)}"
                c.tags = _CUSTOMER_TAGS[rng.randrange(len(_CUSTOMER_TAGS))]
                if rng.random() < 0.2:
                    c.state = "disabled" if c.state == "enabled" else "enabled"
                c.updated = now
            if picked:
                data.touch("customers", "orders")  # orders embed the customer
            self._emit(data, [("customers/update", _customer_json(data, c)) for c in picked])
            return [c.id for c in picked]

    def add_customers(self, shop: str, n: int = 1) -> list[int]:
        with self._lock, self.batch():
            data = self.shop(shop)
            made = _make_customers(data, data._rng, max(int(n), 0), self._ts())
            if made:
                data.touch("customers")
            self._emit(data, [("customers/create", _customer_json(data, c)) for c in made])
            return [c.id for c in made]

    def update_products(self, shop: str, n: int = 1, *, ids: list[int] | None = None) -> list[int]:
        """Reprice one variant and restock -> products/update (variant and product updated_at)."""
        with self._lock, self.batch():
            data = self.shop(shop)
            rng, now = data._rng, self._ts()
            picked = self._pick(data, "products", n, ids)
            for p in picked:
                v = p.variants[rng.randrange(len(p.variants))]
                v.price = max(100, v.price + rng.choice((-300, -100, 100, 250, 500)))
                v.inventory = max(0, v.inventory + rng.randint(-20, 40))
                v.updated = p.updated = now
            if picked:
                data.touch("products")
            self._emit(data, [("products/update", _product_json(data, p)) for p in picked])
            return [p.id for p in picked]

    def add_products(self, shop: str, n: int = 1) -> list[int]:
        with self._lock, self.batch():
            data = self.shop(shop)
            made = _make_products(data, data._rng, max(int(n), 0), self._ts())
            if made:
                data.touch("products")
            self._emit(data, [("products/create", _product_json(data, p)) for p in made])
            return [p.id for p in made]

    def touch_same_second(self, shop: str, resource: str, record_id: int) -> dict[str, Any]:
        """Change a record again WITHOUT moving ``updated_at`` (same second as its current
        one), like a second edit within one second; fires the */update(d) webhook. Returns
        the new REST JSON."""
        if resource not in RESOURCES:
            raise ValueError(f"resource must be one of {sorted(RESOURCES)}")
        topic = {"orders": "orders/updated", "customers": "customers/update", "products": "products/update"}
        with self._lock, self.batch():
            data = self.shop(shop)
            rec = data.by_id[resource].get(record_id)
            if rec is None:
                raise KeyError(f"no {resource} {record_id} in shop {shop!r}")
            data._touches += 1
            if resource == "products":
                rec.variants[0].inventory += 1
                rec.title = f"{rec.title.split(' (rev')[0]} (rev {data._touches})"
            else:
                rec.note = f"Same-second edit {data._touches}"
            data.touch(resource, *(("orders",) if resource == "customers" else ()))
            payload = _RENDER[resource](data, rec)
            self._emit(data, [(topic[resource], payload)])
            return payload

    def _line_items(self, data: ShopData, count: int) -> list[dict[str, Any]]:
        rng = data._rng
        variants = [(p, v) for p in data.rows["products"] for v in p.variants]
        items = []
        for _ in range(count if variants else 0):
            p, v = variants[rng.randrange(len(variants))]
            qty = rng.randint(1, 3)
            items.append({"id": v.id, "key": f"{v.id}:{rng.getrandbits(64):016x}", "product_id": p.id,
                          "variant_id": v.id, "title": p.title, "variant_title": v.title, "sku": v.sku,
                          "vendor": p.vendor, "quantity": qty, "price": _money(v.price),
                          "line_price": _money(v.price * qty), "taxable": True, "gift_card": False})
        return items

    def cart_event(self, shop: str, kind: str = "create") -> dict[str, Any]:
        """carts/create (a new cart) or carts/update (the latest cart, or a new one if none);
        carts exist only as webhook payloads. Returns the payload."""
        if kind not in ("create", "update"):
            raise ValueError("kind must be 'create' or 'update'")
        with self._lock, self.batch():
            data = self.shop(shop)
            now = self._ts()
            if kind == "update" and data.carts:
                cart = data.carts[next(reversed(data.carts))]
                cart["line_items"] = self._line_items(data, data._rng.randint(1, 3))
                cart["updated"] = now
            else:
                token = f"{data._rng.getrandbits(128):032x}"
                cart = data.carts[token] = {"token": token, "line_items": self._line_items(data, 1),
                                            "created": now, "updated": now}
            payload = {"id": cart["token"], "token": cart["token"], "line_items": cart["line_items"],
                       "note": None, "created_at": data.iso(cart["created"]), "updated_at": data.iso(cart["updated"])}
            self._emit(data, [(f"carts/{kind}", payload)])
            return payload

    def checkout_event(self, shop: str, kind: str = "create") -> dict[str, Any]:
        """checkouts/create (from a new cart) or checkouts/update (the latest checkout gets an
        email, new quantities, and sometimes completes). Returns the payload."""
        if kind not in ("create", "update"):
            raise ValueError("kind must be 'create' or 'update'")
        with self._lock, self.batch():
            data = self.shop(shop)
            rng, now = data._rng, self._ts()
            if kind == "update" and data.checkouts:
                co = data.checkouts[next(reversed(data.checkouts))]
                co["line_items"] = self._line_items(data, rng.randint(1, 3))
                customers = data.rows["customers"]
                co["email"] = customers[rng.randrange(len(customers))].email if customers else "guest@example.net"
                co["completed"] = now if rng.random() < 0.3 else None
                co["updated"] = now
            else:
                token = f"{rng.getrandbits(128):032x}"
                co = data.checkouts[token] = {
                    "id": data.next_id("checkouts", rng), "token": token,
                    "cart_token": f"{rng.getrandbits(128):032x}", "email": None,
                    "line_items": self._line_items(data, rng.randint(1, 2)), "created": now, "updated": now,
                    "completed": None}
            total = sum(int(li["line_price"].replace(".", "")) for li in co["line_items"])
            payload = {"id": co["id"], "token": co["token"], "cart_token": co["cart_token"], "email": co["email"],
                       "line_items": co["line_items"], "total_price": _money(total), "currency": data.currency,
                       "created_at": data.iso(co["created"]), "updated_at": data.iso(co["updated"]),
                       "completed_at": data.iso(co["completed"])}
            self._emit(data, [(f"checkouts/{kind}", payload)])
            return payload

    def mutate(self, shop: str, **counts: int) -> dict[str, list[int]]:
        """Several mutations as one webhook batch, e.g. ``mutate(shop, update_orders=2, add_orders=1)``."""
        unknown = set(counts) - set(MUTATIONS)
        if unknown:
            raise ValueError(f"unknown mutations {sorted(unknown)}")
        with self._lock, self.batch():
            self.shop(shop)
            return {name: getattr(self, name)(shop, int(n)) for name, n in counts.items() if int(n) > 0}

    def drift(self, shop: str) -> dict[str, list[int]]:
        """A small random mix of mutations, like a live shop between two syncs."""
        with self._lock:
            rng = self.shop(shop)._rng
            plan = {"update_orders": rng.randint(0, 3), "add_orders": int(rng.random() < 0.4),
                    "pay_orders": int(rng.random() < 0.2), "close_orders": int(rng.random() < 0.2),
                    "cancel_orders": int(rng.random() < 0.05), "update_customers": int(rng.random() < 0.3),
                    "update_products": int(rng.random() < 0.2)}
            return self.mutate(shop, **plan)

    def start_drift(self, interval_seconds: float) -> None:
        """Drift every shop every ``interval_seconds`` on a daemon thread (``dev`` mode)."""
        self._drift.start(interval_seconds)

    def stop_drift(self) -> None:
        self._drift.stop()

    def close(self) -> None:
        """Stop drift and the webhook worker (pending deliveries are dropped)."""
        self.stop_drift()
        self.sender.close()

    # ----------------------------------------------------------------- stats
    def stats(self) -> dict[str, Any]:
        s = self._requests.snapshot()
        s["faults_injected"] = self.faults.snapshot()["injected"]
        s["deliveries"] = self.sender.stats()
        return s

    def reset_stats(self) -> None:
        self._requests.reset()
        self.sender.reset_stats()

    # ------------------------------------------------------------------- API
    def _build_app(self) -> Starlette:
        ctl = self._control
        routes = [
            Route("/shops/{shop}/admin/api/{version}/{rest:path}", self._admin,
                  methods=["GET", "POST", "PUT", "DELETE"]),
            Route("/_sandbox/health", ctl(self._ctl_health), methods=["GET"]),
            Route("/_sandbox/shops", ctl(self._ctl_shops), methods=["GET", "POST"]),
            Route("/_sandbox/ratelimit", ctl(self._ctl_ratelimit), methods=["POST"]),
            Route("/_sandbox/mutate", ctl(self._ctl_mutate), methods=["POST"]),
            Route("/_sandbox/clock", ctl(self._ctl_clock), methods=["GET", "POST"]),
            Route("/_sandbox/faults", ctl(self._ctl_faults), methods=["GET", "POST"]),
            Route("/_sandbox/webhooks", ctl(self._ctl_webhooks), methods=["GET", "POST"]),
            Route("/_sandbox/webhooks/flush", ctl(self._ctl_flush), methods=["POST"]),
            Route("/_sandbox/webhooks/send", ctl(self._ctl_send), methods=["POST"]),
            Route("/_sandbox/deliveries", ctl(self._ctl_deliveries), methods=["GET", "POST"]),
            Route("/_sandbox/stats", ctl(self._ctl_stats), methods=["GET"]),
            Route("/_sandbox/stats/reset", ctl(self._ctl_stats_reset), methods=["POST"]),
        ]
        return Starlette(routes=routes)

    async def _admin(self, request: Request) -> Response:
        """Shopify's order: unknown shop/version 404 -> token 401 (uncounted) -> leaky bucket
        -> injected faults -> the handler."""
        latency = self.faults.latency_ms
        if latency:
            await asyncio.sleep(latency / 1000)
        domain, version = request.path_params["shop"], request.path_params["version"]
        with self._lock:
            data = self._shops.get(domain)
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
        except _ApiError as exc:
            status, payload, extra = exc.status, exc.payload, {}
        body = dumps(payload)
        if fault == "truncated":
            body = body[: len(body) // 2]
        elif fault == "invalid_json":
            body = _GARBAGE_BODY
        self._requests.record(domain, status)
        return Response(body, status, headers={**headers, **extra}, media_type="application/json; charset=utf-8")

    def _dispatch(self, request: Request, data: ShopData, version: str, rest: str,
                  raw: bytes) -> tuple[int, Any, dict[str, str]]:
        match = re.fullmatch(r"(shop|orders|customers|products|webhooks)(?:/(count|\d+))?\.json", rest)
        method = request.method
        if match is None:
            raise _ApiError(404, NOT_FOUND)
        resource, sub = match.groups()
        params = request.query_params
        if resource == "shop":
            if sub or method != "GET":
                raise _ApiError(404, NOT_FOUND)
            return 200, {"shop": self._shop_json(data)}, {}
        if resource == "webhooks":
            return self._webhooks_api(data, version, method, sub, params, raw)
        if method != "GET":
            raise _ApiError(404, NOT_FOUND)
        if sub == "count":
            filters = _filters_from_query(data, resource, params)
            with self._lock:
                rows, _ = self._view(data, resource, filters, "id asc")
                return 200, {"count": len(rows)}, {}
        fields = [f.strip() for f in (params.get("fields") or "").split(",") if f.strip()] or None
        if sub is not None:
            with self._lock:
                rec = data.by_id[resource].get(int(sub))
                if rec is None:
                    raise _ApiError(404, NOT_FOUND)
                return 200, {RESOURCES[resource][0]: _only_fields(_RENDER[resource](data, rec), fields)}, {}
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
        matcher = _matcher(filters)
        if matcher is not None:
            rows = [rec for rec in rows if matcher(rec)]
        key = _sort_key(order)
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
        limit = _parse_limit(params)
        if "page_info" in params:
            extra = [name for name in params.keys() if name not in ("page_info", "limit", "fields")]
            if extra:
                raise _ApiError(400, {"errors": {extra[0]: f"{extra[0]} cannot be passed when page_info is "
                                                           f"present. See {PAGINATION_DOCS} for more information."}})
            token: dict[str, Any] | None = _decode_page_info(params["page_info"], resource)
            filters, order = token["filters"], token["order"]
        else:
            token = None
            filters, order = _filters_from_query(data, resource, params), _parse_order(params.get("order"))
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
            items = [_only_fields(_RENDER[resource](data, rec), fields) for rec in page]
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
                page_info = _encode_page_info({"direction": direction, "last_id": rec_id, "last_value": value,
                                               "resource": resource, "order": order, "filters": filters})
                query = {"limit": limit, **({"fields": ",".join(fields)} if fields else {}), "page_info": page_info}
                parts.append(f'<{request.url.replace(query=urlencode(query))}>; rel="{rel}"')
            headers["Link"] = ", ".join(parts)
        return 200, {resource: items}, headers

    def _shop_json(self, data: ShopData) -> dict[str, Any]:
        offset = datetime.now(data.tz).strftime("%z")
        return {"id": data.shop_id, "name": data.name.replace("-", " ").title(), "domain": data.domain,
                "myshopify_domain": data.domain, "email": f"owner@{data.name}.example.com",
                "iana_timezone": data.timezone, "timezone": f"(GMT{offset[:3]}:{offset[3:]}) {data.timezone}",
                "currency": data.currency, "plan_name": data.plan, "created_at": data.iso(data.created),
                "updated_at": data.iso(data.created)}

    # ------------------------------------------------------- webhooks API
    def _webhooks_api(self, data: ShopData, version: str, method: str, sub: str | None, params: Any,
                      raw: bytes) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            if sub is None and method == "GET":
                return 200, {"webhooks": [_webhook_json(data, w) for w in self._find_webhooks(data, params)]}, {}
            if sub == "count" and method == "GET":
                return 200, {"count": len(self._find_webhooks(data, params, limited=False))}, {}
            if sub is None and method == "POST":
                w = self._create_webhook(data, self._webhook_body(raw), version)
                return 201, {"webhook": _webhook_json(data, w)}, {}
            if sub is None or sub == "count":
                raise _ApiError(404, NOT_FOUND)
            w = data.webhooks.get(int(sub))
            if w is None:
                raise _ApiError(404, NOT_FOUND)
            if method == "GET":
                return 200, {"webhook": _webhook_json(data, w)}, {}
            if method == "DELETE":
                del data.webhooks[w["id"]]
                return 200, {}, {}
            changes = self._webhook_body(raw)
            merged = {**w, **{k: changes[k] for k in ("address", "topic", "format", "fields",
                                                      "metafield_namespaces") if k in changes}}
            self._validate_webhook(data, merged, exclude=w["id"])
            merged["updated"] = self._ts()
            data.webhooks[w["id"]] = merged
            return 200, {"webhook": _webhook_json(data, merged)}, {}

    @staticmethod
    def _webhook_body(raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        webhook = body.get("webhook") if isinstance(body, dict) else None
        if not isinstance(webhook, dict):
            raise _ApiError(400, {"errors": {"webhook": "Required parameter missing or invalid"}})
        return webhook

    @staticmethod
    def _find_webhooks(data: ShopData, params: Any, limited: bool = True) -> list[dict[str, Any]]:
        found = [w for _, w in sorted(data.webhooks.items())
                 if (not params.get("topic") or w["topic"] == params["topic"])
                 and (not params.get("address") or w["address"] == params["address"])]
        if params.get("since_id", "").isdigit():
            found = [w for w in found if w["id"] > int(params["since_id"])]
        return found[:_parse_limit(params)] if limited else found

    @staticmethod
    def _validate_webhook(data: ShopData, w: dict[str, Any], exclude: int | None = None) -> None:
        errors: dict[str, list[str]] = {}
        topic, address = w.get("topic"), w.get("address")
        if not topic:
            errors["topic"] = ["can't be blank"]
        elif topic not in SUPPORTED_TOPICS:
            errors["topic"] = [f"Invalid topic specified: {topic}. Topics allowed: {', '.join(SUPPORTED_TOPICS)}"]
        if not address:
            errors["address"] = ["can't be blank"]
        else:
            parts = urlsplit(str(address))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                errors["address"] = ["is invalid"]
            elif any(o["topic"] == topic and o["address"] == address
                     for o in data.webhooks.values() if o["id"] != exclude):
                errors["address"] = ["for this topic has already been taken"]
        if w.get("format", "json") != "json":
            errors["format"] = ["is not included in the list (the sandbox only sends json)"]
        for name in ("fields", "metafield_namespaces"):
            value = w.get(name)
            if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                errors[name] = ["must be a list of strings"]
        if errors:
            raise _ApiError(422, {"errors": errors})

    def _create_webhook(self, data: ShopData, body: dict[str, Any], version: str) -> dict[str, Any]:
        w = {"topic": body.get("topic"), "address": body.get("address"), "format": body.get("format") or "json",
             "fields": body.get("fields") or [], "metafield_namespaces": body.get("metafield_namespaces") or []}
        self._validate_webhook(data, w)
        now = self._ts()
        w.update(id=data.next_id("webhooks", data._rng), created=now, updated=now, api_version=version)
        data.webhooks[w["id"]] = w
        return w

    # --------------------------------------------------------------- control
    def _control(self, handler: ControlHandler):
        """Control plane (see `control_endpoint`); handlers here take the request and body."""
        return control_endpoint(handler)

    def _ctl_health(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return {"status": "ok", "provider": "shopify", "api_version": self.api_version, "shops": self.shops}

    def _ctl_shops(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            domain = body.get("shop")
            if not isinstance(domain, str) or not domain:
                raise ValueError("shop (a myshopify domain) is required")
            unknown = set(body) - {"shop", "access_token", "orders", "customers", "products", "timezone",
                                   "plan", "bucket_size", "leak_per_second"}
            if unknown:
                raise ValueError(f"unknown shop settings {sorted(unknown)}")
            token = body.get("access_token") or f"{TOKEN_PREFIX}{domain.split('.')[0]}"
            data = self.add_shop(domain, token, orders=int(body.get("orders", 100)),
                                 customers=int(body.get("customers", 50)), products=int(body.get("products", 30)),
                                 timezone=str(body.get("timezone", "America/New_York")),
                                 plan=str(body.get("plan", "standard")), bucket_size=body.get("bucket_size"),
                                 leak_per_second=body.get("leak_per_second"))
            return {"shop": domain, "access_token": token, "counts": data.counts()}
        with self._lock:
            return {"shops": {d: {"counts": s.counts(), "timezone": s.timezone, "plan": s.plan,
                                  "rate_limit": s.bucket.snapshot()} for d, s in self._shops.items()}}

    def _ctl_ratelimit(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - {"shop", "bucket_size", "leak_per_second", "plan", "reset"}
        if unknown or not isinstance(body.get("shop"), str):
            raise ValueError(f"need shop; unknown knobs {sorted(unknown)}")
        return self.set_rate_limit(body["shop"], bucket_size=body.get("bucket_size"),
                                   leak_per_second=body.get("leak_per_second"), plan=body.get("plan"),
                                   reset=bool(body.get("reset")))

    def _ctl_mutate(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """Applied in body order as one webhook batch. Counts for MUTATIONS, or
        ``{"ids": [...]}`` for the update/pay/cancel/close/delete ones."""
        shop = body.get("shop")
        if not isinstance(shop, str):
            raise ValueError("shop is required")
        ops = {k: v for k, v in body.items() if k != "shop"}
        unknown = set(ops) - set(MUTATIONS) - {"cart_event", "checkout_event", "touch_same_second", "drift"}
        if unknown:
            raise ValueError(f"unknown mutations {sorted(unknown)}")
        out: dict[str, Any] = {}
        with self._lock, self.batch():
            self.shop(shop)
            for name, arg in ops.items():
                if name == "drift":
                    out[name] = self.drift(shop) if arg else {}
                elif name in ("cart_event", "checkout_event"):
                    out[name] = getattr(self, name)(shop, str(arg))
                elif name == "touch_same_second":
                    if not isinstance(arg, dict):
                        raise ValueError('touch_same_second must look like {"resource": "orders", "id": 1}')
                    out[name] = self.touch_same_second(shop, str(arg.get("resource")), int(arg.get("id")))
                elif isinstance(arg, dict):
                    if not name.startswith(("update", "pay", "cancel", "close", "delete")):
                        raise ValueError(f"{name} takes a count, not ids")
                    out[name] = getattr(self, name)(shop, ids=[int(i) for i in arg.get("ids", [])])
                else:
                    out[name] = getattr(self, name)(shop, int(arg))
        return out

    def _ctl_clock(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            if "set" in body:
                when = body["set"]
                parsed = None if when is None else datetime.fromisoformat(str(when))
                self.set_clock(parsed, frozen=bool(body.get("frozen", True)))
            if body.get("advance"):
                self.advance(float(body["advance"]))
        with self._clock_lock:
            frozen = self._frozen is not None
        return {"now": _utc_micro(self.now()), "frozen": frozen}

    def _ctl_faults(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """Faults' knobs plus ``retry_after`` (the exact Retry-After string of injected 429s,
        e.g. "0"; null -> ``retry_after_seconds``)."""
        if request.method == "POST":
            body = dict(body)
            if body.get("reset"):
                self.fault_retry_after = None
            if "retry_after" in body:
                value = body.pop("retry_after")
                retry = None if value is None else str(value)
                if retry is not None:
                    float(retry)  # must parse as seconds
                self.faults.apply_control(body)
                self.fault_retry_after = retry
            else:
                self.faults.apply_control(body)
        return {**self.faults.snapshot(), "retry_after": self.fault_retry_after}

    def _ctl_webhooks(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST":
            knobs = dict(body)
            dup = knobs.pop("duplicate_next", 0)
            if knobs:
                self.sender.configure(**knobs)
            if dup:
                self.sender.duplicate_next(int(dup))
        return self.sender.snapshot()

    def _ctl_flush(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        flushed = self.flush(float(body.get("timeout", 10.0)))
        return {"flushed": flushed, "pending": self.sender.pending()}

    def _ctl_send(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        shop, topic, payload = body.get("shop"), body.get("topic"), body.get("body")
        if not isinstance(shop, str) or not isinstance(topic, str):
            raise ValueError("shop and topic are required")
        raw = payload.encode() if isinstance(payload, str) else dumps(payload)
        headers = body.get("headers") or {}
        if not isinstance(headers, dict):
            raise ValueError("headers must be an object")
        return {"webhook_ids": self.send_raw(shop, topic, raw, headers=headers, address=body.get("address"))}

    def _ctl_deliveries(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.method == "POST" and body.get("reset"):
            self.sender.clear_log()
        entries = self.deliveries()
        shop = request.query_params.get("shop")
        return {"deliveries": [e for e in entries if not shop or e["shop"] == shop]}

    def _ctl_stats(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self.stats()

    def _ctl_stats_reset(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self.reset_stats()
        return self.stats()


def _json(payload: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(payload), status, headers=headers, media_type="application/json; charset=utf-8")


# ------------------------------------------------------------------------------ CLI
def main(argv: list[str] | None = None) -> int:
    from sync_pipelines.sandbox.server import loopback_host, serve_foreground

    parser = argparse.ArgumentParser(prog="python -m sync_pipelines.sandbox.shopify",
                                     description="Serve a Shopify Admin REST sandbox until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--shops", default="acme",
                        help="comma-separated names; shop = <name>.myshopify.com, token = sandbox-shopify-<name>")
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--products", type=int, default=30)
    parser.add_argument("--timezone", default="America/New_York")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--api-version", default="2025-10")
    parser.add_argument("--bucket-size", type=int, default=40)
    parser.add_argument("--leak-per-second", type=float, default=2.0)
    parser.add_argument("--app-secret", default="sandbox-shopify-app-secret")
    parser.add_argument("--drift-seconds", type=float, default=0.0, help="mutate every shop this often (0 = static)")
    args = parser.parse_args(argv)

    loopback_host(args.host)  # refuse a non-loopback host before generating any data
    sandbox = ShopifySandbox(seed=args.seed, api_version=args.api_version, bucket_size=args.bucket_size,
                             leak_per_second=args.leak_per_second, app_secret=args.app_secret)
    names = [name.strip() for name in args.shops.split(",") if name.strip()]
    for name in names:
        sandbox.add_shop(f"{name}.myshopify.com", f"{TOKEN_PREFIX}{name}", orders=args.orders,
                         customers=args.customers, products=args.products, timezone=args.timezone)

    def announce(url: str) -> None:
        if args.drift_seconds > 0:
            sandbox.start_drift(args.drift_seconds)
        print(f"Shopify sandbox on {url}", flush=True)
        for name in names:
            print(f"  shop {name}.myshopify.com: X-Shopify-Access-Token {TOKEN_PREFIX}{name} "
                  f"(base {url}/shops/{name}.myshopify.com/admin/api/{args.api_version})", flush=True)

    serve_foreground(sandbox.app, args.host, args.port, announce=announce, on_exit=sandbox.close)
    return 0


if __name__ == "__main__":
    sys.exit(main())
