"""Maystro stores' orders, generated lazily and deterministically: 100,000 orders cost nothing
until a page is read, and a page is 20 records built from (seed, api key, index).

Records have the fields the published client reads from `GET /api/stores/orders/`
(`list.results[]`; see the seed's maystro.service.ts `MaystroOrder`): `id`, `instance_uuid`,
`display_id`, `external_order_id`, `status` (a numeric code), `tracking_number`, customer,
destination and product fields, `created_at`, `last_update`, … . Only changed orders are stored
(`overrides`); an order's id encodes its index, so finding it is arithmetic.
"""

from __future__ import annotations

import hashlib
import random
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

# Maystro's codes and French names (the seed's STATUS_MAPPING, "from Maystro API documentation").
STATUS_NAMES: dict[int, str] = {
    4: "CRÉÉ", 5: "DEMANDE DE RAMASSAGE", 6: "EN COURS", 8: "EN ATTENTE DE TRANSIT",
    9: "EN TRANSIT POUR EXPÉDITION", 10: "EN TRANSIT POUR RETOUR", 11: "EN ATTENTE", 12: "EN RUPTURE DE STOCK",
    15: "PRÊT À EXPÉDIER", 22: "ASSIGNÉ", 31: "EXPÉDIÉ", 32: "ALERTÉ", 41: "LIVRÉ", 42: "REPORTÉ",
    50: "ANNULÉ", 51: "PRÊT À RETOURNER", 52: "PRIS PAR LE MAGASIN", 53: "NON REÇU",
}
_OLD_ORDER_CODES = [41] * 12 + [50] * 3 + [52, 53, 42, 51]  # most old orders are delivered
_RECENT_CODES = [4, 5, 6, 8, 9, 11, 15, 22, 31, 32, 42]
ALGIERS = timezone(timedelta(hours=1))  # Africa/Algiers has no DST: DRF prints +01:00
EPOCH = datetime(2025, 1, 1, 8, 0, tzinfo=ALGIERS)
WILAYAS = ["Alger", "Oran", "Constantine", "Blida", "Sétif", "Tizi Ouzou", "Béjaïa", "Annaba"]
PRODUCTS = [("Montre connectée", 4500), ("Écouteurs sans fil", 3200), ("Sac à main", 5800), ("Parfum", 6900)]


def iso(moment: datetime) -> str:
    """DRF's default rendering: ISO 8601 with microseconds and the server zone's offset."""
    return moment.astimezone(ALGIERS).isoformat()


@dataclass
class StoreData:
    """One Maystro store (one API key): `size` orders, index 1 the oldest."""

    api_key: str
    seed: int
    size: int
    reference_prefix: str = "ORD-"
    overrides: dict[int, dict[str, Any]] = field(default_factory=dict)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    webhook_urls: list[str] = field(default_factory=list)
    deliveries: deque = field(default_factory=lambda: deque(maxlen=1000))
    version: int = 0

    def __post_init__(self) -> None:
        digest = hashlib.sha256(f"{self.seed}:{self.api_key}".encode()).digest()
        self._prefix = int.from_bytes(digest[:12], "big")  # 96 bits; the low 32 bits of an id are its index
        self.lock = threading.RLock()

    # ----------------------------------------------------------------- ids
    def order_id(self, index: int) -> str:
        return str(uuid.UUID(int=(self._prefix << 32) | index))

    def index_of(self, order_id: str) -> int | None:
        try:
            value = uuid.UUID(str(order_id)).int
        except ValueError:
            return None
        index = value & 0xFFFFFFFF
        return index if value >> 32 == self._prefix and 1 <= index <= self.size else None

    # --------------------------------------------------------------- records
    def order(self, index: int) -> dict[str, Any]:
        """Order `index` as the API lists it (its changes applied)."""
        rng = random.Random(f"{self.seed}:{self.api_key}:{index}")
        created = EPOCH + timedelta(minutes=7 * index + rng.randint(0, 6))
        status = rng.choice(_OLD_ORDER_CODES if index < self.size - 200 else _RECENT_CODES)
        product, price = rng.choice(PRODUCTS)
        wilaya = rng.choice(WILAYAS)
        order_id = self.order_id(index)
        record = {
            "id": order_id, "instance_uuid": order_id, "display_id": str(100000 + index),
            "external_order_id": f"{self.reference_prefix}{index}", "status": status,
            "tracking_number": f"MD{100000 + index}", "ordered_at": iso(created), "created_at": iso(created),
            "last_update": iso(created + timedelta(hours=rng.randint(1, 72))), "delivered_at": None,
            "postponed_to": None, "alerted_at": None, "alert_reason": None, "abort_reason": None,
            "customer_name": f"Client {index}", "customer_phone": f"05{rng.randint(10000000, 99999999)}",
            "destination_text": f"{wilaya}, rue {rng.randint(1, 200)}", "product_name": product,
            "product_price": price, "commune": rng.randint(1, 1541), "wilaya": wilaya, "commune_name": wilaya,
        }
        if status == 41:
            record["delivered_at"] = record["last_update"]
        record.update(self.overrides.get(index, {}))
        return record

    def newest_first(self, start: int, count: int) -> list[dict[str, Any]]:
        """`count` orders from position `start` (0-based) of the newest-first listing."""
        top = self.size - start
        return [self.order(i) for i in range(top, max(top - count, 0), -1)]
