"""ShipStation API v2 emulator: the read endpoints the sync uses, plus a control plane.

Contract: ShipStation's published OpenAPI spec (``/v2/warehouses``, ``/v2/inventory_warehouses``,
``/v2/inventory_locations``, ``/v2/products``, ``/v2/inventory``); the sandbox test suite
validates real responses against it. Where the spec is silent the choices are ours and
are written down next to the code (e.g. the ``limit`` maximum).

Data is generated per store from ``(seed, api_key)`` so runs are reproducible, and it can
be mutated over time (explicitly or by a background "drift" ticker) so incremental syncs
have something to pick up. Records are plain dicts replaced copy-on-write on mutation:
a handler copies its page slice under the lock and serializes it outside the lock
without ever seeing a half-updated record.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import uuid
from typing import Any, Callable
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sync_pipelines.sandbox.control import Drift, RequestStats, control_endpoint, dumps
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.ratelimit import RateLimiter

log = logging.getLogger(__name__)

PRODUCTS_PAGE_SIZE_MAX = 100  # from the spec (page_size: minimum 1, maximum 100, default 100)
LIMIT_DEFAULT = 100
# The spec declares `limit` on the inventory endpoints with no maximum; 500 is our
# choice, and out-of-range values get a 400 so a client relying on bigger pages
# finds out here rather than in production.
LIMIT_MAX = 500

# Generated history ends here (2025-07-01T00:00:00Z), so the same seed always yields
# byte-identical data; mutations use the real clock.
_ANCHOR_MS = 1_751_328_000_000
_DAY_MS = 86_400_000
_GARBAGE_BODY = b"<html><body><h1>502 Bad Gateway</h1></body></html>\x00\xff{\"products\": [,"

_ADJECTIVES = ("Classic", "Deluxe", "Compact", "Rugged", "Premium", "Eco", "Smart", "Vintage",
               "Ultra", "Mini", "Pro", "Travel", "Heavy-Duty", "Lightweight", "Organic", "Modern")
_MATERIALS = ("Cotton", "Steel", "Bamboo", "Leather", "Ceramic", "Walnut", "Canvas", "Glass",
              "Copper", "Wool", "Silicone", "Linen")
_NOUNS = ("Mug", "Backpack", "Lamp", "Notebook", "Water Bottle", "Cutting Board", "Tote Bag",
          "Phone Case", "Candle", "Desk Organizer", "Headphones", "Scarf", "Plant Pot", "Keychain",
          "Wallet", "Blanket", "Teapot", "Yoga Mat", "Sunglasses", "Pillow")
_COLORS = ("Black", "White", "Red", "Navy", "Olive", "Sand", "Charcoal", "Teal")
_CITIES = (("Austin", "TX", "78756"), ("Denver", "CO", "80202"), ("Columbus", "OH", "43215"),
           ("Reno", "NV", "89501"), ("Memphis", "TN", "38103"), ("Harrisburg", "PA", "17101"),
           ("Ontario", "CA", "91761"), ("Louisville", "KY", "40202"))
_STREETS = ("Commerce Dr", "Industrial Pkwy", "Logistics Blvd", "Warehouse Rd", "Distribution Way")
_CONTACTS = ("Jordan Lee", "Sam Rivera", "Alex Kim", "Taylor Brooks", "Morgan Patel", "Casey Nguyen")
_TARIFFS = ("6912.00.48", "4202.92.31", "9405.40.84", "4820.10.20", "6302.60.00", "3924.10.40")
_ORIGINS = ("US", "CN", "MX", "VN", "IN", "DE")
_NOTES = ("Fragile - pack with bubble wrap", "Ships in own container", "Seasonal item",
          "Check lot number before shipping")
_DEFAULT_SHIPPING = (("stamps_com", "usps_ground_advantage", "package"),
                     ("ups", "ups_ground", "package"),
                     ("fedex", "fedex_home_delivery", "package"),
                     ("stamps_com", "usps_priority_mail", "medium_flat_rate_box"))

_day_strings: dict[int, str] = {}


def iso_ms(epoch_ms: int) -> str:
    """``2025-07-07T20:10:02.130Z``; hand-rolled because strftime is the hot spot at 100k rows."""
    day, rem = divmod(epoch_ms, _DAY_MS)
    date = _day_strings.get(day)
    if date is None:
        date = _day_strings[day] = time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))
    hours, rem = divmod(rem, 3_600_000)
    minutes, rem = divmod(rem, 60_000)
    seconds, millis = divmod(rem, 1000)
    return f"{date}T{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"


def error_body(error_type: str, error_code: str, message: str) -> dict[str, Any]:
    """The spec's ``error_response_body``; note the spec spells the source ``ShipStation``."""
    return {
        "request_id": str(uuid.uuid4()),
        "errors": [{"error_source": "ShipStation", "error_type": error_type,
                    "error_code": error_code, "message": message}],
    }


