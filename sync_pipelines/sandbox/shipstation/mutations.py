"""Changes to a ShipStation store over time (``/_sandbox/mutate`` and drift), so incremental
syncs have something to pick up. Changed records are replaced, never edited (see ``data``),
and every timestamp they get is strictly increasing per store.
"""

from __future__ import annotations

from typing import Any

from sync_pipelines.sandbox.base import pick_positions
from sync_pipelines.sandbox.shipstation.data import ADJECTIVES, COLORS, MATERIALS, NOUNS, iso_ms, make_products


class ShipStationMutations:
    """The mutations of `ShipStationSandbox` (mixed into it)."""

    def update_products(self, api_key: str, n: int) -> list[int]:
        """Change price and name of ``n`` random products; returns their product_ids."""
        with self._lock:
            store = self.store(api_key)
            rng = store._rng
            changed = []
            for pos in pick_positions(rng, len(store.products), n):
                old = store.products[pos]
                new = dict(old)
                amount = round(max(0.5, old["price"]["amount"] * (0.8 + rng.random() * 0.4)), 2)
                if amount == old["price"]["amount"]:
                    amount = round(amount + 0.01, 2)
                new["price"] = {"currency": old["price"]["currency"], "amount": amount}
                name = (f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {rng.choice(NOUNS)}"
                        f" - {rng.choice(COLORS)}")
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
            products, inventory = make_products(store, store._rng, max(n, 0), now_ms=store._now_ms())
            store.products.extend(products)
            store.inventory.extend(inventory)
            if products:
                store._version += 1
            return [p["product_id"] for p in products]

    def delete_products(self, api_key: str, n: int) -> list[int]:
        """Delete ``n`` random products and their inventory rows; returns their product_ids.

        ShipStation v2 lists simply stop returning a deleted product (there is no tombstone and
        no modified-since filter), so a client only learns of it by listing everything.
        """
        with self._lock:
            store = self.store(api_key)
            gone = set(pick_positions(store._rng, len(store.products), n))
            if not gone:
                return []
            deleted = [store.products[pos]["product_id"] for pos in sorted(gone)]
            # inventory[i] is products[i]'s row: drop both, then re-index the sku positions.
            store.products[:] = [p for i, p in enumerate(store.products) if i not in gone]
            store.inventory[:] = [r for i, r in enumerate(store.inventory) if i not in gone]
            store._pos_by_sku = {p["sku"]: i for i, p in enumerate(store.products)}
            store._version += 1
            return deleted

    def update_inventory(self, api_key: str, n: int) -> list[tuple[str, str, int, int]]:
        """Change on_hand (and so available) of ``n`` rows.

        Returns ``(sku, inventory_location_id, on_hand, available)`` with the new values.
        """
        with self._lock:
            store = self.store(api_key)
            rng = store._rng
            changed = []
            for pos in pick_positions(rng, len(store.inventory), n):
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
