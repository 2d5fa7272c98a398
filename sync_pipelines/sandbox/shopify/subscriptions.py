"""Webhook subscriptions: the ``webhooks.json`` resource, and the deliveries a change makes.

Each mutation's events become one signed delivery per matching subscription, queued on the
`WebhookSender` (``webhooks``) as one batch when the outermost ``batch()`` exits.
"""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import urlsplit

from sync_pipelines.sandbox.control import dumps
from sync_pipelines.sandbox.shopify.data import ShopData, only_fields, utc_micro, webhook_json
from sync_pipelines.sandbox.shopify.query import NOT_FOUND, ApiError, parse_limit
from sync_pipelines.sandbox.shopify.webhooks import SUPPORTED_TOPICS, new_delivery


class _SenderKnob:
    """A sandbox attribute that reads/writes one WebhookSender knob (validated)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else getattr(obj.sender, self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        obj.sender.configure(**{self.name: value})


class ShopifySubscriptions:
    """Webhook subscriptions and deliveries of `ShopifySandbox` (mixed into it)."""

    duplicate_rate = _SenderKnob()
    reorder = _SenderKnob()
    sign_with = _SenderKnob()

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
        triggered = utc_micro(self.now())
        buffer = getattr(self._batch_local, "buffer", None)
        out = buffer if buffer is not None else []
        for topic, payload in events:
            subs = [w for w in data.webhooks.values() if w["topic"] == topic]
            event_id = str(uuid.uuid4())
            for w in subs:
                body = dumps(only_fields(payload, w["fields"]))
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
        triggered = utc_micro(self.now())
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
            return webhook_json(self.shop(shop), self._create_webhook(
                self.shop(shop), {"topic": topic, "address": address, "fields": fields or []}, self.api_version))

    # ------------------------------------------------------- webhooks API
    def _webhooks_api(self, data: ShopData, version: str, method: str, sub: str | None, params: Any,
                      raw: bytes) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            if sub is None and method == "GET":
                return 200, {"webhooks": [webhook_json(data, w) for w in self._find_webhooks(data, params)]}, {}
            if sub == "count" and method == "GET":
                return 200, {"count": len(self._find_webhooks(data, params, limited=False))}, {}
            if sub is None and method == "POST":
                w = self._create_webhook(data, self._webhook_body(raw), version)
                return 201, {"webhook": webhook_json(data, w)}, {}
            if sub is None or sub == "count":
                raise ApiError(404, NOT_FOUND)
            w = data.webhooks.get(int(sub))
            if w is None:
                raise ApiError(404, NOT_FOUND)
            if method == "GET":
                return 200, {"webhook": webhook_json(data, w)}, {}
            if method == "DELETE":
                del data.webhooks[w["id"]]
                return 200, {}, {}
            changes = self._webhook_body(raw)
            merged = {**w, **{k: changes[k] for k in ("address", "topic", "format", "fields",
                                                      "metafield_namespaces") if k in changes}}
            self._validate_webhook(data, merged, exclude=w["id"])
            merged["updated"] = self._ts()
            data.webhooks[w["id"]] = merged
            return 200, {"webhook": webhook_json(data, merged)}, {}

    @staticmethod
    def _webhook_body(raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        webhook = body.get("webhook") if isinstance(body, dict) else None
        if not isinstance(webhook, dict):
            raise ApiError(400, {"errors": {"webhook": "Required parameter missing or invalid"}})
        return webhook

    @staticmethod
    def _find_webhooks(data: ShopData, params: Any, limited: bool = True) -> list[dict[str, Any]]:
        found = [w for _, w in sorted(data.webhooks.items())
                 if (not params.get("topic") or w["topic"] == params["topic"])
                 and (not params.get("address") or w["address"] == params["address"])]
        if params.get("since_id", "").isdigit():
            found = [w for w in found if w["id"] > int(params["since_id"])]
        return found[:parse_limit(params)] if limited else found

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
            raise ApiError(422, {"errors": errors})

    def _create_webhook(self, data: ShopData, body: dict[str, Any], version: str) -> dict[str, Any]:
        w = {"topic": body.get("topic"), "address": body.get("address"), "format": body.get("format") or "json",
             "fields": body.get("fields") or [], "metafield_namespaces": body.get("metafield_namespaces") or []}
        self._validate_webhook(data, w)
        now = self._ts()
        w.update(id=data.next_id("webhooks", data._rng), created=now, updated=now, api_version=version)
        data.webhooks[w["id"]] = w
        return w

