"""A ShipStation store's data: the records the API serves, and their seeded generation.

Data is generated per store from ``(seed, api_key)`` so runs are reproducible, and it can
be mutated over time (explicitly or by a background "drift" ticker, see ``mutations``) so
incremental syncs have something to pick up. Records are plain dicts replaced copy-on-write on
mutation: a handler copies its page slice under the lock and serializes it outside the lock
without ever seeing a half-updated record.
"""

from __future__ import annotations

import random
import time
from typing import Any

# Generated history ends here (2025-07-01T00:00:00Z), so the same seed always yields
# byte-identical data; mutations use the real clock.
_ANCHOR_MS = 1_751_328_000_000
_DAY_MS = 86_400_000

ADJECTIVES = ("Classic", "Deluxe", "Compact", "Rugged", "Premium", "Eco", "Smart", "Vintage",
              "Ultra", "Mini", "Pro", "Travel", "Heavy-Duty", "Lightweight", "Organic", "Modern")
MATERIALS = ("Cotton", "Steel", "Bamboo", "Leather", "Ceramic", "Walnut", "Canvas", "Glass",
             "Copper", "Wool", "Silicone", "Linen")
NOUNS = ("Mug", "Backpack", "Lamp", "Notebook", "Water Bottle", "Cutting Board", "Tote Bag",
         "Phone Case", "Candle", "Desk Organizer", "Headphones", "Scarf", "Plant Pot", "Keychain",
         "Wallet", "Blanket", "Teapot", "Yoga Mat", "Sunglasses", "Pillow")
COLORS = ("Black", "White", "Red", "Navy", "Olive", "Sand", "Charcoal", "Teal")
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


def generate_store(seed: int, api_key: str, products: int, warehouses: int,
                   locations_per_warehouse: int) -> StoreData:
    if products < 0 or warehouses < 1 or locations_per_warehouse < 1:
        raise ValueError("need products >= 0, warehouses >= 1, locations_per_warehouse >= 1")
    rng = random.Random(f"shipstation:{seed}:{api_key}")  # str seeds are stable across processes
    store = StoreData(api_key)
    store._rng = random.Random(f"shipstation-mutations:{seed}:{api_key}")
    store._sku_prefix = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(3))
    company = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} Co"
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
    new_products, new_inventory = make_products(store, rng, products, now_ms=None)
    store.products.extend(new_products)
    store.inventory.extend(new_inventory)
    return store


def make_products(store: StoreData, rng: random.Random, count: int,
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
    n_adj, n_mat, n_noun, n_col = len(ADJECTIVES), len(MATERIALS), len(NOUNS), len(COLORS)
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
        noun = NOUNS[int(r() * n_noun)]
        name = (f"{ADJECTIVES[int(r() * n_adj)]} {MATERIALS[int(r() * n_mat)]} {noun}"
                f" - {COLORS[int(r() * n_col)]}")
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
