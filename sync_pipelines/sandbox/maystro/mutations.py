"""Changes over time: new orders (they go on top of the newest-first listing, so pages shift while a
client reads them), status changes (any code, including one Maystro's list lacks), and the
`OrderStatusChanged` webhook each change sends to the store's hooks."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from sync_pipelines.sandbox.maystro import webhooks
from sync_pipelines.sandbox.maystro.data import STATUS_NAMES, iso

_DRIFT_CODES = [6, 9, 15, 22, 31, 41, 41, 41, 42, 50]


class MaystroMutations:
    """Mutations of `MaystroSandbox` (mixed into it)."""

    def add_orders(self, api_key: str, count: int) -> dict[str, Any]:
        store = self._account(api_key)
        if count < 0:
            raise ValueError("count must be >= 0")
        with store.lock:
            store.size += count
            store.version += 1
            return {"size": store.size}

    def set_statuses(self, api_key: str, changes: list[tuple[int | str, Any]], *,
                     send_webhooks: bool = True) -> list[dict[str, Any]]:
        """Set each order's (index or id) status; returns the changed orders. Each change is
        sent to the store's hooks unless `send_webhooks` is false."""
        store = self._account(api_key)
        now = iso(datetime.now(UTC))
        indices = []
        with store.lock:
            for which, status in changes:
                index = which if isinstance(which, int) else store.index_of(which)
                if index is None or not 1 <= index <= store.size:
                    raise KeyError(f"no order {which!r} in this store")
                fields = {"status": status, "last_update": now}
                if status == 41:
                    fields["delivered_at"] = now
                store.overrides.setdefault(index, {}).update(fields)
                indices.append(index)
            store.version += 1
            changed = [store.order(i) for i in indices]
        if send_webhooks:
            self.send_status_webhooks(api_key, indices)
        return changed

    def send_status_webhooks(self, api_key: str, indices: list[int]) -> list[dict[str, Any]]:
        """POST one `OrderStatusChanged` delivery per order to every hook of the store whose
        trigger covers it, and to the URLs set through the control plane; returns the deliveries."""
        store = self._account(api_key)
        with store.lock:
            urls = [h["endpoint"] for h in store.hooks if h["trigger_type"] in ("all", webhooks.EVENT)]
            urls += store.webhook_urls
            orders = [store.order(i) for i in indices]
        sent = []
        for order in orders:
            event = webhooks.status_event(order, self.store_name(api_key))
            for url in urls:
                body = webhooks.envelope(event, f"projects/maystro/subscriptions/{self.store_name(api_key)}")
                status = webhooks.post(url, body)
                sent.append({"url": url, "status": status, "messageId": body["message"]["messageId"],
                             "order_id": order["id"], "code": order["status"]})
        with store.lock:
            store.deliveries.extend(sent)
        return sent

    def drift(self, api_key: str) -> dict[str, Any]:
        """A few new orders and a few status changes (webhooks sent), like a live store."""
        store = self._account(api_key)
        rng = random.Random()
        added = rng.randint(0, 3)
        self.add_orders(api_key, added)
        with store.lock:
            size = store.size
        picks = sorted({rng.randint(max(1, size - 300), size) for _ in range(rng.randint(1, 4))})
        changed = self.set_statuses(api_key, [(i, rng.choice(_DRIFT_CODES)) for i in picks])
        return {"added": added, "changed": [{"id": o["id"], "status": o["status"],
                                             "label": STATUS_NAMES.get(o["status"])} for o in changed]}
