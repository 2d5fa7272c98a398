"""Changes to a Shopify shop (``/_sandbox/mutate`` and drift), each firing the webhooks Shopify
would send for it: orders created, paid, cancelled, closed, edited and deleted; customers and
products likewise; carts and checkouts (which exist only as webhook payloads). Timestamps come
from the sandbox clock (``control``).
"""

from __future__ import annotations

from typing import Any, Callable

from sync_pipelines.sandbox.base import pick_positions
from sync_pipelines.sandbox.shopify.data import (
    CUSTOMER_TAGS, RENDER, RESOURCES, TAGS, Customer, Order, ShopData, customer_json, make_customers, make_orders,
    make_products, money, order_json, product_json,
)

# What `drift` adds, one step per tick and in this order, on top of its random mix: every topic
# a subscription can ask for (SUPPORTED_TOPICS) is sent at least once per cycle of len(DRIFT_ROTATION)
# ticks — carts and checkouts first (they exist only as webhooks), and each delete balanced by a
# creation so a long demo neither empties nor floods a shop.
DRIFT_ROTATION = ("cart_create", "checkout_create", "cart_update", "checkout_update",
                  "add_orders", "update_orders", "pay_orders", "cancel_orders", "delete_orders",
                  "add_customers", "update_customers", "delete_customers",
                  "add_products", "update_products", "delete_products")

MUTATIONS = ("update_orders", "add_orders", "pay_orders", "cancel_orders", "close_orders", "delete_orders",
             "update_customers", "add_customers", "delete_customers",
             "update_products", "add_products", "delete_products")


