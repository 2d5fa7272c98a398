"""An EcoManager store's orders: generated lazily from their id, only changes kept in memory.

A store's ids are the contiguous range ``[first_id, next_id)`` minus the deleted ones; an order
nobody touched is rebuilt from ``(seed, store, id)`` every time it is served, so 100,000 orders
cost a few integers and start instantly. Added and changed orders live in ``overrides``, deleted
ids in the sorted ``deleted`` list (keyset and offset positions are computed with bisect).

Fields are those of the v2 order resource as clients read it (``id``, ``reference``,
``order_state_name``, ``confirmation_state_name``, ``confirmation_history``, ``confirmator``,
``full_name``, ``telephone``, ``wilaya``, ``commune``, ``items``, ``total``, ``confirmed_at``,
``created_at``, ``updated_at``); state names are French, as EcoManager sends them; timestamps are
EcoManager's wall-clock format ``2025-04-26 14:30:00`` (Algeria's time, UTC+1 all year, no offset
printed), as in the published webhook examples.
"""

from __future__ import annotations

import bisect
import random
import time
from typing import Any, Callable

# Generated history ends here (2025-06-30T12:00:00Z): the same seed always yields the same orders.
ANCHOR = 1_751_284_800
SPACING = 420  # seconds between two generated orders (100,000 orders span ~16 months)
_ALGIERS_OFFSET = 3600  # Africa/Algiers: UTC+1, no daylight saving since 1981

PENDING = "En attente"
ORDER_STATES = ("En attente", "Confirmé", "En préparation", "En dispatch", "Expédié", "Livré", "Retourné",
                "Annulé")
SHIPPING_STATES = frozenset({"En dispatch", "Expédié", "Livré", "Retourné"})
CONFIRMATION_STATES = ("Confirmé", "Annulé", "Injoignable", "Reporté", "Double")
_FINAL = (("Livré", 70), ("Retourné", 12), ("Annulé", 18))

_FIRST_NAMES = ("Amina", "Yacine", "Sofiane", "Meriem", "Karim", "Nour", "Walid", "Lina", "Riad", "Samira",
                "Mohamed", "Imane", "Hichem", "Khadija", "Bilal", "Asma")
_LAST_NAMES = ("Benali", "Boudiaf", "Haddad", "Mansouri", "Zerrouki", "Belkacem", "Cherif", "Saadi",
               "Brahimi", "Kaci", "Ait Ahmed", "Messaoudi")
_PLACES = (("Alger", ("Bab Ezzouar", "Hydra", "Kouba", "El Biar")), ("Oran", ("Bir El Djir", "Es Senia")),
           ("Constantine", ("El Khroub", "Ain Smara")), ("Sétif", ("El Eulma", "Ain Arnat")),
           ("Blida", ("Boufarik", "Ouled Yaich")), ("Tizi Ouzou", ("Azazga", "Draa Ben Khedda")),
           ("Béjaïa", ("Akbou", "Amizour")), ("Annaba", ("El Bouni", "Sidi Amar")),
           ("Tlemcen", ("Maghnia", "Remchi")), ("Batna", ("Barika", "Arris")))
_PRODUCTS = (("Crème hydratante", 1900), ("Huile d'argan", 2500), ("Savon noir", 900), ("Sérum vitamine C", 3200),
             ("Shampoing bio", 1500), ("Masque argile", 1200), ("Parfum musc", 4500), ("Gel aloe vera", 1100))
CONFIRMATORS = ({"id": 11, "name": "Amina B."}, {"id": 12, "name": "Yacine K."}, {"id": 13, "name": "Lina S."},
                {"id": 14, "name": "Riad M."})


