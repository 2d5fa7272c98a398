"""A Shopify shop's data: compact records, their seeded generation, and their REST JSON.

Data is generated per shop from ``(seed, shop)`` so runs are reproducible. Records are compact
``__slots__`` objects rendered to REST JSON only when served, so 100k orders stay cheap; they
are mutated in place under the sandbox's lock (every read renders under the same lock, so
nobody sees a half-updated record).

Timestamps have second precision in the shop's UTC offset *at that instant* (DST-aware), as
Shopify renders them: two updates in one second share ``updated_at``, and string comparison
of timestamps across a DST change is wrong.
"""

from __future__ import annotations

import bisect
import random
from datetime import datetime, timezone as dt_timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sync_pipelines.sandbox.ratelimit import LeakyBucket

RESOURCES = {"orders": ("order", "Order"), "customers": ("customer", "Customer"),
             "products": ("product", "Product")}

# Generated history ends here (2025-07-01T00:00:00Z) so the same seed always yields the same
# data; mutations use the sandbox clock (real time unless set).
_ANCHOR = 1_751_328_000
_DAY = 86_400

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
TAGS = ("", "", "sale", "new", "bestseller", "gift", "eco", "limited")
CUSTOMER_TAGS = ("", "", "", "vip", "wholesale", "newsletter", "returning")
_SIZES = ("Small", "Medium", "Large")
_CANCEL_REASONS = ("customer", "inventory", "fraud", "declined", "other")
_FINANCIAL = (("paid", 0.80), ("pending", 0.87), ("authorized", 0.91), ("partially_refunded", 0.95),
              ("refunded", 1.0))


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def utc_micro(ts: float) -> str:
    """``X-Shopify-Triggered-At``: ISO UTC with microseconds."""
    return datetime.fromtimestamp(ts, dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ------------------------------------------------------------------------- records
class Order:
    __slots__ = ("id", "number", "email", "customer_id", "created", "updated", "processed", "closed",
                 "cancelled", "cancel_reason", "financial", "fulfillment", "line_items", "subtotal", "tax",
                 "tags", "note")


class Customer:
    __slots__ = ("id", "email", "first", "last", "state", "orders_count", "total_spent", "created",
                 "updated", "tags", "note", "verified")


class Variant:
    __slots__ = ("id", "title", "sku", "price", "inventory", "position", "created", "updated")


class Product:
    __slots__ = ("id", "title", "handle", "vendor", "product_type", "status", "tags", "created", "updated",
                 "variants")


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
        self.drift_step = 0  # the next step of the drift rotation (mutations.DRIFT_ROTATION)
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

    def record(self, resource: str, record_id: int) -> Any:
        rec = self.by_id[resource].get(record_id)
        if rec is None:
            raise KeyError(f"no {resource} {record_id} in shop {self.domain!r}")
        return rec

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
def make_products(shop: ShopData, rng: random.Random, count: int, now: int | None) -> list[Product]:
    r = rng.random
    made = []
    for _ in range(count):
        p = Product()
        p.id = shop.next_id("products", rng)
        p.title = f"{_ADJ[int(r() * 10)]} {_MAT[int(r() * 10)]} {_NOUN[int(r() * 15)]}"
        p.handle = f"{p.title.lower().replace(' ', '-')}-{p.id % 100_000}"
        p.vendor = _VENDORS[int(r() * 5)]
        p.product_type = _TYPES[int(r() * 5)]
        roll = r()
        p.status = "active" if roll < 0.85 else "draft" if roll < 0.95 else "archived"
        p.tags = ", ".join(sorted({t for t in (TAGS[int(r() * 8)], TAGS[int(r() * 8)]) if t}))
        if now is None:
            p.created = _ANCHOR - 1000 * _DAY + int(r() * 200 * _DAY)
            p.updated = p.created + (int(r() * (_ANCHOR - p.created)) if r() < 0.6 else 0)
        else:
            p.created = p.updated = now
        n_variants = 1 + int(r() * 3)
        base_price = 500 + int(r() * 15_000)
        p.variants = []
        for j in range(n_variants):
            v = Variant()
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


def make_customers(shop: ShopData, rng: random.Random, count: int, now: int | None) -> list[Customer]:
    r = rng.random
    made = []
    for _ in range(count):
        c = Customer()
        c.id = shop.next_id("customers", rng)
        c.first, c.last = _FIRST[int(r() * 20)], _LAST[int(r() * 18)]
        c.email = f"{c.first}.{c.last}.{c.id % 100_000}@example.com".lower()
        roll = r()
        c.state = "enabled" if roll < 0.8 else "disabled" if roll < 0.9 else "invited"
        c.orders_count, c.total_spent = 0, 0
        c.tags = CUSTOMER_TAGS[int(r() * 7)]
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


def make_orders(shop: ShopData, rng: random.Random, count: int, now: int | None) -> list[Order]:
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
        o = Order()
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
        o.tags, o.note = TAGS[int(r() * 8)], None
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


def generate_shop(seed: int, domain: str, access_token: str, *, orders: int, customers: int, products: int,
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
    make_products(shop, rng, products, None)
    make_customers(shop, rng, customers, None)
    make_orders(shop, rng, orders, None)
    return shop


# ------------------------------------------------------------------------ rendering
def customer_json(shop: ShopData, c: Customer, *, aggregates: bool = True) -> dict[str, Any]:
    out = {
        "id": c.id, "email": c.email, "created_at": shop.iso(c.created), "updated_at": shop.iso(c.updated),
        "first_name": c.first, "last_name": c.last, "state": c.state, "note": c.note,
        "verified_email": c.verified, "multipass_identifier": None, "tax_exempt": False, "phone": None,
        "tags": c.tags, "currency": shop.currency, "admin_graphql_api_id": f"gid://shopify/Customer/{c.id}",
    }
    if aggregates:
        out["orders_count"] = c.orders_count
        out["total_spent"] = money(c.total_spent)
    return out


def order_json(shop: ShopData, o: Order) -> dict[str, Any]:
    customer = shop.by_id["customers"].get(o.customer_id) if o.customer_id else None
    total = money(o.subtotal + o.tax)
    return {
        "id": o.id, "admin_graphql_api_id": f"gid://shopify/Order/{o.id}", "name": f"#{o.number}",
        "order_number": o.number, "number": o.number - 1000, "email": o.email, "contact_email": o.email,
        "created_at": shop.iso(o.created), "updated_at": shop.iso(o.updated),
        "processed_at": shop.iso(o.processed), "closed_at": shop.iso(o.closed),
        "cancelled_at": shop.iso(o.cancelled), "cancel_reason": o.cancel_reason,
        "financial_status": o.financial, "fulfillment_status": o.fulfillment, "confirmed": True,
        "test": False, "currency": shop.currency, "presentment_currency": shop.currency,
        "subtotal_price": money(o.subtotal), "total_line_items_price": money(o.subtotal),
        "total_discounts": "0.00", "total_tax": money(o.tax), "total_price": total,
        "current_total_price": total, "taxes_included": False, "tags": o.tags, "note": o.note,
        "source_name": "web",
        "customer": customer_json(shop, customer, aggregates=False) if customer else None,
        "line_items": [{
            "id": li[0], "admin_graphql_api_id": f"gid://shopify/LineItem/{li[0]}", "product_id": li[1],
            "variant_id": li[2], "title": li[3], "variant_title": li[4],
            "name": li[3] if li[4] in (None, "Default Title") else f"{li[3]} - {li[4]}", "sku": li[5],
            "quantity": li[6], "price": money(li[7]), "taxable": True, "requires_shipping": True,
            "fulfillable_quantity": 0 if o.fulfillment == "fulfilled" or o.cancelled else li[6],
        } for li in o.line_items],
    }


def variant_json(shop: ShopData, p: Product, v: Variant) -> dict[str, Any]:
    return {
        "id": v.id, "product_id": p.id, "title": v.title, "price": money(v.price), "sku": v.sku,
        "position": v.position, "inventory_policy": "deny", "compare_at_price": None, "option1": v.title,
        "created_at": shop.iso(v.created), "updated_at": shop.iso(v.updated), "taxable": True,
        "barcode": None, "inventory_item_id": v.id + 3_000_000_000_000, "inventory_quantity": v.inventory,
        "admin_graphql_api_id": f"gid://shopify/ProductVariant/{v.id}",
    }


def product_json(shop: ShopData, p: Product) -> dict[str, Any]:
    return {
        "id": p.id, "title": p.title, "body_html": f"<p>{p.title} by {p.vendor}.</p>", "vendor": p.vendor,
        "product_type": p.product_type, "created_at": shop.iso(p.created), "handle": p.handle,
        "updated_at": shop.iso(p.updated),
        "published_at": shop.iso(p.created) if p.status == "active" else None,
        "template_suffix": None, "published_scope": "web", "tags": p.tags, "status": p.status,
        "admin_graphql_api_id": f"gid://shopify/Product/{p.id}",
        "variants": [variant_json(shop, p, v) for v in p.variants],
    }


RENDER: dict[str, Callable[[ShopData, Any], dict[str, Any]]] = {
    "orders": order_json, "customers": customer_json, "products": product_json}


def webhook_json(shop: ShopData, w: dict[str, Any]) -> dict[str, Any]:
    return {"id": w["id"], "address": w["address"], "topic": w["topic"], "created_at": shop.iso(w["created"]),
            "updated_at": shop.iso(w["updated"]), "format": w["format"], "fields": list(w["fields"]),
            "metafield_namespaces": list(w["metafield_namespaces"]), "api_version": w["api_version"],
            "private_metafield_namespaces": []}


def only_fields(item: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """``fields=a,b``: only those top-level keys (webhook subscriptions' ``fields`` too)."""
    return item if not fields else {k: v for k, v in item.items() if k in fields}


def shop_json(data: ShopData) -> dict[str, Any]:
    offset = datetime.now(data.tz).strftime("%z")
    return {"id": data.shop_id, "name": data.name.replace("-", " ").title(), "domain": data.domain,
            "myshopify_domain": data.domain, "email": f"owner@{data.name}.example.com",
            "iana_timezone": data.timezone, "timezone": f"(GMT{offset[:3]}:{offset[3:]}) {data.timezone}",
            "currency": data.currency, "plan_name": data.plan, "created_at": data.iso(data.created),
            "updated_at": data.iso(data.created)}