class ShopifyMutations:
    """The mutations of `ShopifySandbox` (mixed into it)."""

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
        return [pool[p] for p in pick_positions(data._rng, len(pool), int(n))]

    def _mutate_orders(self, shop: str, n: int, ids: list[int] | None, eligible: Callable[[Order], bool] | None,
                       change: Callable[[Order, int], None], topics: tuple[str, ...]) -> list[int]:
        with self._lock, self.batch():
            data = self.shop(shop)
            now = self._ts()
            picked = self._pick(data, "orders", n, ids, eligible)
            events = []
            for o in picked:
                change(o, now)
                o.updated = now
                payload = order_json(data, o)
                events.extend((topic, payload) for topic in topics)
            if picked:
                data.touch("orders")
            self._emit(data, events)
            return [o.id for o in picked]

    def update_orders(self, shop: str, n: int = 1, *, ids: list[int] | None = None) -> list[int]:
        """Edit note/tags (and sometimes fulfil) ``n`` random orders -> orders/updated."""
        rng = self.shop(shop)._rng

        def change(o: Order, now: int) -> None:
            o.note = f"Sandbox edit {rng.randrange(10**6)}"
            o.tags = TAGS[rng.randrange(len(TAGS))]
            if o.fulfillment is None and o.cancelled is None and rng.random() < 0.4:
                o.fulfillment = "fulfilled"

        return self._mutate_orders(shop, n, ids, None, change, ("orders/updated",))

    def pay_orders(self, shop: str, n: int = 1, *, ids: list[int] | None = None) -> list[int]:
        """Mark pending/authorized orders paid -> orders/paid + orders/updated."""
        def change(o: Order, now: int) -> None:
            o.financial = "paid"

        return self._mutate_orders(shop, n, ids,
                                   lambda o: o.financial in ("pending", "authorized") and o.cancelled is None,
                                   change, ("orders/paid", "orders/updated"))

    def cancel_orders(self, shop: str, n: int = 1, *, ids: list[int] | None = None) -> list[int]:
        """Cancel (and close) orders -> orders/cancelled + orders/updated."""
        def change(o: Order, now: int) -> None:
            o.cancelled, o.cancel_reason = now, "customer"
            o.closed = o.closed or now
            o.financial = "refunded" if o.financial in ("paid", "partially_refunded") else "voided"

        return self._mutate_orders(shop, n, ids, lambda o: o.cancelled is None, change,
                                   ("orders/cancelled", "orders/updated"))

    def close_orders(self, shop: str, n: int = 1, *, ids: list[int] | None = None) -> list[int]:
        """Close (archive) open orders -> orders/updated; they leave the default status=open view."""
        def change(o: Order, now: int) -> None:
            o.closed = now

        return self._mutate_orders(shop, n, ids, lambda o: o.closed is None and o.cancelled is None, change,
                                   ("orders/updated",))

    def add_orders(self, shop: str, n: int = 1) -> list[int]:
        """New orders now -> orders/create (+ orders/paid when paid, customers/update for the buyer)."""
        with self._lock, self.batch():
            data = self.shop(shop)
            made = make_orders(data, data._rng, max(int(n), 0), self._ts())
            events: list[tuple[str, dict[str, Any]]] = []
            buyers: dict[int, Customer] = {}
            for o in made:
                payload = order_json(data, o)
                events.append(("orders/create", payload))
                if o.financial == "paid":
                    events.append(("orders/paid", payload))
                if o.customer_id is not None:
                    buyers[o.customer_id] = data.by_id["customers"][o.customer_id]
            for c in buyers.values():
                c.updated = self._ts()
                events.append(("customers/update", customer_json(data, c)))
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
                c.tags = CUSTOMER_TAGS[rng.randrange(len(CUSTOMER_TAGS))]
                if rng.random() < 0.2:
                    c.state = "disabled" if c.state == "enabled" else "enabled"
                c.updated = now
            if picked:
                data.touch("customers", "orders")  # orders embed the customer
            self._emit(data, [("customers/update", customer_json(data, c)) for c in picked])
            return [c.id for c in picked]

    def add_customers(self, shop: str, n: int = 1) -> list[int]:
        with self._lock, self.batch():
            data = self.shop(shop)
            made = make_customers(data, data._rng, max(int(n), 0), self._ts())
            if made:
                data.touch("customers")
            self._emit(data, [("customers/create", customer_json(data, c)) for c in made])
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
            self._emit(data, [("products/update", product_json(data, p)) for p in picked])
            return [p.id for p in picked]

    def add_products(self, shop: str, n: int = 1) -> list[int]:
        with self._lock, self.batch():
            data = self.shop(shop)
            made = make_products(data, data._rng, max(int(n), 0), self._ts())
            if made:
                data.touch("products")
            self._emit(data, [("products/create", product_json(data, p)) for p in made])
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
            rec = data.record(resource, record_id)
            data._touches += 1
            if resource == "products":
                rec.variants[0].inventory += 1
                rec.title = f"{rec.title.split(' (rev')[0]} (rev {data._touches})"
            else:
                rec.note = f"Same-second edit {data._touches}"
            data.touch(resource, *(("orders",) if resource == "customers" else ()))
            payload = RENDER[resource](data, rec)
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
                          "vendor": p.vendor, "quantity": qty, "price": money(v.price),
                          "line_price": money(v.price * qty), "taxable": True, "gift_card": False})
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
                       "line_items": co["line_items"], "total_price": money(total), "currency": data.currency,
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
        """A small random mix of mutations, like a live shop between two syncs, plus the next step
        of `DRIFT_ROTATION`, so every topic the sandbox sends comes round within one cycle."""
        with self._lock, self.batch():
            data = self.shop(shop)
            rng = data._rng
            plan = {"update_orders": rng.randint(0, 3), "add_orders": int(rng.random() < 0.4),
                    "pay_orders": int(rng.random() < 0.2), "close_orders": int(rng.random() < 0.2),
                    "cancel_orders": int(rng.random() < 0.05), "update_customers": int(rng.random() < 0.3),
                    "update_products": int(rng.random() < 0.2)}
            done = self.mutate(shop, **plan)
            step = DRIFT_ROTATION[data.drift_step % len(DRIFT_ROTATION)]
            data.drift_step += 1
            done.setdefault(step, []).extend(self._drift_step(shop, step))
            return done

    def _drift_step(self, shop: str, step: str) -> list[int]:
        """One rotation step; returns the ids it touched (carts and checkouts have tokens: none)."""
        if step in ("cart_create", "cart_update", "checkout_create", "checkout_update"):
            kind, event = step.split("_")
            getattr(self, f"{kind}_event")(shop, event)
            return []
        if step == "pay_orders":
            paid = self.pay_orders(shop, 1)
            if not paid:  # nothing left to pay: a new order, paid later (orders/create, then orders/paid)
                paid = self.pay_orders(shop, ids=self.add_orders(shop, 1))
            return paid
        return getattr(self, step)(shop, 1)