def ecomanager_time(epoch_seconds: float) -> str:
    """``2025-04-26 14:30:00``: EcoManager's format, in Algeria's time."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(epoch_seconds) + _ALGIERS_OFFSET))


class StoreOrders:
    """One store: its token, its id range, and what changed since generation."""

    def __init__(self, store: str, token: str, seed: int, orders: int,
                 clock: Callable[[], float] = time.time) -> None:
        if orders < 0:
            raise ValueError("orders must be >= 0")
        self.store, self.token, self.seed = store, token, seed
        self.first_id = random.Random(f"ecomanager-store:{seed}:{store}").randrange(100_000, 900_000)
        self.generated = orders
        self.next_id = self.first_id + orders
        self.deleted: list[int] = []  # sorted
        self.overrides: dict[int, dict[str, Any]] = {}
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.next_webhook_id = 1
        self.arrivals: list[list[int]] = []  # [orders-list requests still to come, orders to add]
        self.rng = random.Random(f"ecomanager-mutations:{seed}:{store}")
        self._clock = clock  # the sandbox's settable clock
        self._last_ts = 0

    # ------------------------------------------------------------- lookups
    def exists(self, order_id: int) -> bool:
        if not self.first_id <= order_id < self.next_id:
            return False
        i = bisect.bisect_left(self.deleted, order_id)
        return not (i < len(self.deleted) and self.deleted[i] == order_id)

    def order(self, order_id: int) -> dict[str, Any] | None:
        """The order as the API serves it, or None if it never existed or was deleted."""
        if not self.exists(order_id):
            return None
        override = self.overrides.get(order_id)
        return override if override is not None else generate_order(self, order_id)

    def count(self) -> int:
        return self.next_id - self.first_id - len(self.deleted)

    def counts(self) -> dict[str, int]:
        return {"orders": self.count(), "first_id": self.first_id, "max_id": self.next_id - 1,
                "changed": len(self.overrides), "deleted": len(self.deleted), "webhooks": len(self.webhooks)}

    # -------------------------------------------------------- keyset pages
    def ids_below(self, bound: int | None, n: int) -> list[int]:
        """Up to `n` existing ids lower than `bound` (None: from the top), highest first."""
        x = self.next_id - 1 if bound is None else min(bound - 1, self.next_id - 1)
        j = bisect.bisect_right(self.deleted, x) - 1
        out: list[int] = []
        while x >= self.first_id and len(out) < n:
            if j >= 0 and self.deleted[j] == x:
                j -= 1
            else:
                out.append(x)
            x -= 1
        return out

    def ids_above(self, bound: int | None, n: int) -> list[int]:
        """Up to `n` existing ids higher than `bound` (None: from the bottom), lowest first."""
        x = self.first_id if bound is None else max(bound + 1, self.first_id)
        j = bisect.bisect_left(self.deleted, x)
        out: list[int] = []
        while x < self.next_id and len(out) < n:
            if j < len(self.deleted) and self.deleted[j] == x:
                j += 1
            else:
                out.append(x)
            x += 1
        return out

    # -------------------------------------------------------- offset pages
    def ids_at_offset(self, offset: int, n: int, descending: bool) -> list[int]:
        """The `n` ids from position `offset` (0-based) of the listing in that order, as an
        offset (``page=N``) paginator reads it *now*: positions shift when orders arrive."""
        if offset >= self.count():
            return []
        lo, hi = self.first_id, self.next_id - 1
        if descending:  # the highest x with (existing ids >= x) > offset
            while lo < hi:
                mid = (lo + hi + 1) // 2
                at_or_above = (self.next_id - mid) - (len(self.deleted) - bisect.bisect_left(self.deleted, mid))
                lo, hi = (mid, hi) if at_or_above > offset else (lo, mid - 1)
            return self.ids_below(lo + 1, n)
        while lo < hi:  # the lowest x with (existing ids <= x) > offset
            mid = (lo + hi) // 2
            at_or_below = (mid - self.first_id + 1) - bisect.bisect_right(self.deleted, mid)
            lo, hi = (lo, mid) if at_or_below > offset else (mid + 1, hi)
        return self.ids_above(lo - 1, n)

    # ------------------------------------------------------------ changes
    def now(self) -> int:
        """Strictly increasing seconds, so every change moves `updated_at` forward."""
        self._last_ts = max(int(self._clock()), self._last_ts + 1)
        return self._last_ts

    def delete(self, order_id: int) -> None:
        bisect.insort(self.deleted, order_id)
        self.overrides.pop(order_id, None)


def _customer(rng: random.Random) -> dict[str, Any]:
    wilaya, communes = rng.choice(_PLACES)
    return {"full_name": f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}",
            "telephone": f"0{rng.choice('567')}{rng.randrange(10**8):08d}",
            "wilaya": wilaya, "commune": rng.choice(communes)}


def _items(rng: random.Random, order_id: int) -> tuple[list[dict[str, Any]], int]:
    items, subtotal = [], 0
    for line, (title, price) in enumerate(rng.sample(_PRODUCTS, rng.randint(1, 3))):
        quantity = rng.choice((1, 1, 1, 2, 3))
        product_id = 1000 + _PRODUCTS.index((title, price))
        items.append({"id": order_id * 10 + line, "product_id": product_id, "sku": f"SKU-{product_id}",
                      "title": title, "quantity": quantity, "selling_price": price})
        subtotal += quantity * price
    return items, subtotal


def base_order(store: StoreOrders, order_id: int, created: int, rng: random.Random) -> dict[str, Any]:
    """A new order, as it is when the customer places it (no confirmation yet)."""
    items, subtotal = _items(rng, order_id)
    delivery = rng.choice((400, 500, 600, 800))
    stamp = ecomanager_time(created)
    return {"id": order_id, "reference": f"{store.store[:3].upper()}-{order_id}", **_customer(rng),
            "order_state_name": PENDING, "confirmation_state_name": None, "confirmation_history": [],
            "confirmator": None, "items": items, "total_products": subtotal, "delivery_price": delivery,
            "total": subtotal + delivery, "confirmed_at": None, "created_at": stamp, "updated_at": stamp}


def generate_order(store: StoreOrders, order_id: int) -> dict[str, Any]:
    """The untouched historical order `order_id`: older orders are further along their life."""
    rng = random.Random(f"ecomanager:{store.seed}:{store.store}:{order_id}")
    age = store.first_id + store.generated - order_id  # 1 = the newest generated order
    created = ANCHOR - age * SPACING + rng.randrange(SPACING)
    order = base_order(store, order_id, created, rng)
    if age <= 20:
        return order  # still waiting for a call
    attempts = ["Injoignable"] * rng.choice((0, 0, 1, 2))
    if age <= 300:
        outcome = rng.choice(("Confirmé", "Confirmé", "Annulé", "Reporté", "Injoignable"))
        state = rng.choice(("Confirmé", "En préparation", "En dispatch")) if outcome == "Confirmé" else (
            "Annulé" if outcome == "Annulé" else PENDING)
    else:
        outcome = rng.choices(("Confirmé", "Annulé", "Double"), (80, 15, 5))[0]
        state = rng.choices([s for s, _ in _FINAL], [w for _, w in _FINAL])[0] if outcome == "Confirmé" else "Annulé"
    when = created
    history = []
    for name in [*attempts, outcome]:
        when += rng.randrange(600, 6 * 3600)
        history.append({"state_name": name, "created_at": ecomanager_time(when)})
    order.update(order_state_name=state, confirmation_state_name=outcome, confirmation_history=history,
                 confirmator=dict(rng.choice(CONFIRMATORS)),
                 confirmed_at=ecomanager_time(when) if outcome == "Confirmé" else None,
                 updated_at=ecomanager_time(when + (rng.randrange(3600, 5 * 86400) if state in SHIPPING_STATES else 0)))
    return order
