"""Changes to an EcoManager store over time, and the webhook deliveries each one makes.

Every change is stored as an override (the generated order stays untouched), moves the order's
`updated_at` forward, and queues one signed delivery per active webhook of its event: a new order
is ``OrderCreated``; a new order state ``OrderStatusChanged`` (plus ``OrderShippingStatusChanged``
when the state is a carrier's: En dispatch, Expédié, Livré, Retourné — our reading of the event's
name); a new confirmation state ``OrderConfirmationStatusChanged`` (appended to the confirmation
history); a deletion ``OrderDeleted`` with the order as it last was.
"""

from __future__ import annotations

import random
from typing import Any

from sync_pipelines.sandbox.control import dumps
from sync_pipelines.sandbox.ecomanager.data import (
    CONFIRMATION_STATES,
    CONFIRMATORS,
    ORDER_STATES,
    SHIPPING_STATES,
    StoreOrders,
    base_order,
    ecomanager_time,
)
from sync_pipelines.sandbox.ecomanager.webhooks import delivery_for


class EcoManagerMutations:
    """Mutations of `EcoManagerSandbox` (mixed into it); each takes the lock itself."""

    def _emit(self, store: StoreOrders, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Queue a delivery per (event, active webhook of that event); caller holds the lock."""
        out = []
        for event, order in events:
            body = dumps(order)  # the exact bytes sent are the bytes signed
            for webhook in store.webhooks.values():
                if webhook["is_active"] and webhook["event"] == event:
                    out.append(delivery_for(store.store, event, webhook, body, order.get("id")))
        self.sender.enqueue(out)

    def add_orders(self, store_name: str, n: int) -> list[int]:
        """`n` new orders ("En attente", no confirmation yet) with the next ids; their ids."""
        with self._lock:
            store = self.store(store_name)
            ids, events = [], []
            for _ in range(max(0, int(n))):
                order_id = store.next_id
                store.next_id += 1
                order = base_order(store, order_id, store.now(), random.Random(f"{store.rng.random()}"))
                store.overrides[order_id] = order
                ids.append(order_id)
                events.append(("OrderCreated", order))
            self._emit(store, events)
            return ids

    def update_order(self, store_name: str, order_id: int, *, order_state: str | None = None,
                     confirmation_state: str | None = None, confirmator_id: int | None = None) -> dict[str, Any]:
        """Move an order to `order_state` and/or `confirmation_state` (by `confirmator_id`); the new order."""
        if order_state is not None and order_state not in ORDER_STATES:
            raise ValueError(f"order_state must be one of {ORDER_STATES}, got {order_state!r}")
        if confirmation_state is not None and confirmation_state not in CONFIRMATION_STATES:
            raise ValueError(f"confirmation_state must be one of {CONFIRMATION_STATES}, got {confirmation_state!r}")
        with self._lock:
            store = self.store(store_name)
            old = store.order(int(order_id))
            if old is None:
                raise KeyError(f"no order {order_id} in store {store_name!r}")
            stamp = ecomanager_time(store.now())
            order, events = dict(old, updated_at=stamp), []
            if confirmation_state is not None:
                confirmator = next((dict(c) for c in CONFIRMATORS if c["id"] == confirmator_id),
                                   old["confirmator"] or dict(store.rng.choice(CONFIRMATORS)))
                order.update(confirmation_state_name=confirmation_state, confirmator=confirmator,
                             confirmation_history=[*old["confirmation_history"],
                                                   {"state_name": confirmation_state, "created_at": stamp}])
                if confirmation_state == "Confirmé":
                    order["confirmed_at"] = stamp
                events.append("OrderConfirmationStatusChanged")
            if order_state is not None and order_state != old["order_state_name"]:
                order["order_state_name"] = order_state
                events.append("OrderStatusChanged")
                if order_state in SHIPPING_STATES:
                    events.append("OrderShippingStatusChanged")
            store.overrides[order["id"]] = order
            self._emit(store, [(event, order) for event in events])
            return order

    def delete_order(self, store_name: str, order_id: int) -> dict[str, Any]:
        """Delete an order: lists and GET stop returning it; the order as it last was."""
        with self._lock:
            store = self.store(store_name)
            order = store.order(int(order_id))
            if order is None:
                raise KeyError(f"no order {order_id} in store {store_name!r}")
            store.delete(order["id"])
            self._emit(store, [("OrderDeleted", order)])
            return order

    def arrive_after(self, store_name: str, requests: int, add: int) -> None:
        """After the `requests`-th orders-list request from now is answered, `add` orders arrive
        (before the next request): new orders landing in the middle of a sync."""
        if int(requests) < 1 or int(add) < 0:
            raise ValueError("need requests >= 1 and add >= 0")
        with self._lock:
            self.store(store_name).arrivals.append([int(requests), int(add)])

    def _after_orders_request(self, store_name: str) -> None:
        with self._lock:
            store = self.store(store_name)
            due = 0
            for arrival in store.arrivals:
                arrival[0] -= 1
                if arrival[0] == 0:
                    due += arrival[1]
            store.arrivals = [a for a in store.arrivals if a[0] > 0]
            if due:
                self.add_orders(store_name, due)

    def drift(self, store_name: str) -> dict[str, Any]:
        """A few new orders and a few calls by the confirmation team, like a live store."""
        with self._lock:
            store = self.store(store_name)
            rng = store.rng
            added = self.add_orders(store_name, rng.choice((0, 1, 1, 2, 3)))
            changed = []
            for order_id in store.ids_below(None, 30)[:rng.randint(0, 3)]:
                order = store.order(order_id)
                if order is not None and order["order_state_name"] == "En attente":
                    outcome = rng.choice(("Confirmé", "Confirmé", "Injoignable", "Annulé"))
                    state = {"Confirmé": "Confirmé", "Annulé": "Annulé"}.get(outcome)
                    self.update_order(store_name, order_id, confirmation_state=outcome, order_state=state)
                    changed.append(order_id)
            return {"added": added, "changed": changed}