class _BadRequest(Exception):
    pass


class StoreData:
    """One account's data: the public lists are exactly the JSON records the API serves.

    Invariant: ``inventory[i]`` is the row for ``products[i]`` (one location per product),
    so one sku -> position index serves both lists.
    """

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.warehouses: list[dict[str, Any]] = []
        self.inventory_warehouses: list[dict[str, Any]] = []
        self.inventory_locations: list[dict[str, Any]] = []
        self.products: list[dict[str, Any]] = []
        self.inventory: list[dict[str, Any]] = []
        self._rng = random.Random()  # mutations; seeded by the generator
        self._sku_prefix = ""
        self._next_product_id = 0
        self._next_seq = 1
        self._pos_by_sku: dict[str, int] = {}
        self._version = 0  # bumped on every mutation; invalidates _filter_cache
        self._filter_cache: dict[tuple, tuple[int, list[dict[str, Any]]]] = {}
        self._last_now_ms = 0

    def counts(self) -> dict[str, int]:
        return {
            "warehouses": len(self.warehouses),
            "inventory_warehouses": len(self.inventory_warehouses),
            "inventory_locations": len(self.inventory_locations),
            "products": len(self.products),
            "inventory": len(self.inventory),
        }

    def _now_ms(self) -> int:
        """Strictly increasing per store, so a `modify_date > cursor` client never misses an edit."""
        now = max(time.time_ns() // 1_000_000, self._last_now_ms + 1)
        self._last_now_ms = now
        return now


def _address(rng: random.Random, company: str, city: tuple[str, str, str]) -> dict[str, Any]:
    name, state, postal = city
    return {
        "name": rng.choice(_CONTACTS),
        "phone": f"+1 {rng.randint(201, 989)}-555-{rng.randint(100, 9999):04d}",
        "email": f"warehouse@{company.lower().replace(' ', '-')}.example.com",
        "company_name": company,
        "address_line1": f"{rng.randint(100, 9999)} {rng.choice(_STREETS)}",
        "address_line2": f"Suite {rng.randint(100, 499)}" if rng.random() < 0.5 else None,
        "address_line3": None,
        "city_locality": name,
        "state_province": state,
        "postal_code": postal,
        "country_code": "US",
        "address_residential_indicator": "no",
    }


def _generate_store(seed: int, api_key: str, products: int, warehouses: int,
                    locations_per_warehouse: int) -> StoreData:
    if products < 0 or warehouses < 1 or locations_per_warehouse < 1:
        raise ValueError("need products >= 0, warehouses >= 1, locations_per_warehouse >= 1")
    rng = random.Random(f"shipstation:{seed}:{api_key}")  # str seeds are stable across processes
    store = StoreData(api_key)
    store._rng = random.Random(f"shipstation-mutations:{seed}:{api_key}")
    store._sku_prefix = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(3))
    company = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} Co"
    setup_ms = _ANCHOR_MS - 800 * _DAY_MS

    wh_base = rng.randint(100_000, 800_000)
    iw_base = rng.randint(100_000, 800_000)
    loc_base = rng.randint(100_000, 800_000)
    for w in range(warehouses):
        city = _CITIES[(w + rng.randrange(len(_CITIES))) % len(_CITIES)]
        created = iso_ms(setup_ms + w * _DAY_MS + rng.randrange(_DAY_MS))
        wh_name = f"{city[0]} Fulfillment Center {w + 1}"
        origin = _address(rng, company, city)
        store.warehouses.append({
            "warehouse_id": f"se-{wh_base + w * 7}",
            "is_default": w == 0,
            "name": wh_name,
            "created_at": created,
            "origin_address": origin,
            "return_address": dict(origin),
        })
        iw_id = f"se-{iw_base + w * 11}"
        store.inventory_warehouses.append({
            "inventory_warehouse_id": iw_id,
            "name": wh_name,
            "created_at": created,
            "updated_at": iso_ms(setup_ms + (w + 30) * _DAY_MS + rng.randrange(_DAY_MS)),
        })
        for loc in range(locations_per_warehouse):
            loc_created = iso_ms(setup_ms + (w + 1) * _DAY_MS + rng.randrange(_DAY_MS))
            store.inventory_locations.append({
                "inventory_location_id": f"se-{loc_base + len(store.inventory_locations) * 13}",
                "name": f"Aisle {chr(65 + loc % 26)}-{loc // 26 + 1:02d}",
                "inventory_warehouse_id": iw_id,
                "created_at": loc_created,
                "updated_at": loc_created,
            })

    store._next_product_id = 10_000_000 + rng.randrange(1_000_000)
    new_products, new_inventory = _make_products(store, rng, products, now_ms=None)
    store.products.extend(new_products)
    store.inventory.extend(new_inventory)
    return store


def _make_products(store: StoreData, rng: random.Random, count: int,
                   now_ms: int | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Build ``count`` products + inventory rows continuing the store's id/sku sequences.

    ``now_ms=None`` means historical data (timestamps before the anchor). Nested objects
    that never change per product (dimensions, weight, category, tags) are shared from
    small pools to keep 100k products cheap; mutations always replace, never edit, them.
    """
    r = rng.random
    dims_pool = [{"unit": "inch", "length": float(rng.randint(2, 30)), "width": float(rng.randint(2, 20)),
                  "height": float(rng.randint(1, 15))} for _ in range(64)]
    weight_pool = [{"value": round(rng.uniform(0.5, 160.0), 1), "unit": "ounce"} for _ in range(64)]
    categories = [None, None] + [{"product_category_id": 26_600 + i * 17, "name": n}
                                 for i, n in enumerate(("Home", "Outdoor", "Office", "Apparel",
                                                        "Kitchen", "Accessories"))]
    tag_pool = [None, None, None, None, [],
                [{"tag_id": 21_121, "name": "Fragile", "color": "#FF0000"}],
                [{"tag_id": 21_122, "name": "Best Seller", "color": "#800080"}]]
    bins = [f"BIN {a}-{b}" for a in range(1, 41) for b in range(1, 11)]
    loc_pairs = [(loc["inventory_warehouse_id"], loc["inventory_location_id"])
                 for loc in store.inventory_locations]
    n_adj, n_mat, n_noun, n_col = len(_ADJECTIVES), len(_MATERIALS), len(_NOUNS), len(_COLORS)
    n_loc = len(loc_pairs)
    prefix = store._sku_prefix
    pid = store._next_product_id
    seq = store._next_seq
    span_ms = 730 * _DAY_MS
    products: list[dict[str, Any]] = []
    inventory: list[dict[str, Any]] = []
    p_append, i_append = products.append, inventory.append
    for _ in range(count):
        pid += 1 + int(r() * 3)
        sku = f"{prefix}-{seq:06d}"
        seq += 1
        noun = _NOUNS[int(r() * n_noun)]
        name = (f"{_ADJECTIVES[int(r() * n_adj)]} {_MATERIALS[int(r() * n_mat)]} {noun}"
                f" - {_COLORS[int(r() * n_col)]}")
        amount = round(1.0 + r() * 199.0, 2)
        if now_ms is None:
            created = _ANCHOR_MS - _DAY_MS - int(r() * span_ms)
            create_date = iso_ms(created)
            modify_date = iso_ms(created + int(r() * (_ANCHOR_MS - created))) if r() < 0.6 else create_date
        else:
            create_date = modify_date = iso_ms(now_ms)
        shape = r()
        shipping = _DEFAULT_SHIPPING[int(r() * 4)] if shape < 0.25 else (None, None, None)
        customs = shape < 0.5
        p_append({
            "product_id": pid,
            "sku": sku,
            "name": name,
            "upc": f"{int(r() * 1e12):012d}" if shape < 0.6 else None,
            "thumbnail_url": f"https://cdn.example.com/products/{sku}.jpg" if shape > 0.7 else None,
            "price": {"currency": "usd", "amount": amount},
            "dimensions": dims_pool[int(r() * 64)],
            "weight": weight_pool[int(r() * 64)],
            "internal_notes": _NOTES[int(shape * 40)] if shape < 0.1 else None,
            "fulfillment_sku": None,
            "create_date": create_date,
            "modify_date": modify_date,
            "active": r() < 0.95,
            "product_category": categories[int(r() * 8)],
            "preset_group": None,
            "warehouse_location": bins[int(r() * 400)] if shape < 0.8 else None,
            "default_carrier_code": shipping[0],
            "default_service_code": shipping[1],
            "default_package_code": shipping[2],
            "default_intl_carrier_code": None,
            "default_intl_service_code": None,
            "default_intl_package_code": None,
            "default_confirmation": "none" if shipping[0] else None,
            "default_intl_confirmation": None,
            "customs_description": noun if customs else None,
            "customs_value": amount if customs else None,
            "customs_tariff_no": _TARIFFS[int(r() * 6)] if customs else None,
            "customs_country_code": _ORIGINS[int(r() * 6)] if customs else None,
            "no_customs": not customs,
            "tags": tag_pool[int(r() * 7)],
            "aliases": None,
            "product_type": "standalone",
            "is_returnable": shape > 0.3,
            "should_override_name": False,
            "is_bundle": False,
            "bundle_components": None,
            "auto_split_option": "do_not_split",
            "auto_split_custom_quantity": None,
        })
        on_hand = int(r() * 500)
        allocated = int(r() * (on_hand // 5 + 1))
        iw_id, loc_id = loc_pairs[int(r() * n_loc)]
        i_append({
            "sku": sku,
            "on_hand": on_hand,
            "allocated": allocated,
            "available": on_hand - allocated,
            "average_cost": {"amount": round(amount * (0.35 + r() * 0.2), 2), "currency": "usd"},
            "inventory_warehouse_id": iw_id,
            "inventory_location_id": loc_id,
        })
    base = len(store.products)
    for offset, product in enumerate(products):
        store._pos_by_sku[product["sku"]] = base + offset
    store._next_product_id = pid
    store._next_seq = seq
    return products, inventory


def _int_param(request: Request, name: str, default: int, lo: int, hi: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise _BadRequest(f"{name} must be {bound}, got {value}")
    return value


class ShipStationSandbox:
    """In-memory ShipStation v2 account(s) behind a Starlette app (``.app``)."""

    def __init__(self, *, seed: int = 7, requests_per_minute: int | None = 200,
                 window_seconds: float = 60, faults: Faults | None = None) -> None:
        self.seed = seed
        self.faults = faults if faults is not None else Faults(seed=seed)
        self.limiter = RateLimiter(requests_per_minute, window_seconds)
        self._lock = threading.RLock()
        self._stores: dict[str, StoreData] = {}
        self._requests = RequestStats(by="requests_by_key")
        self._drift = Drift(keys=lambda: self.api_keys, tick=lambda key: self.drift(key), what="store",
                            thread_name="shipstation-sandbox-drift", log=log)
        self.app = self._build_app()

    # ------------------------------------------------------------------ data
    def add_store(self, api_key: str, *, products: int = 50, warehouses: int = 2,
                  locations_per_warehouse: int = 3) -> None:
        """(Re)create a store; same seed + key -> same data, so re-adding resets mutations."""
        if not api_key:
            raise ValueError("api_key must be non-empty")
        store = _generate_store(self.seed, api_key, products, warehouses, locations_per_warehouse)
        with self._lock:
            self._stores[api_key] = store

    def store(self, api_key: str) -> StoreData:
        with self._lock:
            try:
                return self._stores[api_key]
            except KeyError:
                raise KeyError(f"no sandbox store with api key {api_key!r}") from None

    @property
    def api_keys(self) -> list[str]:
        with self._lock:
            return list(self._stores)

    def update_products(self, api_key: str, n: int) -> list[int]:
        """Change price and name of ``n`` random products; returns their product_ids."""
        with self._lock:
            store = self.store(api_key)
            rng = store._rng
            picks = rng.sample(range(len(store.products)), min(max(n, 0), len(store.products)))
            changed = []
            for pos in sorted(picks):
                old = store.products[pos]
                new = dict(old)
                amount = round(max(0.5, old["price"]["amount"] * (0.8 + rng.random() * 0.4)), 2)
                if amount == old["price"]["amount"]:
                    amount = round(amount + 0.01, 2)
                new["price"] = {"currency": old["price"]["currency"], "amount": amount}
                name = (f"{rng.choice(_ADJECTIVES)} {rng.choice(_MATERIALS)} {rng.choice(_NOUNS)}"
                        f" - {rng.choice(_COLORS)}")
                new["name"] = name if name != old["name"] else f"{name} (Refreshed)"
                new["modify_date"] = iso_ms(store._now_ms())
                store.products[pos] = new
                changed.append(new["product_id"])
            if changed:
                store._version += 1
            return changed

    def add_products(self, api_key: str, n: int) -> list[int]:
        """Append ``n`` new products (ids above every existing one) and their inventory rows."""
        with self._lock:
            store = self.store(api_key)
            products, inventory = _make_products(store, store._rng, max(n, 0), now_ms=store._now_ms())
            store.products.extend(products)
            store.inventory.extend(inventory)
            if products:
                store._version += 1
            return [p["product_id"] for p in products]

    def update_inventory(self, api_key: str, n: int) -> list[tuple[str, str, int, int]]:
        """Change on_hand (and so available) of ``n`` rows.

        Returns ``(sku, inventory_location_id, on_hand, available)`` with the new values.
        """
        with self._lock:
            store = self.store(api_key)
            rng = store._rng
            picks = rng.sample(range(len(store.inventory)), min(max(n, 0), len(store.inventory)))
            changed = []
            for pos in sorted(picks):
                old = store.inventory[pos]
                on_hand = max(0, old["on_hand"] + rng.choice((-5, -3, -1, 2, 4, 10, 25)))
                if on_hand == old["on_hand"]:
                    on_hand += 1
                allocated = min(old["allocated"], on_hand)
                new = dict(old, on_hand=on_hand, allocated=allocated, available=on_hand - allocated)
                store.inventory[pos] = new
                changed.append((new["sku"], new["inventory_location_id"], on_hand, new["available"]))
            if changed:
                store._version += 1
            return changed

    def rename_warehouse(self, api_key: str, warehouse_id: str | None = None,
                         name: str | None = None) -> str:
        """Rename a warehouse and its inventory warehouse (bumping its updated_at)."""
        with self._lock:
            store = self.store(api_key)
            if warehouse_id is None:
                pos = store._rng.randrange(len(store.warehouses))
            else:
                matches = [i for i, w in enumerate(store.warehouses) if w["warehouse_id"] == warehouse_id]
                if not matches:
                    raise KeyError(f"no warehouse {warehouse_id!r} in store {api_key!r}")
                pos = matches[0]
            old = store.warehouses[pos]
            new_name = name or f"{old['name'].split(' (')[0]} ({store._rng.randint(2, 999)})"
            store.warehouses[pos] = dict(old, name=new_name)
            inv_wh = store.inventory_warehouses[pos]  # created one per warehouse, same order
            store.inventory_warehouses[pos] = dict(inv_wh, name=new_name,
                                                   updated_at=iso_ms(store._now_ms()))
            store._version += 1
            return old["warehouse_id"]

    def drift(self, api_key: str) -> dict[str, Any]:
        """A small random mix of mutations, like a live shop between two syncs."""
        with self._lock:
            rng = self.store(api_key)._rng
            plan = (rng.randint(0, 3), 1 if rng.random() < 0.3 else 0, rng.randint(0, 5), rng.random() < 0.02)
            return self.mutate(api_key, update_products=plan[0], add_products=plan[1],
                               update_inventory=plan[2], rename_warehouse=plan[3])

    def mutate(self, api_key: str, *, update_products: int = 0, add_products: int = 0,
               update_inventory: int = 0, rename_warehouse: bool = False) -> dict[str, Any]:
        with self._lock:
            self.store(api_key)
            return {
                "updated_products": self.update_products(api_key, update_products) if update_products else [],
                "added_products": self.add_products(api_key, add_products) if add_products else [],
                "updated_inventory": (self.update_inventory(api_key, update_inventory)
                                      if update_inventory else []),
                "renamed_warehouse": self.rename_warehouse(api_key) if rename_warehouse else None,
            }

    def start_drift(self, interval_seconds: float) -> None:
        """Drift every store every ``interval_seconds`` on a daemon thread (``dev`` mode)."""
        self._drift.start(interval_seconds)

    def stop_drift(self) -> None:
        self._drift.stop()

    # ----------------------------------------------------------------- stats
    def stats(self) -> dict[str, Any]:
        s = self._requests.snapshot()
        s["faults_injected"] = self.faults.snapshot()["injected"]
        return s

    def reset_stats(self) -> None:
        self._requests.reset()

    # ------------------------------------------------------------------- API
    def _build_app(self) -> Starlette:
        v2 = self._v2
        routes = [
            Route("/v2/warehouses", v2(self._list_warehouses), methods=["GET"]),
            Route("/v2/inventory_warehouses", v2(self._list_inventory_warehouses), methods=["GET"]),
            Route("/v2/inventory_locations", v2(self._list_inventory_locations), methods=["GET"]),
            Route("/v2/products", v2(self._list_products), methods=["GET"]),
            Route("/v2/inventory", v2(self._list_inventory), methods=["GET"]),
            Route("/v2/{rest:path}", v2(self._not_found), methods=["GET"]),
            Route("/_sandbox/health", self._control(self._ctl_health), methods=["GET"]),
            Route("/_sandbox/faults", self._control(self._ctl_faults), methods=["GET", "POST"]),
            Route("/_sandbox/ratelimit", self._control(self._ctl_ratelimit), methods=["GET", "POST"]),
            Route("/_sandbox/stores", self._control(self._ctl_stores), methods=["GET", "POST"]),
            Route("/_sandbox/mutate", self._control(self._ctl_mutate), methods=["POST"]),
            Route("/_sandbox/stats", self._control(self._ctl_stats), methods=["GET"]),
            Route("/_sandbox/stats/reset", self._control(self._ctl_stats_reset), methods=["POST"]),
        ]
        return Starlette(routes=routes)

    def _v2(self, handler: Callable[[Request, StoreData], tuple[int, Any]]):
        """Wrap a read handler in the provider's cross-cutting behaviour, in ShipStation's
        order: auth (401 before anything counts) -> per-key rate limit -> injected faults."""

        async def endpoint(request: Request) -> Response:
            latency = self.faults.latency_ms
            if latency:
                await asyncio.sleep(latency / 1000)
            key = request.headers.get("api-key")
            with self._lock:
                store = self._stores.get(key) if key else None
            if store is None:
                self._requests.record(None, 401)
                return Response(dumps(error_body("security", "unauthorized",
                                                  "The API key is missing or invalid (header 'api-key').")),
                                401, media_type="application/json")
            decision = self.limiter.hit(key)
            headers = decision.headers() if decision is not None else {}
            if decision is not None and not decision.allowed:
                headers["Retry-After"] = str(decision.retry_after)
                self._requests.record(key, 429, rate_limited=True)
                return Response(dumps(error_body(
                    "system", "rate_limit_exceeded",
                    f"You have exceeded the rate limit of {decision.limit} requests per "
                    f"{self.limiter.window_seconds:g} seconds. Retry in {decision.retry_after} seconds.")),
                    429, headers=headers, media_type="application/json")
            fault = self.faults.decide()
            if fault == "429":
                headers["Retry-After"] = str(self.faults.retry_after_seconds)
                self._requests.record(key, 429, fault_429=True)
                return Response(dumps(error_body("system", "rate_limit_exceeded",
                                                  "You have exceeded the rate limit.")),
                                429, headers=headers, media_type="application/json")
            if fault in ("500", "503"):
                # The spec's ServerError response is an empty body.
                self._requests.record(key, int(fault))
                return Response(b"", int(fault), headers=headers, media_type="text/plain")
            try:
                status, payload = handler(request, store)
            except _BadRequest as exc:
                status, payload = 400, error_body("validation", "invalid_field_value", str(exc))
            body = dumps(payload)
            if fault == "truncated":
                body = body[: len(body) // 2]
            elif fault == "invalid_json":
                body = _GARBAGE_BODY
            self._requests.record(key, status)
            return Response(body, status, headers=headers, media_type="application/json")

        return endpoint

    def _not_found(self, request: Request, store: StoreData) -> tuple[int, Any]:
        return 404, error_body("validation", "invalid_identifier",
                               f"The sandbox does not emulate {request.url.path}")

    def _list_warehouses(self, request: Request, store: StoreData) -> tuple[int, Any]:
        with self._lock:
            return 200, {"warehouses": list(store.warehouses)}

    def _list_inventory_warehouses(self, request: Request, store: StoreData) -> tuple[int, Any]:
        return self._paged(request, store, "inventory_warehouses", "limit", LIMIT_DEFAULT, LIMIT_MAX, {})

    def _list_inventory_locations(self, request: Request, store: StoreData) -> tuple[int, Any]:
        return self._paged(request, store, "inventory_locations", "limit", LIMIT_DEFAULT, LIMIT_MAX, {})

    def _list_products(self, request: Request, store: StoreData) -> tuple[int, Any]:
        """Ordered by product_id. Filters (spec): ``sku`` exact, ``name`` case-insensitive
        substring, ``active`` true/false."""
        filters = {k: v for k in ("sku", "name", "active") if (v := request.query_params.get(k))}
        if "active" in filters and filters["active"].lower() not in ("true", "false"):
            raise _BadRequest(f"active must be true or false, got {filters['active']!r}")
        return self._paged(request, store, "products", "page_size", PRODUCTS_PAGE_SIZE_MAX,
                           PRODUCTS_PAGE_SIZE_MAX, filters)

    def _list_inventory(self, request: Request, store: StoreData) -> tuple[int, Any]:
        """Filters: ``sku`` (one or comma-separated), ``inventory_warehouse_id``,
        ``inventory_location_id``. ``group_by`` is accepted and ignored: with one location
        per product every grouping returns the same rows."""
        filters = {k: v for k in ("sku", "inventory_warehouse_id", "inventory_location_id")
                   if (v := request.query_params.get(k))}
        return self._paged(request, store, "inventory", "limit", LIMIT_DEFAULT, LIMIT_MAX, filters)

    def _paged(self, request: Request, store: StoreData, items_key: str, size_param: str,
               default_size: int, max_size: int, filters: dict[str, str]) -> tuple[int, Any]:
        """1-based ``page``; a page beyond ``pages`` is an empty list (not an error)."""
        size = _int_param(request, size_param, default_size, 1, max_size)
        page = _int_param(request, "page", 1, 1, None)
        with self._lock:
            rows = self._filtered(store, items_key, filters)
            total = len(rows)
            start = (page - 1) * size
            items = rows[start:start + size]
        pages = -(-total // size)
        last = max(pages, 1)

        def link(p: int) -> dict[str, str]:
            query = urlencode({"page": p, size_param: size, **filters})
            return {"href": str(request.url.replace(query=query))}

        links = {"first": link(1), "last": link(last)}
        if page > 1:
            links["prev"] = link(min(page - 1, last))
        if page < pages:
            links["next"] = link(page + 1)
        return 200, {items_key: items, "total": total, "page": page, "pages": pages, "links": links}

    def _filtered(self, store: StoreData, items_key: str, filters: dict[str, str]) -> list[dict[str, Any]]:
        """Matching rows (caller holds the lock); cached per filter set until the next
        mutation, so walking 1000 filtered pages doesn't rescan 100k rows each time."""
        rows: list[dict[str, Any]] = getattr(store, items_key)
        if not filters:
            return rows
        cache_key = (items_key, tuple(sorted(filters.items())))
        hit = store._filter_cache.get(cache_key)
        if hit is not None and hit[0] == store._version:
            return hit[1]
        if "sku" in filters:  # served from the sku index: skus are unique per store
            wanted = filters["sku"].split(",") if items_key == "inventory" else [filters["sku"]]
            positions = sorted({p for s in wanted if (p := store._pos_by_sku.get(s.strip())) is not None})
            rows = [rows[p] for p in positions]
        checks: list[Callable[[dict[str, Any]], bool]] = []
        if "name" in filters:
            needle = filters["name"].casefold()
            checks.append(lambda row: needle in row["name"].casefold())
        if "active" in filters:
            active = filters["active"].lower() == "true"
            checks.append(lambda row: row["active"] is active)
        for field in ("inventory_warehouse_id", "inventory_location_id"):
            if field in filters:
                checks.append(lambda row, f=field, v=filters[field]: row[f] == v)
        if checks:
            rows = [row for row in rows if all(check(row) for check in checks)]
        if len(store._filter_cache) > 64:
            store._filter_cache.clear()
        store._filter_cache[cache_key] = (store._version, rows)
        return rows

    # --------------------------------------------------------------- control
    def _control(self, handler: Callable[[str, dict[str, Any]], Any]):
        """Control plane (see `control_endpoint`); handlers here take the HTTP method and body."""
        return control_endpoint(lambda request, body: handler(request.method, body))

    def _ctl_health(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"status": "ok", "provider": "shipstation", "stores": self.api_keys}

    def _ctl_faults(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.faults.apply_control(body) if method == "POST" else self.faults.snapshot()

    def _ctl_ratelimit(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        if method == "POST":
            unknown = set(body) - {"requests_per_minute", "window_seconds", "reset"}
            if unknown:
                raise ValueError(f"unknown rate limit knobs {sorted(unknown)}")
            knobs = {k: body[k] for k in ("requests_per_minute", "window_seconds") if k in body}
            if knobs:
                self.limiter.configure(**knobs)
            if body.get("reset"):
                self.limiter.reset()
        return self.limiter.snapshot()

    def _ctl_stores(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        if method == "POST":
            api_key = body.get("api_key")
            if not isinstance(api_key, str) or not api_key:
                raise ValueError("api_key (non-empty string) is required")
            self.add_store(api_key, products=int(body.get("products", 50)),
                           warehouses=int(body.get("warehouses", 2)),
                           locations_per_warehouse=int(body.get("locations_per_warehouse", 3)))
            return {"api_key": api_key, "counts": self.store(api_key).counts()}
        with self._lock:
            return {"stores": {key: store.counts() for key, store in self._stores.items()}}

    def _ctl_mutate(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        api_key = body.get("api_key")
        if not isinstance(api_key, str):
            raise ValueError("api_key is required")
        unknown = set(body) - {"api_key", "update_products", "add_products", "update_inventory",
                               "rename_warehouse", "drift"}
        if unknown:
            raise ValueError(f"unknown mutations {sorted(unknown)}")
        if body.get("drift"):
            return self.drift(api_key)
        return self.mutate(api_key, update_products=int(body.get("update_products", 0)),
                           add_products=int(body.get("add_products", 0)),
                           update_inventory=int(body.get("update_inventory", 0)),
                           rename_warehouse=bool(body.get("rename_warehouse", False)))

    def _ctl_stats(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.stats()

    def _ctl_stats_reset(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        self.reset_stats()
        return self.stats()
